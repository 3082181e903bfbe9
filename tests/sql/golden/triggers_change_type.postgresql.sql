-- function dualwrite_orders-cents (security-invoker pinned-search-path)
CREATE OR REPLACE FUNCTION "app"."dualwrite_orders-cents"() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, "app", pg_temp AS $dualwrite$
/* dualwrite:orders-cents:eb1129338499f7e1 */
DECLARE
  v_old_side boolean;
  v_new_side boolean;
  v_new_wins boolean := false;
  v_step text := 'stage lookup';
BEGIN
  IF TG_OP = 'INSERT' THEN
    v_old_side := NEW."price" IS NOT NULL;
    v_new_side := NEW."price_cents" IS NOT NULL;
  ELSE
    v_old_side := NEW."price" IS DISTINCT FROM OLD."price";
    v_new_side := NEW."price_cents" IS DISTINCT FROM OLD."price_cents";
  END IF;
  IF NOT (v_old_side OR v_new_side) THEN
    RETURN NEW;
  END IF;
  BEGIN
    IF v_old_side AND v_new_side THEN
      v_new_wins := COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "app"."dualwrite_migrations" m WHERE m.migration_key = 'orders-cents'), FALSE);
    END IF;
    IF v_old_side AND NOT v_new_wins THEN
      v_step := 'forward transform';
      NEW."price_cents" := CASE WHEN NEW."price" IS NULL THEN NULL ELSE (CAST(ROUND(NEW."price" * 100) AS BIGINT)) END;
    ELSE
      v_step := 'backward transform';
      NEW."price" := CASE WHEN NEW."price_cents" IS NULL THEN NULL ELSE (NEW."price_cents" / 100.0) END;
    END IF;
  EXCEPTION WHEN OTHERS THEN
    RAISE EXCEPTION USING ERRCODE = SQLSTATE,
      MESSAGE = format('dualwrite %%s: the %%s failed on table %%s: %%s', 'orders-cents', v_step,
                       'orders', SQLERRM),
      HINT = 'the write was rolled back; fix the value written or the spec''s SQL transform, then run: dualwrite triggers install orders-cents';
  END;
  RETURN NEW;
END
$dualwrite$;
-- drop: DROP FUNCTION IF EXISTS "app"."dualwrite_orders-cents"()
-- trigger dualwrite_orders-cents (enabled before-row insert-update calls-dualwrite-function)
CREATE TRIGGER "dualwrite_orders-cents" BEFORE INSERT OR UPDATE OF "price", "price_cents" ON "app"."orders" FOR EACH ROW EXECUTE FUNCTION "app"."dualwrite_orders-cents"();
COMMENT ON TRIGGER "dualwrite_orders-cents" ON "app"."orders" IS '/* dualwrite:orders-cents:5adbf77326ea7ab8 */';
-- drop: DROP TRIGGER IF EXISTS "dualwrite_orders-cents" ON "app"."orders"
