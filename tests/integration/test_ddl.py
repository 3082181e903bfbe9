"""Online expand/contract on every backend: steps, idempotence, gates, rollback of each step."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dualwrite.cli import main
from dualwrite.db import Database
from dualwrite.ddl import DdlEvent, LockPolicy, OnlineDdl, plan_contract, plan_expand, table_indexes
from dualwrite.errors import (
    ConfigurationError,
    DatabaseError,
    MigrationNotFoundError,
    OnlineDdlRefused,
    TransitionRefused,
    UnknownColumnError,
    UnknownTableError,
)
from dualwrite.migrator import Migrator
from dualwrite.schema import inspect_table
from dualwrite.spec import RenameColumn
from dualwrite.stages import Stage
from dualwrite.state import StateStore
from tests.helpers import create_table, insert_rows, q, record_backfill_and_verify, snapshot

KEY = "users-display-name"
SPEC = RenameColumn(key=KEY, table="users", old="full_name", new="display_name",
                    confidence_window=0)
FAST = LockPolicy(lock_timeout=1.0, retries=3, backoff=0.05)


def users(db: Database, rows: int = 10, *, not_null: bool = True) -> None:
    """users(id, full_name [NOT NULL], email) with an index and a unique key on full_name."""
    name = db.dialect.name
    text = "VARCHAR(100)" if name == "mysql" else "TEXT"
    create_table(db, "users", {"id": "pk", "full_name": text + (" NOT NULL" if not_null else ""),
                               "email": text})
    db.execute((f"CREATE INDEX ix_users_full_name ON {q(db, 'users')} ({q(db, 'full_name')})",
                ()))
    if name == "postgresql":
        db.execute(("ALTER TABLE users ADD CONSTRAINT users_full_name_key UNIQUE (full_name)", ()))
    else:
        db.execute((f"CREATE UNIQUE INDEX uq_users_full_name ON {q(db, 'users')} "
                    f"({q(db, 'full_name')})", ()))
    insert_rows(db, "users", [{"id": i, "full_name": f"User {i}", "email": f"u{i}@x"}
                              for i in range(1, rows + 1)])


def catalog(db: Database) -> dict[str, Any]:
    """What DDL can change: columns (nullability) and indexes (unique, valid, constraint)."""
    info = inspect_table(db, "users", None)
    assert info is not None
    out: dict[str, Any] = {
        "columns": {c.name: c.nullable for c in info.columns.values()},
        "indexes": {i.name: (i.unique, i.valid, i.constraint, i.column_names)
                    for i in table_indexes(db, "users", None).values()},
    }
    if db.dialect.name == "postgresql":
        out["checks"] = db.fetchall(db.dialect.check_constraints("users", None))
    return out


def new_indexes(db: Database) -> dict[str, tuple[bool, bool]]:
    return {i.name: (i.unique, i.valid) for i in table_indexes(db, "users", None).values()
            if "display_name" in i.column_names}


def to_complete(db: Database, m: Migrator) -> None:
    """What the lifecycle does between expand and complete, in short."""
    db.execute((f"UPDATE {q(db, 'users')} SET {q(db, 'display_name')} = {q(db, 'full_name')}",
                ()))
    m.advance(KEY, Stage.SHADOW)
    record_backfill_and_verify(db, KEY, SPEC.spec_hash())
    m.advance(KEY, Stage.COMPLETE)


def test_expand_then_contract(db: Database) -> None:
    users(db)
    m = Migrator(db, [SPEC])
    m.init()
    events: list[DdlEvent] = []
    ddl = OnlineDdl(m, policy=FAST, force=True, on_event=events.append)
    plan, outcomes = ddl.expand(KEY)
    assert [o.status for o in outcomes] == ["applied"] * 3
    assert [e.kind for e in events][:2] == ["start", "done"]  # reported before it runs
    assert events[0].sql and "display_name" in events[0].sql[0]
    assert m.state.get(KEY).stage is Stage.EXPAND
    cat = catalog(db)
    assert cat["columns"]["display_name"] is True  # added NULL
    assert sorted(new_indexes(db).values()) == [(False, True), (True, True)]
    if db.dialect.name == "sqlite":
        assert any("SQLite has no online index build" in n for n in plan.notes)

    events.clear()
    _, again = ddl.expand(KEY)  # idempotent: every step already done
    assert [o.status for o in again] == ["skipped"] * 3
    assert catalog(db) == cat

    m.advance(KEY, Stage.DUALWRITE)
    to_complete(db, m)
    before = snapshot(db, "users")
    with pytest.raises(TransitionRefused, match="irreversible") as exc:
        ddl.contract(KEY)
    assert exc.value.hint == f"confirm with: dualwrite contract {KEY} --confirm {KEY}"
    assert catalog(db) == cat and snapshot(db, "users") == before

    ddl.contract(KEY, confirm=KEY)
    after = catalog(db)
    assert "full_name" not in after["columns"]
    assert m.state.get(KEY).stage is Stage.CONTRACT
    assert (True, True) in new_indexes(db).values()
    if db.dialect.name == "postgresql":
        assert after["columns"]["display_name"] is False  # NOT NULL like full_name
        assert after["checks"] == []  # the helper check is gone
        assert any(v[2] == "users_display_name_key" for v in after["indexes"].values())
    # contract is resumable and then a no-op
    _, rerun = ddl.contract(KEY, confirm=KEY)
    assert all(o.status == "skipped" for o in rerun)
    with pytest.raises(TransitionRefused, match="cannot be undone"):
        ddl.rollback_contract(KEY)


def _run_and_undo(db: Database, ddl: OnlineDdl, kind: str) -> int:
    """Run each pending step alone, undo it, check the catalog is back, run it again."""
    plan = plan_expand(db, SPEC) if kind == "expand" else plan_contract(db, SPEC)
    runner = ddl.runner(SPEC)
    checked = 0
    for step in plan.steps:
        if step.irreversible:
            continue
        before = catalog(db)
        (out,) = runner.run([step])
        assert out.status == "applied", step.name
        changed = catalog(db)
        assert changed != before or not step.rollback, step.name
        checked += 1
        if not step.rollback:  # e.g. VALIDATE: it only read
            continue
        runner.rollback([replace(step, done=True)])
        assert catalog(db) == before, f"rollback of {step.name!r} did not restore the catalog"
        runner.run([step])
    return checked


def test_every_step_rolls_back(db: Database) -> None:
    users(db)
    m = Migrator(db, [SPEC])
    m.init()
    ddl = OnlineDdl(m, policy=FAST, force=True)
    assert _run_and_undo(db, ddl, "expand") == 3
    assert m.state.get(KEY).stage is Stage.OFF  # the steps alone move no stage
    db.execute((f"UPDATE {q(db, 'users')} SET {q(db, 'display_name')} = {q(db, 'full_name')}",
                ()))
    n = _run_and_undo(db, ddl, "contract")
    # PostgreSQL: check, validate, set not null, drop check, unique constraint;
    # MySQL: set not null (a forced rebuild) and the two old-index drops; SQLite: index drops.
    assert n == {"postgresql": 5, "mysql": 3, "sqlite": 2}[db.dialect.name]
    # the drop of the old column: its rollback re-adds it empty (data needs a reverse backfill)
    drop = next(s for s in plan_contract(db, SPEC).steps if s.irreversible)
    runner = ddl.runner(SPEC)
    runner.run([drop])
    assert "full_name" not in catalog(db)["columns"]
    runner.rollback([replace(drop, done=True)])
    assert catalog(db)["columns"]["full_name"] is True


def test_rollback_expand_and_its_gate(db: Database) -> None:
    users(db, not_null=False)
    m = Migrator(db, [SPEC])
    m.init()
    ddl = OnlineDdl(m, policy=FAST)
    before = catalog(db)
    ddl.expand(KEY)
    m.advance(KEY, Stage.DUALWRITE)
    with pytest.raises(TransitionRefused, match="expand cannot be undone") as exc:
        ddl.rollback_expand(KEY)
    assert exc.value.hint == f"roll back first: dualwrite rollback {KEY} --to expand"
    m.rollback(KEY, Stage.EXPAND)
    _, out = ddl.rollback_expand(KEY)
    assert [o.status for o in out] == ["rolled back"] * 3
    assert catalog(db) == before
    assert m.state.get(KEY).stage is Stage.OFF


def test_contract_gates_refuse_and_change_nothing(db: Database) -> None:
    users(db, not_null=False)
    spec = RenameColumn(key=KEY, table="users", old="full_name", new="display_name",
                        confidence_window=3600)
    m = Migrator(db, [spec])
    m.init()
    ddl = OnlineDdl(m, policy=FAST)
    with pytest.raises(TransitionRefused, match="new column 'display_name' does not exist"):
        ddl.contract(KEY, confirm=KEY)
    ddl.expand(KEY)
    with pytest.raises(TransitionRefused, match="needs stage complete") as exc:
        ddl.contract(KEY, confirm=KEY)
    assert exc.value.hint == f"finish the migration first: dualwrite advance {KEY} --to complete"
    m.advance(KEY, Stage.DUALWRITE)
    db.execute((f"UPDATE {q(db, 'users')} SET {q(db, 'display_name')} = {q(db, 'full_name')}",
                ()))
    m.advance(KEY, Stage.SHADOW)
    record_backfill_and_verify(db, KEY, spec.spec_hash())
    m.advance(KEY, Stage.RAMPDOWN)
    m.advance(KEY, Stage.COMPLETE, confidence_window=0)
    cat, rows = catalog(db), snapshot(db, "users")
    with pytest.raises(TransitionRefused, match="confidence window has not passed"):
        ddl.contract(KEY, confirm=KEY)
    with pytest.raises(TransitionRefused, match="irreversible"):
        ddl.contract(KEY, confirm="another-key")
    # a live instance still at rampdown would write the old column
    m.state.heartbeat("pod-1", "host", 1, "0", [(KEY, Stage.RAMPDOWN)])
    with pytest.raises(TransitionRefused, match="still write the old column"):
        ddl.contract(KEY, confirm=KEY, confidence_window=0)
    assert catalog(db) == cat and snapshot(db, "users") == rows
    assert m.state.get(KEY).stage is Stage.COMPLETE


def test_bad_input(db: Database) -> None:
    users(db, not_null=False)
    bad_table = RenameColumn(key="bad-table", table="nope", old="a", new="b")
    bad_col = RenameColumn(key="bad-col", table="users", old="nope", new="b")
    m = Migrator(db, [bad_table, bad_col])
    ddl = OnlineDdl(m, policy=FAST)
    before = catalog(db)
    with pytest.raises(UnknownTableError):
        ddl.expand("bad-table")
    with pytest.raises(UnknownColumnError) as exc:
        ddl.expand("bad-col")
    assert exc.value.column == "nope" and exc.value.hint
    with pytest.raises(MigrationNotFoundError):
        ddl.expand("unknown-key")
    with pytest.raises(ConfigurationError, match="lock policy"):
        LockPolicy(lock_timeout=0)
    assert catalog(db) == before


# -- CLI --------------------------------------------------------------------------------------

TOML = f"""
[[migration]]
key = "{KEY}"
kind = "rename"
table = "users"
old = "full_name"
new = "display_name"
confidence_window = "0"
"""


def cli(db_url: str, spec: Path, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["--database-url", db_url, "--spec", str(spec), *args])
    return r.exit_code, r.stdout, r.stderr


def test_cli_expand_contract(db: Database, db_url: str, tmp_path: Path) -> None:
    users(db, not_null=False)
    spec = tmp_path / "dualwrite.toml"
    spec.write_text(TOML)
    before = catalog(db)
    code, out, _ = cli(db_url, spec, "expand", KEY, "--dry-run")
    assert code == 0
    assert "would run: add display_name" in out and "rollback: ALTER TABLE" in out
    assert catalog(db) == before  # --dry-run prints only
    assert not StateStore(db).is_initialized()  # not even the state tables
    code, out, err = cli(db_url, spec, "expand", KEY, "--lock-timeout", "0")
    assert code == 1 and "lock policy" in err and "fix:" in err
    code, out, _ = cli(db_url, spec, "expand", KEY, "--lock-timeout", "1s")
    assert code == 0, out
    assert out.index("running: add display_name") < out.index("ok (done in 1 attempt(s))")
    code, out, _ = cli(db_url, spec, "expand", KEY, "--json")
    assert code == 0
    doc = json.loads(out)
    assert [o["status"] for o in doc["outcomes"]] == ["skipped"] * 3
    code, _, err = cli(db_url, spec, "contract", KEY)
    assert code == 3 and "needs stage complete" in err
    code, _, err = cli(db_url, spec, "contract", KEY, "--json")
    assert code == 3 and json.loads(err)["error"] == "TransitionRefused"
    expanded = catalog(db)
    code, out, _ = cli(db_url, spec, "contract", KEY, "--dry-run")
    assert code == 0 and "would run: drop the old column full_name" in out
    assert catalog(db) == expanded
    code, out, _ = cli(db_url, spec, "expand", KEY, "--rollback")
    assert code == 0 and "rolling back" in out
    assert catalog(db) == before


@pytest.mark.mysql
@pytest.mark.parametrize("backend", ["mysql"], indirect=True)
def test_mysql_refuses_a_rebuild_unless_forced(db: Database) -> None:
    """A FULLTEXT index makes InnoDB rebuild (no INSTANT add column) and lock (no
    LOCK=NONE): refused without --force, nothing changed; forced, it runs."""
    create_table(db, "users", {"id": "pk", "full_name": "VARCHAR(100)"})
    db.execute(("ALTER TABLE users ADD FULLTEXT INDEX ft_full_name (full_name)", ()))
    m = Migrator(db, [SPEC])
    m.init()
    before = catalog(db)
    with pytest.raises(OnlineDdlRefused, match="rebuilds the table") as exc:
        OnlineDdl(m, policy=FAST).expand(KEY)
    assert "--force" in (exc.value.hint or "") and exc.value.step == "add column display_name"
    assert catalog(db) == before
    assert m.state.get(KEY).stage is Stage.OFF
    events: list[DdlEvent] = []
    OnlineDdl(m, policy=FAST, force=True, on_event=events.append).expand(KEY)
    assert any(e.kind == "fallback" for e in events)
    assert "display_name" in catalog(db)["columns"]
    assert new_indexes(db) == {"ft_display_name": (False, True)}


@pytest.mark.postgresql
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_postgres_drops_an_invalid_leftover_index(db: Database) -> None:
    """A failed CREATE INDEX CONCURRENTLY leaves an INVALID index: expand drops and rebuilds it."""
    users(db, not_null=False)
    db.execute(("ALTER TABLE users ADD COLUMN display_name TEXT", ()))
    db.execute(("UPDATE users SET display_name = 'same'", ()))
    with pytest.raises(Exception, match="could not create unique index"):
        db.execute_autocommit(('CREATE UNIQUE INDEX CONCURRENTLY "ix_users_display_name" '
                               'ON users (display_name)', ()))
    assert new_indexes(db)["ix_users_display_name"] == (True, False)  # INVALID leftover
    db.execute(("UPDATE users SET display_name = NULL", ()))
    m = Migrator(db, [SPEC])
    m.init()
    plan = plan_expand(db, SPEC)
    step = next(s for s in plan.steps if s.name == "create index ix_users_display_name")
    assert step.dirty and not step.done
    OnlineDdl(m, policy=FAST).expand(KEY)
    assert new_indexes(db) == {"ix_users_display_name": (False, True),
                               "users_display_name_key": (True, True)}


def test_contract_drops_the_mirror_triggers(db: Database) -> None:
    """Trigger mode: contract drops dualwrite's mirror triggers before the old column."""
    from dualwrite.triggers import TriggerInstaller

    users(db, not_null=False)
    spec = RenameColumn(key=KEY, table="users", old="full_name", new="display_name",
                        confidence_window=0, mode="trigger")
    m = Migrator(db, [spec])
    m.init()
    ddl = OnlineDdl(m, policy=FAST)
    ddl.expand(KEY)
    TriggerInstaller(db).install(spec)
    m.advance(KEY, Stage.SHADOW)
    db.execute((f"UPDATE {q(db, 'users')} SET {q(db, 'display_name')} = {q(db, 'full_name')}",
                ()))
    record_backfill_and_verify(db, KEY, spec.spec_hash())
    m.advance(KEY, Stage.COMPLETE)
    plan = plan_contract(db, spec)
    step = next(s for s in plan.steps if s.name == "drop mirror triggers")
    assert not step.done and step.sql and step.rollback
    names = [s.name for s in plan.steps]
    assert names.index("drop mirror triggers") < names.index("drop column full_name")

    def triggers() -> list[str]:
        return [str(r[0]) for r in db.fetchall(db.dialect.table_triggers("users", None))]

    assert any(t.startswith("dualwrite_") for t in triggers())
    # its rollback reinstalls them
    runner = ddl.runner(spec)
    runner.run([step])
    assert not any(t.startswith("dualwrite_") for t in triggers())
    runner.rollback([replace(step, done=True)])
    assert TriggerInstaller(db).status(spec).current
    ddl.contract(KEY, confirm=KEY)
    assert not any(t.startswith("dualwrite_") for t in triggers())
    assert "full_name" not in catalog(db)["columns"]


def test_hostile_identifiers_and_other_spec_kinds(db: Database) -> None:
    """Quoted names with quotes, spaces and keywords; a type change gets its declared type
    and its index; a split gets its columns and a note instead of an index copy."""
    from dualwrite.spec import ChangeColumnType, SplitColumn

    table, old = 'we"ird `tbl`', "select"
    create_table(db, table, {"id": "pk", old: "text", "price": "real"})
    db.execute((f"CREATE INDEX {q(db, 'ix ' + old)} ON {q(db, table)} ({q(db, old)})", ()))
    db.execute((f"CREATE INDEX {q(db, 'ix_price')} ON {q(db, table)} ({q(db, 'price')})", ()))
    insert_rows(db, table, [{"id": 1, old: "a b", "price": 1.5}])
    rename = RenameColumn(key="weird", table=table, old=old, new='new "col"')
    change = ChangeColumnType(key="cents", table=table, old="price", new="price_cents",
                              new_type="BIGINT",
                              forward_sql={"postgresql": "CAST({old} * 100 AS BIGINT)",
                                           "mysql": "CAST({old} * 100 AS SIGNED)",
                                           "sqlite": "CAST({old} * 100 AS INTEGER)"},
                              backward_sql="{new} / 100.0")
    split = SplitColumn(key="split", table=table, old=old, new=["first", "last"],
                        new_types={"first": "VARCHAR(50)", "last": "VARCHAR(50)"},
                        forward=lambda v: tuple(v.split(" ", 1)),
                        backward=lambda a, b: f"{a} {b}")
    m = Migrator(db, [rename, change, split])
    ddl = OnlineDdl(m, policy=FAST)
    before = inspect_table(db, table, None)
    _, out = ddl.expand("weird")
    assert [o.status for o in out] == ["applied", "applied"]
    idx = {i.name: i.column_names for i in table_indexes(db, table, None).values()}
    assert idx['ix new "col"'] == ('new "col"',)
    plan, _ = ddl.expand("cents")
    info = inspect_table(db, table, None)
    assert info is not None and db.dialect.type_family(info.columns["price_cents"].type) \
        == "integer"
    assert ("price_cents",) in {i.column_names for i in table_indexes(db, table, None).values()}
    plan, out = ddl.expand("split")
    assert [o.step.name for o in out] == ["add column first", "add column last"]
    assert any("a split has no single new column" in n for n in plan.notes)
    for key in ("split", "cents", "weird"):
        ddl.rollback_expand(key)
    assert inspect_table(db, table, None) == before


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgresql),
                pytest.param("mysql", marks=pytest.mark.mysql)], indirect=True)
def test_contract_stops_on_unbackfilled_rows(db: Database) -> None:
    """NOT NULL cannot be enforced while rows of the new column are NULL: contract stops
    with the command to run, before the stage moves and before anything is dropped."""
    users(db)
    m = Migrator(db, [SPEC])
    m.init()
    ddl = OnlineDdl(m, policy=FAST, force=True)
    ddl.expand(KEY)
    m.advance(KEY, Stage.SHADOW)
    record_backfill_and_verify(db, KEY, SPEC.spec_hash())  # claims a backfill that did not run
    m.advance(KEY, Stage.COMPLETE)
    with pytest.raises(DatabaseError) as exc:
        ddl.contract(KEY, confirm=KEY)
    assert f"dualwrite backfill {KEY}" in (exc.value.hint or "")
    assert "failed" in exc.value.message
    assert m.state.get(KEY).stage is Stage.COMPLETE
    assert "full_name" in catalog(db)["columns"]
