"""Golden SQL of the backfill, verify and health sections, per dialect (no database)."""

from __future__ import annotations

import sqlite3

import psycopg
import pymysql
import pytest

from dualwrite.backfill_state import decode_key, encode_key
from dualwrite.dialects import MySQLDialect, PostgresDialect, SQLiteDialect
from dualwrite.spec import RenameColumn

PG, MY, LITE = PostgresDialect(), MySQLDialect(), SQLiteDialect()
RENAME = RenameColumn(key="r", table="users", old="full_name", new="display_name")


def test_composite_key_ranges_are_lexicographic() -> None:
    sql, params = MY.key_compare(("a", "b"), ">", (1, "x"))
    assert sql == "((`a` > %s) OR (`a` = %s AND `b` > %s))" and params == (1, 1, "x")
    sql, params = LITE.key_compare(("a", "b", "c"), "<=", (1, 2, 3))
    assert sql == ('(("a" < ?) OR ("a" = ? AND "b" < ?) OR ("a" = ? AND "b" = ? AND "c" <= ?))')
    assert params == (1, 1, 2, 1, 2, 3)
    # PostgreSQL: one row-value comparison, a single btree range
    assert PG.key_compare(("a", "b"), ">", (1, "x")) == ('("a", "b") > (%s, %s)', (1, "x"))
    assert PG.key_range(("id",), None, None) == ("1 = 1", ())
    assert PG.key_range(("id",), (3,), (9,)) == ('"id" > %s AND "id" <= %s', (3, 9))
    with pytest.raises(ValueError):
        PG.key_compare(("id",), "<", (1,))


def test_batch_update_writes_only_rows_that_differ_exactly() -> None:
    sql, params = PG.backfill_update(RENAME, ("id",), "forward", (0,), (100,))
    assert sql == ('UPDATE "users" SET "display_name" = ("full_name") WHERE "id" > %s AND '
                   '"id" <= %s AND (NOT ("display_name" IS NOT DISTINCT FROM ("full_name")))')
    assert params == (0, 100)
    # MySQL: byte-exact, a case-insensitive collation must not hide a needed write
    assert "NOT (CAST(`display_name` AS BINARY) <=> CAST((`full_name`) AS BINARY))" in \
        MY.backfill_update(RENAME, ("id",), "forward", None, (5,))[0]
    assert 'NOT ("display_name" IS ("full_name"))' in \
        LITE.backfill_update(RENAME, ("id",), "forward", None, None)[0]
    # reverse never copies an unbackfilled NULL back over the old value
    rev = PG.backfill_update(RENAME, ("id",), "reverse", None, (5,))[0]
    assert 'SET "full_name" = ("display_name")' in rev and '("display_name" IS NOT NULL)' in rev


def test_guarded_set_binds_values_and_the_guard() -> None:
    sql, params = MY.backfill_guarded_set(RENAME, ("id",), {"display_name": "X"},
                                          {"full_name": "x"}, (7,))
    assert sql == ("UPDATE `users` SET `display_name` = %s WHERE `id` = %s AND "
                   "CAST(`full_name` AS BINARY) <=> CAST(%s AS BINARY)")
    assert params == ("X", 7, "x")


def test_batch_settings_and_error_classes() -> None:
    assert PG.batch_settings(2, 60) == [("SET LOCAL lock_timeout = 2000", ()),
                                        ("SET LOCAL statement_timeout = 60000", ())]
    assert MY.batch_settings(0.3, 60) == [("SET SESSION innodb_lock_wait_timeout = 1", ())]
    assert LITE.batch_settings(2, 60) == []
    assert PG.classify_error(psycopg.errors.LockNotAvailable()) == "lock_timeout"
    assert PG.classify_error(psycopg.errors.DeadlockDetected()) == "deadlock"
    assert PG.classify_error(psycopg.errors.SerializationFailure()) == "serialization"
    assert PG.classify_error(psycopg.errors.QueryCanceled()) == "statement_timeout"
    assert PG.classify_error(psycopg.errors.DivisionByZero()) is None
    assert PG.classify_error(psycopg.OperationalError("server closed the connection")) == \
        "connection"
    assert MY.classify_error(pymysql.err.OperationalError(1205, "Lock wait timeout")) == \
        "lock_timeout"
    assert MY.classify_error(pymysql.err.OperationalError(1213, "Deadlock")) == "deadlock"
    assert MY.classify_error(pymysql.err.OperationalError(2013, "Lost connection")) == \
        "connection"
    assert MY.classify_error(pymysql.err.DataError(1292, "Truncated")) is None
    assert LITE.classify_error(sqlite3.OperationalError("database is locked")) == "lock_timeout"
    assert LITE.classify_error(sqlite3.IntegrityError("NOT NULL")) is None


def test_health_queries_exist_where_the_server_has_the_signal() -> None:
    assert PG.health_replica_lag() is not None and MY.health_replica_lag() is None
    assert MY.health_replica_status() == ("SHOW REPLICA STATUS", ())
    assert MY.replica_lag_columns == ("Seconds_Behind_Source", "Seconds_Behind_Master")
    assert PG.health_vacuum(RENAME) == (
        "SELECT count(*) FROM pg_stat_progress_vacuum WHERE relid = to_regclass(%s)",
        ('"users"',))
    assert "pg_blocking_pids" in (PG.health_lock_waiters() or ("",))[0]
    assert MY.health_threads_running() == ("SHOW GLOBAL STATUS LIKE 'Threads_running'", ())
    for q in (LITE.health_vacuum(RENAME), LITE.health_wal_position(),
              LITE.health_lock_waiters(), LITE.health_threads_running(),
              PG.health_threads_running(), MY.health_wal_position()):
        assert q is None


def test_keys_survive_the_checkpoint_encoding() -> None:
    import uuid

    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert decode_key(encode_key((1, "a", b"\x00\xff", u, None))) == \
        (1, "a", b"\x00\xff", str(u), None)
    assert encode_key(None) is None and decode_key(None) is None
