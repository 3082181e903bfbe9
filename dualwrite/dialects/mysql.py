"""MySQL 8 / MariaDB 10.5+ dialect (PyMySQL).

Differences between the two that matter here are noted where they arise. Times are stored
as ``DATETIME(6)`` holding UTC.
"""

from __future__ import annotations

import math
import re
import textwrap
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

    def health_lock_waiters(self) -> Query | None:
        # Run inside the batch after its write, while it holds its row locks: the other
        # transactions waiting for a row lock (INNODB_TRX exists on MySQL 8 and MariaDB;
        # which lock they wait for is in tables that differ between the two). Needs the
        # PROCESS privilege; without it the signal is unavailable.
        return ("SELECT COUNT(*) FROM information_schema.INNODB_TRX "
                "WHERE trx_state = 'LOCK WAIT' AND trx_mysql_thread_id <> CONNECTION_ID()", ())

    def health_threads_running(self) -> Query | None:
        # SHOW GLOBAL STATUS works on both (MySQL 8 has no information_schema.GLOBAL_STATUS)
        return "SHOW GLOBAL STATUS LIKE 'Threads_running'", ()

    # -- triggers -----------------------------------------------------------------------
    # A BEFORE INSERT and a BEFORE UPDATE trigger that SET NEW.x. The marker is the first
    # line of the body (information_schema.TRIGGERS.ACTION_STATEMENT). A failing transform
    # is re-signalled with the migration, direction and table in the message (SQLSTATE and
    # error number kept); the statement is rolled back.
    #
    # MySQL/MariaDB DDL is not transactional: each CREATE/DROP TRIGGER commits on its own.
    # The installer holds ``LOCK TABLES ... WRITE`` around a replacement so that no write
    # runs between the DROP and the CREATE. Valid on MySQL 8 and MariaDB 10.5+ (several
    # triggers per event and timing; no CREATE OR REPLACE TRIGGER on MySQL).

    transactional_ddl: ClassVar[bool] = False

    def literal(self, text: str) -> str:
        return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"

    def _distinct(self, a: str, b: str) -> str:
        return f"NOT ({a} <=> {b})"

    def _mysql_branch(self, spec: MigrationSpec, step: str, assignments: list[str],
                      only_if: str | None = None) -> str:
        """A block that runs ``assignments`` and re-signals a failure with context. The
        handler lives in the branch: declared per row only where a transform runs (local
        variables and handlers are what makes a MySQL trigger slow)."""
        lit = self.literal
        prefix = f"dualwrite {spec.key}: the {step} transform failed on table {spec.table}: "
        sets = "\n".join(f"      SET NEW.{a};" for a in assignments)
        if only_if:
            sets = f"      IF ({only_if}) THEN\n{textwrap.indent(sets, '  ')}\n      END IF;"
        return f"""    BEGIN
      DECLARE EXIT HANDLER FOR SQLEXCEPTION
      BEGIN
        DECLARE v_msg TEXT;
        GET DIAGNOSTICS CONDITION 1 v_msg = MESSAGE_TEXT;
        SET v_msg = LEFT(CONCAT({lit(prefix)}, v_msg), 128);
        RESIGNAL SET MESSAGE_TEXT = v_msg;
      END;
{sets}
    END;"""

    def _mysql_body(self, spec: MigrationSpec, target: TriggerTarget, event: str,
                    marker: str) -> str:
        if event == "INSERT":
            old_side = self._any_set(spec.old_columns, "NEW")
            new_side = self._any_set(spec.new_columns, "NEW")
        else:
            old_side = self._any_changed(spec.old_columns)
            new_side = self._any_changed(spec.new_columns)
        fwd = [f"{self.quote(c)} = {self.trigger_forward(spec, c, 'NEW')}"
               for c in spec.new_columns]
        bwd = [f"{self.quote(c)} = {self.trigger_backward(spec, c, 'NEW')}"
               for c in spec.old_columns]
        fwd_block = self._mysql_branch(spec, "forward", fwd)
        bwd_block = self._mysql_branch(spec, "backward", bwd)
        # The stage lookup is a statement of its own, reached only when both sides
        # changed: a subquery anywhere in a condition costs every row (measured).
        return f"""BEGIN
  {marker}
  IF ({old_side}) AND ({new_side}) THEN
    IF {self.trigger_new_wins(spec, target)} THEN
{textwrap.indent(bwd_block, "  ")}
    ELSE
{textwrap.indent(fwd_block, "  ")}
    END IF;
  ELSEIF {old_side} THEN
{fwd_block}
  ELSEIF {new_side} THEN
{self._mysql_branch(spec, "backward", bwd, self.trigger_differs_from_forward(spec))}
  END IF;
END"""

    def trigger_objects(self, spec: MigrationSpec, target: TriggerTarget) -> list[TriggerObject]:
        table = self.table(spec.table, target.schema)
        parts = []
        for event, suffix in (("INSERT", "_bi"), ("UPDATE", "_bu")):
            name = self.trigger_name(spec, suffix)
            qname = self.table(name, target.schema)

            def render(marker: str, event: str = event, qname: str = qname
                       ) -> tuple[str, list[str]]:
                body = self._mysql_body(spec, target, event, marker)
                return body, [f"CREATE TRIGGER {qname} BEFORE {event} ON {table} "
                              f"FOR EACH ROW {body}"]

            parts.append((name, "trigger", spec.table, f"BEFORE {event} ON {spec.table}",
                          render, [f"DROP TRIGGER IF EXISTS {qname}"], False))
        return self._objects(parts, spec.key)

    def trigger_catalog(self, spec: MigrationSpec, target: TriggerTarget,
                        objects: Sequence[TriggerObject]) -> Query:
        names = [o.name for o in objects]
        return (f"SELECT trigger_name, 'trigger', action_statement, CONCAT(action_timing, ' ', "
                f"event_manipulation, ' ON ', event_object_table) FROM information_schema.triggers "
                f"WHERE trigger_schema = {self.p} AND trigger_name IN ({self._ph(len(names))})",
                (target.schema, *names))

    def default_schema(self) -> Query | None:
        return "SELECT DATABASE()", ()

    def trigger_lock(self, spec: MigrationSpec, target: TriggerTarget, timeout_ms: int,
                     exclusive: bool) -> list[Query]:
        seconds = max(1, int(timeout_ms) // 1000)
        return [(f"SET SESSION lock_wait_timeout = {seconds}", ()),
                (f"LOCK TABLES {self.table(spec.table, target.schema)} WRITE", ())]

    def trigger_unlock(self) -> list[Query]:
        return [("UNLOCK TABLES", ()), ("SET SESSION lock_wait_timeout = DEFAULT", ())]

    def preflight_warnings(self) -> Query | None:
        # A bad CAST in a SELECT is a warning here, an error in the trigger (strict mode).
        return "SHOW WARNINGS", ()

    def is_lock_timeout(self, exc: BaseException | None) -> bool:
        # 1205 lock wait timeout, 1213 deadlock
        args: tuple[Any, ...] = getattr(exc, "args", ())
        return bool(args) and args[0] in (1205, 1213)

    # -- ddl --
    # ALGORITHM=INSTANT (MySQL 8.0.12+ add column, 8.0.29+ drop column; MariaDB 10.3+/10.4+)
    # takes no LOCK clause on MySQL 8; ALGORITHM=INPLACE, LOCK=NONE keeps writes flowing.
    # DROP INDEX IF EXISTS is MariaDB-only, so callers check the catalog instead.
    not_null_method: ClassVar[str] = "modify"
    online_index: ClassVar[str] = "inplace"

    def set_lock_timeout(self, seconds: float) -> Query:
        # lock_wait_timeout (metadata locks) is whole seconds, at least 1, on both servers.
        return f"SET SESSION lock_wait_timeout = {self.lock_timeout_applied(seconds):.0f}", ()

    def reset_lock_timeout(self) -> Query:
        return "SET SESSION lock_wait_timeout = DEFAULT", ()

    def lock_timeout_applied(self, seconds: float) -> float:
        return float(max(1, math.ceil(seconds)))

    def is_online_unsupported(self, exc: BaseException | None) -> bool:
        args: tuple[Any, ...] = getattr(exc, "args", ())
        # ER_ALTER_OPERATION_NOT_SUPPORTED(_REASON): the ALGORITHM/LOCK asked is impossible.
        return bool(args) and args[0] in (1845, 1846)

    @staticmethod
    def _algorithm(algorithm: str | None) -> str:
        if algorithm is None:
            return ""
        if algorithm == "INSTANT":
            return ", ALGORITHM=INSTANT"
        if algorithm == "INPLACE":
            return ", ALGORITHM=INPLACE, LOCK=NONE"
        raise ValueError(f"unknown ALGORITHM {algorithm!r}")

    def indexes(self, table: str, schema: str | None) -> Query:
        # column_name is NULL for a functional index part (MySQL 8.0.13+).
        return (f"SELECT index_name, non_unique = 0, index_name = 'PRIMARY', "
                f"CASE WHEN non_unique = 0 THEN index_name END, 1, column_name IS NOT NULL, "
                f"column_name, seq_in_index, sub_part, lower(index_type) "
                f"FROM information_schema.statistics "
                f"WHERE table_schema = COALESCE({self.p}, DATABASE()) AND table_name = {self.p} "
                f"ORDER BY index_name, seq_in_index", (schema, table))

    def add_column_online(self, spec: MigrationSpec, column: str, type_sql: str,
                          algorithm: str | None) -> Query:
        sql, params = self.add_column(spec, column, type_sql)
        return sql + " NULL" + self._algorithm(algorithm), params

    def drop_column(self, spec: MigrationSpec, column: str, algorithm: str | None) -> Query:
        return (f"ALTER TABLE {self.spec_table(spec)} DROP COLUMN {self.quote(column)}"
                f"{self._algorithm(algorithm)}", ())

    def _index_columns(self, columns: Sequence[tuple[str, int | None]]) -> str:
        return ", ".join(self.quote(c) + (f"({int(n)})" if n else "") for c, n in columns)

    def create_index(self, spec: MigrationSpec, name: str,
                     columns: Sequence[tuple[str, int | None]], *, unique: bool,
                     method: str, online: bool) -> Query:
        kind = ("UNIQUE INDEX" if unique else "FULLTEXT INDEX" if method == "fulltext"
                else "SPATIAL INDEX" if method == "spatial" else "INDEX")
        return (f"ALTER TABLE {self.spec_table(spec)} ADD {kind} {self.quote(name)} "
                f"({self._index_columns(columns)}){self._algorithm('INPLACE' if online else None)}",
                ())

    def drop_index(self, spec: MigrationSpec, name: str, *, online: bool) -> Query:
        return (f"ALTER TABLE {self.spec_table(spec)} DROP INDEX {self.quote(name)}"
                f"{self._algorithm('INPLACE' if online else None)}", ())

    def column_definition(self, type_sql: str, collation: str | None) -> str:
        return f"{type_sql} COLLATE {self.quote(collation)}" if collation else type_sql

    def set_not_null(self, spec: MigrationSpec, column: str, type_sql: str,
                     algorithm: str | None) -> Query:
        # A table rebuild on both servers (online with ALGORITHM=INPLACE, LOCK=NONE).
        return (f"ALTER TABLE {self.spec_table(spec)} MODIFY COLUMN {self.quote(column)} "
                f"{type_sql} NOT NULL{self._algorithm(algorithm)}", ())

    def drop_not_null(self, spec: MigrationSpec, column: str, type_sql: str,
                      algorithm: str | None) -> Query:
        return (f"ALTER TABLE {self.spec_table(spec)} MODIFY COLUMN {self.quote(column)} "
                f"{type_sql} NULL{self._algorithm(algorithm)}", ())

    def lock_waits(self, table: str, schema: str | None) -> Query:
        # Metadata-lock waits of statements naming the table (processlist has no table
        # column; MySQL 8's performance_schema.metadata_locks is not on MariaDB by default).
        return (f"SELECT id, time, left(info, 200) FROM information_schema.processlist "
                f"WHERE db = COALESCE({self.p}, DATABASE()) AND state LIKE 'Waiting for table%%' "
                f"AND info LIKE {self.p} ORDER BY time DESC",
                (schema, f"%{table}%"))

    # -- preflight --
    def server_version(self) -> Query:
        return "SELECT VERSION()", ()

    def version_features(self, version: str) -> list[tuple[str, bool, str]]:
        nums = tuple(int(x) for x in re.findall(r"\d+", version.split("-", maxsplit=1)[0])[:3])
        if "mariadb" in version.lower():
            return [
                ("ALGORITHM=INSTANT ADD COLUMN", nums >= (10, 3),
                 "MariaDB 10.3+ adds a column without rebuilding the table"),
                ("ALGORITHM=INSTANT DROP COLUMN", nums >= (10, 4),
                 "MariaDB 10.4+ drops a column without rebuilding the table"),
                ("online index build (INPLACE, LOCK=NONE)", True,
                 "indexes build while writes continue"),
            ]
        return [
            ("ALGORITHM=INSTANT ADD COLUMN", nums >= (8, 0, 12),
             "MySQL 8.0.12+ adds a column without rebuilding the table"),
            ("ALGORITHM=INSTANT DROP COLUMN", nums >= (8, 0, 29),
             "MySQL 8.0.29+ drops a column without rebuilding the table"),
            ("online index build (INPLACE, LOCK=NONE)", True,
             "indexes build while writes continue"),
        ]

    def table_stats(self, table: str, schema: str | None) -> Query:
        # table_rows is InnoDB's estimate (it can be off, and 0 before statistics exist).
        return (f"SELECT CASE WHEN table_rows > 0 THEN table_rows END, "
                f"data_length + index_length, data_length FROM information_schema.tables "
                f"WHERE table_schema = COALESCE({self.p}, DATABASE()) AND table_name = {self.p}",
                (schema, table))

    def long_transactions(self, min_seconds: float) -> Query:
        # processlist.time is the time in the current state: for an idle transaction, the
        # time since its last statement (a lower bound of its age).
        return (f"SELECT t.trx_mysql_thread_id, p.time, t.trx_state, left(t.trx_query, 200) "
                f"FROM information_schema.innodb_trx t JOIN information_schema.processlist p "
                f"ON p.id = t.trx_mysql_thread_id WHERE p.id <> CONNECTION_ID() "
                f"AND p.time >= {self.p} ORDER BY p.time DESC LIMIT 20", (float(min_seconds),))

    def replication_status(self) -> Query:
        # A primary cannot see its replicas' lag; it sees them connected (binlog dump).
        return ("SELECT count(*), NULL, @@read_only FROM information_schema.processlist "
                "WHERE command LIKE 'Binlog Dump%%'", ())

    def table_triggers(self, table: str, schema: str | None) -> Query:
        return (f"SELECT trigger_name, concat(action_timing, ' ', event_manipulation) "
                f"FROM information_schema.triggers WHERE event_object_schema = "
                f"COALESCE({self.p}, DATABASE()) AND event_object_table = {self.p} "
                f"ORDER BY trigger_name", (schema, table))

    # -- orm adapters --
    # Single-table UPDATE assignments are evaluated left to right on MySQL 8 and MariaDB
    # (unless MariaDB's SIMULTANEOUS_ASSIGNMENT sql_mode): a later SET sees earlier ones.
    update_assigns_in_order: ClassVar[bool] = True
