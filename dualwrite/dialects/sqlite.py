"""SQLite dialect (the embedded default; Python's sqlite3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from dualwrite.dialects.base import STATE_TABLES, Dialect, Query

__all__ = ["SQLiteDialect"]


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

    # -- ddl --
    # SQLite has no online index build (CREATE INDEX locks the database for writes while it
    # runs), no lock_timeout (busy_timeout bounds the wait for the database lock instead),
    # and cannot add NOT NULL to an existing column without rebuilding the table.
    _DEFAULT_BUSY_MS = 30000

    def set_lock_timeout(self, seconds: float) -> Query:
        return f"PRAGMA busy_timeout = {max(1, int(seconds * 1000))}", ()

    def reset_lock_timeout(self) -> Query:
        return f"PRAGMA busy_timeout = {self._DEFAULT_BUSY_MS}", ()

    def is_lock_timeout(self, exc: BaseException | None) -> bool:
        return "database is locked" in str(exc) or "database table is locked" in str(exc)

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
