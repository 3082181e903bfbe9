"""Concurrent transactions through one Database: no spurious lock errors, nothing lost."""

from __future__ import annotations

import threading

import pytest

from dualwrite.db import Database
from tests.helpers import create_table, q


def test_threads_reading_then_writing_in_transactions(db: Database) -> None:
    create_table(db, "counter", {"id": "INTEGER PRIMARY KEY", "n": "INTEGER"})
    p = db.dialect.p
    db.execute((f"INSERT INTO {q(db, 'counter')} (id, n) VALUES ({p}, {p})", (1, 0)))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(40):
                with db.transaction() as tx:
                    row = tx.fetchone((f"SELECT n FROM {q(db, 'counter')} WHERE id = {p}", (1,)))
                    assert row is not None
                    tx.execute((f"UPDATE {q(db, 'counter')} SET n = n + 1 WHERE id = {p}", (1,)))
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert db.fetchone((f"SELECT n FROM {q(db, 'counter')} WHERE id = {p}", (1,))) == (160,)


@pytest.mark.parametrize("backend", ["postgresql", "mysql"], indirect=True)
def test_a_connection_killed_while_idle_is_replaced(db: Database, db_url: str) -> None:
    p = db.dialect.p
    if db.dialect.name == "postgresql":
        (pid,) = db.fetchone(("SELECT pg_backend_pid()", ())) or (None,)
        kill = (f"SELECT pg_terminate_backend({p})", (pid,))
    else:
        (pid,) = db.fetchone(("SELECT CONNECTION_ID()", ())) or (None,)
        kill = (f"KILL CONNECTION {int(pid)}", ())
    other = Database.from_url(db_url)
    try:
        other.execute(kill)
    finally:
        other.close()
    # The next statement finds the connection dead at BEGIN and gets a new one.
    assert db.fetchone(("SELECT 1", ())) == (1,)
    again = db.fetchone(("SELECT pg_backend_pid()" if db.dialect.name == "postgresql"
                         else "SELECT CONNECTION_ID()", ()))
    assert again is not None and again[0] != pid


def test_connections_of_ended_threads_are_closed(db: Database) -> None:
    """A thread-per-request server (Django's runserver, say) must not leave one open
    connection per request thread behind."""
    def request() -> None:
        assert db.fetchone(("SELECT 1", ())) == (1,)

    for _ in range(10):
        t = threading.Thread(target=request)
        t.start()
        t.join()
    request()  # a new connection (the main thread's): the ended threads' ones are closed
    assert len(db._all) == 1
    assert db.fetchone(("SELECT 1", ())) == (1,)
