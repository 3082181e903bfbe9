"""The dialect base: identifier quoting, transform rendering, state-table SQL, introspection.

This package is the only place dualwrite builds SQL text. Every identifier goes through
:meth:`Dialect.quote`; every value is a bound parameter (``Dialect.p`` is the placeholder).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from dualwrite.errors import SpecError
from dualwrite.spec import MigrationSpec

__all__ = ["Dialect", "Query"]

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
                "dualwrite_verify", "dualwrite_fleet")


class Dialect:
    """SQL for one database family. Subclasses set types and override what differs."""

    name: ClassVar[str] = "base"
    max_identifier_length: ClassVar[int] = 63
    quote_char: ClassVar[str] = '"'
    identifier_unit: ClassVar[str] = "bytes"
    #: How a transaction starts (SQLite takes the write lock up front: see sqlite.py).
    begin_sql: ClassVar[str] = "BEGIN"
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
            f"finished_at {tm}, PRIMARY KEY (migration_key, direction, part)){suf}",
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
        ]

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
