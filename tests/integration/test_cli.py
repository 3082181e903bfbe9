"""The CLI on every backend: commands, --json, exit codes 0/1/2/3, specs from TOML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dualwrite.cli import main, run_embedded
from dualwrite.db import Database
from dualwrite.migrator import Migrator
from dualwrite.spec import RenameColumn
from dualwrite.stages import Stage
from dualwrite.state import StateStore
from tests.helpers import add_column, snapshot, users_table

TOML = """
[[migration]]
key = "users-display-name"
kind = "rename"
table = "users"
old = "full_name"
new = "display_name"
confidence_window = "0"
"""
KEY = "users-display-name"


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    f = tmp_path / "dualwrite.toml"
    f.write_text(TOML)
    return f


def run(db_url: str | None, spec: Path | None, *args: str) -> tuple[int, str, str]:
    base: list[str] = []
    if db_url:
        base += ["--database-url", db_url]
    if spec:
        base += ["--spec", str(spec)]
    r = CliRunner().invoke(main, [*base, *args])
    return r.exit_code, r.stdout, r.stderr


def test_walk_with_exit_codes(db: Database, db_url: str, spec_file: Path) -> None:
    users_table(db, 5)
    code, out, _ = run(db_url, spec_file, "init")
    assert code == 0 and "users-display-name: rename on users, stage off" in out
    code, out, err = run(db_url, spec_file, "advance", KEY)
    assert code == 3
    assert "refused: the new column(s) do not exist yet" in err
    assert "fix: add them first: dualwrite expand users-display-name" in err
    add_column(db, "users", "display_name")
    code, out, err = run(db_url, spec_file, "advance", KEY, "--to", "dualwrite",
                         "--reason", "ticket OPS-1")
    assert code == 0
    assert out.splitlines() == [f"{KEY}: off -> expand (the new column(s) exist)",
                                f"{KEY}: expand -> dualwrite (the new column(s) exist)"]
    # what the gates noticed without refusing goes to stderr, once per step
    assert err.count("warning: no live application instance is registered") == 2
    code, out, _ = run(db_url, spec_file, "status", "--json")
    assert code == 0
    [st] = json.loads(out)
    assert (st["stage"], st["stage_ceiling"], st["registered"]) == ("dualwrite", "dualwrite", True)
    assert st["next"]["allowed"] is True
    # --to walks: dualwrite -> shadow passes (no fleet registered), shadow -> live refused
    code, out, err = run(db_url, spec_file, "advance", KEY, "--to", "complete", "--json")
    assert code == 3
    payload = json.loads(err)
    assert payload["error"] == "TransitionRefused"
    assert (payload["from_stage"], payload["to_stage"]) == ("shadow", "live")
    assert payload["hint"] == f"run: dualwrite backfill {KEY}"
    code, out, _ = run(db_url, spec_file, "rollback", KEY, "--json")
    assert code == 0 and json.loads(out)["steps"][0]["to"] == "dualwrite"
    code, out, _ = run(db_url, spec_file, "history", KEY, "--json")
    hist = json.loads(out)
    assert [(h["from"], h["to"]) for h in hist] == [
        ("off", "expand"), ("expand", "dualwrite"), ("dualwrite", "shadow"),
        ("shadow", "dualwrite")]
    assert hist[1]["why"] == "ticket OPS-1"
    code, out, _ = run(db_url, spec_file, "history", KEY)
    assert code == 0 and "ticket OPS-1" in out
    code, out, _ = run(db_url, spec_file, "status")
    assert code == 0 and KEY in out and "dualwrite" in out


def test_usage_errors_exit_2(db_url: str, spec_file: Path) -> None:
    code, _, err = run(db_url, spec_file, "advance", KEY, "--to", "livee")
    assert code == 2 and "unknown stage 'livee'" in err
    code, _, _ = run(db_url, spec_file, "frobnicate")
    assert code == 2
    code, _, _ = run(db_url, spec_file, "history", KEY, "--limit", "0")
    assert code == 2


@pytest.mark.parametrize("url, message", [
    (None, "no database given"),
    ("oracle://x/y", "unsupported database URL scheme 'oracle'"),
    ("not a url", "not a database URL"),
    ("sqlite://", "in-memory SQLite database cannot be shared"),
    ("postgresql://postgres:secret@127.0.0.1:1/nope", "could not connect to "
     "postgresql://postgres:***@127.0.0.1:1/nope"),
    ("mysql://root@127.0.0.1:1/nope", "could not connect"),
])
def test_configuration_errors_exit_1(url: str | None, message: str, spec_file: Path) -> None:
    code, _, err = run(url, spec_file, "status")
    assert code == 1, err
    assert message in err and "fix:" in err
    assert "secret" not in err


def test_errors_change_nothing(db: Database, db_url: str, tmp_path: Path) -> None:
    users_table(db, 4)
    before = snapshot(db, "users")
    bad = tmp_path / "bad.toml"
    bad.write_text(TOML.replace('old = "full_name"', 'old = "fullname"'))
    code, _, err = run(db_url, bad, "init")
    assert code == 1 and "column 'fullname' does not exist in table 'users'" in err
    assert snapshot(db, "users") == before
    assert StateStore(db).is_initialized()  # init created the (empty) state tables
    assert StateStore(db).all() == []
    code, _, err = run(db_url, bad, "history", KEY)
    assert code == 1 and "not registered" in err


def test_default_spec_file_in_cwd(db: Database, db_url: str, spec_file: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    users_table(db, 2)
    monkeypatch.chdir(spec_file.parent)
    code, out, _ = run(db_url, None, "init")
    assert code == 0 and KEY in out


def test_embedded_run_shares_exit_codes(db: Database) -> None:
    users_table(db, 2)
    spec = RenameColumn(key=KEY, table="users", old="full_name", new="display_name")
    assert run_embedded(["init"], db, [spec]) == 0
    assert run_embedded(["advance", KEY], db, [spec]) == 3
    assert run_embedded(["advance", KEY, "--to", "nowhere"], db, [spec]) == 2
    add_column(db, "users", "display_name")
    assert run_embedded(["advance", KEY], db, [spec]) == 0
    assert Migrator(db, [spec]).state.get(KEY).stage is Stage.EXPAND


@pytest.mark.sqlite
def test_demo_and_the_installed_entry_point(tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    path = tmp_path / "demo.db"
    r = subprocess.run([sys.executable, "-m", "dualwrite", "demo", "--path", str(path),
                        "--rows", "3000"],
                       capture_output=True, text=True, env=env, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert "refused shadow -> live: no finished verify since the backfill" in r.stdout
    assert "mismatch row 42" in r.stdout
    assert "ok live -> shadow" in r.stdout and "ok rampdown -> complete" in r.stdout
    db = Database.from_url(f"sqlite:///{path}")
    try:
        assert StateStore(db).get("users-display-name").stage is Stage.COMPLETE
        rows = db.fetchone(("SELECT count(*) FROM users", ()))
        assert rows is not None and rows[0] > 3000  # the traffic inserted rows
    finally:
        db.close()
