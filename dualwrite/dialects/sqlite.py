"""SQLite dialect (the embedded default; Python's sqlite3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from dualwrite.dialects.base import STATE_TABLES, Dialect, Query

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
