"""MySQL 8 / MariaDB 10.5+ dialect (PyMySQL).

Differences between the two that matter here are noted where they arise. Times are stored
as ``DATETIME(6)`` holding UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from dualwrite.dialects.base import STATE_TABLES, Dialect, Query

__all__ = ["MySQLDialect"]


class MySQLDialect(Dialect):
    """MySQL 8.0+ and MariaDB 10.5+."""

    name: ClassVar[str] = "mysql"
    max_identifier_length: ClassVar[int] = 64
    quote_char: ClassVar[str] = "`"
    identifier_unit: ClassVar[str] = "characters"
    t_key: ClassVar[str] = "VARCHAR(191)"
    t_text: ClassVar[str] = "TEXT"
    t_time: ClassVar[str] = "DATETIME(6)"
    t_serial_pk: ClassVar[str] = "BIGINT AUTO_INCREMENT PRIMARY KEY"
    table_suffix: ClassVar[str] = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"

    def identifier_length(self, name: str) -> int:
        return len(name)  # MySQL counts characters

    def to_db_time(self, value: datetime) -> Any:
        return value.astimezone(UTC).replace(tzinfo=None)

    def table_exists(self, table: str, schema: str | None) -> Query:
        return (f"SELECT count(*) FROM information_schema.tables WHERE "
                f"table_schema = COALESCE({self.p}, DATABASE()) AND table_name = {self.p}",
                (schema, table))

    def columns(self, table: str, schema: str | None) -> Query:
        return (f"SELECT column_name, column_type, is_nullable = 'YES', collation_name FROM "
                f"information_schema.columns WHERE table_schema = COALESCE({self.p}, DATABASE()) "
                f"AND table_name = {self.p} ORDER BY ordinal_position", (schema, table))

    def unique_keys(self, table: str, schema: str | None) -> Query:
        # sub_part IS NULL: a prefix index does not make the full value unique.
        return (f"SELECT s.index_name, s.index_name = 'PRIMARY', s.column_name "
                f"FROM information_schema.statistics s "
                f"WHERE s.table_schema = COALESCE({self.p}, DATABASE()) AND s.table_name = {self.p} "
                f"AND s.non_unique = 0 AND s.column_name IS NOT NULL AND NOT EXISTS ("
                f"SELECT 1 FROM information_schema.statistics x WHERE x.table_schema = s.table_schema "
                f"AND x.table_name = s.table_name AND x.index_name = s.index_name "
                f"AND (x.sub_part IS NOT NULL OR x.column_name IS NULL)) "
                f"ORDER BY s.index_name = 'PRIMARY' DESC, s.index_name, s.seq_in_index",
                (schema, table))

    def state_tables_present(self) -> Query:
        return (f"SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
                f"AND table_name IN ({self._ph(len(STATE_TABLES))})", STATE_TABLES)

    def upsert_fleet(self, instance_id: str, key: str, host: str, pid: int, version: str,
                     stage: str, now: datetime) -> Query:
        # VALUES() in ON DUPLICATE KEY UPDATE works on MariaDB and MySQL 8 (deprecated there
        # since 8.0.20 in favour of a row alias, which MariaDB does not support).
        t = self.to_db_time(now)
        return (f"INSERT INTO dualwrite_fleet (instance_id, migration_key, host, pid, version, "
                f"stage, started_at, heartbeat_at) VALUES ({self._ph(8)}) "
                f"ON DUPLICATE KEY UPDATE stage = VALUES(stage), "
                f"heartbeat_at = VALUES(heartbeat_at), version = VALUES(version)",
                (instance_id, key, host, pid, version, stage, t, t))

    # -- django adapter --
    #: MySQL and MariaDB: "single-table UPDATE assignments are evaluated left to right".
    update_assignments_in_order: ClassVar[bool] = True
