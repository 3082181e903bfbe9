"""Real lock behaviour of expand: it gives way to writers instead of queueing them.

A transaction holds a lock on the table (an open transaction that read it). ``ALTER TABLE``
needs an exclusive lock, so it waits -- and on PostgreSQL and MySQL/MariaDB every writer
that arrives after it queues behind it. Under dualwrite's lock timeout the ALTER gives up
after ``lock_timeout``, lets the queue drain, and retries. The test measures how long a
concurrent writer waits and bounds it by the configured lock timeout (not by a fixed time);
the holder keeps its lock for many lock timeouts, which is how long an unbounded ALTER would
have held the writers up.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dualwrite.db import Database
from dualwrite.ddl import DdlEvent, LockPolicy, OnlineDdl
from dualwrite.errors import DdlLockTimeout
from dualwrite.migrator import Migrator
from dualwrite.schema import inspect_table
from dualwrite.spec import RenameColumn
from dualwrite.stages import Stage
from tests.helpers import q, users_table

LOCK_TIMEOUT = 1.0
HOLD = 6 * LOCK_TIMEOUT
SPEC = RenameColumn(key="users-display-name", table="users", old="full_name",
                    new="display_name")

SERVERS = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgresql),
                pytest.param("mysql", marks=pytest.mark.mysql)], indirect=True)


class Holder:
    """Another session: an open transaction that read (or wrote) the table, until released."""

    def __init__(self, url: str, *, write: bool = False) -> None:
        self.db = Database.from_url(url)
        self.write = write
        self.locked = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.db.transaction() as tx:
            if self.write:
                tx.execute((f"UPDATE {q(self.db, 'users')} SET {q(self.db, 'full_name')} = "
                            f"{q(self.db, 'full_name')} WHERE {q(self.db, 'id')} = 1", ()))
            else:
                tx.fetchall((f"SELECT * FROM {q(self.db, 'users')} LIMIT 1", ()))
            self.locked.set()
            self.release.wait(60)

    def __enter__(self) -> Holder:
        self.thread.start()
        assert self.locked.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.thread.join(10)
        self.db.close()


class Writer:
    """Another session inserting rows one transaction at a time, timing each insert."""

    def __init__(self, url: str, start_id: int) -> None:
        self.db = Database.from_url(url)
        self.ids = itertools.count(start_id)
        self.waits: list[float] = []
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        d = self.db.dialect
        # a safety net far above the bound checked, so a regression fails instead of hanging
        self.db.execute_autocommit(d.set_lock_timeout(20 * LOCK_TIMEOUT))
        while not self.stop.is_set():
            t0 = time.perf_counter()
            try:
                self.db.execute((f"INSERT INTO {q(self.db, 'users')} ({q(self.db, 'id')}, "
                                 f"{q(self.db, 'full_name')}) VALUES ({d.p}, {d.p})",
                                 (next(self.ids), "writer")))
            except Exception as exc:  # noqa: BLE001 -- recorded and asserted on
                self.errors.append(exc)
                return
            self.waits.append(time.perf_counter() - t0)
            time.sleep(0.02)

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(30)
        self.db.close()


def _wait_for_lock_waiter(db: Database, timeout: float = 10.0) -> bool:
    """Until some session waits for a lock on users (the ALTER)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.fetchall(db.dialect.lock_waits("users", None)):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def table(db: Database) -> Iterator[Migrator]:
    users_table(db, 20)
    m = Migrator(db, [SPEC])
    m.init()
    yield m


def _expand_in_thread(m: Migrator, policy: LockPolicy, events: list[DdlEvent],
                      result: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        try:
            result["outcomes"] = OnlineDdl(m, policy=policy, on_event=events.append).expand(
                SPEC.key)[1]
        except BaseException as exc:  # noqa: BLE001 -- asserted on in the test
            result["error"] = exc
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@SERVERS
def test_expand_waits_and_retries_without_blocking_writers(db: Database, db_url: str,
                                                          table: Migrator) -> None:
    events: list[DdlEvent] = []
    result: dict[str, Any] = {}
    policy = LockPolicy(lock_timeout=LOCK_TIMEOUT, retries=30, backoff=0.2, backoff_max=0.5)
    applied = db.dialect.lock_timeout_applied(LOCK_TIMEOUT)
    with Holder(db_url) as holder:
        expand = _expand_in_thread(table, policy, events, result)
        assert _wait_for_lock_waiter(db), "the ALTER never waited for the holder's lock"
        with Writer(db_url, 1000) as writer:
            time.sleep(HOLD)
            holder.release.set()
            expand.join(60)
    assert "error" not in result, result.get("error")
    assert not writer.errors, writer.errors
    # The ALTER retried while the lock was held, and finally ran.
    assert sum(e.kind == "retry" for e in events) >= 2
    info = inspect_table(db, "users", None)
    assert info is not None and "display_name" in info.columns
    assert table.state.get(SPEC.key).stage is Stage.EXPAND
    # Writers kept going the whole time; none waited longer than the lock timeout allows
    # (an unbounded ALTER would have held them for the whole HOLD = 6 lock timeouts).
    assert len(writer.waits) >= 5
    assert max(writer.waits) < 2 * applied, (max(writer.waits), applied)


@SERVERS
def test_expand_gives_up_after_its_retries_and_changes_nothing(db: Database, db_url: str,
                                                              table: Migrator) -> None:
    events: list[DdlEvent] = []
    result: dict[str, Any] = {}
    policy = LockPolicy(lock_timeout=LOCK_TIMEOUT, retries=1, backoff=0.1)
    with Holder(db_url):
        expand = _expand_in_thread(table, policy, events, result)
        expand.join(60)
    err = result.get("error")
    assert isinstance(err, DdlLockTimeout), err
    assert err.attempts == 2 and err.step == "add column display_name"
    assert "dualwrite preflight users-display-name" in (err.hint or "")
    info = inspect_table(db, "users", None)
    assert info is not None and "display_name" not in info.columns
    assert table.state.get(SPEC.key).stage is Stage.OFF


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgresql)],
                         indirect=True)
def test_concurrent_index_build_retries_past_an_old_transaction(db: Database, db_url: str,
                                                                table: Migrator) -> None:
    """CREATE INDEX CONCURRENTLY waits for transactions that wrote the table; under the lock
    timeout it fails and leaves an INVALID index, which the retry drops before building
    again."""
    db.execute((f"CREATE INDEX ix_users_full_name ON {q(db, 'users')} ({q(db, 'full_name')})",
                ()))
    db.execute(("ALTER TABLE users ADD COLUMN display_name TEXT", ()))
    events: list[DdlEvent] = []
    result: dict[str, Any] = {}
    policy = LockPolicy(lock_timeout=LOCK_TIMEOUT, retries=30, backoff=0.2, backoff_max=0.5)
    with Holder(db_url, write=True) as holder:
        expand = _expand_in_thread(table, policy, events, result)
        deadline = time.monotonic() + 15
        while not any(e.kind == "retry" for e in events) and time.monotonic() < deadline:
            time.sleep(0.05)
        holder.release.set()
        expand.join(60)
    assert "error" not in result, result.get("error")
    assert any(e.kind == "retry" and e.step.name == "create index ix_users_display_name"
               for e in events)
    rows = db.fetchall(("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON "
                        "c.oid = i.indexrelid WHERE i.indrelid = 'users'::regclass "
                        "AND c.relname LIKE '%%display%%'", ()))
    assert rows == [("ix_users_display_name", True)]
