"""Bad input sweep: hostile and wrong inputs to the CLI and the Python API.

Each case must give a clear error (message + fix, the right exit code) and change nothing:
a snapshot of every table's schema and data is taken before and compared after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dualwrite.cli import main
from dualwrite.db import Database
from dualwrite.errors import DualwriteError
from dualwrite.migrator import Migrator
from dualwrite.schema import inspect_table
from dualwrite.spec import ChangeColumnType, RenameColumn
from dualwrite.stages import Stage
from tests.helpers import add_column, q, users_table

BASE_TOML = """
[[migration]]
key = "{key}"
kind = "{kind}"
table = "{table}"
old = "{old}"
new = "{new}"
{extra}
"""


def list_tables(db: Database) -> list[str]:
    name = db.dialect.name
    if name == "postgresql":
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    elif name == "mysql":
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    return sorted(str(r[0]) for r in db.fetchall((sql, ())))


def world(db: Database) -> dict[str, Any]:
    """Schema and data of every table (state tables included)."""
    out: dict[str, Any] = {}
    for t in list_tables(db):
        info = inspect_table(db, t)
        assert info is not None
        rows = db.fetchall((f"SELECT * FROM {q(db, t)}", ()))
        out[t] = ({c.name: (c.type, c.nullable) for c in info.columns.values()},
                  sorted(map(repr, rows)))
    return out


@pytest.fixture
def prepared(db: Database) -> Database:
    users_table(db, 10)
    add_column(db, "users", "display_name")
    m = Migrator(db, [RenameColumn(key="ok", table="users", old="full_name",
                                   new="display_name")])
    m.init()
    m.advance("ok", Stage.DUALWRITE)
    return db


def toml(tmp_path: Path, **fields: str) -> Path:
    values = {"key": "bad", "kind": "rename", "table": "users", "old": "full_name",
              "new": "display_name", "extra": ""}
    values.update(fields)
    f = tmp_path / "bad.toml"
    f.write_text(BASE_TOML.format(**values))
    return f


CLI_CASES: list[tuple[str, dict[str, str], list[str], int, str]] = [
    ("quote in table", {"table": 'users\\"; DROP TABLE users; --'}, ["init"], 1,
     "does not exist"),
    ("semicolon column", {"old": "full_name; DELETE FROM users"}, ["init"], 1,
     "column 'full_name; DELETE FROM users' does not exist"),
    ("comment marker column", {"old": "full_name -- x"}, ["init"], 1, "does not exist"),
    ("backtick column", {"old": "full`name"}, ["init"], 1, "does not exist"),
    ("unknown table", {"table": "people"}, ["init"], 1, "table 'people' does not exist"),
    ("bad key", {"key": "bad key; --"}, ["init"], 1, "is not valid"),
    ("wrong type", {"kind": "change_type", "new": "display_name",
                    "extra": 'new_type = "INTEGER"\nforward_sql = "{old}"\nbackward_sql = "{new}"'},
     ["init"], 1, "the spec needs INTEGER"),
    ("bad placeholder", {"kind": "change_type", "new": "n2",
                         "extra": 'new_type = "TEXT"\nforward_sql = "{nope}"\n'
                                  'backward_sql = "{new}"'},
     ["init"], 1, "unknown placeholder {nope}"),
    ("stage out of range", {}, ["advance", "bad", "--to", "finished"], 2,
     "unknown stage 'finished'"),
    ("rollback to stage name with sql", {}, ["rollback", "ok", "--to", "off'; --"], 2,
     "unknown stage"),
    ("unknown key", {}, ["advance", "nope"], 1, "no spec with key 'nope'"),
    ("history of unknown key", {}, ["history", "nope"], 1, "'nope' is not registered"),
    ("skip ahead refused", {"key": "ok"}, ["advance", "ok", "--to", "off"], 3, "is behind"),
    ("changed spec mid-migration", {"key": "ok", "new": "other_name"},
     ["advance", "ok"], 1, "the spec changed since the migration started"),
]


@pytest.mark.parametrize(("label", "fields", "args", "code", "message"), CLI_CASES,
                         ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_changes_nothing(prepared: Database, db_url: str, tmp_path: Path,
                                       label: str, fields: dict[str, str], args: list[str],
                                       code: int, message: str) -> None:
    if label == "changed spec mid-migration":
        add_column(prepared, "users", "other_name")
    before = world(prepared)
    spec = toml(tmp_path, **fields)
    r = CliRunner().invoke(main, ["--database-url", db_url, "--spec", str(spec), *args])
    assert r.exit_code == code, (r.stdout, r.stderr)
    assert message in r.stderr
    if code != 2:
        assert "fix:" in r.stderr
    assert world(prepared) == before


def test_unreachable_database_url(tmp_path: Path) -> None:
    spec = toml(tmp_path)
    for url in ("postgresql://postgres@127.0.0.1:1/x", "mysql://root@127.0.0.1:1/x",
                f"sqlite:///{tmp_path}/no/such/dir/x.db"):
        r = CliRunner().invoke(main, ["--database-url", url, "--spec", str(spec), "status"])
        assert r.exit_code == 1, r.stderr
        assert "could not connect" in r.stderr or "error:" in r.stderr


API_CASES: list[tuple[str, Any]] = [
    ("hostile table", lambda: RenameColumn(key="k", table="users\"; DROP TABLE users; --",
                                           old="full_name", new="x")),
    ("unknown column", lambda: RenameColumn(key="k", table="users", old="nope", new="x")),
    ("key column", lambda: RenameColumn(key="k", table="users", old="id", new="x")),
    ("disagreeing transforms", lambda: ChangeColumnType(
        key="k", table="users", old="full_name", new="n", new_type="TEXT",
        forward_sql="{old}", forward=str.upper, backward_sql="{new}", backward=str.lower)),
]


@pytest.mark.parametrize(("label", "make"), API_CASES, ids=[c[0] for c in API_CASES])
def test_api_bad_input_changes_nothing(prepared: Database, label: str, make: Any) -> None:
    before = world(prepared)
    with pytest.raises(DualwriteError) as exc:
        Migrator(prepared, [make()]).init()
    assert exc.value.hint, label
    assert world(prepared) == before
