"""Concurrent transactions through one Database: no spurious lock errors, nothing lost."""

from __future__ import annotations

import threading

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
