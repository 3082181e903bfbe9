-- trigger dualwrite_orders-cents_ai (ON orders)
CREATE TRIGGER "dualwrite_orders-cents_ai" AFTER INSERT ON "orders" FOR EACH ROW
WHEN (NEW."price" IS NOT NULL) OR (NEW."price_cents" IS NOT NULL)
BEGIN
  /* dualwrite:orders-cents:65cb81f70305afbe */
  UPDATE "orders" SET "price_cents" = CASE WHEN NEW."price" IS NULL THEN NULL ELSE (CAST(ROUND(NEW."price" * 100) AS INTEGER)) END
  WHERE "id" = NEW."id"
    AND (NEW."price" IS NOT NULL) AND NOT ((NEW."price_cents" IS NOT NULL) AND COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "dualwrite_migrations" m WHERE m.migration_key = 'orders-cents'), FALSE));
  UPDATE "orders" SET "price" = CASE WHEN NEW."price_cents" IS NULL THEN NULL ELSE (NEW."price_cents" / 100.0) END
  WHERE "id" = NEW."id"
    AND (NEW."price_cents" IS NOT NULL) AND (NOT (NEW."price" IS NOT NULL) OR COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "dualwrite_migrations" m WHERE m.migration_key = 'orders-cents'), FALSE));
END;
-- drop: DROP TRIGGER IF EXISTS "dualwrite_orders-cents_ai"
-- trigger dualwrite_orders-cents_au (ON orders)
CREATE TRIGGER "dualwrite_orders-cents_au" AFTER UPDATE OF "price", "price_cents" ON "orders" FOR EACH ROW
WHEN (NEW."price" IS NOT OLD."price") OR (NEW."price_cents" IS NOT OLD."price_cents")
BEGIN
  /* dualwrite:orders-cents:1a894c6adf2745fa */
  UPDATE "orders" SET "price_cents" = CASE WHEN NEW."price" IS NULL THEN NULL ELSE (CAST(ROUND(NEW."price" * 100) AS INTEGER)) END
  WHERE "id" = NEW."id"
    AND (NEW."price" IS NOT OLD."price") AND NOT ((NEW."price_cents" IS NOT OLD."price_cents") AND COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "dualwrite_migrations" m WHERE m.migration_key = 'orders-cents'), FALSE))
    AND NOT (NEW."price" IS CASE WHEN NEW."price_cents" IS NULL THEN NULL ELSE (NEW."price_cents" / 100.0) END);
  UPDATE "orders" SET "price" = CASE WHEN NEW."price_cents" IS NULL THEN NULL ELSE (NEW."price_cents" / 100.0) END
  WHERE "id" = NEW."id"
    AND (NEW."price_cents" IS NOT OLD."price_cents") AND (NOT (NEW."price" IS NOT OLD."price") OR COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "dualwrite_migrations" m WHERE m.migration_key = 'orders-cents'), FALSE))
    AND (NEW."price_cents" IS NOT CASE WHEN NEW."price" IS NULL THEN NULL ELSE (CAST(ROUND(NEW."price" * 100) AS INTEGER)) END);
END;
-- drop: DROP TRIGGER IF EXISTS "dualwrite_orders-cents_au"
