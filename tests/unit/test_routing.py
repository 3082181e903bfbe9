"""The read rule (pure): which form each column is read in, and its Python values."""

from __future__ import annotations

from typing import Any

import pytest

from dualwrite.mirror import mirror_direction
from dualwrite.routing import ReadForm, read_form, read_values
from dualwrite.spec import ChangeColumnType, RenameColumn, SplitColumn
from dualwrite.stages import Stage

RENAME = RenameColumn(key="r", table="t", old="a", new="b")
CENTS = ChangeColumnType(key="c", table="t", old="price", new="cents",
                         forward=lambda p: round(p * 100), backward=lambda c: c / 100)
SPLIT = SplitColumn(key="s", table="t", old="full", new=["first", "last"],
                    forward=lambda v: tuple(v.split(" ", 1)),
                    backward=lambda f, la: f"{f} {la}")


@pytest.mark.parametrize("stage, old, new", [
    (Stage.OFF, ReadForm.RAW, ReadForm.RAW),
    (Stage.EXPAND, ReadForm.RAW, ReadForm.RAW),
    (Stage.DUALWRITE, ReadForm.RAW, ReadForm.FORWARD),
    (Stage.SHADOW, ReadForm.RAW, ReadForm.FORWARD),
    (Stage.LIVE, ReadForm.BACKWARD_OR_OLD, ReadForm.NEW_OR_FORWARD),
    (Stage.RAMPDOWN, ReadForm.BACKWARD_OR_OLD, ReadForm.RAW),
    (Stage.COMPLETE, ReadForm.BACKWARD, ReadForm.RAW),
    (Stage.CONTRACT, ReadForm.BACKWARD, ReadForm.RAW),
])
def test_read_form_per_stage(stage: Stage, old: ReadForm, new: ReadForm) -> None:
    assert read_form(RENAME, stage, "a") is old
    assert read_form(RENAME, stage, "b") is new
    assert read_form(RENAME, stage, "other") is ReadForm.RAW


@pytest.mark.parametrize("spec, stage, row, expected", [
    (CENTS, Stage.SHADOW, {"price": 1.5, "cents": 999}, {"cents": 150}),
    (CENTS, Stage.LIVE, {"price": 1.5, "cents": None}, {"cents": 150}),
    (CENTS, Stage.LIVE, {"price": 1.5, "cents": 200}, {"price": 2.0}),
    (CENTS, Stage.LIVE, {"price": None, "cents": None}, {}),
    (CENTS, Stage.RAMPDOWN, {"price": 1.5, "cents": 200}, {"price": 2.0}),
    (CENTS, Stage.COMPLETE, {"price": 1.5, "cents": None}, {"price": None}),
    (CENTS, Stage.OFF, {"price": 1.5, "cents": 200}, {}),
    (CENTS, Stage.LIVE, {"cents": None}, {}),                  # old not loaded: left alone
    (SPLIT, Stage.LIVE, {"full": "a b", "first": None, "last": "z"}, {"first": "a",
                                                                      "full": "a z"}),
    (SPLIT, Stage.SHADOW, {"full": "a b", "first": "x", "last": None},
     {"first": "a", "last": "b"}),
])
def test_read_values(spec: Any, stage: Stage, row: dict[str, Any],
                     expected: dict[str, Any]) -> None:
    assert read_values(spec, stage, row) == expected


@pytest.mark.parametrize("stage, columns, direction", [
    (Stage.OFF, {"a"}, None),
    (Stage.DUALWRITE, {"a"}, "forward"),
    (Stage.DUALWRITE, {"b"}, "backward"),
    (Stage.LIVE, {"a", "b"}, "forward"),
    (Stage.RAMPDOWN, {"a", "b"}, "backward"),
    (Stage.COMPLETE, {"a"}, "forward"),
    (Stage.COMPLETE, {"b"}, None),
    (Stage.LIVE, {"x"}, None),
])
def test_mirror_direction(stage: Stage, columns: set[str], direction: str | None) -> None:
    assert mirror_direction(RENAME, stage, columns) == direction
