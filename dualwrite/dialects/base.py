"""The dialect base: identifier quoting, transform rendering, state-table SQL, introspection.

This package is the only place dualwrite builds SQL text. Every identifier goes through
:meth:`Dialect.quote`; every value is a bound parameter (``Dialect.p`` is the placeholder).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from dualwrite.errors import SpecError
from dualwrite.spec import MigrationSpec

__all__ = ["TRIGGER_MARKER_RE", "Dialect", "Query", "TriggerObject", "TriggerTarget",
           "trigger_marker"]

#: A SQL statement and its parameters.
Query = tuple[str, tuple[Any, ...]]

_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WRITE_RE = re.compile(r"\b(INSERT|UPDATE|REPLACE|MERGE)\b", re.IGNORECASE)

#: (pattern, family) checked in order against the lower-cased type name.
_TYPE_FAMILIES: tuple[tuple[str, str], ...] = (
    (r"^tinyint\(1\)", "boolean"),
    (r"bool", "boolean"),
    (r"int|serial", "integer"),
    (r"numeric|decimal|money", "numeric"),
    (r"real|double|float", "float"),
    (r"timestamp|datetime", "datetime"),
    (r"^date$", "date"),
    (r"^time", "time"),
    (r"json", "json"),
    (r"uuid", "uuid"),
    (r"bytea|blob|binary", "binary"),
    (r"char|text|clob|string|enum", "text"),
)

STATE_TABLES = ("dualwrite_migrations", "dualwrite_history", "dualwrite_backfill",
                "dualwrite_verify", "dualwrite_fleet", "dualwrite_backfill_runs")


class Dialect:
    """SQL for one database family. Subclasses set types and override what differs."""

    name: ClassVar[str] = "base"
    max_identifier_length: ClassVar[int] = 63
    quote_char: ClassVar[str] = '"'
    identifier_unit: ClassVar[str] = "bytes"
    #: How a transaction starts (SQLite takes the write lock up front: see sqlite.py).
    begin_sql: ClassVar[str] = "BEGIN"
    #: How a read-only transaction starts.
    begin_read_sql: ClassVar[str] = "BEGIN"
    # state-table column types
    t_key: ClassVar[str] = "VARCHAR(191)"
    t_text: ClassVar[str] = "TEXT"
    t_time: ClassVar[str] = "TIMESTAMP"
    t_int: ClassVar[str] = "BIGINT"
    t_serial_pk: ClassVar[str] = "BIGINT PRIMARY KEY"
    table_suffix: ClassVar[str] = ""

    def __init__(self, paramstyle: str = "format") -> None:
        if paramstyle not in ("format", "qmark"):
            raise ValueError(f"unsupported paramstyle {paramstyle!r}")
        self.paramstyle = paramstyle
        self.p = "%s" if paramstyle == "format" else "?"

    # -- identifiers ------------------------------------------------------------------
    def quote(self, name: str) -> str:
        """Quote one identifier (doubling the quote character inside it)."""
        if "\x00" in name:
            raise SpecError(f"identifier {name!r} contains a NUL byte",
                            hint="rename the object; NUL cannot be quoted")
        q = self.quote_char
        return q + name.replace(q, q + q) + q

    def identifier_length(self, name: str) -> int:
        """The length the server counts against :attr:`max_identifier_length` (bytes)."""
        return len(name.encode())

    def table(self, table: str, schema: str | None = None) -> str:
        """A quoted, optionally schema-qualified table name."""
        if schema:
            return f"{self.quote(schema)}.{self.quote(table)}"
        return self.quote(table)

    def spec_table(self, spec: MigrationSpec) -> str:
        """The spec's quoted table name."""
        return self.table(spec.table, spec.schema)

    def literal_escape(self, sql: str) -> str:
        """Escape ``%`` in SQL text that will be sent with bound parameters (format style)."""
        return sql.replace("%", "%%") if self.paramstyle == "format" else sql

    # -- transforms -------------------------------------------------------------------
    def render_template(self, spec: MigrationSpec, template: str,
                        values: Mapping[str, str]) -> str:
        """Substitute ``{name}`` placeholders of ``template`` with SQL from ``values``.

        An unknown placeholder is a :class:`SpecError` naming the valid ones.
        """
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in values:
                raise SpecError(f"migration {spec.key!r}: unknown placeholder {{{name}}} in SQL "
                                f"transform {template!r}", key=spec.key, table=spec.table,
                                hint="valid placeholders: " +
                                     ", ".join("{" + k + "}" for k in sorted(values)))
            return values[name]
        return "(" + self.literal_escape(_PLACEHOLDER_RE.sub(sub, template)) + ")"

    def _old_values(self, spec: MigrationSpec, table_alias: str | None = None) -> dict[str, str]:
        pre = f"{self.quote(table_alias)}." if table_alias else ""
        vals = {c: pre + self.quote(c) for c in spec.old_columns}
        if len(spec.old_columns) == 1:
            vals["old"] = pre + self.quote(spec.old_columns[0])
        return vals

    def _new_values(self, spec: MigrationSpec, table_alias: str | None = None) -> dict[str, str]:
        pre = f"{self.quote(table_alias)}." if table_alias else ""
        vals = {c: pre + self.quote(c) for c in spec.new_columns}
        if len(spec.new_columns) == 1:
            vals["new"] = pre + self.quote(spec.new_columns[0])
        return vals

    def forward_expr(self, spec: MigrationSpec, new_column: str,
                     old_values: Mapping[str, str] | None = None) -> str:
        """SQL computing ``new_column`` = f(old). ``old_values`` overrides the old columns."""
        template = spec.forward_template(self.name, new_column)
        if template is None:
            raise SpecError(f"migration {spec.key!r} has no SQL forward transform for "
                            f"{new_column!r}", key=spec.key, table=spec.table, column=new_column,
                            hint="give forward_sql (needed in SQL: trigger mode, SQL reads)")
        return self.render_template(spec, template, old_values or self._old_values(spec))

    def backward_expr(self, spec: MigrationSpec, old_column: str,
                      new_values: Mapping[str, str] | None = None) -> str:
        """SQL computing ``old_column`` = g(new). ``new_values`` overrides the new columns."""
        template = spec.backward_template(self.name, old_column)
        if template is None:
            raise SpecError(f"migration {spec.key!r} has no SQL backward transform",
                            key=spec.key, table=spec.table, column=old_column,
                            hint="give backward_sql")
        return self.render_template(spec, template, new_values or self._new_values(spec))

    def read_new_expr(self, spec: MigrationSpec, new_column: str) -> str:
        """The ``live`` read of a new column: ``COALESCE(new, f(old))``."""
        return f"COALESCE({self.quote(new_column)}, {self.forward_expr(spec, new_column)})"

    def read_old_expr(self, spec: MigrationSpec, old_column: str) -> str:
        """The read of the old column once new is authoritative: ``COALESCE(g(new), old)``."""
        return f"COALESCE({self.backward_expr(spec, old_column)}, {self.quote(old_column)})"

    def transform_sample(self, spec: MigrationSpec, limit: int) -> Query:
        """Rows to check SQL vs Python transforms on: old values, f(old), g(f(old)) in SQL.

        Columns: the old columns, then f for each new column (``NULL`` without SQL forward),
        then g(f(old)) for each old column (``NULL`` without SQL forms of both).
        """
        olds = [self.quote(c) for c in spec.old_columns]
        fwd: list[str] = []
        for c in spec.new_columns:
            fwd.append(self.forward_expr(spec, c) if spec.forward_template(self.name, c)
                       else "NULL")
        back: list[str] = []
        for c in spec.old_columns:
            if spec.backward_template(self.name, c) and all(x != "NULL" for x in fwd):
                new_vals = dict(zip(spec.new_columns, fwd, strict=True))
                if len(spec.new_columns) == 1:
                    new_vals["new"] = fwd[0]
                back.append(self.backward_expr(spec, c, new_vals))
            else:
                back.append("NULL")
        where = " AND ".join(f"{o} IS NOT NULL" for o in olds)
        sql = (f"SELECT {', '.join(olds + fwd + back)} FROM {self.spec_table(spec)} "
               f"WHERE {where} LIMIT {int(limit)}")
        return sql, ()

    # -- rows (the simulated application of dualwrite.simulate) ------------------------
    def insert_row(self, spec: MigrationSpec, columns: Sequence[str],
                   values: Sequence[Any]) -> Query:
        """INSERT one row of the spec's table."""
        return (f"INSERT INTO {self.spec_table(spec)} ({', '.join(map(self.quote, columns))}) "
                f"VALUES ({self._ph(len(columns))})", tuple(values))

    def update_row(self, spec: MigrationSpec, key_column: str, key: Any,
                   columns: Sequence[str], values: Sequence[Any]) -> Query:
        """UPDATE the listed columns of one row, found by ``key_column = key``."""
        sets = ", ".join(f"{self.quote(c)} = {self.p}" for c in columns)
        return (f"UPDATE {self.spec_table(spec)} SET {sets} "
                f"WHERE {self.quote(key_column)} = {self.p}", (*values, key))

    def select_row(self, spec: MigrationSpec, key_column: str, key: Any,
                   expressions: Sequence[str]) -> Query:
        """SELECT SQL ``expressions`` (already rendered) of one row."""
        return (f"SELECT {', '.join(expressions)} FROM {self.spec_table(spec)} "
                f"WHERE {self.quote(key_column)} = {self.p}", (key,))

    def insert_rows(self, spec: MigrationSpec, columns: Sequence[str], rows: int,
                    values: Sequence[Any]) -> Query:
        """INSERT ``rows`` rows at once; ``values`` holds them row after row."""
        one = f"({self._ph(len(columns))})"
        return (f"INSERT INTO {self.spec_table(spec)} ({', '.join(map(self.quote, columns))}) "
                f"VALUES {', '.join([one] * rows)}", tuple(values))

    def create_table(self, table: str, columns: Sequence[tuple[str, str]],
                     primary_key: str, schema: str | None = None) -> Query:
        """CREATE TABLE with ``(name, SQL type)`` columns and a one-column primary key."""
        cols = ", ".join(f"{self.quote(n)} {t}" for n, t in columns)
        return (f"CREATE TABLE {self.table(table, schema)} ({cols}, "
                f"PRIMARY KEY ({self.quote(primary_key)}))", ())

    def drop_table(self, table: str, schema: str | None = None) -> Query:
        """DROP TABLE IF EXISTS."""
        return f"DROP TABLE IF EXISTS {self.table(table, schema)}", ()

    def concurrent_access(self) -> list[Query]:
        """Statements that let readers and writers of a database file work side by side
        (SQLite: the WAL journal, a persistent property of the file). Empty elsewhere."""
        return []

    def max_key(self, spec: MigrationSpec, key_column: str) -> Query:
        """The largest value of ``key_column`` (NULL on an empty table)."""
        return f"SELECT MAX({self.quote(key_column)}) FROM {self.spec_table(spec)}", ()

    # -- introspection ----------------------------------------------------------------
    def type_family(self, type_name: str) -> str:
        """A coarse family of a SQL type name (integer, text, numeric, datetime, ...)."""
        t = type_name.strip().lower()
        for pattern, family in _TYPE_FAMILIES:
            if re.search(pattern, t):
                return family
        return t

    def table_exists(self, table: str, schema: str | None) -> Query:
        """One row whose first value is truthy when the table exists."""
        raise NotImplementedError

    def columns(self, table: str, schema: str | None) -> Query:
        """Rows of (name, type, nullable, collation or NULL) in column order."""
        raise NotImplementedError

    def unique_keys(self, table: str, schema: str | None) -> Query:
        """Rows of (index name, is primary, column name) for every unique key, primary first,
        columns in key order."""
        raise NotImplementedError

    def add_column(self, spec: MigrationSpec, column: str, type_sql: str) -> Query:
        """Add a NULL column (no default, no rewrite)."""
        return (f"ALTER TABLE {self.spec_table(spec)} ADD COLUMN {self.quote(column)} "
                f"{type_sql}", ())

    # -- time ---------------------------------------------------------------------------
    def to_db_time(self, value: datetime) -> Any:
        """A UTC datetime as a bound parameter for a state-table time column."""
        return value.astimezone(UTC)

    def from_db_time(self, value: Any) -> datetime | None:
        """A state-table time value as an aware UTC datetime."""
        if value is None:
            return None
        dt: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        if dt.tzinfo is None:
            return dt.replace(tzinfo=UTC)
        return dt.astimezone(UTC)

    # -- state tables -------------------------------------------------------------------
    def state_ddl(self) -> list[str]:
        """CREATE TABLE IF NOT EXISTS statements for the state tables (idempotent)."""
        k, tx, tm, i = self.t_key, self.t_text, self.t_time, self.t_int
        suf = self.table_suffix
        return [
            f"CREATE TABLE IF NOT EXISTS dualwrite_migrations ("
            f"migration_key {k} NOT NULL PRIMARY KEY, kind {k} NOT NULL, "
            f"table_name {tx} NOT NULL, spec_hash {k} NOT NULL, spec_json {tx} NOT NULL, "
            f"mode {k} NOT NULL, stage {k} NOT NULL, stage_ceiling {k} NOT NULL, "
            f"version {i} NOT NULL, created_at {tm} NOT NULL, updated_at {tm} NOT NULL, "
            f"stage_changed_at {tm} NOT NULL){suf}",
            f"CREATE TABLE IF NOT EXISTS dualwrite_history ("
            f"id {self.t_serial_pk}, migration_key {k} NOT NULL, from_stage {k} NOT NULL, "
            f"to_stage {k} NOT NULL, changed_at {tm} NOT NULL, actor {tx} NOT NULL, "
            f"reason {tx} NOT NULL, details {tx}){suf}",
            f"CREATE TABLE IF NOT EXISTS dualwrite_backfill ("
            f"migration_key {k} NOT NULL, direction {k} NOT NULL, part {i} NOT NULL, "
            f"spec_hash {k} NOT NULL, range_lo {tx}, range_hi {tx}, cursor_pos {tx}, "
            f"rows_done {i} NOT NULL, status {k} NOT NULL, lease_owner {tx}, "
            f"lease_expires_at {tm}, started_at {tm} NOT NULL, updated_at {tm} NOT NULL, "
            f"finished_at {tm}, rows_failed {i}, rows_written {i}, failed_keys {tx}, "
            f"batch_size {i}, "
            f"hold_signal {tx}, hold_since {tm}, held_ms {i}, "
            f"PRIMARY KEY (migration_key, direction, part)){suf}",
            f"CREATE TABLE IF NOT EXISTS dualwrite_verify ("
            f"id {self.t_serial_pk}, migration_key {k} NOT NULL, direction {k} NOT NULL, "
            f"spec_hash {k} NOT NULL, started_at {tm} NOT NULL, finished_at {tm}, "
            f"rows_checked {i} NOT NULL, mismatches {i} NOT NULL, unbackfilled {i} NOT NULL, "
            f"sample_keys {tx}){suf}",
            f"CREATE TABLE IF NOT EXISTS dualwrite_fleet ("
            f"instance_id {k} NOT NULL, migration_key {k} NOT NULL, host {tx} NOT NULL, "
            f"pid {i} NOT NULL, version {k} NOT NULL, stage {k} NOT NULL, "
            f"started_at {tm} NOT NULL, heartbeat_at {tm} NOT NULL, "
            f"PRIMARY KEY (instance_id, migration_key)){suf}",
            f"CREATE TABLE IF NOT EXISTS dualwrite_backfill_runs ("
            f"migration_key {k} NOT NULL, direction {k} NOT NULL, spec_hash {k} NOT NULL, "
            f"key_columns {tx} NOT NULL, range_lo {tx}, range_hi {tx}, parts {i} NOT NULL, "
            f"rows_estimate {i} NOT NULL, state {k} NOT NULL, settings {tx} NOT NULL, "
            f"version {i} NOT NULL, created_at {tm} NOT NULL, updated_at {tm} NOT NULL, "
            f"PRIMARY KEY (migration_key, direction)){suf}",
        ]

    def forget_migration(self, key: str) -> list[Query]:
        """Delete every state row of migration ``key`` (its table is not touched)."""
        return [(f"DELETE FROM {t} WHERE migration_key = {self.p}", (key,))
                for t in STATE_TABLES]

    def state_tables_present(self) -> Query:
        """One row: how many of the state tables exist."""
        raise NotImplementedError

    def _ph(self, n: int) -> str:
        return ", ".join([self.p] * n)

    _MIGRATION_COLS = ("migration_key, kind, table_name, spec_hash, spec_json, mode, stage, "
                       "stage_ceiling, version, created_at, updated_at, stage_changed_at")

    def select_migrations(self, key: str | None = None) -> Query:
        """Rows of the migrations table (all, or one key)."""
        sql = f"SELECT {self._MIGRATION_COLS} FROM dualwrite_migrations"
        if key is None:
            return sql + " ORDER BY migration_key", ()
        return sql + f" WHERE migration_key = {self.p}", (key,)

    def insert_migration(self, values: Sequence[Any]) -> Query:
        """Register a migration (12 values in :attr:`_MIGRATION_COLS` order)."""
        return (f"INSERT INTO dualwrite_migrations ({self._MIGRATION_COLS}) "
                f"VALUES ({self._ph(12)})", tuple(values))

    def update_spec(self, key: str, kind: str, table: str, spec_hash: str, spec_json: str,
                    mode: str, now: datetime, version: int) -> Query:
        """Replace the recorded spec (only while the migration is before any write)."""
        p = self.p
        return (f"UPDATE dualwrite_migrations SET kind = {p}, table_name = {p}, spec_hash = {p}, "
                f"spec_json = {p}, mode = {p}, updated_at = {p}, version = version + 1 "
                f"WHERE migration_key = {p} AND version = {p}",
                (kind, table, spec_hash, spec_json, mode, self.to_db_time(now), key, version))

    def update_stage_cas(self, key: str, expected_version: int, stage: str, ceiling: str,
                         now: datetime) -> Query:
        """Compare-and-set the stage: changes one row only if nobody moved it first."""
        p = self.p
        return (f"UPDATE dualwrite_migrations SET stage = {p}, stage_ceiling = {p}, "
                f"version = version + 1, updated_at = {p}, stage_changed_at = {p} "
                f"WHERE migration_key = {p} AND version = {p}",
                (stage, ceiling, self.to_db_time(now), self.to_db_time(now), key,
                 expected_version))

    def insert_history(self, key: str, frm: str, to: str, now: datetime, actor: str,
                       reason: str, details: str | None) -> Query:
        """Record one transition."""
        return (f"INSERT INTO dualwrite_history (migration_key, from_stage, to_stage, "
                f"changed_at, actor, reason, details) VALUES ({self._ph(7)})",
                (key, frm, to, self.to_db_time(now), actor, reason, details))

    def select_history(self, key: str, limit: int) -> Query:
        """The latest ``limit`` transitions of one migration, oldest first."""
        return (f"SELECT id, from_stage, to_stage, changed_at, actor, reason, details "
                f"FROM dualwrite_history WHERE migration_key = {self.p} "
                f"ORDER BY id DESC LIMIT {int(limit)}", (key,))

    def upsert_fleet(self, instance_id: str, key: str, host: str, pid: int, version: str,
                     stage: str, now: datetime) -> Query:
        """Register or refresh one instance's heartbeat for one migration (ON CONFLICT form)."""
        t = self.to_db_time(now)
        return (f"INSERT INTO dualwrite_fleet (instance_id, migration_key, host, pid, version, "
                f"stage, started_at, heartbeat_at) VALUES ({self._ph(8)}) "
                f"ON CONFLICT (instance_id, migration_key) DO UPDATE SET "
                f"stage = excluded.stage, heartbeat_at = excluded.heartbeat_at, "
                f"version = excluded.version",
                (instance_id, key, host, pid, version, stage, t, t))

    def select_fleet(self, key: str) -> Query:
        """Rows of (instance_id, host, pid, version, stage, started_at, heartbeat_at)."""
        return (f"SELECT instance_id, host, pid, version, stage, started_at, heartbeat_at "
                f"FROM dualwrite_fleet WHERE migration_key = {self.p} ORDER BY heartbeat_at DESC",
                (key,))

    def delete_fleet(self, instance_id: str) -> Query:
        """Deregister an instance (on clean shutdown)."""
        return f"DELETE FROM dualwrite_fleet WHERE instance_id = {self.p}", (instance_id,)

    def prune_fleet(self, older_than: datetime) -> Query:
        """Forget instances whose last heartbeat is older than ``older_than``."""
        return (f"DELETE FROM dualwrite_fleet WHERE heartbeat_at < {self.p}",
                (self.to_db_time(older_than),))

    def select_backfill_parts(self, key: str, direction: str) -> Query:
        """Rows of (part, spec_hash, status, rows_done, finished_at) of one backfill."""
        return (f"SELECT part, spec_hash, status, rows_done, finished_at FROM dualwrite_backfill "
                f"WHERE migration_key = {self.p} AND direction = {self.p} ORDER BY part",
                (key, direction))

    def select_latest_verify(self, key: str, direction: str) -> Query:
        """The latest finished verify of one migration and direction."""
        return (f"SELECT spec_hash, started_at, finished_at, rows_checked, mismatches, "
                f"unbackfilled FROM dualwrite_verify WHERE migration_key = {self.p} "
                f"AND direction = {self.p} AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
                (key, direction))

    # -- backfill ---------------------------------------------------------------------
    #: Error classes a batch is retried on, as returned by :meth:`classify_error`.
    RETRYABLE: ClassVar[frozenset[str]] = frozenset(
        {"lock_timeout", "deadlock", "serialization", "connection", "statement_timeout"})

    def _keys(self, key: Sequence[str]) -> str:
        return ", ".join(self.quote(c) for c in key)

    def key_compare(self, key: Sequence[str], op: str, values: Sequence[Any]) -> Query:
        """``key op values`` in key order (``op`` is ``>`` or ``<=``), lexicographic for a
        composite key, written as OR-ed prefixes so every server can use the index."""
        if op not in (">", "<="):
            raise ValueError(op)
        cols = [self.quote(c) for c in key]
        if len(cols) == 1:
            return f"{cols[0]} {op} {self.p}", (values[0],)
        ors: list[str] = []
        params: list[Any] = []
        for i, col in enumerate(cols):
            last = i == len(cols) - 1
            cmp = op if (last or op == ">") else "<"
            terms = [f"{c} = {self.p}" for c in cols[:i]] + [f"{col} {cmp} {self.p}"]
            ors.append("(" + " AND ".join(terms) + ")")
            params.extend(values[:i])
            params.append(values[i])
        return "(" + " OR ".join(ors) + ")", tuple(params)

    def key_range(self, key: Sequence[str], lo: Sequence[Any] | None,
                  hi: Sequence[Any] | None) -> Query:
        """The predicate ``lo < key <= hi`` (an absent bound is open)."""
        parts: list[str] = []
        params: list[Any] = []
        for bound, op in ((lo, ">"), (hi, "<=")):
            if bound is not None:
                sql, p = self.key_compare(key, op, bound)
                parts.append(sql)
                params.extend(p)
        return (" AND ".join(parts) or "1 = 1"), tuple(params)

    def key_equals(self, key: Sequence[str], values: Sequence[Any]) -> Query:
        """The predicate ``key = values``."""
        return (" AND ".join(f"{self.quote(c)} = {self.p}" for c in key), tuple(values))

    def null_safe_equal(self, a: str, b: str) -> str:
        """``a`` equals ``b``, NULL equal to NULL."""
        return f"{a} IS NOT DISTINCT FROM {b}"

    def exact_equal(self, a: str, b: str) -> str:
        """``a`` is exactly ``b`` (NULL-aware), even where the server compares text through a
        case- or accent-insensitive collation: the backfill's write test and its guard."""
        return self.null_safe_equal(a, b)

    def differs(self, a: str, b: str) -> str:
        """``a`` differs exactly from ``b``: the backfill never skips a needed write."""
        return f"NOT ({self.exact_equal(a, b)})"

    def verify_differs(self, a: str, b: str) -> str:
        """``a`` differs from ``b`` (NULL-aware), as verify counts a mismatch."""
        return f"NOT ({self.null_safe_equal(a, b)})"

    def backfill_targets(self, spec: MigrationSpec, direction: str) -> list[tuple[str, str]]:
        """(column, SQL expression) pairs the backfill writes: new = f(old), or old = g(new)
        for ``reverse``."""
        if direction == "reverse":
            return [(c, self.backward_expr(spec, c)) for c in spec.old_columns]
        return [(c, self.forward_expr(spec, c)) for c in spec.new_columns]

    def _source_present(self, spec: MigrationSpec, direction: str) -> str:
        # reverse: only rows whose new value exists (never copy an unbackfilled NULL back)
        if direction == "reverse":
            return "(" + " OR ".join(f"{self.quote(c)} IS NOT NULL"
                                     for c in spec.new_columns) + ")"
        return "1 = 1"

    def _needs_write(self, spec: MigrationSpec, direction: str, verify: bool = False) -> str:
        cmp = self.verify_differs if verify else self.differs
        diff = " OR ".join(cmp(self.quote(c), e) for c, e in self.backfill_targets(spec, direction))
        if direction == "reverse":
            return f"({diff}) AND {self._source_present(spec, direction)}"
        return f"({diff})"

    def backfill_bound(self, spec: MigrationSpec, key: Sequence[str], last: bool) -> Query:
        """The first (or last) key of the table."""
        order = ", ".join(f"{self.quote(c)}{' DESC' if last else ''}" for c in key)
        return (f"SELECT {self._keys(key)} FROM {self.spec_table(spec)} ORDER BY {order} "
                f"LIMIT 1", ())

    def backfill_key_at(self, spec: MigrationSpec, key: Sequence[str], lo: Sequence[Any] | None,
                        hi: Sequence[Any] | None, offset: int) -> Query:
        """The key ``offset`` rows after ``lo`` (within ``hi``): the end of the next batch."""
        where, params = self.key_range(key, lo, hi)
        return (f"SELECT {self._keys(key)} FROM {self.spec_table(spec)} WHERE {where} "
                f"ORDER BY {self._keys(key)} LIMIT 1 OFFSET {int(offset)}", params)

    def backfill_count(self, spec: MigrationSpec, key: Sequence[str], lo: Sequence[Any] | None,
                       hi: Sequence[Any] | None) -> Query:
        """One row: how many rows ``lo < key <= hi`` holds."""
        where, params = self.key_range(key, lo, hi)
        return f"SELECT COUNT(*) FROM {self.spec_table(spec)} WHERE {where}", params

    def backfill_update(self, spec: MigrationSpec, key: Sequence[str], direction: str,
                        lo: Sequence[Any] | None, hi: Sequence[Any] | None) -> Query:
        """One batch: write f(old) (or g(new)) where it differs, in ``lo < key <= hi``.

        The value is computed by the server from the row as it is when the row is locked,
        so a concurrent application write is never replaced by a stale value."""
        where, params = self.key_range(key, lo, hi)
        sets = ", ".join(f"{self.quote(c)} = {e}" for c, e in self.backfill_targets(spec, direction))
        return (f"UPDATE {self.spec_table(spec)} SET {sets} WHERE {where} AND "
                f"{self._needs_write(spec, direction)}", params)

    def backfill_update_row(self, spec: MigrationSpec, key: Sequence[str], direction: str,
                            values: Sequence[Any]) -> Query:
        """The batch update of one row (used to isolate rows whose transform fails)."""
        where, params = self.key_equals(key, values)
        sets = ", ".join(f"{self.quote(c)} = {e}" for c, e in self.backfill_targets(spec, direction))
        return (f"UPDATE {self.spec_table(spec)} SET {sets} WHERE {where} AND "
                f"{self._needs_write(spec, direction)}", params)

    def backfill_rows(self, spec: MigrationSpec, key: Sequence[str], columns: Sequence[str],
                      lo: Sequence[Any] | None, hi: Sequence[Any] | None) -> Query:
        """Rows of (key..., columns...) in ``lo < key <= hi``, in key order."""
        where, params = self.key_range(key, lo, hi)
        cols = ", ".join([self._keys(key), *(self.quote(c) for c in columns)])
        return (f"SELECT {cols} FROM {self.spec_table(spec)} WHERE {where} "
                f"ORDER BY {self._keys(key)}", params)

    def backfill_guarded_set(self, spec: MigrationSpec, key: Sequence[str],
                             values: Mapping[str, Any], guard: Mapping[str, Any],
                             key_values: Sequence[Any]) -> Query:
        """Set ``values`` on one row only if its ``guard`` columns still hold what was read
        (the optimistic guard of Python-computed values)."""
        sets = ", ".join(f"{self.quote(c)} = {self.p}" for c in values)
        where, kparams = self.key_equals(key, key_values)
        guards = " AND ".join(self.exact_equal(self.quote(c), self.p) for c in guard)
        return (f"UPDATE {self.spec_table(spec)} SET {sets} WHERE {where} AND {guards}",
                (*values.values(), *kparams, *guard.values()))

    def verify_chunk(self, spec: MigrationSpec, key: Sequence[str], direction: str,
                     lo: Sequence[Any] | None, hi: Sequence[Any] | None) -> Query:
        """One row: (rows, unbackfilled, differing) in ``lo < key <= hi``. Unbackfilled: every
        target column NULL while its computed value is not."""
        where, params = self.key_range(key, lo, hi)
        targets = self.backfill_targets(spec, direction)
        empty = " AND ".join(f"{self.quote(c)} IS NULL" for c, _ in targets)
        computed = " OR ".join(f"{e} IS NOT NULL" for _, e in targets)
        unb = f"({empty}) AND ({computed}) AND {self._source_present(spec, direction)}"
        return (f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN {unb} THEN 1 ELSE 0 END), 0), "
                f"COALESCE(SUM(CASE WHEN {self._needs_write(spec, direction, verify=True)} "
                f"THEN 1 ELSE 0 END), 0) FROM {self.spec_table(spec)} WHERE {where}", params)

    def verify_sample(self, spec: MigrationSpec, key: Sequence[str], direction: str,
                      lo: Sequence[Any] | None, hi: Sequence[Any] | None, limit: int) -> Query:
        """Keys of up to ``limit`` differing rows in ``lo < key <= hi``."""
        where, params = self.key_range(key, lo, hi)
        return (f"SELECT {self._keys(key)} FROM {self.spec_table(spec)} WHERE {where} AND "
                f"{self._needs_write(spec, direction, verify=True)} ORDER BY {self._keys(key)} "
                f"LIMIT {int(limit)}", params)

    def estimate_rows(self, spec: MigrationSpec) -> Query:
        """One row: the table's row count or the server's estimate of it."""
        return f"SELECT COUNT(*) FROM {self.spec_table(spec)}", ()

    def batch_settings(self, lock_timeout: float, statement_timeout: float) -> list[Query]:
        """Statements run at the start of each batch transaction to bound its waits."""
        return []

    def classify_error(self, exc: BaseException) -> str | None:
        """A retryable class of a driver error (see :attr:`RETRYABLE`), or ``None``."""
        return None

    def savepoint(self, name: str) -> Query:
        """Open a savepoint."""
        return f"SAVEPOINT {self.quote(name)}", ()

    def rollback_to_savepoint(self, name: str) -> Query:
        """Undo the work since a savepoint."""
        return f"ROLLBACK TO SAVEPOINT {self.quote(name)}", ()

    def release_savepoint(self, name: str) -> Query:
        """Forget a savepoint, keeping its work."""
        return f"RELEASE SAVEPOINT {self.quote(name)}", ()

    # backfill state: one run row per (migration, direction), one row per part of its range
    _RUN_COLS = ("migration_key, direction, spec_hash, key_columns, range_lo, range_hi, parts, "
                 "rows_estimate, state, settings, version, created_at, updated_at")
    _PART_COLS = ("part, spec_hash, range_lo, range_hi, cursor_pos, rows_done, status, "
                  "lease_owner, lease_expires_at, started_at, updated_at, finished_at, "
                  "rows_failed, rows_written, failed_keys, batch_size, hold_signal, hold_since, "
                  "held_ms")

    def select_backfill_run(self, key: str, direction: str) -> Query:
        """The run row (in :attr:`_RUN_COLS` order), if any."""
        return (f"SELECT {self._RUN_COLS} FROM dualwrite_backfill_runs WHERE migration_key = "
                f"{self.p} AND direction = {self.p}", (key, direction))

    def insert_backfill_run(self, values: Sequence[Any]) -> Query:
        """Create the run row (13 values in :attr:`_RUN_COLS` order)."""
        return (f"INSERT INTO dualwrite_backfill_runs ({self._RUN_COLS}) VALUES ({self._ph(13)})",
                tuple(values))

    def update_backfill_run(self, key: str, direction: str, state: str, settings: str,
                            now: datetime) -> Query:
        """Set the run's control state and settings (bumps its version)."""
        return (f"UPDATE dualwrite_backfill_runs SET state = {self.p}, settings = {self.p}, "
                f"version = version + 1, updated_at = {self.p} WHERE migration_key = {self.p} "
                f"AND direction = {self.p}",
                (state, settings, self.to_db_time(now), key, direction))

    def delete_backfill(self, key: str, direction: str) -> list[Query]:
        """Forget a run and its parts (``--restart``)."""
        return [(f"DELETE FROM {t} WHERE migration_key = {self.p} AND direction = {self.p}",
                 (key, direction)) for t in ("dualwrite_backfill", "dualwrite_backfill_runs")]

    def insert_backfill_part(self, key: str, direction: str, part: int, spec_hash: str,
                             lo: str | None, hi: str | None, now: datetime) -> Query:
        """One pending part of a run."""
        t = self.to_db_time(now)
        return (f"INSERT INTO dualwrite_backfill (migration_key, direction, part, spec_hash, "
                f"range_lo, range_hi, cursor_pos, rows_done, status, started_at, updated_at, "
                f"rows_failed, rows_written, held_ms) VALUES ({self._ph(7)}, 0, 'pending', "
                f"{self.p}, {self.p}, 0, 0, 0)", (key, direction, part, spec_hash, lo, hi, lo, t, t))

    def select_backfill_part_rows(self, key: str, direction: str) -> Query:
        """Every part (in :attr:`_PART_COLS` order), by part number."""
        return (f"SELECT {self._PART_COLS} FROM dualwrite_backfill WHERE migration_key = "
                f"{self.p} AND direction = {self.p} ORDER BY part", (key, direction))

    def claim_backfill_part(self, key: str, direction: str, part: int, owner: str,
                            now: datetime, expires: datetime) -> Query:
        """Take a part whose lease is free, expired or already ours (compare-and-set)."""
        p = self.p
        return (f"UPDATE dualwrite_backfill SET lease_owner = {p}, lease_expires_at = {p}, "
                f"status = 'running', updated_at = {p} WHERE migration_key = {p} AND "
                f"direction = {p} AND part = {p} AND status IN ('pending', 'running') AND "
                f"(lease_owner IS NULL OR lease_owner = {p} OR lease_expires_at < {p})",
                (owner, self.to_db_time(expires), self.to_db_time(now), key, direction, part,
                 owner, self.to_db_time(now)))

    def checkpoint_backfill_part(self, key: str, direction: str, part: int, owner: str,
                                 cursor: str | None, rows: int, written: int, failed: int,
                                 failed_keys: str | None, batch_size: int, status: str,
                                 now: datetime, expires: datetime) -> Query:
        """Record a batch (in the batch's transaction); matches no row if the lease was lost."""
        p = self.p
        t = self.to_db_time(now)
        return (f"UPDATE dualwrite_backfill SET cursor_pos = {p}, rows_done = rows_done + {p}, "
                f"rows_failed = COALESCE(rows_failed, 0) + {p}, "
                f"rows_written = COALESCE(rows_written, 0) + {p}, "
                f"failed_keys = COALESCE({p}, failed_keys), batch_size = {p}, status = {p}, "
                f"lease_expires_at = {p}, updated_at = {p}, "
                f"finished_at = CASE WHEN {p} = 'done' THEN {p} ELSE finished_at END, "
                f"lease_owner = CASE WHEN {p} = 'done' THEN NULL ELSE lease_owner END "
                f"WHERE migration_key = {p} AND direction = {p} AND part = {p} "
                f"AND lease_owner = {p}",
                (cursor, rows, failed, written, failed_keys, batch_size, status,
                 self.to_db_time(expires), t, status, t, status, key, direction, part, owner))

    def renew_backfill_lease(self, key: str, direction: str, part: int, owner: str,
                             now: datetime, expires: datetime, hold_signal: str | None,
                             hold_since: datetime | None, held_ms: int) -> Query:
        """Extend a held lease and record what holds the part (if anything)."""
        p = self.p
        return (f"UPDATE dualwrite_backfill SET lease_expires_at = {p}, updated_at = {p}, "
                f"hold_signal = {p}, hold_since = {p}, held_ms = COALESCE(held_ms, 0) + {p} "
                f"WHERE migration_key = {p} AND direction = {p} AND part = {p} "
                f"AND lease_owner = {p}",
                (self.to_db_time(expires), self.to_db_time(now), hold_signal,
                 self.to_db_time(hold_since) if hold_since else None, held_ms, key, direction,
                 part, owner))

    def release_backfill_part(self, key: str, direction: str, part: int, owner: str,
                              status: str, now: datetime) -> Query:
        """Give a part back (stopped, cancelled, or failed) so another worker can take it."""
        p = self.p
        return (f"UPDATE dualwrite_backfill SET lease_owner = NULL, lease_expires_at = NULL, "
                f"status = {p}, updated_at = {p}, hold_signal = NULL, hold_since = NULL "
                f"WHERE migration_key = {p} AND direction = {p} AND part = {p} "
                f"AND lease_owner = {p}",
                (status, self.to_db_time(now), key, direction, part, owner))

    def insert_verify(self, key: str, direction: str, spec_hash: str, started: datetime,
                      finished: datetime, rows: int, mismatches: int, unbackfilled: int,
                      sample: str) -> Query:
        """Record a finished verify."""
        return (f"INSERT INTO dualwrite_verify (migration_key, direction, spec_hash, started_at, "
                f"finished_at, rows_checked, mismatches, unbackfilled, sample_keys) VALUES "
                f"({self._ph(9)})", (key, direction, spec_hash, self.to_db_time(started),
                                     self.to_db_time(finished), rows, mismatches, unbackfilled,
                                     sample))

    # -- health -----------------------------------------------------------------------
    # Each returns ``None`` where the server has no such signal (reported "unavailable").
    def health_replica_lag(self) -> Query | None:
        """One row: the worst replica replay lag in seconds, seen from the primary."""
        return None

    def health_replica_status(self) -> Query | None:
        """Named rows of this server's replication status when it is a replica; the lag is
        the first of :attr:`replica_lag_columns` present."""
        return None

    replica_lag_columns: ClassVar[tuple[str, ...]] = ()

    def health_vacuum(self, spec: MigrationSpec) -> Query | None:
        """One row: how many (auto)vacuum processes work on the spec's table now."""
        return None

    def health_wal_position(self) -> Query | None:
        """One row: the write-ahead log position in bytes (its rate is sampled)."""
        return None

    def health_lock_waiters(self) -> Query | None:
        """One row, run inside a batch after its write: how many sessions wait for a lock
        this connection holds."""
        return None

    def health_threads_running(self) -> Query | None:
        """One row whose last value is the number of threads running a statement."""
        return None

    # -- triggers -----------------------------------------------------------------------
    # Mirror triggers (trigger mode). Every object carries a marker comment
    # ``/* dualwrite:KEY:HASH */`` where HASH is a digest of its rendered SQL, so that the
    # installer can tell its own objects (current or outdated) from foreign ones and see a
    # manual change (the catalog text no longer matches the rendering).

    #: Whether the trigger DDL runs inside the transaction (PostgreSQL, SQLite) or commits
    #: on its own (MySQL/MariaDB).
    transactional_ddl: ClassVar[bool] = True

    def literal(self, text: str) -> str:
        """A SQL string literal (for DDL text, where no parameter can be bound)."""
        return "'" + text.replace("'", "''") + "'"

    def trigger_name(self, spec: MigrationSpec, suffix: str = "") -> str:
        """``dualwrite_<key><suffix>``, cut to the identifier limit with a hash of the full
        name appended when it is too long (so two long keys never share a name)."""
        name = f"dualwrite_{spec.key}{suffix}"
        if self.identifier_length(name) <= self.max_identifier_length:
            return name
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        room = self.max_identifier_length - len(suffix) - len(digest) - 1
        head = name[:room]
        while self.identifier_length(head) > room:
            head = head[:-1]
        return f"{head}_{digest}{suffix}"

    def _raw(self) -> Dialect:
        """This dialect rendering SQL for DDL (no ``%`` escaping: nothing is bound)."""
        return type(self)("qmark")

    def _row(self, spec: MigrationSpec, columns: Sequence[str], prefix: str | None,
             alias: str) -> dict[str, str]:
        pre = f"{prefix}." if prefix else ""
        vals = {c: pre + self.quote(c) for c in columns}
        if len(columns) == 1:
            vals[alias] = pre + self.quote(columns[0])
        return vals

    def _all_null(self, columns: Sequence[str], prefix: str | None) -> str:
        pre = f"{prefix}." if prefix else ""
        return " AND ".join(f"{pre}{self.quote(c)} IS NULL" for c in columns)

    def _any_set(self, columns: Sequence[str], prefix: str | None) -> str:
        pre = f"{prefix}." if prefix else ""
        return " OR ".join(f"{pre}{self.quote(c)} IS NOT NULL" for c in columns)

    def _distinct(self, a: str, b: str) -> str:
        """Null-safe "a differs from b"."""
        return f"{a} IS DISTINCT FROM {b}"

    def _any_changed(self, columns: Sequence[str]) -> str:
        return " OR ".join(self._distinct(f"NEW.{self.quote(c)}", f"OLD.{self.quote(c)}")
                           for c in columns)

    def trigger_forward(self, spec: MigrationSpec, new_column: str, prefix: str | None) -> str:
        """f(old) for ``new_column`` over the row ``prefix`` (``NEW`` or none), NULL for NULL."""
        raw = self._raw()
        f = raw.forward_expr(spec, new_column, self._row(spec, spec.old_columns, prefix, "old"))
        return f"CASE WHEN {self._all_null(spec.old_columns, prefix)} THEN NULL ELSE {f} END"

    def trigger_backward(self, spec: MigrationSpec, old_column: str, prefix: str | None) -> str:
        """g(new) for ``old_column`` over the row ``prefix``, NULL when every new value is."""
        raw = self._raw()
        g = raw.backward_expr(spec, old_column, self._row(spec, spec.new_columns, prefix, "new"))
        return f"CASE WHEN {self._all_null(spec.new_columns, prefix)} THEN NULL ELSE {g} END"

    def _state_table(self, target: TriggerTarget) -> str:
        return self.table("dualwrite_migrations", target.state_schema)

    def trigger_new_wins(self, spec: MigrationSpec, target: TriggerTarget) -> str:
        """True when the migration's recorded stage makes the new side authoritative."""
        stages = ", ".join(self.literal(s) for s in target.new_wins_stages)
        return (f"COALESCE((SELECT m.stage IN ({stages}) FROM {self._state_table(target)} m "
                f"WHERE m.migration_key = {self.literal(spec.key)}), FALSE)")

    def trigger_differs_from_forward(self, spec: MigrationSpec) -> str:
        """True unless the row's new value(s) already are f(old). A write of the new side that
        the old side already explains (the backfill's, or a trigger's own) leaves old alone,
        so a lossy g never rewrites the old column behind a backfill."""
        return " OR ".join(self._distinct(f"NEW.{self.quote(c)}",
                                          self.trigger_forward(spec, c, "NEW"))
                           for c in spec.new_columns)

    def trigger_error_hint(self, spec: MigrationSpec) -> str:
        """The hint a failing transform reports from inside the trigger."""
        return (f"the write was rolled back; fix the value written or the spec's SQL "
                f"transform, then run: dualwrite triggers install {spec.key}")

    def _finish(self, sql: str) -> Query:
        """DDL text as a :data:`Query` (``%`` escaped for format-style drivers)."""
        return self.literal_escape(sql), ()

    def _objects(self, parts: Sequence[tuple[str, str, str, str,
                                             Callable[[str], tuple[str, list[str]]],
                                             list[str], bool]],
                 key: str) -> list[TriggerObject]:
        """Build objects from (name, kind, table, shape, render(marker) -> (definition,
        create statements), drop statements, replaceable)."""
        out = []
        for name, kind, table, shape, render, drops, replaceable in parts:
            _, draft = render(_MARKER_SLOT)
            digest = hashlib.sha256("\n".join(draft).encode()).hexdigest()[:16]
            marker = trigger_marker(key, digest)
            definition, creates = render(marker)
            out.append(TriggerObject(name=name, kind=kind, table=table, shape=shape,
                                     definition=definition, digest=digest, ddl=tuple(creates),
                                     create=tuple(self._finish(c) for c in creates),
                                     drop=tuple(self._finish(d) for d in drops),
                                     replaceable=replaceable))
        return out

    def trigger_objects(self, spec: MigrationSpec, target: TriggerTarget) -> list[TriggerObject]:
        """The objects that mirror writes for ``spec``, in creation order."""
        raise NotImplementedError

    def trigger_catalog(self, spec: MigrationSpec, target: TriggerTarget,
                        objects: Sequence[TriggerObject]) -> Query:
        """Rows of (name, kind, definition, shape) for every existing object named like one
        of ``objects`` -- whoever created it."""
        raise NotImplementedError

    def default_schema(self) -> Query | None:
        """One row: the connection's default schema (``None``: the database has none)."""
        return None

    def trigger_lock(self, spec: MigrationSpec, target: TriggerTarget, timeout_ms: int,
                     exclusive: bool) -> list[Query]:
        """Statements run first in the install/uninstall transaction: bound the lock wait and
        take the table lock the DDL needs."""
        return []

    def trigger_unlock(self) -> list[Query]:
        """Statements run last (also after a failure) to release what :meth:`trigger_lock`
        took outside the transaction."""
        return []

    def trigger_preflight(self, spec: MigrationSpec, target: TriggerTarget, direction: str,
                          limit: int) -> Query:
        """Evaluate the trigger's forward (or backward) transforms on up to ``limit`` rows."""
        if direction == "forward":
            exprs = [self.trigger_forward(spec, c, None) for c in spec.new_columns]
            where = self._any_set(spec.old_columns, None)
        else:
            exprs = [self.trigger_backward(spec, c, None) for c in spec.old_columns]
            where = self._any_set(spec.new_columns, None)
        sql = (f"SELECT {', '.join(exprs)} FROM {self.table(spec.table, target.schema)} "
               f"WHERE {where} LIMIT {int(limit)}")
        return self._finish(sql)

    def preflight_warnings(self) -> Query | None:
        """A query for the warnings the preflight raised (databases that warn instead of
        failing a bad cast), or ``None``."""
        return None

    def is_lock_timeout(self, exc: BaseException | None) -> bool:
        """Whether a driver error is a lock wait that gave up, or a deadlock: worth retrying."""
        return False

    # -- ddl --
    #: How indexes are built without blocking writes: ``concurrently`` (PostgreSQL),
    #: ``inplace`` (MySQL/MariaDB ALGORITHM=INPLACE, LOCK=NONE) or ``none`` (SQLite).
    online_index: ClassVar[str] = "none"
    #: Whether dropping a column also drops the indexes and constraints on it (else they
    #: are dropped first, one by one).
    drops_indexes_with_column: ClassVar[bool] = False
    #: How a nullable column becomes NOT NULL online: ``check`` (PostgreSQL: CHECK NOT VALID,
    #: VALIDATE, SET NOT NULL), ``modify`` (MySQL/MariaDB: MODIFY, a table rebuild) or
    #: ``none`` (SQLite cannot, short of rebuilding the table).
    not_null_method: ClassVar[str] = "none"

    def set_lock_timeout(self, seconds: float) -> Query:
        """Bound how long this session's next DDL statements wait for a table lock."""
        raise NotImplementedError

    def reset_lock_timeout(self) -> Query:
        """Back to the server's default lock wait for this session."""
        raise NotImplementedError

    def lock_timeout_applied(self, seconds: float) -> float:
        """The lock timeout the server really applies for ``seconds`` (rounding)."""
        return seconds

    def is_online_unsupported(self, exc: BaseException | None) -> bool:
        """Whether a driver error means "this ALGORITHM/LOCK is not possible here"."""
        return False

    def indexes(self, table: str, schema: str | None) -> Query:
        """Rows of (index name, unique, primary, constraint name or NULL, valid, plain,
        column name or NULL, position, prefix length or NULL, method), one per key column,
        ordered by index then position. ``plain``: no predicate and no expression."""
        raise NotImplementedError

    def check_constraints(self, table: str, schema: str | None) -> Query:
        """Rows of (constraint name, validated) for the table's CHECK constraints."""
        raise NotImplementedError

    def add_column_online(self, spec: MigrationSpec, column: str, type_sql: str,
                          algorithm: str | None) -> Query:
        """Add a NULL column; ``algorithm`` is a MySQL ALGORITHM (None: server's choice)."""
        return self.add_column(spec, column, type_sql)

    def drop_column(self, spec: MigrationSpec, column: str, algorithm: str | None) -> Query:
        """Drop a column (``algorithm`` as in :meth:`add_column_online`)."""
        return (f"ALTER TABLE {self.spec_table(spec)} DROP COLUMN {self.quote(column)}", ())

    def column_definition(self, type_sql: str, collation: str | None) -> str:
        """A column's type as written in ALTER TABLE ... MODIFY (MySQL keeps the collation)."""
        return type_sql

    def _index_columns(self, columns: Sequence[tuple[str, int | None]]) -> str:
        return ", ".join(self.quote(c) for c, _ in columns)

    def create_index(self, spec: MigrationSpec, name: str,
                     columns: Sequence[tuple[str, int | None]], *, unique: bool,
                     method: str, online: bool) -> Query:
        """Create an index on ``columns`` ((name, prefix length)); ``online`` builds it
        without blocking writes where the server can."""
        kind = "UNIQUE INDEX" if unique else "INDEX"
        return (f"CREATE {kind} {self.quote(name)} ON {self.spec_table(spec)} "
                f"({self._index_columns(columns)})", ())

    def drop_index(self, spec: MigrationSpec, name: str, *, online: bool) -> Query:
        """Drop an index if it exists (``online`` where the server can)."""
        schema = f"{self.quote(spec.schema)}." if spec.schema else ""
        return f"DROP INDEX IF EXISTS {schema}{self.quote(name)}", ()

    def add_not_null_check(self, spec: MigrationSpec, column: str, name: str) -> Query:
        """``CHECK (column IS NOT NULL) NOT VALID``: enforced for new rows, no scan."""
        raise NotImplementedError

    def validate_constraint(self, spec: MigrationSpec, name: str) -> Query:
        """Check existing rows against a NOT VALID constraint (no write lock)."""
        raise NotImplementedError

    def drop_constraint(self, spec: MigrationSpec, name: str) -> Query:
        """Drop a constraint if it exists."""
        return (f"ALTER TABLE {self.spec_table(spec)} DROP CONSTRAINT IF EXISTS "
                f"{self.quote(name)}", ())

    def set_not_null(self, spec: MigrationSpec, column: str, type_sql: str,
                     algorithm: str | None) -> Query:
        """Make a column NOT NULL (``type_sql``: its full type, for MySQL's MODIFY)."""
        raise NotImplementedError

    def drop_not_null(self, spec: MigrationSpec, column: str, type_sql: str,
                      algorithm: str | None) -> Query:
        """Make a column nullable again."""
        raise NotImplementedError

    def add_unique_using_index(self, spec: MigrationSpec, name: str, index: str) -> Query:
        """Turn a unique index into a named unique constraint."""
        raise NotImplementedError

    def lock_waits(self, table: str, schema: str | None) -> Query:
        """Rows of (session id, seconds waiting, statement) of sessions waiting for a lock on
        the table (none where the server cannot tell)."""
        return "SELECT NULL, NULL, NULL WHERE 1 = 0", ()

    # -- preflight --
    #: Whether the server shows other sessions (their locks, transactions, replication).
    shows_sessions: ClassVar[bool] = True

    def server_version(self) -> Query:
        """One row: the server's version string."""
        raise NotImplementedError

    def version_features(self, version: str) -> list[tuple[str, bool, str]]:
        """(feature, available, what it means for a migration) for a version string."""
        return []

    def table_stats(self, table: str, schema: str | None) -> Query:
        """One row: (estimated rows or NULL/negative when unknown, total bytes with indexes,
        table bytes)."""
        raise NotImplementedError

    def count_rows(self, spec: MigrationSpec) -> Query:
        """One row: the exact row count (used when the catalog has no estimate)."""
        return f"SELECT count(*) FROM {self.spec_table(spec)}", ()

    def lock_holders(self, table: str, schema: str | None) -> Query:
        """Rows of (session id, seconds in transaction, lock mode, statement) of other
        sessions holding a lock on the table (none where the server cannot tell)."""
        return "SELECT NULL, NULL, NULL, NULL WHERE 1 = 0", ()

    def long_transactions(self, min_seconds: float) -> Query:
        """Rows of (session id, seconds, state, statement) of other sessions' transactions
        open for at least ``min_seconds``."""
        return "SELECT NULL, NULL, NULL, NULL WHERE 1 = 0", ()

    def replication_status(self) -> Query:
        """One row: (replicas connected, worst replay lag in seconds or NULL, whether this
        server is itself a replica / read-only)."""
        return "SELECT 0, NULL, 0", ()

    def table_triggers(self, table: str, schema: str | None) -> Query:
        """Rows of (trigger name, timing and event) on the table."""
        raise NotImplementedError

    # -- orm adapters --
    #: Whether an UPDATE's SET assignments see the values assigned before them in the same
    #: statement (MySQL/MariaDB: left to right) rather than the row as it was (standard SQL).
    update_assigns_in_order: ClassVar[bool] = False
    #: Whether a write on a second connection waits for any open write transaction on the
    #: database (SQLite: one writer per file), so an adapter must not write the state
    #: tables from a thread that may hold the application's write transaction.
    single_writer: ClassVar[bool] = False

    def state_reader(self) -> Dialect:
        """The dialect for a connection that reads the state tables beside an application's
        ORM connection, on the same thread (usually this one)."""
        return self

    def template_parts(self, spec: MigrationSpec, template: str,
                       names: Collection[str]) -> tuple[list[str], list[str]]:
        """Split a transform template for an ORM that substitutes its own expressions.

        Returns ``(segments, placeholders)`` with ``len(segments) == len(placeholders) + 1``:
        the SQL is ``segments[0] + expr(placeholders[0]) + segments[1] + ...``, wrapped in
        parentheses as :meth:`render_template` does. Segments are raw SQL (no ``%``
        escaping: the ORM's compiler escapes for its paramstyle). An unknown placeholder is
        a :class:`SpecError` naming the valid ones.
        """
        segments: list[str] = []
        placeholders: list[str] = []
        pos = 0
        for m in _PLACEHOLDER_RE.finditer(template):
            name = m.group(1)
            if name not in names:
                raise SpecError(f"migration {spec.key!r}: unknown placeholder {{{name}}} in SQL "
                                f"transform {template!r}", key=spec.key, table=spec.table,
                                hint="valid placeholders: " +
                                     ", ".join("{" + k + "}" for k in sorted(names)))
            segments.append(template[pos:m.start()])
            placeholders.append(name)
            pos = m.end()
        segments.append(template[pos:])
        segments[0] = "(" + segments[0]
        segments[-1] += ")"
        return segments, placeholders

    def read_template(self, form: str) -> str:
        """The SQL skeleton of a ``live``-era read (``{new}``, ``{old}``, ``{forward}`` =
        f(old), ``{backward}`` = g(new) are filled by the ORM): ``new_or_forward`` or
        ``backward_or_old``."""
        return {"new_or_forward": "COALESCE({new}, {forward})",
                "backward_or_old": "COALESCE({backward}, {old})"}[form]

    def lookup_template(self, form: str, recheck: bool) -> str:
        """An index-friendly ``read = {value}`` for a read form (see :meth:`read_template`;
        ``backward`` is g(new) alone). ``{old_value}`` is g(value), ``{new_value}`` f(value);
        ``recheck`` adds the exact comparison for a transform that may not be one-to-one.
        Each side is a plain comparison on one column, so its index serves it."""
        if form == "new_or_forward":
            extra = " AND {forward} = {value}" if recheck else ""
            return "({new} = {value} OR ({new} IS NULL AND {old} = {old_value}" + extra + "))"
        by_new = "{new} = {new_value}" + (" AND {backward} = {value}" if recheck else "")
        if form == "backward":
            return "(" + by_new + ")"
        return "((" + by_new + ") OR ({new} IS NULL AND {old} = {value}))"

    def writes_columns(self, sql: str, table: str, columns: Collection[str]) -> list[str]:
        """Which of ``columns`` of ``table`` a raw SQL write (INSERT/UPDATE/REPLACE/MERGE)
        may touch: the names appear in the text, bare or quoted (case-insensitive).
        Empty for a statement that is not a write or does not name ``table``. A heuristic
        for warnings, never for routing."""
        if not _WRITE_RE.search(sql) or not self._mentions(sql, table):
            return []
        return [c for c in columns if self._mentions(sql, c)]

    def _mentions(self, sql: str, name: str) -> bool:
        q = re.escape(self.quote_char)
        pattern = rf"(?<![\w$]){re.escape(name)}(?![\w$])|{q}{re.escape(name)}{q}"
        return re.search(pattern, sql, re.IGNORECASE) is not None

    # -- plan --
    def key_sample(self, spec: MigrationSpec, key: Sequence[str], limit: int) -> Query:
        """The first ``limit`` keys in key order (to cut sample batches from)."""
        cols = ", ".join(self.quote(c) for c in key)
        return (f"SELECT {cols} FROM {self.spec_table(spec)} ORDER BY {cols} "
                f"LIMIT {int(limit)}", ())

    def proxy_update_range(self, spec: MigrationSpec, key: Sequence[str],
                           lo: Sequence[Any] | None, hi: Sequence[Any] | None) -> Query:
        """A stand-in write of the rows ``lo < key <= hi`` before the new column exists
        (old = old)."""
        sets = ", ".join(f"{self.quote(c)} = {self.quote(c)}" for c in spec.old_columns)
        where, params = self.key_range(key, lo, hi)
        return f"UPDATE {self.spec_table(spec)} SET {sets} WHERE {where}", params

    def read_range(self, spec: MigrationSpec, key: Sequence[str], lo: Sequence[Any] | None,
                   hi: Sequence[Any] | None) -> Query:
        """Read and transform the rows ``lo < key <= hi`` (the cost of verify and of a
        scan)."""
        first = spec.new_columns[0]
        expr = (self.forward_expr(spec, first) if spec.forward_template(self.name, first)
                else self.quote(spec.old_columns[0]))
        where, params = self.key_range(key, lo, hi)
        return (f"SELECT count(*), count({expr}) FROM {self.spec_table(spec)} WHERE {where}",
                params)

    def unbackfilled_count(self, spec: MigrationSpec) -> Query:
        """One row: rows whose old column is set and a new column still NULL."""
        olds = " AND ".join(f"{self.quote(c)} IS NOT NULL" for c in spec.old_columns)
        news = " OR ".join(f"{self.quote(c)} IS NULL" for c in spec.new_columns)
        return (f"SELECT count(*) FROM {self.spec_table(spec)} WHERE {olds} AND ({news})", ())


# -- triggers ---------------------------------------------------------------------------

#: ``/* dualwrite:KEY:HASH */``: marks an object dualwrite created for migration KEY.
TRIGGER_MARKER_RE = re.compile(r"/\* dualwrite:(?P<key>[A-Za-z0-9][A-Za-z0-9_.\-]*):"
                               r"(?P<digest>[0-9a-f]{16}) \*/")
_MARKER_SLOT = "/* dualwrite:marker */"


def trigger_marker(key: str, digest: str) -> str:
    """The marker comment of an object created for migration ``key``."""
    return f"/* dualwrite:{key}:{digest} */"


@dataclass(frozen=True)
class TriggerTarget:
    """Where a migration's triggers go, resolved against the live database."""

    #: The table's schema (spec.schema, else the connection's default; ``None`` on SQLite).
    schema: str | None
    #: The schema holding ``dualwrite_migrations`` (the connection's default).
    state_schema: str | None
    #: The table's key (primary key or NOT NULL unique key), to find a row again.
    key_columns: tuple[str, ...]
    #: Stages in which the new side wins when a write changes both sides.
    new_wins_stages: tuple[str, ...]


@dataclass(frozen=True)
class TriggerObject:
    """One database object (function or trigger) dualwrite creates for a migration."""

    name: str
    kind: str
    #: The table it belongs to (triggers) or ``""`` (functions).
    table: str
    #: What the catalog reports about it besides its text (timing, event, enabled, ...).
    shape: str
    #: Its text as the catalog gives it back, marker included.
    definition: str
    #: Digest of the rendered SQL (what the marker carries).
    digest: str
    #: The creating statements as the server receives them (for review and ``--dry-run``).
    ddl: tuple[str, ...]
    create: tuple[Query, ...]
    drop: tuple[Query, ...]
    #: Whether ``create`` replaces an existing version in place (no drop needed).
    replaceable: bool
