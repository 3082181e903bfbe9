"""Live-schema introspection and validation of specs against it.

``validate_spec`` runs before anything is changed: it reads the catalog and a sample of
rows, never writes.
"""

from __future__ import annotations

import datetime as _dt
import decimal
from dataclasses import dataclass, field
from typing import Any

from dualwrite.db import Database
from dualwrite.errors import (
    IncompatibleTypesError,
    NoUsableKeyError,
    SpecError,
    TransformMismatchError,
    UnknownColumnError,
    UnknownTableError,
)
from dualwrite.spec import MigrationSpec

__all__ = ["Column", "TableInfo", "ValidationReport", "inspect_table", "validate_spec",
           "values_equal"]

TRANSFORM_SAMPLE_ROWS = 200


@dataclass(frozen=True)
class Column:
    """One column of a live table."""

    name: str
    type: str
    nullable: bool
    collation: str | None = None


@dataclass(frozen=True)
class TableInfo:
    """A live table: its columns and the key dualwrite can walk it by."""

    table: str
    schema: str | None
    columns: dict[str, Column]
    #: The primary key, or else the first unique key whose columns are all NOT NULL.
    key: tuple[str, ...] | None


@dataclass
class ValidationReport:
    """What :func:`validate_spec` found: the table, whether the new columns exist, notes."""

    table: TableInfo
    new_columns_exist: bool
    missing_new_columns: list[str]
    rows_checked: int = 0
    warnings: list[str] = field(default_factory=list)


def inspect_table(db: Database, table: str, schema: str | None = None) -> TableInfo | None:
    """The table's columns and usable key, or ``None`` if it does not exist."""
    d = db.dialect
    with db.transaction() as tx:
        exists = tx.fetchone(d.table_exists(table, schema))
        if not exists or not exists[0]:
            return None
        cols = {r[0]: Column(str(r[0]), str(r[1]), bool(r[2]), r[3] and str(r[3]))
                for r in tx.fetchall(d.columns(table, schema))}
        if not cols:
            return None
        keys: dict[str, tuple[bool, list[str]]] = {}
        for name, primary, col in tx.fetchall(d.unique_keys(table, schema)):
            keys.setdefault(str(name), (bool(primary), []))[1].append(str(col))
    key: tuple[str, ...] | None = None
    for primary, columns in sorted(keys.values(), key=lambda kv: not kv[0]):
        if primary or all(c in cols and not cols[c].nullable for c in columns):
            key = tuple(columns)
            break
    return TableInfo(table=table, schema=schema, columns=cols, key=key)


def values_equal(a: Any, b: Any) -> bool:
    """Whether two values from Python and from SQL mean the same (numeric and text forms
    of numbers, naive and UTC datetimes, bytes and memoryview)."""
    if a == b:
        return True
    if a is None or b is None:
        return False
    if isinstance(a, memoryview):
        a = a.tobytes()
    if isinstance(b, memoryview):
        b = b.tobytes()
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b) and {type(a), type(b)} <= {bool, int}
    numeric = (int, float, decimal.Decimal)
    if isinstance(a, numeric) or isinstance(b, numeric):
        try:
            return decimal.Decimal(str(a)) == decimal.Decimal(str(b))
        except decimal.InvalidOperation:
            return False
    if isinstance(a, _dt.datetime) and isinstance(b, _dt.datetime):
        a2 = a if a.tzinfo else a.replace(tzinfo=_dt.UTC)
        b2 = b if b.tzinfo else b.replace(tzinfo=_dt.UTC)
        return a2 == b2
    return bool(a == b)


def _fail_unknown_table(db: Database, spec: MigrationSpec) -> UnknownTableError:
    where = f"{spec.schema}.{spec.table}" if spec.schema else spec.table
    return UnknownTableError(f"migration {spec.key!r}: table {where!r} does not exist in "
                             f"{db.display_url}", key=spec.key, table=spec.table,
                             hint="check the spec's table (and schema) and the database URL")


def _check_types(db: Database, spec: MigrationSpec, info: TableInfo,
                 report: ValidationReport) -> None:
    d = db.dialect
    old = info.columns[spec.old_columns[0]]
    for c in spec.new_columns:
        declared = spec.declared_type(d.name, c)
        if declared is None and len(spec.old_columns) == 1 and spec.kind == "rename":
            declared = old.type
        col = info.columns.get(c)
        if col is None:
            if declared is None:
                raise IncompatibleTypesError(
                    f"migration {spec.key!r}: new column {c!r} does not exist and the spec "
                    "does not declare its type", key=spec.key, table=spec.table, column=c,
                    hint="add new_type / new_types to the spec, or add the column yourself")
            continue
        if not col.nullable:
            report.warnings.append(f"new column {c!r} is NOT NULL: writers that know only the "
                                   "old column will fail until it has a default")
        if declared is None:
            continue
        if d.type_family(declared) != d.type_family(col.type):
            raise IncompatibleTypesError(
                f"migration {spec.key!r}: column {spec.table}.{c} is {col.type}, the spec "
                f"needs {declared}", key=spec.key, table=spec.table, column=c,
                expected=declared, actual=col.type,
                hint=f"change the column to {declared}, or fix the spec's type")
        if declared.lower().replace(" ", "") != col.type.lower().replace(" ", ""):
            report.warnings.append(f"column {c!r} is {col.type}, the spec says {declared}")


def _check_transforms(db: Database, spec: MigrationSpec, report: ValidationReport) -> None:
    d = db.dialect
    nold, nnew = len(spec.old_columns), len(spec.new_columns)
    rows = db.fetchall(d.transform_sample(spec, TRANSFORM_SAMPLE_ROWS))
    report.rows_checked = len(rows)
    bad: list[Any] = []
    have_sql_fwd = all(spec.forward_template(d.name, c) for c in spec.new_columns)
    for row in rows:
        olds = dict(zip(spec.old_columns, row[:nold], strict=True))
        sql_new = dict(zip(spec.new_columns, row[nold:nold + nnew], strict=True))
        sql_back = row[nold + nnew:]
        if spec.has_python_transforms:
            try:
                py_new = spec.apply_forward(olds)
            except SpecError:
                raise
            except Exception as exc:
                raise TransformMismatchError(
                    f"migration {spec.key!r}: the Python forward transform raised "
                    f"{type(exc).__name__}: {exc} on value {olds!r}", key=spec.key,
                    table=spec.table, samples=[olds], hint="make it handle every old value") from exc
            if have_sql_fwd and not all(values_equal(py_new[c], sql_new[c]) for c in py_new):
                bad.append({"old": olds, "python": py_new, "sql": sql_new})
                continue
            if all(v is not None for v in sql_back) and have_sql_fwd:
                try:
                    py_back = spec.apply_backward(sql_new)
                except Exception as exc:
                    raise TransformMismatchError(
                        f"migration {spec.key!r}: the Python backward transform raised "
                        f"{type(exc).__name__}: {exc} on value {sql_new!r}", key=spec.key,
                        table=spec.table, samples=[sql_new],
                        hint="make it handle every new value") from exc
                sql_b = dict(zip(spec.old_columns, sql_back, strict=True))
                if not all(values_equal(py_back[c], sql_b[c]) for c in py_back):
                    bad.append({"new": sql_new, "python_backward": py_back,
                                "sql_backward": sql_b})
        if len(bad) >= 5:
            break
    if bad:
        raise TransformMismatchError(
            f"migration {spec.key!r}: the SQL and Python transforms disagree on "
            f"{len(bad)} sampled row(s) of {spec.table}, e.g. {bad[0]}", key=spec.key,
            table=spec.table, column=spec.new_columns[0], samples=bad,
            hint="make forward/backward (Python) compute what forward_sql/backward_sql "
                 f"compute on {d.name}")


def validate_spec(db: Database, spec: MigrationSpec, *, check_transforms: bool = True
                  ) -> ValidationReport:
    """Check ``spec`` against the live database; raise a :class:`SpecError` subclass naming
    the table, column and fix, or return what was found. Reads only."""
    d = db.dialect
    for name in (spec.table, *spec.old_columns, *spec.new_columns, spec.schema or ""):
        if d.identifier_length(name) > d.max_identifier_length:
            raise SpecError(f"migration {spec.key!r}: identifier {name!r} is longer than "
                            f"{d.name}'s limit of {d.max_identifier_length} {d.identifier_unit}",
                            key=spec.key, table=spec.table, hint="use a shorter name")
    info = inspect_table(db, spec.table, spec.schema)
    if info is None:
        raise _fail_unknown_table(db, spec)
    for c in spec.old_columns:
        if c not in info.columns:
            raise UnknownColumnError(
                f"migration {spec.key!r}: column {c!r} does not exist in table {spec.table!r} "
                f"(it has {', '.join(sorted(info.columns))})", key=spec.key, table=spec.table,
                column=c, hint="fix the spec's old column name")
    if info.key is None:
        raise NoUsableKeyError(
            f"migration {spec.key!r}: table {spec.table!r} has no primary key or NOT NULL "
            "unique key to walk in batches", key=spec.key, table=spec.table,
            hint=f"add a primary key to {spec.table!r} (or a unique index on NOT NULL columns)")
    for c in info.key:
        if c in spec.old_columns:
            raise SpecError(f"migration {spec.key!r}: column {c!r} is part of the table's key; "
                            "dualwrite cannot migrate a key column", key=spec.key,
                            table=spec.table, column=c, hint="migrate key columns another way")
    missing = [c for c in spec.new_columns if c not in info.columns]
    report = ValidationReport(table=info, new_columns_exist=not missing,
                              missing_new_columns=missing)
    _check_types(db, spec, info, report)
    if check_transforms and spec.kind != "rename":
        _check_transforms(db, spec, report)
    return report
