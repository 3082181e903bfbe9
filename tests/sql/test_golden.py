"""Golden SQL per dialect: what dualwrite sends, without a database."""

from __future__ import annotations

import pytest

from dualwrite.dialects import MySQLDialect, PostgresDialect, SQLiteDialect, dialect_for
from dualwrite.dialects.base import STATE_TABLES
from dualwrite.errors import SpecError
from dualwrite.spec import ChangeColumnType, RenameColumn, SplitColumn

PG, MY, LITE = PostgresDialect(), MySQLDialect(), SQLiteDialect()

RENAME = RenameColumn(key="r", table="users", old="full_name", new="display_name")
CHANGE = ChangeColumnType(key="c", table="orders", old="price", new="price_cents",
                          forward_sql="CAST(ROUND({old} * 100) AS BIGINT)",
                          backward_sql="{new} / 100.0",
                          forward=lambda p: round(p * 100), backward=lambda c: c / 100)
SPLIT = SplitColumn(key="s", table="users", old="full_name", new=["first", "last"],
                    forward_sql={"first": "substr({old}, 1, 3)", "last": "substr({old}, 4)"},
                    backward_sql="{first} || {last}")


@pytest.mark.parametrize(("dialect", "name", "quoted"), [
    (PG, "plain", '"plain"'),
    (PG, 'we"ird', '"we""ird"'),
    (PG, "with space", '"with space"'),
    (PG, "select", '"select"'),
    (PG, "x; DROP TABLE users; --", '"x; DROP TABLE users; --"'),
    (MY, "plain", "`plain`"),
    (MY, "we`ird", "`we``ird`"),
    (MY, 'dq"', '`dq"`'),
    (MY, "order", "`order`"),
    (LITE, 'we"ird', '"we""ird"'),
    (LITE, "/* c */", '"/* c */"'),
])
def test_quote(dialect, name: str, quoted: str) -> None:
    assert dialect.quote(name) == quoted


def test_quote_refuses_nul() -> None:
    with pytest.raises(SpecError, match="NUL"):
        PG.quote("a\x00b")


def test_schema_qualified_tables() -> None:
    assert PG.table("users", "app") == '"app"."users"'
    assert MY.table("users", "shop") == "`shop`.`users`"
    assert LITE.table("users") == '"users"'
    s = RenameColumn(key="k", table="my table", schema='odd"schema', old="a", new="b")
    assert PG.spec_table(s) == '"odd""schema"."my table"'


def test_read_expressions() -> None:
    assert PG.read_new_expr(RENAME, "display_name") == \
        'COALESCE("display_name", ("full_name"))'
    assert MY.read_new_expr(RENAME, "display_name") == "COALESCE(`display_name`, (`full_name`))"
    assert PG.read_new_expr(CHANGE, "price_cents") == \
        'COALESCE("price_cents", (CAST(ROUND("price" * 100) AS BIGINT)))'
    assert LITE.read_new_expr(SPLIT, "last") == 'COALESCE("last", (substr("full_name", 4)))'
    assert PG.read_old_expr(SPLIT, "full_name") == \
        'COALESCE(("first" || "last"), "full_name")'


def test_percent_is_escaped_only_for_format_paramstyle() -> None:
    spec = ChangeColumnType(key="p", table="t", old="a", new="b", forward_sql="{old} % 7",
                            backward_sql="{new}", forward=lambda v: v % 7, backward=lambda v: v)
    assert PG.forward_expr(spec, "b") == '("a" %% 7)'
    assert MY.forward_expr(spec, "b") == "(`a` %% 7)"
    assert LITE.forward_expr(spec, "b") == '("a" % 7)'
    assert SQLiteDialect("format").forward_expr(spec, "b") == '("a" %% 7)'


def test_unknown_placeholder_names_the_valid_ones() -> None:
    spec = ChangeColumnType(key="p", table="t", old="a", new="b", forward_sql="{olde} + 1",
                            backward_sql="{new}", forward=int, backward=int)
    with pytest.raises(SpecError, match=r"unknown placeholder \{olde\}") as exc:
        PG.forward_expr(spec, "b")
    assert "{a}" in (exc.value.hint or "") and "{old}" in (exc.value.hint or "")


def test_json_braces_are_not_placeholders() -> None:
    spec = ChangeColumnType(key="j", table="t", old="a", new="b",
                            forward_sql="""json_build_object('v', {old}, 'x', '{"k": 1}')""",
                            backward_sql="{new}->>'v'", forward=str, backward=str)
    assert PG.forward_expr(spec, "b") == \
        """(json_build_object('v', "a", 'x', '{"k": 1}'))"""


def test_transform_sample_computes_round_trip_in_sql() -> None:
    sql, params = PG.transform_sample(CHANGE, 50)
    assert params == ()
    assert sql == ('SELECT "price", (CAST(ROUND("price" * 100) AS BIGINT)), '
                   '((CAST(ROUND("price" * 100) AS BIGINT)) / 100.0) FROM "orders" '
                   'WHERE "price" IS NOT NULL LIMIT 50')
    sql, _ = LITE.transform_sample(SPLIT, 10)
    assert sql == ('SELECT "full_name", (substr("full_name", 1, 3)), (substr("full_name", 4)), '
                   '((substr("full_name", 1, 3)) || (substr("full_name", 4))) FROM "users" '
                   'WHERE "full_name" IS NOT NULL LIMIT 10')


def test_stage_cas_and_history_use_bound_parameters() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    sql, params = PG.update_stage_cas("k'; --", 7, "live", "live", now)
    assert sql == ("UPDATE dualwrite_migrations SET stage = %s, stage_ceiling = %s, "
                   "version = version + 1, updated_at = %s, stage_changed_at = %s "
                   "WHERE migration_key = %s AND version = %s")
    assert params == ("live", "live", now, now, "k'; --", 7)
    sql, params = LITE.update_stage_cas("k", 1, "off", "off", now)
    assert "?" in sql and "%s" not in sql and params[2] == "2026-01-02T03:04:05+00:00"
    _, params = MY.update_stage_cas("k", 1, "off", "off", now)
    assert params[2] == datetime(2026, 1, 2, 3, 4, 5)  # naive UTC for DATETIME(6)


def test_fleet_upsert_per_dialect() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert "ON CONFLICT (instance_id, migration_key) DO UPDATE" in \
        PG.upsert_fleet("i", "k", "h", 1, "0.1", "off", now)[0]
    assert "ON DUPLICATE KEY UPDATE stage = VALUES(stage)" in \
        MY.upsert_fleet("i", "k", "h", 1, "0.1", "off", now)[0]
    assert "ON CONFLICT (instance_id, migration_key) DO UPDATE" in \
        LITE.upsert_fleet("i", "k", "h", 1, "0.1", "off", now)[0]


@pytest.mark.parametrize("name", ["postgresql", "mysql", "sqlite"])
def test_state_ddl_is_idempotent_and_typed(name: str) -> None:
    d = dialect_for(name)
    ddl = d.state_ddl()
    assert len(ddl) == len(STATE_TABLES)
    assert all(s.startswith("CREATE TABLE IF NOT EXISTS dualwrite_") for s in ddl)
    times = {"postgresql": "TIMESTAMPTZ", "mysql": "DATETIME(6)", "sqlite": "TEXT"}[name]
    assert f"stage_changed_at {times} NOT NULL" in ddl[0]
    if name == "mysql":
        assert all(s.endswith("ENGINE=InnoDB DEFAULT CHARSET=utf8mb4") for s in ddl)
        assert "BIGINT AUTO_INCREMENT PRIMARY KEY" in ddl[1]
    if name == "postgresql":
        assert "GENERATED BY DEFAULT AS IDENTITY" in ddl[1]


def test_introspection_binds_names() -> None:
    sql, params = PG.columns('we"ird', "app")
    assert "to_regclass(%s)" in sql and params == ('"app"."we""ird"',)
    sql, params = MY.unique_keys("users", None)
    assert params == (None, "users") and "sub_part IS NOT NULL" in sql
    sql, params = LITE.columns("users", None)
    assert params == ("users", "main") and "pragma_table_info(?, ?)" in sql


def test_add_column() -> None:
    assert PG.add_column(RENAME, "display_name", "text") == \
        ('ALTER TABLE "users" ADD COLUMN "display_name" text', ())


def test_row_helpers_quote_and_parameterise() -> None:
    from dualwrite.dialects import dialect_for
    from dualwrite.spec import RenameColumn

    spec = RenameColumn(key="k", table='we"ird', old="a b", new="select")
    pg, my, lite = (dialect_for(n) for n in ("postgresql", "mysql", "sqlite"))
    assert pg.insert_rows(spec, ["id", "a b"], 2, [1, "x", 2, "y"]) == (
        'INSERT INTO "we""ird" ("id", "a b") VALUES (%s, %s), (%s, %s)', (1, "x", 2, "y"))
    assert my.update_row(spec, "id", 5, ["select"], ["v"]) == (
        "UPDATE `we\"ird` SET `select` = %s WHERE `id` = %s", ("v", 5))
    assert lite.select_row(spec, "id", 5, ['"a b"']) == (
        'SELECT "a b" FROM "we""ird" WHERE "id" = ?', (5,))
    assert lite.create_table("t", [("id", "INTEGER"), ("v", "TEXT")], "id") == (
        'CREATE TABLE "t" ("id" INTEGER, "v" TEXT, PRIMARY KEY ("id"))', ())
    assert pg.drop_table("t", "s") == ('DROP TABLE IF EXISTS "s"."t"', ())
    assert lite.concurrent_access() == [("PRAGMA journal_mode = WAL", ())]
    assert pg.concurrent_access() == my.concurrent_access() == []
