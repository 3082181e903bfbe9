-- function dualwrite_people-split-name (security-invoker pinned-search-path)
CREATE OR REPLACE FUNCTION "app"."dualwrite_people-split-name"() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, "app", pg_temp AS $dualwrite$
/* dualwrite:people-split-name:0060408631ffc511 */
DECLARE
  v_old boolean;
  v_new boolean;
BEGIN
  IF TG_OP = 'INSERT' THEN
    v_old := NEW."full_name" IS NOT NULL;
    v_new := NEW."first_name" IS NOT NULL OR NEW."last_name" IS NOT NULL;
  ELSE
    v_old := NEW."full_name" IS DISTINCT FROM OLD."full_name";
    v_new := NEW."first_name" IS DISTINCT FROM OLD."first_name" OR NEW."last_name" IS DISTINCT FROM OLD."last_name";
  END IF;
  IF v_old AND v_new THEN
    -- both sides written: the recorded stage decides which one wins
    IF COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "app"."dualwrite_migrations" m WHERE m.migration_key = 'people-split-name'), FALSE) THEN
      BEGIN
        NEW."full_name" := CASE WHEN NEW."first_name" IS NULL AND NEW."last_name" IS NULL THEN NULL ELSE (rtrim(NEW."first_name" || ' ' || COALESCE(NEW."last_name", ''))) END;
      EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION USING ERRCODE = SQLSTATE,
          MESSAGE = format('dualwrite %%s: the %%s transform failed on table %%s: %%s',
                           'people-split-name', 'backward', 'people', SQLERRM),
          HINT = 'the write was rolled back; fix the value written or the spec''s SQL transform, then run: dualwrite triggers install people-split-name';
      END;
    ELSE
      BEGIN
        NEW."first_name" := CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (CASE WHEN strpos(NEW."full_name", ' ') > 0 THEN substr(NEW."full_name", 1, strpos(NEW."full_name", ' ') - 1) ELSE NEW."full_name" END) END;
        NEW."last_name" := CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (CASE WHEN strpos(NEW."full_name", ' ') > 0 THEN substr(NEW."full_name", strpos(NEW."full_name", ' ') + 1) ELSE '' END) END;
      EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION USING ERRCODE = SQLSTATE,
          MESSAGE = format('dualwrite %%s: the %%s transform failed on table %%s: %%s',
                           'people-split-name', 'forward', 'people', SQLERRM),
          HINT = 'the write was rolled back; fix the value written or the spec''s SQL transform, then run: dualwrite triggers install people-split-name';
      END;
    END IF;
  ELSIF v_old THEN
    BEGIN
      NEW."first_name" := CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (CASE WHEN strpos(NEW."full_name", ' ') > 0 THEN substr(NEW."full_name", 1, strpos(NEW."full_name", ' ') - 1) ELSE NEW."full_name" END) END;
      NEW."last_name" := CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (CASE WHEN strpos(NEW."full_name", ' ') > 0 THEN substr(NEW."full_name", strpos(NEW."full_name", ' ') + 1) ELSE '' END) END;
    EXCEPTION WHEN OTHERS THEN
      RAISE EXCEPTION USING ERRCODE = SQLSTATE,
        MESSAGE = format('dualwrite %%s: the %%s transform failed on table %%s: %%s',
                         'people-split-name', 'forward', 'people', SQLERRM),
        HINT = 'the write was rolled back; fix the value written or the spec''s SQL transform, then run: dualwrite triggers install people-split-name';
    END;
  ELSIF v_new THEN
    BEGIN
      IF (NEW."first_name" IS DISTINCT FROM CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (CASE WHEN strpos(NEW."full_name", ' ') > 0 THEN substr(NEW."full_name", 1, strpos(NEW."full_name", ' ') - 1) ELSE NEW."full_name" END) END OR NEW."last_name" IS DISTINCT FROM CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (CASE WHEN strpos(NEW."full_name", ' ') > 0 THEN substr(NEW."full_name", strpos(NEW."full_name", ' ') + 1) ELSE '' END) END) THEN
        NEW."full_name" := CASE WHEN NEW."first_name" IS NULL AND NEW."last_name" IS NULL THEN NULL ELSE (rtrim(NEW."first_name" || ' ' || COALESCE(NEW."last_name", ''))) END;
      END IF;
    EXCEPTION WHEN OTHERS THEN
      RAISE EXCEPTION USING ERRCODE = SQLSTATE,
        MESSAGE = format('dualwrite %%s: the %%s transform failed on table %%s: %%s',
                         'people-split-name', 'backward', 'people', SQLERRM),
        HINT = 'the write was rolled back; fix the value written or the spec''s SQL transform, then run: dualwrite triggers install people-split-name';
    END;
  END IF;
  RETURN NEW;
END
$dualwrite$;
-- drop: DROP FUNCTION IF EXISTS "app"."dualwrite_people-split-name"()
-- trigger dualwrite_people-split-name (enabled before-row insert-update calls-dualwrite-function)
CREATE TRIGGER "dualwrite_people-split-name" BEFORE INSERT OR UPDATE OF "full_name", "first_name", "last_name" ON "app"."people" FOR EACH ROW EXECUTE FUNCTION "app"."dualwrite_people-split-name"();
COMMENT ON TRIGGER "dualwrite_people-split-name" ON "app"."people" IS '/* dualwrite:people-split-name:6e1f9ebb4edc449e */';
-- drop: DROP TRIGGER IF EXISTS "dualwrite_people-split-name" ON "app"."people"
