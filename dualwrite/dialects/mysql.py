"""MySQL 8 / MariaDB 10.5+ dialect (PyMySQL).

Differences between the two that matter here are noted where they arise. Times are stored
as ``DATETIME(6)`` holding UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from dualwrite.dialects.base import STATE_TABLES, Dialect, Query
from dualwrite.spec import MigrationSpec

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

    # -- backfill ---------------------------------------------------------------------
    def null_safe_equal(self, a: str, b: str) -> str:
        return f"{a} <=> {b}"

    def exact_equal(self, a: str, b: str) -> str:
        # byte-exact: a case-insensitive collation must not hide a needed write
        return f"CAST({a} AS BINARY) <=> CAST({b} AS BINARY)"

    def estimate_rows(self, spec: MigrationSpec) -> Query:
        # InnoDB's estimate from the statistics: instant on any size
        return (f"SELECT COALESCE(MAX(table_rows), 0) FROM information_schema.tables WHERE "
                f"table_schema = COALESCE({self.p}, DATABASE()) AND table_name = {self.p}",
                (spec.schema, spec.table))

    def batch_settings(self, lock_timeout: float, statement_timeout: float) -> list[Query]:
        # innodb_lock_wait_timeout is whole seconds on both servers. A statement timeout
        # differs (MySQL max_execution_time covers SELECT only; MariaDB max_statement_time):
        # the batch relies on the lock timeout and on its adaptive size instead.
        return [(f"SET SESSION innodb_lock_wait_timeout = {max(1, round(lock_timeout))}", ())]

    def classify_error(self, exc: BaseException) -> str | None:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        by_code = {1205: "lock_timeout", 1213: "deadlock", 3024: "statement_timeout",
                   1969: "statement_timeout", 2006: "connection", 2013: "connection",
                   2003: "connection", 2055: "connection", 1927: "connection",
                   1053: "connection"}
        if code in by_code:
            return by_code[code]
        if type(exc).__name__ in ("InterfaceError",) or (code is None and \
                type(exc).__name__ == "OperationalError"):
            return "connection"
        return None

    # -- health -----------------------------------------------------------------------
    # SHOW REPLICA STATUS: MySQL 8.0.22+ and MariaDB 10.5.1+; its lag column is
    # Seconds_Behind_Source on MySQL 8.0.22+ and Seconds_Behind_Master on MariaDB. A primary
    # does not see its replicas' lag: connect to a replica to read it.
    replica_lag_columns: ClassVar[tuple[str, ...]] = ("Seconds_Behind_Source",
                                                      "Seconds_Behind_Master")

    def health_replica_status(self) -> Query | None:
        return "SHOW REPLICA STATUS", ()

    def health_threads_running(self) -> Query | None:
        # SHOW GLOBAL STATUS works on both (MySQL 8 has no information_schema.GLOBAL_STATUS)
        return "SHOW GLOBAL STATUS LIKE 'Threads_running'", ()
