-- trigger dualwrite_users-display-name_ai (ON users)
CREATE TRIGGER "dualwrite_users-display-name_ai" AFTER INSERT ON "users" FOR EACH ROW
WHEN (NEW."full_name" IS NOT NULL) OR (NEW."display_name" IS NOT NULL)
BEGIN
  /* dualwrite:users-display-name:a9d40c5ae2d1a99d */
  UPDATE "users" SET "display_name" = CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (NEW."full_name") END
  WHERE "id" = NEW."id"
    AND (NEW."full_name" IS NOT NULL) AND NOT ((NEW."display_name" IS NOT NULL) AND COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "dualwrite_migrations" m WHERE m.migration_key = 'users-display-name'), FALSE));
  UPDATE "users" SET "full_name" = CASE WHEN NEW."display_name" IS NULL THEN NULL ELSE (NEW."display_name") END
  WHERE "id" = NEW."id"
    AND (NEW."display_name" IS NOT NULL) AND (NOT (NEW."full_name" IS NOT NULL) OR COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "dualwrite_migrations" m WHERE m.migration_key = 'users-display-name'), FALSE));
END;
-- drop: DROP TRIGGER IF EXISTS "dualwrite_users-display-name_ai"
-- trigger dualwrite_users-display-name_au (ON users)
CREATE TRIGGER "dualwrite_users-display-name_au" AFTER UPDATE OF "full_name", "display_name" ON "users" FOR EACH ROW
WHEN (NEW."full_name" IS NOT OLD."full_name") OR (NEW."display_name" IS NOT OLD."display_name")
BEGIN
  /* dualwrite:users-display-name:45176e7b2280ccf9 */
  UPDATE "users" SET "display_name" = CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (NEW."full_name") END
  WHERE "id" = NEW."id"
    AND (NEW."full_name" IS NOT OLD."full_name") AND NOT ((NEW."display_name" IS NOT OLD."display_name") AND COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "dualwrite_migrations" m WHERE m.migration_key = 'users-display-name'), FALSE))
    AND NOT (NEW."full_name" IS CASE WHEN NEW."display_name" IS NULL THEN NULL ELSE (NEW."display_name") END);
  UPDATE "users" SET "full_name" = CASE WHEN NEW."display_name" IS NULL THEN NULL ELSE (NEW."display_name") END
  WHERE "id" = NEW."id"
    AND (NEW."display_name" IS NOT OLD."display_name") AND (NOT (NEW."full_name" IS NOT OLD."full_name") OR COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "dualwrite_migrations" m WHERE m.migration_key = 'users-display-name'), FALSE))
    AND (NEW."display_name" IS NOT CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (NEW."full_name") END);
END;
-- drop: DROP TRIGGER IF EXISTS "dualwrite_users-display-name_au"
