"""Online expand and contract: the DDL around a migration, one printed, reversible step at a time.

**expand** adds the new column(s) NULL and copies the old column's indexes and unique keys to
the new column without blocking writes (PostgreSQL ``CREATE [UNIQUE] INDEX CONCURRENTLY``;
MySQL/MariaDB ``ALGORITHM=INSTANT`` or ``ALGORITHM=INPLACE, LOCK=NONE``; SQLite has no
online build and uses a plain ``CREATE INDEX``).

**contract** enforces on the new column what held on the old one (PostgreSQL: NOT NULL via
``CHECK (col IS NOT NULL) NOT VALID`` → ``VALIDATE`` → ``SET NOT NULL`` → drop the check; a
unique key via ``ADD CONSTRAINT ... UNIQUE USING INDEX``), then drops the old column -- only
from stage ``complete``, after the confidence window, with no fleet instance behind, and with
``--confirm KEY``.

Every step is a :class:`DdlStep`: its SQL, its rollback SQL and a description, reported
before it runs. Every statement runs under a short lock timeout (PostgreSQL
``lock_timeout``, MySQL ``lock_wait_timeout``, SQLite ``busy_timeout``) and is retried with
backoff, so a long transaction on the table makes the DDL give up and retry instead of
queueing every writer behind it. Steps already done are skipped: re-running resumes.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dualwrite.db import Database
from dualwrite.dialects import Dialect, Query
from dualwrite.errors import (
    ConfigurationError,
    DatabaseError,
    DdlLockTimeout,
    OnlineDdlRefused,
    TransitionRefused,
    UnknownTableError,
)
from dualwrite.metrics import log_fields
from dualwrite.migrator import Migrator
from dualwrite.schema import TableInfo, inspect_table, validate_spec
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Mode, Stage, check_transition
from dualwrite.triggers import TriggerInstaller, TriggerState

__all__ = [
    "DdlEvent",
    "DdlPlan",
    "DdlRunner",
    "DdlStep",
    "Fallback",
    "IndexInfo",
    "LockPolicy",
    "OnlineDdl",
    "StepOutcome",
    "plan_contract",
    "plan_expand",
    "table_indexes",
]

log = logging.getLogger("dualwrite.ddl")


@dataclass(frozen=True)
class LockPolicy:
    """How long one DDL statement may wait for its lock, and how often to try again.

    A statement that times out is retried after ``backoff`` seconds, doubling up to
    ``backoff_max`` (with +-20 % jitter), at most ``retries`` times.
    """

    lock_timeout: float = 2.0
    retries: int = 5
    backoff: float = 1.0
    backoff_max: float = 30.0

    def __post_init__(self) -> None:
        if not self.lock_timeout > 0 or self.retries < 0 or self.backoff < 0:
            raise ConfigurationError(
                f"bad lock policy: lock_timeout={self.lock_timeout!r}, retries={self.retries!r}"
                f", backoff={self.backoff!r}",
                hint="the lock timeout must be above 0 (e.g. --lock-timeout 2s); retries and "
                     "backoff at least 0")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.backoff_max, self.backoff * (2 ** (attempt - 1)))
        return float(base * random.uniform(0.8, 1.2))


@dataclass(frozen=True)
class Fallback:
    """Another way to run a step when the server refuses its online form."""

    label: str
    sql: tuple[Query, ...]
    #: Why it is not online (it rebuilds or locks the table); tried only when forced.
    needs_force: str | None = None


@dataclass(frozen=True)
class DdlStep:
    """One DDL step: what it does, its SQL, and the SQL that undoes it."""

    name: str
    description: str
    sql: tuple[Query, ...]
    rollback: tuple[Query, ...]
    #: Other forms, in order, if the server says the online form is impossible here.
    fallbacks: tuple[Fallback, ...] = ()
    #: Run before retrying after a failure (PostgreSQL: drop the INVALID index left behind).
    cleanup: tuple[Query, ...] = ()
    #: A leftover of a failed earlier run exists: run :attr:`cleanup` first.
    dirty: bool = False
    #: Why the step is not online even in its first form (tried only when forced).
    needs_force: str | None = None
    #: Already done in the database when the plan was made.
    done: bool = False
    #: Its rollback cannot bring back what it removed (data).
    irreversible: bool = False
    note: str = ""
    #: Runs after the stage moved to ``contract`` (the destructive part).
    after_stage: bool = False
    #: Done by a call instead of :attr:`sql` (shown for the record), with the lock policy;
    #: :attr:`undo` is the call that reverses it.
    action: Callable[[LockPolicy], object] | None = field(default=None, compare=False)
    undo: Callable[[LockPolicy], object] | None = field(default=None, compare=False)

    def sql_text(self) -> list[str]:
        """The SQL of the step, as it will be sent."""
        return [q[0] for q in self.sql]

    def rollback_text(self) -> list[str]:
        """The rollback SQL of the step."""
        return [q[0] for q in self.rollback]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "description": self.description, "done": self.done,
                "sql": self.sql_text(), "rollback": self.rollback_text(),
                "fallbacks": [{"label": f.label, "sql": [q[0] for q in f.sql],
                               "needs_force": f.needs_force} for f in self.fallbacks],
                "needs_force": self.needs_force, "irreversible": self.irreversible,
                "note": self.note}


@dataclass
class DdlPlan:
    """The steps of one phase (``expand`` or ``contract``) of one migration, as of now."""

    key: str
    phase: str
    table: str
    dialect: str
    steps: list[DdlStep]
    #: What the phase does not do here, and why (e.g. SQLite has no online index build).
    notes: list[str] = field(default_factory=list)

    @property
    def pending(self) -> list[DdlStep]:
        """The steps still to run."""
        return [s for s in self.steps if not s.done]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"key": self.key, "phase": self.phase, "table": self.table,
                "dialect": self.dialect, "steps": [s.to_dict() for s in self.steps],
                "notes": list(self.notes)}


@dataclass(frozen=True)
class DdlEvent:
    """What the runner is doing: ``start`` (before a step runs), ``skip`` (already done),
    ``planned`` (dry run), ``retry`` (lock timeout), ``fallback``, ``done``, ``rollback``."""

    kind: str
    step: DdlStep
    message: str = ""
    sql: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepOutcome:
    """How one step went: ``skipped`` (done before), ``applied``, ``planned``, ``rolled back``."""

    step: DdlStep
    status: str
    attempts: int = 0
    form: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**self.step.to_dict(), "status": self.status, "attempts": self.attempts,
                "form": self.form}


# -- introspection --------------------------------------------------------------------------

@dataclass(frozen=True)
class IndexInfo:
    """One index of a live table."""

    name: str
    unique: bool
    primary: bool
    #: The unique/primary constraint it backs (PostgreSQL), or ``None``.
    constraint: str | None
    valid: bool
    #: No predicate and no expression: only plain columns.
    plain: bool
    #: (column name or ``None`` for an expression, prefix length or ``None``), in key order.
    columns: tuple[tuple[str | None, int | None], ...]
    method: str

    @property
    def column_names(self) -> tuple[str | None, ...]:
        """The key columns, in order."""
        return tuple(c for c, _ in self.columns)


def table_indexes(db: Database, table: str, schema: str | None) -> dict[str, IndexInfo]:
    """Every index of ``table``, by name."""
    rows = db.fetchall(db.dialect.indexes(table, schema))
    grouped: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        grouped.setdefault(str(r[0]), []).append(r)
    out: dict[str, IndexInfo] = {}
    for name, parts in grouped.items():
        first = parts[0]
        out[name] = IndexInfo(
            name=name, unique=bool(first[1]), primary=bool(first[2]),
            constraint=None if first[3] is None else str(first[3]), valid=bool(first[4]),
            plain=all(bool(p[5]) and p[6] is not None for p in parts),
            columns=tuple((None if p[6] is None else str(p[6]),
                           None if p[8] is None else int(p[8])) for p in parts),
            method=str(first[9] or "btree"))
    return out


def _fit_name(d: Dialect, name: str) -> str:
    """``name`` shortened (with a hash suffix) to the dialect's identifier limit."""
    if d.identifier_length(name) <= d.max_identifier_length:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    head = name
    while d.identifier_length(head + "_" + digest) > d.max_identifier_length:
        head = head[:-1]
    return f"{head}_{digest}"


def _derived_name(d: Dialect, table: str, old_name: str, old: str, new: str,
                  suffix: str) -> str:
    name = old_name.replace(old, new) if old in old_name else f"{old_name}_{new}"
    if name.startswith("sqlite_"):  # SQLite reserves the prefix (autoindexes)
        name = f"{table}_{new}_{suffix}"
    return _fit_name(d, name)


def _table_or_fail(db: Database, spec: MigrationSpec) -> TableInfo:
    info = inspect_table(db, spec.table, spec.schema)
    if info is None:
        where = f"{spec.schema}.{spec.table}" if spec.schema else spec.table
        raise UnknownTableError(f"migration {spec.key!r}: table {where!r} does not exist in "
                                f"{db.display_url}", key=spec.key, table=spec.table,
                                hint="check the spec's table (and schema) and the database URL")
    return info


# -- expand ---------------------------------------------------------------------------------

def _new_column_type(d: Dialect, spec: MigrationSpec, info: TableInfo, column: str) -> str:
    declared = spec.declared_type(d.name, column)
    if declared is not None:
        return declared
    old = info.columns[spec.old_columns[0]]
    return d.column_definition(old.type, old.collation)


def _add_column_step(d: Dialect, spec: MigrationSpec, column: str, type_sql: str,
                     done: bool) -> DdlStep:
    drop = d.drop_column(spec, column, "INSTANT" if d.online_index == "inplace" else None)
    if d.online_index == "inplace":
        return DdlStep(
            name=f"add column {column}",
            description=f"add {column} {type_sql} NULL to {spec.table} (ALGORITHM=INSTANT: "
                        "metadata only)",
            sql=(d.add_column_online(spec, column, type_sql, "INSTANT"),),
            rollback=(drop,), done=done,
            fallbacks=(
                Fallback("ALGORITHM=INPLACE, LOCK=NONE",
                         (d.add_column_online(spec, column, type_sql, "INPLACE"),),
                         needs_force="the server cannot add this column instantly: "
                                     "ALGORITHM=INPLACE rebuilds the table"),
                Fallback("ALGORITHM=COPY", (d.add_column_online(spec, column, type_sql, None),),
                         needs_force="the server can only add this column by copying the "
                                     "table, blocking writes")))
    what = ("metadata only, no rewrite" if d.name == "postgresql"
            else "metadata only; SQLite takes the database write lock briefly")
    return DdlStep(name=f"add column {column}",
                   description=f"add {column} {type_sql} NULL to {spec.table} ({what})",
                   sql=(d.add_column_online(spec, column, type_sql, None),),
                   rollback=(drop,), done=done)


def _index_step(d: Dialect, spec: MigrationSpec, name: str,
                columns: Sequence[tuple[str, int | None]], unique: bool, method: str, *,
                done: bool, dirty: bool, source: str) -> DdlStep:
    kind = "unique index" if unique else "index"
    cols = ", ".join(c for c, _ in columns)
    create = d.create_index(spec, name, columns, unique=unique, method=method, online=True)
    drop = d.drop_index(spec, name, online=True)
    if d.online_index == "concurrently":
        return DdlStep(name=f"create {kind} {name}",
                       description=f"build {kind} {name} on {spec.table} ({cols}) "
                                   f"CONCURRENTLY, like {source} (writes continue)",
                       sql=(create,), rollback=(drop,), cleanup=(drop,), dirty=dirty,
                       done=done)
    if d.online_index == "inplace":
        plain = d.create_index(spec, name, columns, unique=unique, method=method, online=False)
        return DdlStep(name=f"create {kind} {name}",
                       description=f"build {kind} {name} on {spec.table} ({cols}) with "
                                   f"ALGORITHM=INPLACE, LOCK=NONE, like {source}",
                       sql=(create,), rollback=(drop,), done=done,
                       fallbacks=(Fallback("default ALGORITHM/LOCK", (plain,),
                                           needs_force="the server cannot build this index "
                                                       "without locking the table"),))
    return DdlStep(name=f"create {kind} {name}",
                   description=f"build {kind} {name} on {spec.table} ({cols}), like {source} "
                               "(plain CREATE INDEX: SQLite has no online build)",
                   sql=(create,), rollback=(drop,), done=done)


def _copied_indexes(db: Database, spec: MigrationSpec, info: TableInfo,
                    indexes: dict[str, IndexInfo], notes: list[str]
                    ) -> list[tuple[IndexInfo, str, tuple[tuple[str, int | None], ...]]]:
    """(old index, new index name, new columns) for each index on the old column."""
    d = db.dialect
    old = spec.old_columns[0]
    out: list[tuple[IndexInfo, str, tuple[tuple[str, int | None], ...]]] = []
    for idx in sorted(indexes.values(), key=lambda i: i.name):
        if idx.primary or old not in idx.column_names or not idx.valid:
            continue
        if len(spec.new_columns) != 1:
            notes.append(f"index {idx.name} on {old} is not copied: a split has no single new "
                         "column; create the indexes you need on the new columns")
            continue
        if not idx.plain:
            notes.append(f"index {idx.name} has an expression or a predicate and is not copied; "
                         "create its equivalent on the new column yourself")
            continue
        new = spec.new_columns[0]
        cols = tuple((new if c == old else str(c),
                      n if (c != old or spec.kind == "rename") else None)
                     for c, n in idx.columns)
        out.append((idx, _derived_name(d, spec.table, idx.name, old, new,
                                       "uniq" if idx.unique else "idx"), cols))
    return out


def _equivalent(indexes: dict[str, IndexInfo], columns: tuple[tuple[str, int | None], ...],
                unique: bool) -> IndexInfo | None:
    want = tuple(c for c, _ in columns)
    for idx in indexes.values():
        if idx.valid and idx.unique == unique and idx.column_names == want:
            return idx
    return None


def plan_expand(db: Database, spec: MigrationSpec) -> DdlPlan:
    """The expand steps of ``spec`` as of now (done ones marked). Reads only.

    Bad specs (unknown table or column, no usable key, undeclared types) raise the
    :class:`~dualwrite.errors.SpecError` of :func:`~dualwrite.schema.validate_spec`.
    """
    d = db.dialect
    report = validate_spec(db, spec, check_transforms=False)
    info = report.table
    plan = DdlPlan(spec.key, "expand", spec.table, d.name, [])
    for c in spec.new_columns:
        present = c in info.columns
        type_sql = (info.columns[c].type if present
                    else _new_column_type(d, spec, info, c))
        plan.steps.append(_add_column_step(d, spec, c, type_sql, present))
    indexes = table_indexes(db, spec.table, spec.schema)
    for idx, derived, cols in _copied_indexes(db, spec, info, indexes, plan.notes):
        name = derived
        existing = indexes.get(name)
        equivalent = _equivalent(indexes, cols, idx.unique)
        dirty = existing is not None and not existing.valid
        if existing is not None and existing.valid and equivalent is None:
            name = _fit_name(d, name + "_dw")
            existing = indexes.get(name)
            dirty = existing is not None and not existing.valid
        source = f"{idx.name}" + (f" (constraint {idx.constraint})" if idx.constraint else "")
        plan.steps.append(_index_step(
            d, spec, equivalent.name if equivalent else name, [(str(c), n) for c, n in cols],
            idx.unique, idx.method, done=equivalent is not None, dirty=dirty, source=source))
    if d.online_index == "none":
        plan.notes.append("SQLite has no online index build or lock_timeout: indexes are built "
                          "with a plain CREATE INDEX (writers wait for it); busy_timeout bounds "
                          "the wait for the database lock")
    return plan


# -- contract -------------------------------------------------------------------------------

def _not_null_steps(d: Dialect, spec: MigrationSpec, info: TableInfo, column: str,
                    checks: dict[str, bool]) -> list[DdlStep]:
    col = info.columns[column]
    nn = not col.nullable
    type_sql = d.column_definition(col.type, col.collation)
    if d.not_null_method == "modify":
        return [DdlStep(
            name=f"set not null {column}",
            description=f"make {column} NOT NULL like {spec.old_columns[0]} (MODIFY COLUMN "
                        "with ALGORITHM=INPLACE, LOCK=NONE: writes continue, but the table "
                        "is rebuilt)",
            sql=(d.set_not_null(spec, column, type_sql, "INPLACE"),),
            rollback=(d.drop_not_null(spec, column, type_sql, "INPLACE"),), done=nn,
            needs_force="MySQL/MariaDB rebuild the table to make a column NOT NULL")]
    check = _fit_name(d, f"{spec.table}_{column}_not_null")
    exists = check in checks
    validated = checks.get(check, False)
    readd = d.add_not_null_check(spec, column, check)
    return [
        DdlStep(name=f"add check {check}",
                description=f"add CHECK ({column} IS NOT NULL) NOT VALID: new writes must set "
                            f"{column}; existing rows are not scanned (brief lock)",
                sql=(readd,), rollback=(d.drop_constraint(spec, check),),
                done=nn or exists),
        DdlStep(name=f"validate check {check}",
                description=f"VALIDATE the check: scans {spec.table} without blocking writes; "
                            f"fails if a row still has {column} NULL (backfill first)",
                sql=(d.validate_constraint(spec, check),), rollback=(),
                note="validation only reads: nothing to roll back", done=nn or validated),
        DdlStep(name=f"set not null {column}",
                description=f"SET NOT NULL on {column}: no scan, the validated check proves it",
                sql=(d.set_not_null(spec, column, type_sql, None),),
                rollback=(d.drop_not_null(spec, column, type_sql, None),), done=nn),
        DdlStep(name=f"drop check {check}",
                description="drop the check, now redundant with NOT NULL",
                sql=(d.drop_constraint(spec, check),),
                rollback=(readd, d.validate_constraint(spec, check)),
                done=nn and not exists),
    ]


def plan_contract(db: Database, spec: MigrationSpec) -> DdlPlan:
    """The contract steps of ``spec`` as of now (done ones marked). Reads only.

    Once the old column is gone, only that (done) step remains: what held on it cannot be
    read any more.
    """
    d = db.dialect
    info = _table_or_fail(db, spec)
    plan = DdlPlan(spec.key, "contract", spec.table, d.name, [])
    missing_new = [c for c in spec.new_columns if c not in info.columns]
    if missing_new:
        raise TransitionRefused(
            f"migration {spec.key!r}: new column {missing_new[0]!r} does not exist in "
            f"{spec.table!r}; there is nothing to contract to", key=spec.key,
            from_stage="?", to_stage=Stage.CONTRACT.value, reason="new column missing",
            hint=f"run: dualwrite expand {spec.key}")
    olds_present = [c for c in spec.old_columns if c in info.columns]
    if olds_present and len(spec.old_columns) == 1:
        old = info.columns[spec.old_columns[0]]
        indexes = table_indexes(db, spec.table, spec.schema)
        if not old.nullable:
            if d.not_null_method == "none":
                plan.notes.append(f"{spec.old_columns[0]} is NOT NULL, but SQLite cannot add "
                                  "NOT NULL to an existing column without rebuilding the table: "
                                  "the new column stays nullable")
            elif len(spec.new_columns) != 1:
                plan.notes.append(f"{spec.old_columns[0]} is NOT NULL; a split's new columns "
                                  "are left nullable (make them NOT NULL yourself if f never "
                                  "gives NULL)")
            else:
                checks = {str(r[0]): bool(r[1]) for r in db.fetchall(
                    d.check_constraints(spec.table, spec.schema))} \
                    if d.not_null_method == "check" else {}
                plan.steps.extend(_not_null_steps(d, spec, info, spec.new_columns[0], checks))
        if d.online_index == "concurrently":
            plan.steps.extend(_unique_constraint_steps(db, spec, info, indexes, plan.notes))
        trigger = _drop_triggers_step(db, spec)
        if trigger is not None:
            plan.steps.append(trigger)
        if not d.drops_indexes_with_column:
            plan.steps.extend(_drop_old_index_steps(d, spec, indexes, plan.notes))
    for c in spec.old_columns:
        plan.steps.append(_drop_column_step(d, spec, info, c))
    return plan


def _unique_constraint_steps(db: Database, spec: MigrationSpec, info: TableInfo,
                             indexes: dict[str, IndexInfo], notes: list[str]) -> list[DdlStep]:
    d = db.dialect
    steps: list[DdlStep] = []
    constraints = {i.constraint for i in indexes.values() if i.constraint}
    for idx, name, cols in _copied_indexes(db, spec, info, indexes, []):
        if not idx.constraint:
            continue
        target = indexes.get(name) or _equivalent(indexes, cols, True)
        con = name
        if target is not None and target.constraint:
            con = target.constraint
        done = con in constraints
        if not done and (target is None or not target.valid):
            steps.append(_index_step(d, spec, name, [(str(c), n) for c, n in cols], True,
                                     idx.method, done=False, dirty=target is not None,
                                     source=idx.name))
        index_name = target.name if target is not None else name
        steps.append(DdlStep(
            name=f"add unique constraint {con}",
            description=f"turn unique index {index_name} into constraint {con}, like "
                        f"{idx.constraint} (ADD CONSTRAINT ... USING INDEX: brief lock, no scan)",
            sql=(d.add_unique_using_index(spec, con, index_name),),
            rollback=(d.drop_constraint(spec, con),
                      d.create_index(spec, index_name, [(str(c), n) for c, n in cols],
                                     unique=True, method=idx.method, online=True)),
            done=done))
    if not steps and any(i.constraint for i in indexes.values()
                         if spec.old_columns[0] in i.column_names and not i.primary):
        notes.append("the unique constraints of the old column are already on the new one")
    return steps


def _drop_triggers_step(db: Database, spec: MigrationSpec) -> DdlStep | None:
    """Trigger mode: drop the mirror triggers (through the installer, which leaves foreign
    objects alone and takes the table lock under its own timeout)."""
    if spec.mode is not Mode.TRIGGER:
        return None
    installer = TriggerInstaller(db)
    objects = installer.objects(spec)
    done = installer.status(spec).state is TriggerState.MISSING

    def _installer(policy: LockPolicy) -> TriggerInstaller:
        return TriggerInstaller(db, lock_timeout=policy.lock_timeout, retries=policy.retries,
                                backoff=policy.backoff)

    return DdlStep(
        name="drop mirror triggers",
        description=f"drop the mirror triggers of {spec.key} (nothing writes the old column "
                    "any more)",
        sql=tuple(q for o in reversed(objects) for q in o.drop),
        rollback=tuple(q for o in objects for q in o.create), done=done, after_stage=True,
        action=lambda policy: _installer(policy).uninstall(spec),
        undo=lambda policy: _installer(policy).install(spec))


def _drop_old_index_steps(d: Dialect, spec: MigrationSpec, indexes: dict[str, IndexInfo],
                          notes: list[str]) -> list[DdlStep]:
    old = spec.old_columns[0]
    steps: list[DdlStep] = []
    for idx in sorted(indexes.values(), key=lambda i: i.name):
        if idx.primary or old not in idx.column_names:
            continue
        if d.name == "sqlite" and idx.name.startswith("sqlite_autoindex"):
            notes.append(f"{old} has a UNIQUE constraint ({idx.name}): SQLite cannot drop such "
                         "a column without rebuilding the table")
            continue
        cols = [(str(c), n) for c, n in idx.columns if c is not None]
        online = d.online_index != "none"
        steps.append(DdlStep(
            name=f"drop index {idx.name}",
            description=f"drop index {idx.name} on the old column {old} (before the column)",
            sql=(d.drop_index(spec, idx.name, online=online),),
            rollback=(d.create_index(spec, idx.name, cols, unique=idx.unique,
                                     method=idx.method, online=online),),
            after_stage=True))
    return steps


def _drop_column_step(d: Dialect, spec: MigrationSpec, info: TableInfo, column: str) -> DdlStep:
    present = column in info.columns
    old = info.columns.get(column)
    type_sql = d.column_definition(old.type, old.collation) if old else "?"
    inplace = d.online_index == "inplace"
    drop = d.drop_column(spec, column, "INSTANT" if inplace else None)
    readd = d.add_column_online(spec, column, type_sql, "INSTANT" if inplace else None)
    fallbacks: tuple[Fallback, ...] = ()
    if inplace:
        fallbacks = (Fallback("ALGORITHM=INPLACE, LOCK=NONE",
                              (d.drop_column(spec, column, "INPLACE"),),
                              needs_force="the server cannot drop this column instantly: "
                                          "ALGORITHM=INPLACE rebuilds the table"),)
    return DdlStep(
        name=f"drop column {column}",
        description=f"drop the old column {column} from {spec.table} (irreversible: its data "
                    "is gone)",
        sql=(drop,), rollback=(readd,) if old else (), fallbacks=fallbacks, done=not present,
        irreversible=True, after_stage=True,
        note=f"rollback re-adds {column} empty; refill it with a reverse backfill")


# -- running --------------------------------------------------------------------------------

class DdlRunner:
    """Runs steps under the lock policy: reports each before it runs, retries lock
    timeouts with backoff, falls back from online forms only when forced."""

    def __init__(self, db: Database, *, key: str, table: str,
                 policy: LockPolicy | None = None, force: bool = False,
                 on_event: Callable[[DdlEvent], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.db = db
        self.d = db.dialect
        self.key = key
        self.table = table
        self.policy = policy or LockPolicy()
        self.force = force
        self.on_event = on_event
        self._sleep = sleep

    def _emit(self, kind: str, step: DdlStep, message: str = "",
              sql: Sequence[Query] = ()) -> None:
        log.info("ddl %s: %s %s", kind, step.name, message,
                 extra=log_fields(self.key, ddl_step=step.name, ddl_event=kind))
        if self.on_event is not None:
            self.on_event(DdlEvent(kind, step, message, tuple(q[0] for q in sql)))

    def run(self, steps: Sequence[DdlStep], *, dry_run: bool = False) -> list[StepOutcome]:
        """Run the steps in order (skipping done ones); with ``dry_run`` only report them."""
        out: list[StepOutcome] = []
        for step in steps:
            if step.done:
                self._emit("skip", step, "already done")
                out.append(StepOutcome(step, "skipped"))
                continue
            if dry_run:
                self._emit("planned", step, step.description, step.sql)
                out.append(StepOutcome(step, "planned"))
                continue
            out.append(self._run_step(step))
        return out

    def rollback(self, steps: Sequence[DdlStep], *, dry_run: bool = False) -> list[StepOutcome]:
        """Undo the given steps, last first (only those done)."""
        out: list[StepOutcome] = []
        for step in reversed(steps):
            if not step.done:
                continue
            undo = replace(step, name=f"undo {step.name}", sql=step.rollback, rollback=step.sql,
                           fallbacks=(), needs_force=None, done=False,
                           description=f"undo: {step.description}", action=step.undo,
                           undo=step.action)
            if dry_run:
                self._emit("planned", undo, undo.description, undo.sql)
                out.append(StepOutcome(undo, "planned"))
                continue
            self._emit("rollback", undo, undo.description, undo.sql)
            out.append(replace(self._run_step(undo, announce=False), status="rolled back"))
        return out

    def _run_step(self, step: DdlStep, *, announce: bool = True) -> StepOutcome:
        if step.needs_force and not self.force:
            raise self._refused(step, step.needs_force)
        if announce:
            self._emit("start", step, step.description, step.sql)
        if step.action is not None:
            step.action(self.policy)
            self._emit("done", step, "done")
            return StepOutcome(step, "applied", 1, "call")
        forms = [("online", step.sql)] + [(fb.label, fb.sql) for fb in step.fallbacks]
        for n, (label, sql) in enumerate(forms):
            try:
                attempts = self._with_retries(step, sql)
            except DdlLockTimeout:
                raise
            except DatabaseError as exc:
                if not self.d.is_online_unsupported(exc.cause) or n + 1 >= len(forms):
                    raise DatabaseError(
                        f"migration {self.key!r}: step '{step.name}' on {self.table!r} failed: "
                        f"{exc.message}", cause=exc.cause,
                        hint="nothing of this step was applied; fix the cause and rerun (done "
                             "steps are skipped). NULLs or duplicates in the new column mean "
                             f"the backfill is not finished: dualwrite backfill {self.key} && "
                             f"dualwrite verify {self.key}") from exc
                fb = step.fallbacks[n]
                if fb.needs_force and not self.force:
                    raise self._refused(step, f"{fb.needs_force} ({exc.cause})") from exc
                self._emit("fallback", step, f"online form refused by the server; using "
                                             f"{fb.label}", fb.sql)
                continue
            self._emit("done", step, f"done in {attempts} attempt(s)")
            return StepOutcome(step, "applied", attempts, label)
        raise AssertionError("unreachable")  # pragma: no cover

    def _refused(self, step: DdlStep, reason: str) -> OnlineDdlRefused:
        return OnlineDdlRefused(
            f"migration {self.key!r}: step '{step.name}' on {self.table!r} cannot run online: "
            f"{reason}", key=self.key, table=self.table, step=step.name, reason=reason,
            hint="run it in a quiet period with --force (it rebuilds or locks the table), or "
                 "leave it out; nothing of this step was applied")

    def _with_retries(self, step: DdlStep, sql: tuple[Query, ...]) -> int:
        """Run ``sql`` under the lock timeout; the number of attempts it took."""
        p = self.policy
        dirty = step.dirty
        pos = 0
        attempt = 0
        while True:
            attempt += 1
            try:
                self.db.execute_autocommit(self.d.set_lock_timeout(p.lock_timeout))
                if dirty and step.cleanup:
                    for q in step.cleanup:
                        self.db.execute_autocommit(q)
                    dirty = False
                while pos < len(sql):
                    self.db.execute_autocommit(sql[pos])
                    pos += 1
                self.db.execute_autocommit(self.d.reset_lock_timeout())
                return attempt
            except DatabaseError as exc:
                dirty = bool(step.cleanup)
                if not self.d.is_lock_timeout(exc.cause):
                    self._cleanup_after_failure(step)
                    raise
                if attempt > p.retries:
                    self._cleanup_after_failure(step)
                    raise DdlLockTimeout(
                        f"migration {self.key!r}: step '{step.name}' timed out waiting for its "
                        f"lock on {self.table!r} {attempt} time(s) (lock timeout "
                        f"{self.d.lock_timeout_applied(p.lock_timeout):g}s)", key=self.key,
                        table=self.table, step=step.name, attempts=attempt,
                        lock_timeout=p.lock_timeout, cause=exc.cause,
                        hint=f"a long transaction holds {self.table!r}: find it with "
                             f"dualwrite preflight {self.key}, then rerun (done steps are "
                             "skipped), or raise --lock-timeout/--retries") from exc
                delay = p.delay(attempt)
                self._emit("retry", step, f"lock timeout after "
                                          f"{self.d.lock_timeout_applied(p.lock_timeout):g}s "
                                          f"(attempt {attempt}); retrying in {delay:.1f}s")
                self._sleep(delay)

    def _cleanup_after_failure(self, step: DdlStep) -> None:
        """Drop what a failed step left behind (an INVALID index), best effort."""
        if not step.cleanup:
            return
        try:
            self.db.execute_autocommit(self.d.set_lock_timeout(self.policy.lock_timeout))
            for q in step.cleanup:
                self.db.execute_autocommit(q)
            self.db.execute_autocommit(self.d.reset_lock_timeout())
        except DatabaseError as exc:
            log.warning("ddl: could not clean up after %s (%s); the next run drops it",
                        step.name, exc, extra=log_fields(self.key, ddl_step=step.name))


# -- the phases, with their gates -----------------------------------------------------------

class OnlineDdl:
    """Expand and contract for the migrations of a :class:`~dualwrite.migrator.Migrator`,
    with the stage gates around them."""

    def __init__(self, migrator: Migrator, *, policy: LockPolicy | None = None,
                 force: bool = False, on_event: Callable[[DdlEvent], None] | None = None
                 ) -> None:
        self.migrator = migrator
        self.db = migrator.db
        self.policy = policy or LockPolicy()
        self.force = force
        self.on_event = on_event

    def runner(self, spec: MigrationSpec) -> DdlRunner:
        """A runner for ``spec``'s table with this object's policy."""
        return DdlRunner(self.db, key=spec.key, table=spec.table, policy=self.policy,
                         force=self.force, on_event=self.on_event)

    def _stage(self, spec: MigrationSpec, *, dry_run: bool = False) -> Stage:
        """The recorded stage; registers the migration first, except in a dry run (which
        changes nothing, not even the state tables)."""
        store = self.migrator.state
        if dry_run:
            found = store.find(spec.key) if store.is_initialized() else None
            return found.stage if found else Stage.OFF
        store.init()
        return store.register(spec).stage

    # -- expand -------------------------------------------------------------------------
    def plan_expand(self, key: str) -> DdlPlan:
        """The expand steps of ``key`` as of now."""
        return plan_expand(self.db, self.migrator.spec(key))

    def expand(self, key: str, *, dry_run: bool = False) -> tuple[DdlPlan, list[StepOutcome]]:
        """Add the new column(s) and their indexes online; then move ``off`` -> ``expand``.

        Refused once the migration has contracted (the old column is gone).
        """
        spec = self.migrator.spec(key)
        plan = plan_expand(self.db, spec)
        stage = self._stage(spec, dry_run=dry_run)
        if stage is Stage.CONTRACT:
            raise TransitionRefused(f"migration {key!r} has contracted; expand has nothing to do",
                                    key=key, from_stage=stage.value, to_stage="expand",
                                    reason="the migration is finished")
        outcomes = self.runner(spec).run(plan.steps, dry_run=dry_run)
        if not dry_run and stage is Stage.OFF:
            self.migrator.advance(key, Stage.EXPAND, reason="dualwrite expand: new column(s) "
                                                            "and indexes in place")
        return plan, outcomes

    def rollback_expand(self, key: str, *, dry_run: bool = False
                        ) -> tuple[DdlPlan, list[StepOutcome]]:
        """Undo expand: drop the copied indexes and the new column(s). Only before any
        write reaches them (stage ``off`` or ``expand``; ``expand`` is rolled back to ``off``)."""
        spec = self.migrator.spec(key)
        plan = plan_expand(self.db, spec)
        stage = self._stage(spec, dry_run=dry_run)
        if stage > Stage.EXPAND:
            raise TransitionRefused(
                f"migration {key!r} is at {stage.value}: the application writes the new "
                "column, so expand cannot be undone", key=key, from_stage=stage.value,
                to_stage=Stage.OFF.value, reason="the new column is in use",
                hint=f"roll back first: dualwrite rollback {key} --to expand")
        if not dry_run and stage is Stage.EXPAND:
            self.migrator.rollback(key, Stage.OFF, reason="dualwrite expand --rollback")
        return plan, self.runner(spec).rollback(plan.steps, dry_run=dry_run)

    # -- contract -----------------------------------------------------------------------
    def plan_contract(self, key: str) -> DdlPlan:
        """The contract steps of ``key`` as of now."""
        return plan_contract(self.db, self.migrator.spec(key))

    def check_contract(self, key: str, *, confirm: str | None = None,
                       confidence_window: float | None = None) -> None:
        """Raise :class:`TransitionRefused` unless ``key`` may contract now: stage
        ``complete`` (or a resumed ``contract``), confidence window passed, every live
        instance at ``complete``, and ``confirm == key``."""
        spec = self.migrator.spec(key)
        state = self.migrator.state.register(spec) if self.migrator.state.is_initialized() \
            else None
        stage = state.stage if state else Stage.OFF
        if state is None or stage < Stage.COMPLETE:
            raise TransitionRefused(
                f"migration {key!r} is at {stage.value}: contract drops the old column and "
                "needs stage complete", key=key, from_stage=stage.value,
                to_stage=Stage.CONTRACT.value, reason="not at complete",
                hint=f"finish the migration first: dualwrite advance {key} --to complete")
        if confirm != key:
            raise TransitionRefused(
                f"migration {key!r}: contract is irreversible (it drops "
                f"{', '.join(spec.old_columns)})", key=key, from_stage=stage.value,
                to_stage=Stage.CONTRACT.value, reason="not confirmed",
                hint=f"confirm with: dualwrite contract {key} --confirm {key}")
        if stage is Stage.CONTRACT:
            return
        facts = self.migrator.gate_facts(spec, state, confirm=confirm,
                                         confidence_window=confidence_window)
        decision = check_transition(key, Stage.COMPLETE, Stage.CONTRACT, facts)
        if not decision.allowed:
            raise TransitionRefused(
                f"migration {key!r}: complete -> contract refused: {decision.reason}", key=key,
                from_stage=Stage.COMPLETE.value, to_stage=Stage.CONTRACT.value,
                reason=decision.reason, hint=decision.hint)

    def contract(self, key: str, *, confirm: str | None = None,
                 confidence_window: float | None = None, dry_run: bool = False
                 ) -> tuple[DdlPlan, list[StepOutcome]]:
        """Enforce the old column's constraints on the new one, move to ``contract``, drop
        the old column. Every gate is checked before anything changes; ``dry_run`` only
        reports the steps (and checks nothing)."""
        spec = self.migrator.spec(key)
        plan = plan_contract(self.db, spec)
        runner = self.runner(spec)
        if dry_run:
            return plan, runner.run(plan.steps, dry_run=True)
        self.check_contract(key, confirm=confirm, confidence_window=confidence_window)
        before = [s for s in plan.steps if not s.after_stage]
        after = [s for s in plan.steps if s.after_stage]
        outcomes = runner.run(before)
        if self.migrator.state.get(key).stage is Stage.COMPLETE:
            self.migrator.advance(key, Stage.CONTRACT, confirm=confirm,
                                  confidence_window=confidence_window,
                                  reason="dualwrite contract")
        outcomes += runner.run(after)
        return plan, outcomes

    def rollback_contract(self, key: str, *, dry_run: bool = False
                          ) -> tuple[DdlPlan, list[StepOutcome]]:
        """Undo the reversible contract steps (constraints on the new column) while the old
        column still exists."""
        spec = self.migrator.spec(key)
        plan = plan_contract(self.db, spec)
        dropped = [s for s in plan.steps if s.irreversible and s.done]
        if dropped:
            raise TransitionRefused(
                f"migration {key!r}: the old column is dropped; contract cannot be undone",
                key=key, from_stage=Stage.CONTRACT.value, to_stage=Stage.COMPLETE.value,
                reason="irreversible", hint="restore from backup, or start a new migration "
                                            "the other way")
        undo = [s for s in plan.steps if not s.irreversible and not s.after_stage]
        return plan, self.runner(spec).rollback(undo, dry_run=dry_run)
