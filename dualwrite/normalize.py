"""Type-aware comparison: normalisers chosen from column types.

Two values that the database treats as equal must compare equal in the shadow comparator
and in verify, whatever form the driver returned them in: ``int`` vs ``bigint`` vs
``Decimal('5')``; ``numeric`` scale (``1.50`` vs ``1.5``); MySQL/MariaDB ``PAD SPACE``
collations (trailing spaces ignored) and case-insensitive ``_ci`` collations; naive vs aware
datetimes (naive is taken as UTC, the library's convention); JSON key order; UUIDs as text
or objects; ``bytes`` vs ``memoryview``.

``normalizer_for(type_name, dialect_name, collation=None)`` returns a one-argument function;
:class:`ColumnComparison` applies one per new column, with optional user hooks
``(found, expected) -> bool`` that replace it for a column.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from dualwrite.dialects import dialect_for
from dualwrite.schema import TableInfo, values_equal
from dualwrite.spec import MigrationSpec

__all__ = ["ColumnComparison", "Normalizer", "comparison_for", "normalizer_for"]

Normalizer = Callable[[Any], Any]
Hook = Callable[[Any, Any], bool]


def _as_decimal(v: Any) -> Any:
    if isinstance(v, bool):
        return decimal.Decimal(int(v))
    if isinstance(v, (int, decimal.Decimal)):
        return decimal.Decimal(v).normalize()
    if isinstance(v, float):
        return decimal.Decimal(repr(v)).normalize()
    try:
        return decimal.Decimal(str(v).strip()).normalize()
    except decimal.InvalidOperation:
        return v


def _as_float(v: Any) -> Any:
    try:
        return float(f"{float(v):.15g}")
    except (TypeError, ValueError):
        return v


def _as_bool(v: Any) -> Any:
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ("t", "true", "1", "y", "yes", "on"):
            return True
        if s in ("f", "false", "0", "n", "no", "off"):
            return False
        return v
    return bool(v)


def _as_datetime(v: Any) -> Any:
    if isinstance(v, str):
        try:
            v = _dt.datetime.fromisoformat(v.strip().replace(" ", "T", 1))
        except ValueError:
            return v
    if isinstance(v, _dt.datetime):
        return v.replace(tzinfo=_dt.UTC) if v.tzinfo is None else v.astimezone(_dt.UTC)
    return v


def _as_json(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray, memoryview)):
        v = bytes(v).decode()
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except ValueError:
            return v
    return json.dumps(v, sort_keys=True, separators=(",", ":"), default=str)


def _as_uuid(v: Any) -> Any:
    try:
        return uuid.UUID(str(v))
    except ValueError:
        return v


def _as_bytes(v: Any) -> Any:
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    return v


def _text(pad_space: bool, case_insensitive: bool) -> Normalizer:
    def norm(v: Any) -> Any:
        s = v if isinstance(v, str) else str(v)
        if pad_space:
            s = s.rstrip(" ")
        if case_insensitive:
            s = s.casefold()
        return s
    return norm


_BY_FAMILY: dict[str, Normalizer] = {
    "integer": _as_decimal,
    "numeric": _as_decimal,
    "float": _as_float,
    "boolean": _as_bool,
    "datetime": _as_datetime,
    "json": _as_json,
    "uuid": _as_uuid,
    "binary": _as_bytes,
}


def normalizer_for(type_name: str, dialect_name: str, collation: str | None = None
                   ) -> Normalizer:
    """The normaliser for a column of ``type_name`` on ``dialect_name``.

    For text on MySQL/MariaDB, ``collation`` decides: ``PAD SPACE`` collations (every
    collation but MySQL 8's ``*_0900_*`` and the ``*_nopad_*`` ones) ignore trailing
    spaces; ``_ci`` collations ignore case. Unknown types compare as they are.
    """
    family = dialect_for(dialect_name).type_family(type_name)
    if family in _BY_FAMILY:
        return _BY_FAMILY[family]
    if family == "text":
        coll = (collation or "").lower()
        mysql = dialect_name == "mysql"
        pad = mysql and bool(coll) and "_0900_" not in coll and "nopad" not in coll
        ci = bool(re.search(r"_ci$", coll)) or (mysql and not coll)
        if mysql and not coll:
            pad = True  # MariaDB's and MySQL 5.7's defaults are PAD SPACE, case-insensitive
        return _text(pad, ci)
    return lambda v: v


class ColumnComparison:
    """Compares found vs expected values column by column, through normalisers and hooks."""

    def __init__(self, normalizers: Mapping[str, Normalizer] | None = None,
                 hooks: Mapping[str, Hook] | None = None) -> None:
        self.normalizers = dict(normalizers or {})
        self.hooks = dict(hooks or {})

    def equal(self, column: str, found: Any, expected: Any) -> bool:
        """Whether ``found`` (read) means ``expected`` (computed) for ``column``."""
        if column in self.hooks:
            return bool(self.hooks[column](found, expected))
        if found is None or expected is None:
            return found is None and expected is None
        norm = self.normalizers.get(column)
        if isinstance(expected, (dict, list)):
            # A JSON value expected. MariaDB reports JSON columns as LONGTEXT (with a
            # json_valid CHECK), so the type alone cannot tell: the expected value does.
            norm = _as_json
        if norm is None:
            return values_equal(found, expected)
        return bool(norm(found) == norm(expected))

    def diff(self, found: Mapping[str, Any], expected: Mapping[str, Any]
             ) -> dict[str, tuple[Any, Any]]:
        """Per column that differs: (found, expected)."""
        return {c: (found.get(c), e) for c, e in expected.items()
                if not self.equal(c, found.get(c), e)}


def comparison_for(spec: MigrationSpec, table: TableInfo, dialect_name: str,
                   hooks: Mapping[str, Hook] | None = None) -> ColumnComparison:
    """A comparison of ``spec``'s new columns using their live types and collations."""
    norms: dict[str, Normalizer] = {}
    for c in spec.new_columns:
        col = table.columns.get(c)
        if col is not None:
            norms[c] = normalizer_for(col.type, dialect_name, col.collation)
    return ColumnComparison(norms, hooks)
