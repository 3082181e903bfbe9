"""Test fixtures that build application tables (test-only SQL, per backend)."""

from __future__ import annotations

from typing import Any

from dualwrite.db import Database

TEXT = {"postgresql": "TEXT", "mysql": "VARCHAR(255)", "sqlite": "TEXT"}
INT_PK = {"postgresql": "BIGINT PRIMARY KEY", "mysql": "BIGINT PRIMARY KEY",
          "sqlite": "INTEGER PRIMARY KEY"}


def q(db: Database, name: str) -> str:
    return db.dialect.quote(name)


def create_table(db: Database, table: str, columns: dict[str, str], *,
                 primary_key: str | None = "id") -> None:
    """CREATE TABLE with ``columns`` (name -> type or a per-dialect key: 'text', 'int', 'pk')."""
    d = db.dialect.name
    cols = []
    for name, typ in columns.items():
        sql_type = {"text": TEXT[d], "int": "BIGINT", "pk": INT_PK[d],
                    "real": "DOUBLE PRECISION" if d == "postgresql" else "DOUBLE"
                    if d == "mysql" else "REAL"}.get(typ, typ)
        cols.append(f"{q(db, name)} {sql_type}")
    db.execute((f"CREATE TABLE {q(db, table)} ({', '.join(cols)})", ()))


def insert_rows(db: Database, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    names = list(rows[0])
    p = db.dialect.p
    sql = (f"INSERT INTO {q(db, table)} ({', '.join(q(db, n) for n in names)}) "
           f"VALUES ({', '.join([p] * len(names))})")
    with db.transaction() as tx:
        for r in rows:
            tx.execute((sql, tuple(r[n] for n in names)))


def users_table(db: Database, rows: int = 20, *, with_new: bool = False,
                table: str = "users") -> None:
    """users(id pk, full_name text[, display_name text]) with ``rows`` rows."""
    cols = {"id": "pk", "full_name": "text"}
    if with_new:
        cols["display_name"] = "text"
    create_table(db, table, cols)
    insert_rows(db, table, [{"id": i, "full_name": f"User {i}"} for i in range(1, rows + 1)])


def add_column(db: Database, table: str, column: str, typ: str = "text") -> None:
    d = db.dialect.name
    db.execute((f"ALTER TABLE {q(db, table)} ADD COLUMN {q(db, column)} "
                f"{TEXT[d] if typ == 'text' else typ}", ()))


def snapshot(db: Database, table: str) -> list[tuple[Any, ...]]:
    return db.fetchall((f"SELECT * FROM {q(db, table)} ORDER BY 1", ()))


def record_backfill_and_verify(db: Database, key: str, spec_hash: str, *,
                               direction: str = "forward", mismatches: int = 0,
                               backfill: bool = True) -> None:
    """Write the facts a finished backfill and verify leave in the state tables."""
    from dualwrite.state import utcnow

    d = db.dialect
    now = d.to_db_time(utcnow())
    with db.transaction() as tx:
        if backfill:
            tx.execute((f"INSERT INTO dualwrite_backfill (migration_key, direction, part, "
                        f"spec_hash, rows_done, status, started_at, updated_at) VALUES "
                        f"({d.p}, {d.p}, 0, {d.p}, 1, 'done', {d.p}, {d.p})",
                        (key, direction, spec_hash, now, now)))
        tx.execute((f"INSERT INTO dualwrite_verify (migration_key, direction, spec_hash, "
                    f"started_at, finished_at, rows_checked, mismatches, unbackfilled) VALUES "
                    f"({d.p}, {d.p}, {d.p}, {d.p}, {d.p}, 1, {d.p}, 0)",
                    (key, direction, spec_hash, now, now, mismatches)))
