-- function dualwrite_orders-cents (security-invoker pinned-search-path)
CREATE OR REPLACE FUNCTION "app"."dualwrite_orders-cents"() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, "app", pg_temp AS $dualwrite$
/* dualwrite:orders-cents:d8050b90e1bc89bc */
DECLARE
  v_old boolean;
  v_new boolean;
BEGIN
  IF TG_OP = 'INSERT' THEN
    v_old := NEW."price" IS NOT NULL;
    v_new := NEW."price_cents" IS NOT NULL;
  ELSE
    v_old := NEW."price" IS DISTINCT FROM OLD."price";
    v_new := NEW."price_cents" IS DISTINCT FROM OLD."price_cents";
  END IF;
  IF v_old AND v_new THEN
    -- both sides written: the recorded stage decides which one wins
    IF COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "app"."dualwrite_migrations" m WHERE m.migration_key = 'orders-cents'), FALSE) THEN
      BEGIN
        NEW."price" := CASE WHEN NEW."price_cents" IS NULL THEN NULL ELSE (NEW."price_cents" / 100.0) END;
      EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION USING ERRCODE = SQLSTATE,
          MESSAGE = format('dualwrite %%s: the %%s transform failed on table %%s: %%s',
                           'orders-cents', 'backward', 'orders', SQLERRM),
          HINT = 'the write was rolled back; fix the value written or the spec''s SQL transform, then run: dualwrite triggers install orders-cents';
      END;
    ELSE
      BEGIN
        NEW."price_cents" := CASE WHEN NEW."price" IS NULL THEN NULL ELSE (CAST(ROUND(NEW."price" * 100) AS BIGINT)) END;
      EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION USING ERRCODE = SQLSTATE,
          MESSAGE = format('dualwrite %%s: the %%s transform failed on table %%s: %%s',
                           'orders-cents', 'forward', 'orders', SQLERRM),
          HINT = 'the write was rolled back; fix the value written or the spec''s SQL transform, then run: dualwrite triggers install orders-cents';
      END;
    END IF;
  ELSIF v_old THEN
    BEGIN
      NEW."price_cents" := CASE WHEN NEW."price" IS NULL THEN NULL ELSE (CAST(ROUND(NEW."price" * 100) AS BIGINT)) END;
    EXCEPTION WHEN OTHERS THEN
      RAISE EXCEPTION USING ERRCODE = SQLSTATE,
        MESSAGE = format('dualwrite %%s: the %%s transform failed on table %%s: %%s',
                         'orders-cents', 'forward', 'orders', SQLERRM),
        HINT = 'the write was rolled back; fix the value written or the spec''s SQL transform, then run: dualwrite triggers install orders-cents';
    END;
  ELSIF v_new THEN
    BEGIN
      IF (NEW."price_cents" IS DISTINCT FROM CASE WHEN NEW."price" IS NULL THEN NULL ELSE (CAST(ROUND(NEW."price" * 100) AS BIGINT)) END) THEN
        NEW."price" := CASE WHEN NEW."price_cents" IS NULL THEN NULL ELSE (NEW."price_cents" / 100.0) END;
      END IF;
    EXCEPTION WHEN OTHERS THEN
      RAISE EXCEPTION USING ERRCODE = SQLSTATE,
        MESSAGE = format('dualwrite %%s: the %%s transform failed on table %%s: %%s',
                         'orders-cents', 'backward', 'orders', SQLERRM),
        HINT = 'the write was rolled back; fix the value written or the spec''s SQL transform, then run: dualwrite triggers install orders-cents';
    END;
  END IF;
  RETURN NEW;
END
$dualwrite$;
-- drop: DROP FUNCTION IF EXISTS "app"."dualwrite_orders-cents"()
-- trigger dualwrite_orders-cents (enabled before-row insert-update calls-dualwrite-function)
CREATE TRIGGER "dualwrite_orders-cents" BEFORE INSERT OR UPDATE OF "price", "price_cents" ON "app"."orders" FOR EACH ROW EXECUTE FUNCTION "app"."dualwrite_orders-cents"();
COMMENT ON TRIGGER "dualwrite_orders-cents" ON "app"."orders" IS '/* dualwrite:orders-cents:5adbf77326ea7ab8 */';
-- drop: DROP TRIGGER IF EXISTS "dualwrite_orders-cents" ON "app"."orders"
