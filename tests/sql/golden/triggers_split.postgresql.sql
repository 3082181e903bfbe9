-- function dualwrite_people-split-name (security-invoker pinned-search-path)
CREATE OR REPLACE FUNCTION "app"."dualwrite_people-split-name"() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, "app", pg_temp AS $dualwrite$
/* dualwrite:people-split-name:b33448c42b8a1c6a */
DECLARE
  v_old_side boolean;
  v_new_side boolean;
  v_new_wins boolean := false;
  v_step text := 'stage lookup';
BEGIN
  IF TG_OP = 'INSERT' THEN
    v_old_side := NEW."full_name" IS NOT NULL;
    v_new_side := NEW."first_name" IS NOT NULL OR NEW."last_name" IS NOT NULL;
  ELSE
    v_old_side := NEW."full_name" IS DISTINCT FROM OLD."full_name";
    v_new_side := NEW."first_name" IS DISTINCT FROM OLD."first_name" OR NEW."last_name" IS DISTINCT FROM OLD."last_name";
  END IF;
  IF NOT (v_old_side OR v_new_side) THEN
    RETURN NEW;
  END IF;
  BEGIN
    IF v_old_side AND v_new_side THEN
      v_new_wins := COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "app"."dualwrite_migrations" m WHERE m.migration_key = 'people-split-name'), FALSE);
    END IF;
    IF v_old_side AND NOT v_new_wins THEN
      v_step := 'forward transform';
      NEW."first_name" := CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (CASE WHEN strpos(NEW."full_name", ' ') > 0 THEN substr(NEW."full_name", 1, strpos(NEW."full_name", ' ') - 1) ELSE NEW."full_name" END) END;
      NEW."last_name" := CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (CASE WHEN strpos(NEW."full_name", ' ') > 0 THEN substr(NEW."full_name", strpos(NEW."full_name", ' ') + 1) ELSE '' END) END;
    ELSE
      v_step := 'backward transform';
      NEW."full_name" := CASE WHEN NEW."first_name" IS NULL AND NEW."last_name" IS NULL THEN NULL ELSE (rtrim(NEW."first_name" || ' ' || COALESCE(NEW."last_name", ''))) END;
    END IF;
  EXCEPTION WHEN OTHERS THEN
    RAISE EXCEPTION USING ERRCODE = SQLSTATE,
      MESSAGE = format('dualwrite %%s: the %%s failed on table %%s: %%s', 'people-split-name', v_step,
                       'people', SQLERRM),
      HINT = 'the write was rolled back; fix the value written or the spec''s SQL transform, then run: dualwrite triggers install people-split-name';
  END;
  RETURN NEW;
END
$dualwrite$;
-- drop: DROP FUNCTION IF EXISTS "app"."dualwrite_people-split-name"()
-- trigger dualwrite_people-split-name (enabled before-row insert-update calls-dualwrite-function)
CREATE TRIGGER "dualwrite_people-split-name" BEFORE INSERT OR UPDATE OF "full_name", "first_name", "last_name" ON "app"."people" FOR EACH ROW EXECUTE FUNCTION "app"."dualwrite_people-split-name"();
COMMENT ON TRIGGER "dualwrite_people-split-name" ON "app"."people" IS '/* dualwrite:people-split-name:6e1f9ebb4edc449e */';
-- drop: DROP TRIGGER IF EXISTS "dualwrite_people-split-name" ON "app"."people"
