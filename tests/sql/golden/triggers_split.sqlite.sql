-- trigger dualwrite_people-split-name_ai (ON people)
CREATE TRIGGER "dualwrite_people-split-name_ai" AFTER INSERT ON "people" FOR EACH ROW
WHEN (NEW."full_name" IS NOT NULL) OR (NEW."first_name" IS NOT NULL OR NEW."last_name" IS NOT NULL)
BEGIN
  /* dualwrite:people-split-name:6e20fa31fa4a4efa */
  UPDATE "people" SET "first_name" = CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (CASE WHEN instr(NEW."full_name", ' ') > 0 THEN substr(NEW."full_name", 1, instr(NEW."full_name", ' ') - 1) ELSE NEW."full_name" END) END, "last_name" = CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (CASE WHEN instr(NEW."full_name", ' ') > 0 THEN substr(NEW."full_name", instr(NEW."full_name", ' ') + 1) ELSE '' END) END
  WHERE "id" = NEW."id"
    AND (NEW."full_name" IS NOT NULL) AND NOT ((NEW."first_name" IS NOT NULL OR NEW."last_name" IS NOT NULL) AND COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "dualwrite_migrations" m WHERE m.migration_key = 'people-split-name'), FALSE));
  UPDATE "people" SET "full_name" = CASE WHEN NEW."first_name" IS NULL AND NEW."last_name" IS NULL THEN NULL ELSE (rtrim(NEW."first_name" || ' ' || COALESCE(NEW."last_name", ''))) END
  WHERE "id" = NEW."id"
    AND (NEW."first_name" IS NOT NULL OR NEW."last_name" IS NOT NULL) AND (NOT (NEW."full_name" IS NOT NULL) OR COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "dualwrite_migrations" m WHERE m.migration_key = 'people-split-name'), FALSE));
END;
-- drop: DROP TRIGGER IF EXISTS "dualwrite_people-split-name_ai"
-- trigger dualwrite_people-split-name_au (ON people)
CREATE TRIGGER "dualwrite_people-split-name_au" AFTER UPDATE OF "full_name", "first_name", "last_name" ON "people" FOR EACH ROW
WHEN (NEW."full_name" IS NOT OLD."full_name") OR (NEW."first_name" IS NOT OLD."first_name" OR NEW."last_name" IS NOT OLD."last_name")
BEGIN
  /* dualwrite:people-split-name:8575deae0c9b3fbc */
  UPDATE "people" SET "first_name" = CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (CASE WHEN instr(NEW."full_name", ' ') > 0 THEN substr(NEW."full_name", 1, instr(NEW."full_name", ' ') - 1) ELSE NEW."full_name" END) END, "last_name" = CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (CASE WHEN instr(NEW."full_name", ' ') > 0 THEN substr(NEW."full_name", instr(NEW."full_name", ' ') + 1) ELSE '' END) END
  WHERE "id" = NEW."id"
    AND (NEW."full_name" IS NOT OLD."full_name") AND NOT ((NEW."first_name" IS NOT OLD."first_name" OR NEW."last_name" IS NOT OLD."last_name") AND COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "dualwrite_migrations" m WHERE m.migration_key = 'people-split-name'), FALSE))
    AND NOT (NEW."full_name" IS CASE WHEN NEW."first_name" IS NULL AND NEW."last_name" IS NULL THEN NULL ELSE (rtrim(NEW."first_name" || ' ' || COALESCE(NEW."last_name", ''))) END);
  UPDATE "people" SET "full_name" = CASE WHEN NEW."first_name" IS NULL AND NEW."last_name" IS NULL THEN NULL ELSE (rtrim(NEW."first_name" || ' ' || COALESCE(NEW."last_name", ''))) END
  WHERE "id" = NEW."id"
    AND (NEW."first_name" IS NOT OLD."first_name" OR NEW."last_name" IS NOT OLD."last_name") AND (NOT (NEW."full_name" IS NOT OLD."full_name") OR COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "dualwrite_migrations" m WHERE m.migration_key = 'people-split-name'), FALSE))
    AND (NEW."first_name" IS NOT CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (CASE WHEN instr(NEW."full_name", ' ') > 0 THEN substr(NEW."full_name", 1, instr(NEW."full_name", ' ') - 1) ELSE NEW."full_name" END) END OR NEW."last_name" IS NOT CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (CASE WHEN instr(NEW."full_name", ' ') > 0 THEN substr(NEW."full_name", instr(NEW."full_name", ' ') + 1) ELSE '' END) END);
END;
-- drop: DROP TRIGGER IF EXISTS "dualwrite_people-split-name_au"
