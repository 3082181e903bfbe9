"""Golden SQL of the mirror triggers, per dialect and spec kind (no database).

The expected texts live in ``tests/sql/golden/``; after an intended change, regenerate them
with ``DUALWRITE_UPDATE_GOLDEN=1 pytest tests/sql/test_triggers_golden.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from dualwrite.dialects import Dialect, MySQLDialect, PostgresDialect, SQLiteDialect
from dualwrite.dialects.base import TRIGGER_MARKER_RE, TriggerTarget
from dualwrite.errors import SpecError
from dualwrite.spec import ChangeColumnType, MigrationSpec, RenameColumn
from dualwrite.stages import Mode
from tests.trigger_specs import CENTS, RENAME, SPLIT

GOLDEN = Path(__file__).parent / "golden"
DIALECTS = {"postgresql": PostgresDialect(), "mysql": MySQLDialect(), "sqlite": SQLiteDialect()}
SPECS = {"rename": RENAME, "change_type": CENTS, "split": SPLIT}
NEW_WINS = ("live", "rampdown", "complete", "contract")


def target(d: Dialect) -> TriggerTarget:
    schema = None if d.name == "sqlite" else "app"
    return TriggerTarget(schema=schema, state_schema=schema, key_columns=("id",),
                         new_wins_stages=NEW_WINS)


def render(d: Dialect, spec: MigrationSpec) -> str:
    out = []
    for o in d.trigger_objects(spec, target(d)):
        out.append(f"-- {o.kind} {o.name} ({o.shape})")
        out.extend(sql + ";" for sql, params in o.create)
        out.extend(f"-- drop: {sql}" for sql, _ in o.drop)
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("kind", sorted(SPECS))
@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_golden_trigger_sql(dialect: str, kind: str) -> None:
    path = GOLDEN / f"triggers_{kind}.{dialect}.sql"
    got = render(DIALECTS[dialect], SPECS[kind])
    if os.environ.get("DUALWRITE_UPDATE_GOLDEN"):
        path.write_text(got)
    assert got == path.read_text()


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
def test_every_object_is_marked_with_the_digest_of_its_sql(dialect: str) -> None:
    d = DIALECTS[dialect]
    objs = d.trigger_objects(RENAME, target(d))
    assert len({o.digest for o in objs}) == len(objs)
    for o in objs:
        m = TRIGGER_MARKER_RE.search(o.definition)
        assert m and (m.group("key"), m.group("digest")) == (RENAME.key, o.digest)
        assert any(m.group(0) in sql for sql, _ in o.create)
        assert all(params == () for _, params in o.create + o.drop)
    # a different transform changes the digest; the same spec renders the same text
    other = ChangeColumnType(key=CENTS.key, table=CENTS.table, old=CENTS.old, new=CENTS.new,
                             mode=Mode.TRIGGER, forward_sql=CENTS.forward_sql,
                             backward_sql="{new} / 100")
    assert [o.digest for o in d.trigger_objects(CENTS, target(d))] != \
        [o.digest for o in d.trigger_objects(other, target(d))]
    assert render(d, RENAME) == render(d, RENAME)


def test_postgresql_function_is_invoker_with_a_pinned_search_path() -> None:
    sql = PostgresDialect().trigger_objects(RENAME, target(PostgresDialect()))[0].create[0][0]
    assert 'CREATE OR REPLACE FUNCTION "app"."dualwrite_users-display-name"() RETURNS trigger' \
        in sql
    assert "SECURITY INVOKER SET search_path = pg_catalog, \"app\", pg_temp" in sql
    assert "SECURITY DEFINER" not in sql


@pytest.mark.parametrize(("dialect", "limit"), [("postgresql", 63), ("mysql", 64)])
def test_long_keys_give_length_safe_distinct_names(dialect: str, limit: int) -> None:
    d = DIALECTS[dialect]
    a = RenameColumn(key="k" * 100, table="t", old="a", new="b", mode=Mode.TRIGGER)
    b = RenameColumn(key="k" * 99 + "j", table="t", old="a", new="b", mode=Mode.TRIGGER)
    names_a = [o.name for o in d.trigger_objects(a, target(d))]
    names_b = [o.name for o in d.trigger_objects(b, target(d))]
    assert all(len(n.encode()) <= limit for n in names_a + names_b)
    assert set(names_a).isdisjoint(names_b)
    assert all(re.search(r"_[0-9a-f]{8}(_b[iu])?$", n) for n in names_a)
    short = d.trigger_name(RENAME)
    assert short == "dualwrite_users-display-name"


def test_hostile_names_are_quoted_and_literals_escaped() -> None:
    spec = RenameColumn(key="k", table="t'; DROP TABLE x; --", old='a"b', new="c`d",
                        mode=Mode.TRIGGER)
    pg = render(PostgresDialect(), spec)
    assert '"t\'; DROP TABLE x; --"' in pg and 'NEW."a""b"' in pg
    assert "'t''; DROP TABLE x; --'" in pg  # the table name in the error message
    my = render(MySQLDialect(), spec)
    assert "`c``d`" in my and "failed on table t''; DROP TABLE x; --: '" in my
    assert MySQLDialect().literal("a\\'b") == "'a\\\\''b'"


def test_percent_in_a_transform_is_escaped_only_where_parameters_are_bound() -> None:
    spec = ChangeColumnType(key="m", table="t", old="a", new="b", mode=Mode.TRIGGER,
                            forward_sql="{old} % 7", backward_sql="{new}")
    pg = PostgresDialect().trigger_objects(spec, target(PostgresDialect()))[0]
    assert "(NEW.\"a\" % 7)" in pg.definition  # what the catalog stores
    assert "(NEW.\"a\" %% 7)" in pg.create[0][0]  # what psycopg is sent
    assert "(NEW.\"a\" % 7)" in pg.ddl[0]  # what the server receives (--dry-run)
    lite = SQLiteDialect().trigger_objects(spec, target(SQLiteDialect()))[0]
    assert "(NEW.\"a\" % 7)" in lite.create[0][0]


def test_a_dollar_quote_in_a_transform_is_refused() -> None:
    spec = ChangeColumnType(key="m", table="t", old="a", new="b", mode=Mode.TRIGGER,
                            forward_sql="{old} || '$dualwrite$'", backward_sql="{new}")
    with pytest.raises(SpecError, match=r"\$dualwrite\$"):
        PostgresDialect().trigger_objects(spec, target(PostgresDialect()))
