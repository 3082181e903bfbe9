"""Spec validation against real schemas: bad specs fail before anything changes."""

from __future__ import annotations

import pytest

from dualwrite.db import Database
from dualwrite.errors import (
    IncompatibleTypesError,
    NoUsableKeyError,
    SpecError,
    TransformMismatchError,
    UnknownColumnError,
    UnknownTableError,
)
from dualwrite.migrator import Migrator
from dualwrite.schema import inspect_table, validate_spec
from dualwrite.spec import ChangeColumnType, RenameColumn, SplitColumn
from tests.helpers import add_column, create_table, insert_rows, snapshot, users_table

RENAME = RenameColumn(key="r", table="users", old="full_name", new="display_name")


def test_inspect_finds_columns_and_key(db: Database) -> None:
    users_table(db, 3)
    info = inspect_table(db, "users")
    assert info is not None
    assert list(info.columns) == ["id", "full_name"]
    assert info.key == ("id",)
    assert inspect_table(db, "nope") is None


def test_unique_not_null_key_is_usable_when_there_is_no_primary_key(db: Database) -> None:
    create_table(db, "acct", {"code": "VARCHAR(20) NOT NULL", "opt": "INTEGER",
                              "name": "text"}, primary_key=None)
    d = db.dialect
    db.execute((f"CREATE UNIQUE INDEX acct_opt ON {d.quote('acct')} ({d.quote('opt')})", ()))
    spec = RenameColumn(key="a", table="acct", old="name", new="label")
    with pytest.raises(NoUsableKeyError, match="no primary key") as exc:
        validate_spec(db, spec)  # opt is unique but nullable
    assert exc.value.table == "acct" and "add a primary key" in (exc.value.hint or "")
    db.execute((f"CREATE UNIQUE INDEX acct_code ON {d.quote('acct')} ({d.quote('code')})", ()))
    info = inspect_table(db, "acct")
    assert info is not None and info.key == ("code",)


def test_unknown_table_and_column(db: Database) -> None:
    users_table(db, 1)
    with pytest.raises(UnknownTableError, match="table 'people' does not exist") as exc:
        validate_spec(db, RenameColumn(key="r", table="people", old="a", new="b"))
    assert exc.value.table == "people" and exc.value.hint
    with pytest.raises(UnknownColumnError, match="column 'fullname' does not exist") as exc2:
        validate_spec(db, RenameColumn(key="r", table="users", old="fullname", new="b"))
    assert exc2.value.column == "fullname" and "full_name" in exc2.value.message


def test_key_column_cannot_be_migrated(db: Database) -> None:
    users_table(db, 1)
    with pytest.raises(SpecError, match="part of the table's key"):
        validate_spec(db, RenameColumn(key="r", table="users", old="id", new="ident"))


def test_incompatible_existing_new_column(db: Database) -> None:
    users_table(db, 2)
    add_column(db, "users", "display_name", "INTEGER")
    with pytest.raises(IncompatibleTypesError, match="the spec needs") as exc:
        validate_spec(db, RENAME)
    assert exc.value.column == "display_name"
    assert exc.value.actual and exc.value.expected


def test_new_columns_detected(db: Database) -> None:
    users_table(db, 2)
    assert not validate_spec(db, RENAME).new_columns_exist
    add_column(db, "users", "display_name")
    report = validate_spec(db, RENAME)
    assert report.new_columns_exist and report.missing_new_columns == []


def test_change_type_without_declared_type_and_missing_column(db: Database) -> None:
    users_table(db, 2)
    spec = ChangeColumnType(key="c", table="users", old="full_name", new="n",
                            forward=len, backward=str)
    with pytest.raises(IncompatibleTypesError, match="does not declare its type"):
        validate_spec(db, spec)


def _sql_len(dialect: str) -> str:
    return {"postgresql": "length({old})", "mysql": "CHAR_LENGTH({old})",
            "sqlite": "length({old})"}[dialect]


def test_transforms_that_agree_pass_and_disagree_fail(db: Database) -> None:
    users_table(db, 30)
    name = db.dialect.name
    good = ChangeColumnType(key="c", table="users", old="full_name", new="name_len",
                            new_type="BIGINT", forward_sql=_sql_len(name),
                            forward=len, backward_sql="{new}", backward=lambda n: n)
    report = validate_spec(db, good)
    assert report.rows_checked == 30
    bad = ChangeColumnType(key="c", table="users", old="full_name", new="name_len",
                           new_type="BIGINT", forward_sql=_sql_len(name),
                           forward=lambda v: len(v) + 1, backward=lambda n: n,
                           backward_sql="{new}")
    before = snapshot(db, "users")
    with pytest.raises(TransformMismatchError, match="disagree on") as exc:
        validate_spec(db, bad)
    assert exc.value.samples and exc.value.table == "users"
    assert snapshot(db, "users") == before


def test_python_transform_that_raises_is_reported(db: Database) -> None:
    users_table(db, 3)
    spec = ChangeColumnType(key="c", table="users", old="full_name", new="n", new_type="BIGINT",
                            forward=int, backward=str)
    with pytest.raises(TransformMismatchError, match="raised ValueError"):
        validate_spec(db, spec)


def test_split_round_trip_checked_in_sql(db: Database) -> None:
    users_table(db, 5)
    concat = {"postgresql": "{first} || {last}", "sqlite": "{first} || {last}",
              "mysql": "CONCAT({first}, {last})"}
    sub1 = {"mysql": "SUBSTRING({old}, 1, 4)", "postgresql": "substr({old}, 1, 4)",
            "sqlite": "substr({old}, 1, 4)"}
    sub2 = {"mysql": "SUBSTRING({old}, 5)", "postgresql": "substr({old}, 5)",
            "sqlite": "substr({old}, 5)"}
    spec = SplitColumn(key="s", table="users", old="full_name", new=["first", "last"],
                       new_types={"first": "TEXT", "last": "TEXT"},
                       forward_sql={"first": sub1, "last": sub2}, backward_sql=concat,
                       forward=lambda v: (v[:4], v[4:]), backward=lambda a, b: a + b)
    assert validate_spec(db, spec).rows_checked == 5
    broken = SplitColumn(key="s", table="users", old="full_name", new=["first", "last"],
                         new_types={"first": "TEXT", "last": "TEXT"},
                         forward_sql={"first": sub1, "last": sub2}, backward_sql=concat,
                         forward=lambda v: (v[:4], v[4:]), backward=lambda a, b: b + a)
    with pytest.raises(TransformMismatchError, match="disagree"):
        validate_spec(db, broken)


@pytest.mark.parametrize("table, old, new", [
    ('we"ird table', "full name", "display name"),
    ("select", "from", "where"),
    ("semi;colon", "col -- x", "new /* c */"),
    ("tick`table", "tick`col", "new`col"),
])
def test_hostile_identifiers_are_quoted_not_executed(db: Database, table: str, old: str,
                                                     new: str) -> None:
    create_table(db, table, {"id": "pk", old: "text"})
    insert_rows(db, table, [{"id": 1, old: "x"}])
    spec = RenameColumn(key="h", table=table, old=old, new=new)
    m = Migrator(db, [spec])
    m.init()
    add_column(db, table, new)
    assert validate_spec(db, spec).new_columns_exist
    assert snapshot(db, table) == [(1, "x", None)]


def test_identifier_length_limit(db: Database) -> None:
    users_table(db, 1)
    name = "n" * 62 + "é"  # 63 characters, 64 bytes in UTF-8
    spec = RenameColumn(key="r", table="users", old="full_name", new=name)
    if db.dialect.name == "postgresql":
        with pytest.raises(SpecError, match="longer than postgresql's limit of 63 bytes"):
            validate_spec(db, spec)
        return
    add_column(db, "users", name)  # MySQL counts characters (64), SQLite has no limit
    assert validate_spec(db, spec).new_columns_exist


@pytest.mark.postgresql
def test_schema_qualified_table_on_postgresql(servers, tmp_path) -> None:
    from tests.conftest import isolated_url

    with isolated_url(servers, "postgresql", tmp_path) as url:
        db = Database.from_url(url)
        try:
            db.execute(('CREATE SCHEMA "other side"', ()))
            db.execute(('CREATE TABLE "other side"."users" (id int primary key, full_name text)',
                        ()))
            spec = RenameColumn(key="q", table="users", schema="other side", old="full_name",
                                new="display_name")
            report = validate_spec(db, spec)
            assert report.table.key == ("id",) and not report.new_columns_exist
            with pytest.raises(UnknownTableError):
                validate_spec(db, RenameColumn(key="q", table="users", old="full_name",
                                               new="display_name"))
        finally:
            db.execute(('DROP SCHEMA "other side" CASCADE', ()))
            db.close()
