"""Specs and spec loading, without a database."""

from __future__ import annotations

from pathlib import Path

import pytest

from dualwrite.config import load_specs, parse_duration
from dualwrite.errors import ConfigurationError, SpecError
from dualwrite.spec import ChangeColumnType, RenameColumn, SplitColumn
from dualwrite.stages import Mode


def to_int(v: str) -> int:
    return int(v)


def test_rename_transforms_are_identity() -> None:
    s = RenameColumn(key="r", table="users", old="a", new="b")
    assert s.apply_forward({"a": 5}) == {"b": 5}
    assert s.apply_backward({"b": 7}) == {"a": 7}
    assert s.forward_template("postgresql", "b") == "{old}"
    assert s.flag_key == "dualwrite.r.stage"


@pytest.mark.parametrize("kwargs, match", [
    ({"key": "bad key", "table": "t", "old": "a", "new": "b"}, "key 'bad key' is not valid"),
    ({"key": "", "table": "t", "old": "a", "new": "b"}, "is not valid"),
    ({"key": "k", "table": "", "old": "a", "new": "b"}, "table '' is not a valid identifier"),
    ({"key": "k", "table": "t", "old": "a", "new": "a"}, "both old and new"),
    ({"key": "k", "table": "t", "old": "a\x00", "new": "b"}, "not a valid identifier"),
    ({"key": "k", "table": "t", "old": "a", "new": "b", "mode": "magic"}, "unknown mode"),
    ({"key": "k", "table": "t", "old": "a", "new": "b", "confidence_window": -1}, ">= 0"),
])
def test_bad_specs_fail_with_a_fix(kwargs: dict, match: str) -> None:
    with pytest.raises(SpecError, match=match) as exc:
        RenameColumn(**kwargs)
    assert exc.value.hint


def test_change_type_needs_a_transform_each_way() -> None:
    with pytest.raises(SpecError, match="no backward transform"):
        ChangeColumnType(key="k", table="t", old="a", new="b", forward=to_int)
    s = ChangeColumnType(key="k", table="t", old="a", new="b", forward=to_int, backward=str,
                         forward_sql={"postgresql": "CAST({old} AS INT)"})
    assert s.apply_forward({"a": "42"}) == {"b": 42}
    assert s.apply_forward({"a": None}) == {"b": None}
    assert s.apply_backward({"b": 42}) == {"a": "42"}
    with pytest.raises(SpecError, match="no SQL transform for dialect 'mysql'") as exc:
        s.forward_template("mysql", "b")
    assert exc.value.hint == "add a 'mysql' entry to the transform mapping"


def test_split_checks_shape() -> None:
    with pytest.raises(SpecError, match="at least two new columns"):
        SplitColumn(key="k", table="t", old="a", new=["b"], forward=lambda v: (v,),
                    backward=lambda b: b)
    with pytest.raises(SpecError, match="'c' is missing"):
        SplitColumn(key="k", table="t", old="a", new=["b", "c"],
                    forward_sql={"b": "{old}"}, backward_sql="{b}")
    s = SplitColumn(key="k", table="t", old="a", new=["b", "c"],
                    forward=lambda v: tuple(v.split(" ", 1)), backward=lambda b, c: f"{b} {c}")
    assert s.apply_forward({"a": "Ada Lovelace"}) == {"b": "Ada", "c": "Lovelace"}
    assert s.apply_forward({"a": None}) == {"b": None, "c": None}
    assert s.apply_backward({"b": "Ada", "c": "Lovelace"}) == {"a": "Ada Lovelace"}
    bad = SplitColumn(key="k", table="t", old="a", new=["b", "c"], forward=lambda v: (v,),
                      backward=lambda b, c: b)
    with pytest.raises(SpecError, match="returned 1 values for 2"):
        bad.apply_forward({"a": "x"})


def test_hash_is_stable_and_ignores_operational_settings() -> None:
    a = RenameColumn(key="k", table="t", old="a", new="b", confidence_window=10)
    b = RenameColumn(key="k", table="t", old="a", new="b", confidence_window=99)
    c = RenameColumn(key="k", table="t", old="a", new="c")
    d = RenameColumn(key="k", table="t", old="a", new="b", mode=Mode.TRIGGER)
    assert a.spec_hash() == b.spec_hash()
    assert len({a.spec_hash(), c.spec_hash(), d.spec_hash()}) == 3


def test_parse_duration() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("30m") == 1800
    assert parse_duration("24h") == 86400
    assert parse_duration("2d") == 172800
    assert parse_duration(5) == 5
    with pytest.raises(ConfigurationError, match="not a duration"):
        parse_duration("soon")


def test_toml_specs(tmp_path: Path) -> None:
    f = tmp_path / "dualwrite.toml"
    f.write_text('''
[[migration]]
key = "users-display-name"
kind = "rename"
table = "users"
old = "full_name"
new = "display_name"
confidence_window = "1h"

[[migration]]
key = "orders-int"
kind = "change_type"
table = "orders"
old = "qty"
new = "qty_int"
new_type = { postgresql = "integer", mysql = "INT", sqlite = "INTEGER" }
forward_sql = "CAST({old} AS INTEGER)"
backward_sql = "CAST({new} AS TEXT)"
forward = "tests.unit.test_spec:to_int"
backward = "builtins:str"
''')
    specs = load_specs([str(f)])
    assert [s.key for s in specs] == ["users-display-name", "orders-int"]
    assert specs[0].confidence_window == 3600
    change = specs[1]
    assert change.apply_forward({"qty": "3"}) == {"qty_int": 3}
    assert change.declared_type("mysql", "qty_int") == "INT"


@pytest.mark.parametrize("body, match", [
    ('[[migration]]\nkey = "k"\nkind = "nope"\ntable = "t"\n', "unknown kind 'nope'"),
    ('[[migration]]\nkey = "k"\ntable = "t"\nold = "a"\nnew = "b"\ncolour = "red"\n',
     "unknown field"),
    ('[[migration]]\nkey = "k"\ntable = "t"\nold = "a"\n', "missing 1 required"),
    ("migration = 3\n", "array of tables"),
    ("[[migration]\n", "cannot read"),
])
def test_bad_toml_is_a_configuration_error(tmp_path: Path, body: str, match: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(body)
    with pytest.raises(ConfigurationError, match=match):
        load_specs([str(f)])


def test_object_path_loading() -> None:
    specs = load_specs(["dualwrite.demo:DEMO_SPEC"])
    assert specs[0].key == "users-display-name"
    with pytest.raises(ConfigurationError, match="cannot import"):
        load_specs(["no_such_module_xyz:SPECS"])
    with pytest.raises(ConfigurationError, match="has no attribute"):
        load_specs(["dualwrite.demo:NOPE"])
    with pytest.raises(ConfigurationError, match="not a spec"):
        load_specs(["dualwrite.demo:DEMO_ROWS"])
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_specs(["missing.toml"])
