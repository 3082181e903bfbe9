"""Type-aware comparison on values read back from each real database."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pytest

from dualwrite.compare import Comparator, CompareOutcome
from dualwrite.db import Database
from dualwrite.normalize import ColumnComparison, comparison_for, normalizer_for
from dualwrite.schema import inspect_table
from dualwrite.spec import ChangeColumnType
from dualwrite.stages import Stage
from tests.helpers import create_table, insert_rows, q

TYPES = {
    "postgresql": {"i": "BIGINT", "n": "NUMERIC(10,2)", "t": "VARCHAR(20)", "ts": "TIMESTAMP",
                   "j": "JSONB", "b": "BOOLEAN"},
    "mysql": {"i": "BIGINT", "n": "DECIMAL(10,2)", "t": "VARCHAR(20)", "ts": "DATETIME(6)",
              "j": "JSON", "b": "TINYINT(1)"},
    "sqlite": {"i": "BIGINT", "n": "NUMERIC(10,2)", "t": "VARCHAR(20)", "ts": "TIMESTAMP",
               "j": "JSON", "b": "BOOLEAN"},
}


def read_back(db: Database, values: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    types = TYPES[db.dialect.name]
    create_table(db, "vals", {"id": "pk", **types})
    insert_rows(db, "vals", [{"id": 1, **values}])
    row = db.fetchone((f"SELECT {', '.join(q(db, c) for c in types)} FROM {q(db, 'vals')}", ()))
    assert row is not None
    info = inspect_table(db, "vals")
    return dict(zip(types, row, strict=True)), info


def spec_for(columns: list[str]) -> ChangeColumnType:
    # the comparison only needs the new column names; one spec per column keeps it simple
    return ChangeColumnType(key="n", table="vals", old="id", new=columns[0], forward=str,
                            backward=str)


def test_driver_values_equal_their_python_meaning(db: Database) -> None:
    found, info = read_back(db, {
        "i": 5, "n": "1.50", "t": "abc",
        "ts": dt.datetime(2026, 1, 2, 3, 4, 5), "j": '{"b": 1, "a": [1, 2]}', "b": True})
    expected = {"i": decimal.Decimal("5.0"), "n": 1.5, "t": "abc",
                "ts": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
                "j": {"a": [1, 2], "b": 1}, "b": 1}
    for col, exp in expected.items():
        cmp = comparison_for(spec_for([col]), info, db.dialect.name)
        assert cmp.equal(col, found[col], exp), (col, found[col], exp)
    wrong = {"i": 6, "n": 1.51, "t": "abd", "ts": dt.datetime(2026, 1, 2, 3, 4, 6),
             "j": {"a": [2, 1], "b": 1}, "b": False}
    for col, exp in wrong.items():
        cmp = comparison_for(spec_for([col]), info, db.dialect.name)
        assert not cmp.equal(col, found[col], exp), (col, found[col], exp)


@pytest.mark.mysql
def test_mysql_pad_space_and_case_insensitive_collations(servers: Any, tmp_path: Any) -> None:
    from tests.conftest import isolated_url

    with isolated_url(servers, "mysql", tmp_path) as url:
        db = Database.from_url(url)
        try:
            create_table(db, "c", {"id": "pk",
                                   "ci": "VARCHAR(20) COLLATE utf8mb4_general_ci",
                                   "cs": "VARCHAR(20) COLLATE utf8mb4_bin"})
            insert_rows(db, "c", [{"id": 1, "ci": "Abc  ", "cs": "Abc  "}])
            # the server itself says these are equal under the column's collation
            row = db.fetchone(("SELECT ci = 'abc', cs = 'Abc', cs = 'abc' FROM c", ()))
            assert row == (1, 1, 0)
            info = inspect_table(db, "c")
            assert info is not None
            cmp = comparison_for(ChangeColumnType(key="k", table="c", old="id", new="ci",
                                                  forward=str, backward=str), info, "mysql")
            assert cmp.equal("ci", "Abc  ", "abc")
            cmp2 = comparison_for(ChangeColumnType(key="k", table="c", old="id", new="cs",
                                                   forward=str, backward=str), info, "mysql")
            assert cmp2.equal("cs", "Abc  ", "Abc")
            assert not cmp2.equal("cs", "Abc", "abc")
        finally:
            db.close()


def test_normalizers_without_database() -> None:
    assert normalizer_for("bigint", "postgresql")(5) == normalizer_for("integer", "mysql")(
        decimal.Decimal("5"))
    text_pg = normalizer_for("text", "postgresql", "C")
    assert text_pg("a ") != text_pg("a")  # PostgreSQL compares trailing spaces
    assert normalizer_for("varchar(5)", "mysql", "utf8mb4_0900_ai_ci")("a ") != "a"
    assert normalizer_for("json", "sqlite")('{"b":1,"a":2}') == \
        normalizer_for("json", "sqlite")({"a": 2, "b": 1})


def test_hooks_and_comparator_with_types() -> None:
    spec = ChangeColumnType(key="h", table="t", old="a", new="b", forward=lambda v: v * 2,
                            backward=lambda v: v // 2)
    cmp = ColumnComparison(hooks={"b": lambda found, exp: abs(found - exp) <= 1})
    c = Comparator(spec, comparison=cmp)
    assert c.compare(Stage.SHADOW, 1, {"a": 5, "b": 11}) == CompareOutcome.MATCH
    assert c.compare(Stage.SHADOW, 2, {"a": 5, "b": 12}) == CompareOutcome.MISMATCH
    assert ColumnComparison().equal("x", None, None)
    assert not ColumnComparison().equal("x", None, 0)
