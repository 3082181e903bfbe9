"""``dualwrite triggers install|uninstall|status KEY`` on every backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dualwrite.cli import main
from dualwrite.db import Database
from tests.helpers import snapshot
from tests.trigger_specs import users

TOML = """
[[migration]]
key = "users-display-name"
kind = "rename"
table = "users"
old = "full_name"
new = "display_name"
mode = "trigger"
"""
KEY = "users-display-name"


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    f = tmp_path / "dualwrite.toml"
    f.write_text(TOML)
    return f


def run(db_url: str, spec: Path, *args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["--database-url", db_url, "--spec", str(spec), *args])
    return r.exit_code, r.stdout, r.stderr


def test_install_status_uninstall(db: Database, db_url: str, spec_file: Path) -> None:
    users(db, 3)
    code, out, _ = run(db_url, spec_file, "triggers", "status", KEY, "--json")
    assert code == 0
    st = json.loads(out)
    assert (st["state"], st["current"]) == ("missing", False)
    assert all(d["state"] == "missing" for d in st["drift"])
    code, out, _ = run(db_url, spec_file, "triggers", "install", KEY, "--dry-run")
    assert code == 0 and "CREATE" in out and "dualwrite:users-display-name:" in out
    assert json.loads(run(db_url, spec_file, "triggers", "status", KEY, "--json")[1])[
        "state"] == "missing"  # a dry run changes nothing
    code, out, _ = run(db_url, spec_file, "triggers", "install", KEY)
    assert code == 0 and out.startswith(f"{KEY}: triggers created: dualwrite_users-display-name")
    code, out, _ = run(db_url, spec_file, "triggers", "install", KEY, "--json")
    assert code == 0 and json.loads(out)["action"] == "unchanged"
    code, out, _ = run(db_url, spec_file, "triggers", "status", KEY)
    assert code == 0 and "installed" in out and "missing" not in out
    code, out, _ = run(db_url, spec_file, "advance", KEY, "--to", "dualwrite", "--json")
    assert code == 0 and [s["to"] for s in json.loads(out)["steps"]] == ["expand", "dualwrite"]
    code, out, _ = run(db_url, spec_file, "triggers", "uninstall", KEY)
    assert code == 0 and f"{KEY}: triggers dropped" in out
    code, out, _ = run(db_url, spec_file, "triggers", "uninstall", KEY, "--json")
    assert code == 0 and json.loads(out)["action"] == "absent"


def test_errors_exit_1_with_a_hint_and_change_nothing(db: Database, db_url: str,
                                                      spec_file: Path) -> None:
    users(db, 2)
    before = snapshot(db, "users")
    code, _, err = run(db_url, spec_file, "triggers", "install", "nope")
    assert code == 1 and "no spec with key 'nope'" in err and "fix:" in err
    db.execute((f"ALTER TABLE users DROP COLUMN {db.dialect.quote('display_name')}", ()))
    code, _, err = run(db_url, spec_file, "triggers", "install", KEY, "--json")
    assert code == 1
    payload = json.loads(err)
    assert payload["error"] == "TriggerError" and payload["key"] == KEY
    assert payload["hint"] == f"add them first: dualwrite expand {KEY} (or your own migration)"
    code, _, _ = run(db_url, spec_file, "triggers", "install", KEY, "--lock-timeout", "0")
    assert code == 2
    assert snapshot(db, "users") == [r[:2] for r in before]
