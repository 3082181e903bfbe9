"""SQLite dialect (the embedded default; Python's sqlite3)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from dualwrite.dialects.base import (
    STATE_TABLES,
    Dialect,
    Query,
    TriggerObject,
    TriggerTarget,
)
from dualwrite.spec import MigrationSpec

__all__ = ["SQLiteDialect", "SQLiteStateReaderDialect"]


class SQLiteDialect(Dialect):
    """SQLite 3.35+. Times are stored as ISO-8601 UTC text."""

    name: ClassVar[str] = "sqlite"
    #: A deferred BEGIN that reads and then writes can fail at once with "database is
    #: locked" when another connection writes (the busy handler is not called on a lock
    #: upgrade); taking the write lock up front makes concurrent writers wait instead.
    begin_sql: ClassVar[str] = "BEGIN IMMEDIATE"
    max_identifier_length: ClassVar[int] = 1024
    t_key: ClassVar[str] = "TEXT"
    t_time: ClassVar[str] = "TEXT"
    t_int: ClassVar[str] = "INTEGER"
    t_serial_pk: ClassVar[str] = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, paramstyle: str = "qmark") -> None:
        super().__init__(paramstyle)

    def to_db_time(self, value: datetime) -> Any:
        return value.astimezone(UTC).isoformat()

    def concurrent_access(self) -> list[Query]:
        return [("PRAGMA journal_mode = WAL", ())]

    def table_exists(self, table: str, schema: str | None) -> Query:
        return (f"SELECT count(*) FROM pragma_table_info({self.p}, {self.p})",
                (table, schema or "main"))

    def columns(self, table: str, schema: str | None) -> Query:
        return (f'SELECT name, type, "notnull" = 0, NULL FROM pragma_table_info('
                f"{self.p}, {self.p}) ORDER BY cid", (table, schema or "main"))

    def unique_keys(self, table: str, schema: str | None) -> Query:
        s = schema or "main"
        # The primary key (from table_info), then every full unique index.
        return (f"SELECT 'PRIMARY', 1, name FROM pragma_table_info({self.p}, {self.p}) "
                f"WHERE pk > 0 "
                f"UNION ALL SELECT il.name, 0, ii.name FROM pragma_index_list({self.p}, {self.p}) il "
                f"JOIN pragma_index_info(il.name, {self.p}) ii "
                f"WHERE il.\"unique\" = 1 AND il.partial = 0 AND il.origin <> 'pk' "
                f"AND NOT EXISTS (SELECT 1 FROM pragma_index_info(il.name, {self.p}) x "
                f"WHERE x.name IS NULL)",
                (table, s, table, s, s, s))

    def state_tables_present(self) -> Query:
        return (f"SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                f"AND name IN ({self._ph(len(STATE_TABLES))})", STATE_TABLES)

    # -- backfill ---------------------------------------------------------------------
    def null_safe_equal(self, a: str, b: str) -> str:
        return f"{a} IS {b}"

    def classify_error(self, exc: BaseException) -> str | None:
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return "lock_timeout"
        if "closed" in text or "disk i/o" in text:
            return "connection"
        return None

    # -- triggers -----------------------------------------------------------------------
    # SQLite cannot change NEW in a BEFORE trigger, so AFTER INSERT and AFTER UPDATE OF
    # <columns> triggers run a guarded UPDATE of the row just written (found by its key).
    # Guards: the UPDATE runs only for the side that changed, and never when the written
    # side already is the transform of the other (what the trigger itself just wrote), so
    # even with ``PRAGMA recursive_triggers = ON`` a re-fired trigger stops at once. The
    # marker is in the body; sqlite_master.sql keeps the statement verbatim.

    def _distinct(self, a: str, b: str) -> str:
        return f"{a} IS NOT {b}"

    def _sqlite_trigger(self, spec: MigrationSpec, target: TriggerTarget, event: str,
                        name: str, marker: str) -> str:
        q = self.quote
        table = q(spec.table)
        match = " AND ".join(f"{q(k)} = NEW.{q(k)}" for k in target.key_columns)
        fwd = {c: self.trigger_forward(spec, c, "NEW") for c in spec.new_columns}
        bwd = {c: self.trigger_backward(spec, c, "NEW") for c in spec.old_columns}
        set_new = ", ".join(f"{q(c)} = {e}" for c, e in fwd.items())
        set_old = ", ".join(f"{q(c)} = {e}" for c, e in bwd.items())
        wins = self.trigger_new_wins(spec, target)
        if event == "INSERT":
            old_side = self._any_set(spec.old_columns, "NEW")
            new_side = self._any_set(spec.new_columns, "NEW")
            head = f"AFTER INSERT ON {table}"
            fwd_guard = bwd_guard = ""
        else:
            old_side = self._any_changed(spec.old_columns)
            new_side = self._any_changed(spec.new_columns)
            cols = ", ".join(q(c) for c in (*spec.old_columns, *spec.new_columns))
            head = f"AFTER UPDATE OF {cols} ON {table}"
            fwd_guard = "\n    AND NOT (" + " AND ".join(
                f"NEW.{q(c)} IS {e}" for c, e in bwd.items()) + ")"
            bwd_guard = f"\n    AND ({self.trigger_differs_from_forward(spec)})"
        return f"""CREATE TRIGGER {self.table(name, target.schema)} {head} FOR EACH ROW
WHEN ({old_side}) OR ({new_side})
BEGIN
  {marker}
  UPDATE {table} SET {set_new}
  WHERE {match}
    AND ({old_side}) AND NOT (({new_side}) AND {wins}){fwd_guard};
  UPDATE {table} SET {set_old}
  WHERE {match}
    AND ({new_side}) AND (NOT ({old_side}) OR {wins}){bwd_guard};
END"""

    def _state_table(self, target: TriggerTarget) -> str:
        # A trigger may only name tables of its own database, unqualified.
        return self.quote("dualwrite_migrations")

    def trigger_objects(self, spec: MigrationSpec, target: TriggerTarget) -> list[TriggerObject]:
        parts = []
        for event, suffix in (("INSERT", "_ai"), ("UPDATE", "_au")):
            name = self.trigger_name(spec, suffix)

            def render(marker: str, event: str = event, name: str = name
                       ) -> tuple[str, list[str]]:
                sql = self._sqlite_trigger(spec, target, event, name, marker)
                return sql, [sql]

            parts.append((name, "trigger", spec.table, f"ON {spec.table}", render,
                          [f"DROP TRIGGER IF EXISTS {self.table(name, target.schema)}"], False))
        return self._objects(parts, spec.key)

    def trigger_catalog(self, spec: MigrationSpec, target: TriggerTarget,
                        objects: Sequence[TriggerObject]) -> Query:
        names = [o.name for o in objects]
        master = self.table("sqlite_master", target.schema)
        return (f"SELECT name, 'trigger', sql, 'ON ' || tbl_name FROM {master} "
                f"WHERE type = 'trigger' AND name IN ({self._ph(len(names))})", tuple(names))

    def is_lock_timeout(self, exc: BaseException | None) -> bool:
        text = str(exc or "")
        return "database is locked" in text or "database table is locked" in text

    # -- ddl --
    # SQLite has no online index build (CREATE INDEX locks the database for writes while it
    # runs), no lock_timeout (busy_timeout bounds the wait for the database lock instead),
    # and cannot add NOT NULL to an existing column without rebuilding the table.
    _DEFAULT_BUSY_MS = 30000

    def set_lock_timeout(self, seconds: float) -> Query:
        return f"PRAGMA busy_timeout = {max(1, int(seconds * 1000))}", ()

    def reset_lock_timeout(self) -> Query:
        return f"PRAGMA busy_timeout = {self._DEFAULT_BUSY_MS}", ()

    def indexes(self, table: str, schema: str | None) -> Query:
        s = schema or "main"
        return (f"SELECT il.name, il.\"unique\", il.origin = 'pk', "
                f"CASE WHEN il.origin = 'u' THEN il.name END, 1, il.partial = 0 AND ii.cid >= 0, "
                f"ii.name, ii.seqno + 1, NULL, 'btree' "
                f"FROM pragma_index_list({self.p}, {self.p}) il "
                f"JOIN pragma_index_info(il.name, {self.p}) ii ORDER BY il.name, ii.seqno",
                (table, s, s))

    # -- preflight --
    shows_sessions: ClassVar[bool] = False

    def server_version(self) -> Query:
        return "SELECT sqlite_version()", ()

    def version_features(self, version: str) -> list[tuple[str, bool, str]]:
        nums = tuple(int(x) for x in version.split(".")[:3])
        return [("ALTER TABLE DROP COLUMN", nums >= (3, 35),
                 "SQLite 3.35+ can drop the old column in contract")]

    def table_stats(self, table: str, schema: str | None) -> Query:
        # No catalog estimate and no per-table size without dbstat: the exact count, and
        # the size of the whole database file.
        return ("SELECT NULL, (SELECT page_count * page_size FROM pragma_page_count(), "
                "pragma_page_size()), NULL", ())

    def table_triggers(self, table: str, schema: str | None) -> Query:
        return (f"SELECT name, sql FROM {self.quote(schema or 'main')}.sqlite_master "
                f"WHERE type = 'trigger' AND tbl_name = {self.p} ORDER BY name", (table,))

    # -- orm adapters --
    single_writer: ClassVar[bool] = True

    def state_reader(self) -> Dialect:
        # BEGIN IMMEDIATE would wait for the application's own open write transaction on
        # the same thread (a deadlock until busy_timeout); a deferred read never does.
        return SQLiteStateReaderDialect(self.paramstyle)


class SQLiteStateReaderDialect(SQLiteDialect):
    """SQLite for an adapter's state-table connection: deferred BEGIN (see
    :meth:`SQLiteDialect.state_reader`); single-statement writes (fleet heartbeats) still
    wait for the write lock through ``busy_timeout``."""

    begin_sql: ClassVar[str] = "BEGIN DEFERRED"
