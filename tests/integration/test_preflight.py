"""Preflight on every backend: each check's pass / warn / fail, with the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dualwrite.cli import main
from dualwrite.db import Database
from dualwrite.migrator import Migrator
from dualwrite.preflight import Status, preflight
from dualwrite.spec import RenameColumn
from dualwrite.stages import Stage
from tests.helpers import create_table, q, snapshot, users_table
from tests.integration.test_ddl_locks import Holder

KEY = "users-display-name"
SPEC = RenameColumn(key=KEY, table="users", old="full_name", new="display_name")


def test_clean_table_passes(db: Database) -> None:
    users_table(db, 30)
    m = Migrator(db, [SPEC])
    m.init()
    m.state.heartbeat("pod-1", "host-a", 1, "1.0", [(KEY, Stage.OFF)])
    before = snapshot(db, "users")
    report = preflight(m, KEY)
    status = {c.name: c.status for c in report.checks}
    for name in ("spec", "usable key", "column types", "server version", "replication",
                 "existing triggers", "table size and space", "fleet readiness",
                 "flag provider"):
        assert status[name] is Status.PASS, report.get(name)
    assert report.get("usable key").data["key"] == ["id"]
    assert "will be added NULL by: dualwrite expand" in report.get("column types").detail
    assert report.get("flag provider").data["value"] == "off"
    size = report.get("table size and space").data
    assert size["rows"] == 30 and size["total_bytes"] > 0
    assert "1 live instance(s) observing off" in report.get("fleet readiness").detail
    assert snapshot(db, "users") == before  # reads only


def test_failures_and_warnings_name_the_fix(db: Database) -> None:
    create_table(db, "users", {"id": "int", "full_name": "text"}, primary_key=None)
    m = Migrator(db, [SPEC])
    report = preflight(m, KEY)
    assert not report.ok
    spec = report.get("spec")
    assert spec.status is Status.FAIL and spec.data["error"] == "NoUsableKeyError"
    assert spec.fix and "primary key" in spec.fix
    assert report.get("usable key").status is Status.FAIL
    fleet = report.get("fleet readiness")
    assert fleet.status is Status.WARN and fleet.fix == "run: dualwrite init"
    flag = report.get("flag provider")
    assert flag.status is Status.WARN and "dualwrite init" in (flag.fix or "")


def test_unknown_table_fails_without_crashing(db: Database) -> None:
    m = Migrator(db, [SPEC])
    report = preflight(m, KEY)
    assert report.get("spec").data["error"] == "UnknownTableError"
    assert report.get("table size and space").status is Status.FAIL


def test_foreign_trigger_warns(db: Database) -> None:
    users_table(db, 3)
    name = db.dialect.name
    if name == "postgresql":
        db.execute(("CREATE FUNCTION audit_fn() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$BEGIN RETURN NEW; END$$", ()))
        db.execute(("CREATE TRIGGER audit BEFORE INSERT ON users FOR EACH ROW "
                    "EXECUTE FUNCTION audit_fn()", ()))
    elif name == "mysql":
        db.execute(("CREATE TRIGGER audit BEFORE INSERT ON users FOR EACH ROW "
                    "SET NEW.full_name = NEW.full_name", ()))
    else:
        db.execute(("CREATE TRIGGER audit AFTER INSERT ON users BEGIN SELECT 1; END", ()))
    report = preflight(Migrator(db, [SPEC]), KEY)
    check = report.get("existing triggers")
    assert check.status is Status.WARN and check.data["other"] == ["audit"]
    assert "trigger" in (check.fix or "")


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgresql),
                pytest.param("mysql", marks=pytest.mark.mysql)], indirect=True)
def test_open_transaction_on_the_table_warns(db: Database, db_url: str) -> None:
    users_table(db, 3)
    m = Migrator(db, [SPEC])
    with Holder(db_url):
        report = preflight(m, KEY, long_transaction=0)
    check = report.get("locks and long transactions")
    assert check.status is Status.WARN, check
    assert "expand/contract will wait and retry" in (check.fix or "")
    sessions = check.data["holders"] + check.data["long_transactions"]
    assert sessions, check.data
    if db.dialect.name == "postgresql":  # PostgreSQL names the lock holders of the table
        assert any("AccessShareLock" in (s["state"] or "") for s in check.data["holders"])


def test_cli_preflight(db: Database, db_url: str, tmp_path: Path) -> None:
    users_table(db, 3)
    spec = tmp_path / "dualwrite.toml"
    spec.write_text(f'[[migration]]\nkey = "{KEY}"\nkind = "rename"\ntable = "users"\n'
                    'old = "full_name"\nnew = "display_name"\n')
    base = ["--database-url", db_url, "--spec", str(spec)]
    r = CliRunner().invoke(main, [*base, "preflight", KEY, "--json"])
    doc = json.loads(r.stdout)
    assert {c["name"] for c in doc["checks"]} >= {"usable key", "flag provider"}
    assert r.exit_code == (0 if doc["ok"] else 3)
    r = CliRunner().invoke(main, [*base, "preflight", KEY])
    assert "usable key" in r.stdout and "batches walk users by (id)" in r.stdout
    r = CliRunner().invoke(main, [*base, "preflight", "nope"])
    assert r.exit_code == 1 and "no spec with key 'nope'" in r.stderr
    db.execute((f"DROP TABLE {q(db, 'users')}", ()))
    r = CliRunner().invoke(main, [*base, "preflight", KEY])
    assert r.exit_code == 3 and "FAIL" in r.stdout
