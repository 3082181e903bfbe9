"""Specs the backfill tests use, importable by a subprocess (``--spec tests.backfill_specs:ALL``)."""

from __future__ import annotations

from typing import Any

from dualwrite.spec import ChangeColumnType, RenameColumn


def upper(value: Any) -> Any:
    """f: upper-case."""
    return str(value).upper()


def lower(value: Any) -> Any:
    """g: lower-case."""
    return str(value).lower()


def upper_or_fail(value: Any) -> Any:
    """f that fails on values containing 'bad'."""
    if "bad" in str(value):
        raise ValueError(f"cannot transform {value!r}")
    return str(value).upper()


RENAME = RenameColumn(key="users-rename", table="users", old="full_name", new="display_name",
                      confidence_window=0)
UPPER_SQL = ChangeColumnType(key="users-upper", table="users", old="full_name",
                             new="display_name", forward_sql="UPPER({old})",
                             backward_sql="LOWER({new})", forward=upper, backward=lower,
                             confidence_window=0)
UPPER_PY = ChangeColumnType(key="users-upper-py", table="users", old="full_name",
                            new="display_name", forward=upper, backward=lower,
                            confidence_window=0)
FAILING_PY = ChangeColumnType(key="users-failing", table="users", old="full_name",
                              new="display_name", forward=upper_or_fail, backward=lower,
                              confidence_window=0)

ALL = [RENAME, UPPER_SQL, UPPER_PY, FAILING_PY]
