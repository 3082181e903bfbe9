-- function dualwrite_users-display-name (security-invoker pinned-search-path)
CREATE OR REPLACE FUNCTION "app"."dualwrite_users-display-name"() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, "app", pg_temp AS $dualwrite$
/* dualwrite:users-display-name:1eac032cb4c425fc */
DECLARE
  v_old boolean;
  v_new boolean;
BEGIN
  IF TG_OP = 'INSERT' THEN
    v_old := NEW."full_name" IS NOT NULL;
    v_new := NEW."display_name" IS NOT NULL;
  ELSE
    v_old := NEW."full_name" IS DISTINCT FROM OLD."full_name";
    v_new := NEW."display_name" IS DISTINCT FROM OLD."display_name";
  END IF;
  IF v_old AND v_new THEN
    -- both sides written: the recorded stage decides which one wins
    IF COALESCE((SELECT m.stage IN ('live', 'rampdown', 'complete', 'contract') FROM "app"."dualwrite_migrations" m WHERE m.migration_key = 'users-display-name'), FALSE) THEN
      BEGIN
        NEW."full_name" := CASE WHEN NEW."display_name" IS NULL THEN NULL ELSE (NEW."display_name") END;
      EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION USING ERRCODE = SQLSTATE,
          MESSAGE = format('dualwrite %%s: the %%s transform failed on table %%s: %%s',
                           'users-display-name', 'backward', 'users', SQLERRM),
          HINT = 'the write was rolled back; fix the value written or the spec''s SQL transform, then run: dualwrite triggers install users-display-name';
      END;
    ELSE
      BEGIN
        NEW."display_name" := CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (NEW."full_name") END;
      EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION USING ERRCODE = SQLSTATE,
          MESSAGE = format('dualwrite %%s: the %%s transform failed on table %%s: %%s',
                           'users-display-name', 'forward', 'users', SQLERRM),
          HINT = 'the write was rolled back; fix the value written or the spec''s SQL transform, then run: dualwrite triggers install users-display-name';
      END;
    END IF;
  ELSIF v_old THEN
    BEGIN
      NEW."display_name" := CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (NEW."full_name") END;
    EXCEPTION WHEN OTHERS THEN
      RAISE EXCEPTION USING ERRCODE = SQLSTATE,
        MESSAGE = format('dualwrite %%s: the %%s transform failed on table %%s: %%s',
                         'users-display-name', 'forward', 'users', SQLERRM),
        HINT = 'the write was rolled back; fix the value written or the spec''s SQL transform, then run: dualwrite triggers install users-display-name';
    END;
  ELSIF v_new THEN
    BEGIN
      IF (NEW."display_name" IS DISTINCT FROM CASE WHEN NEW."full_name" IS NULL THEN NULL ELSE (NEW."full_name") END) THEN
        NEW."full_name" := CASE WHEN NEW."display_name" IS NULL THEN NULL ELSE (NEW."display_name") END;
      END IF;
    EXCEPTION WHEN OTHERS THEN
      RAISE EXCEPTION USING ERRCODE = SQLSTATE,
        MESSAGE = format('dualwrite %%s: the %%s transform failed on table %%s: %%s',
                         'users-display-name', 'backward', 'users', SQLERRM),
        HINT = 'the write was rolled back; fix the value written or the spec''s SQL transform, then run: dualwrite triggers install users-display-name';
    END;
  END IF;
  RETURN NEW;
END
$dualwrite$;
-- drop: DROP FUNCTION IF EXISTS "app"."dualwrite_users-display-name"()
-- trigger dualwrite_users-display-name (enabled before-row insert-update calls-dualwrite-function)
CREATE TRIGGER "dualwrite_users-display-name" BEFORE INSERT OR UPDATE OF "full_name", "display_name" ON "app"."users" FOR EACH ROW EXECUTE FUNCTION "app"."dualwrite_users-display-name"();
COMMENT ON TRIGGER "dualwrite_users-display-name" ON "app"."users" IS '/* dualwrite:users-display-name:a390695cd4e46d98 */';
-- drop: DROP TRIGGER IF EXISTS "dualwrite_users-display-name" ON "app"."users"
