"""Write throughput with the mirror triggers installed vs without, in the same run.

For each backend: a ``users`` table of ``--rows`` rows (old and new column in step), then
``--rounds`` rounds of [triggers off: measure; triggers on: measure] so that both sides see
the same cache and load. Two workloads write the old column, as any raw-SQL writer would:

* single-row UPDATE -- ``--single`` statements, each in its own transaction (ops/s);
* bulk UPDATE -- one statement over every row (``--rows`` rows, seconds).

Three variants per round: no trigger (the writer sets the old column: the baseline), no
trigger but the writer sets both columns (what app mode writes), and the trigger installed
(the writer sets the old column, the trigger the new one). Prints the medians and the
ratios trigger/none and trigger/both as time over time (1.00x = same cost). Servers: ``DUALWRITE_TEST_POSTGRES_URL`` /
``DUALWRITE_TEST_MYSQL_URL`` or the local defaults; each run uses a fresh schema/database.

    python benchmarks/trigger_overhead.py [--backends sqlite,postgresql,mysql]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from dualwrite.db import Database
from dualwrite.spec import RenameColumn
from dualwrite.stages import Mode
from dualwrite.triggers import TriggerInstaller

SPEC = RenameColumn(key="bench-rename", table="users", old="full_name", new="display_name",
                    mode=Mode.TRIGGER)
DEFAULTS = {"postgresql": "postgresql://postgres@127.0.0.1:5432/test",
            "mysql": "mysql://root@127.0.0.1:3306/test"}
ENV = {"postgresql": "DUALWRITE_TEST_POSTGRES_URL", "mysql": "DUALWRITE_TEST_MYSQL_URL"}
# Benchmark fixtures only (the library builds its SQL in dualwrite/dialects/).
DDL = {
    "postgresql": "CREATE TABLE users (id BIGINT PRIMARY KEY, full_name TEXT, display_name TEXT)",
    "mysql": "CREATE TABLE users (id BIGINT PRIMARY KEY, full_name VARCHAR(100), "
             "display_name VARCHAR(100)) ENGINE=InnoDB",
    "sqlite": "CREATE TABLE users (id INTEGER PRIMARY KEY, full_name TEXT, display_name TEXT)",
}


@contextlib.contextmanager
def fresh_database(backend: str) -> Iterator[Database]:
    """A Database on a new schema (PostgreSQL), database (MySQL) or file (SQLite)."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            db = Database.from_url(f"sqlite:///{Path(tmp) / 'bench.db'}")
            try:
                yield db
            finally:
                db.close()
        return
    base = os.environ.get(ENV[backend]) or DEFAULTS[backend]
    name = f"dw_bench_{uuid.uuid4().hex[:10]}"
    admin = Database.from_url(base)
    if backend == "postgresql":
        admin.execute((f'CREATE SCHEMA "{name}"', ()))
        url = base + ("&" if "?" in base else "?") + f"options=-csearch_path%3D{name}"
    else:
        admin.execute((f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4", ()))
        scheme, rest = base.split("://", 1)
        url = f"{scheme}://{rest.split('/', 1)[0]}/{name}"
    db = Database.from_url(url)
    try:
        yield db
    finally:
        db.close()
        drop = f'DROP SCHEMA "{name}" CASCADE' if backend == "postgresql" else \
            f"DROP DATABASE `{name}`"
        admin.execute((drop, ()))
        admin.close()


def setup(db: Database, backend: str, rows: int) -> None:
    p = db.dialect.p
    db.execute((DDL[backend], ()))
    with db.transaction() as tx:
        for lo in range(1, rows + 1, 1000):
            chunk = range(lo, min(lo + 1000, rows + 1))
            values = ", ".join([f"({p}, {p}, {p})"] * len(chunk))
            tx.execute((f"INSERT INTO users (id, full_name, display_name) VALUES {values}",
                        tuple(v for i in chunk for v in (i, f"User {i}", f"User {i}"))))


def _set(db: Database, both: bool) -> str:
    p = db.dialect.p
    return f"full_name = {p}, display_name = {p}" if both else f"full_name = {p}"


def single_row_ops(db: Database, rows: int, n: int, tag: str, both: bool) -> float:
    """Single-row UPDATEs per second (one transaction each)."""
    rnd = random.Random(42)
    sql = f"UPDATE users SET {_set(db, both)} WHERE id = {db.dialect.p}"
    start = time.perf_counter()
    for i in range(n):
        value = f"{tag}-{i}"
        db.execute((sql, (value, value, rnd.randint(1, rows)) if both
                    else (value, rnd.randint(1, rows))))
    return n / (time.perf_counter() - start)


def bulk_seconds(db: Database, tag: str, both: bool) -> float:
    """Seconds for one UPDATE of every row."""
    start = time.perf_counter()
    db.execute((f"UPDATE users SET {_set(db, both)}", (tag, tag) if both else (tag,)))
    return time.perf_counter() - start


def run_backend(backend: str, rows: int, single: int, rounds: int) -> list[tuple[str, ...]]:
    with fresh_database(backend) as db:
        setup(db, backend, rows)
        inst = TriggerInstaller(db)
        res: dict[tuple[str, str], list[float]] = {}
        # off: no trigger, the writer sets the old column (the baseline); both: no trigger,
        # the writer sets both columns (what app mode costs); on: trigger, old column only.
        for r in range(rounds):
            for mode in ("off", "both", "on"):
                if mode == "on":
                    inst.install(SPEC)
                else:
                    inst.uninstall(SPEC)
                tag, both = f"r{r}{mode}", mode == "both"
                res.setdefault(("single", mode), []).append(
                    single_row_ops(db, rows, single, tag, both))
                res.setdefault(("bulk", mode), []).append(bulk_seconds(db, tag, both))
        # the trigger really mirrored: every row has new == old
        mismatched = db.fetchone(("SELECT count(*) FROM users WHERE "
                                  "display_name <> full_name OR display_name IS NULL", ()))
        assert mismatched == (0,), f"{backend}: {mismatched} rows not mirrored"
    med = {k: statistics.median(v) for k, v in res.items()}
    s_off, s_both, s_on = (med[("single", m)] for m in ("off", "both", "on"))
    b_off, b_both, b_on = (med[("bulk", m)] for m in ("off", "both", "on"))
    return [
        (backend, "single-row UPDATE", f"{s_off:,.0f} ops/s", f"{s_both:,.0f} ops/s",
         f"{s_on:,.0f} ops/s", f"{s_off / s_on:.2f}x", f"{s_both / s_on:.2f}x"),
        (backend, f"{rows:,}-row UPDATE", f"{b_off * 1000:,.1f} ms", f"{b_both * 1000:,.1f} ms",
         f"{b_on * 1000:,.1f} ms", f"{b_on / b_off:.2f}x", f"{b_on / b_both:.2f}x"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="sqlite,postgresql,mysql")
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--single", type=int, default=500, help="single-row UPDATEs per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    table: list[tuple[str, ...]] = []
    for backend in args.backends.split(","):
        table += run_backend(backend.strip(), args.rows, args.single, args.rounds)
    head = ("backend", "workload", "no trigger", "no trigger, both", "trigger",
            "trigger/none", "trigger/both")
    widths = [max(len(r[i]) for r in [head, *table]) for i in range(len(head))]
    for r in [head, tuple("-" * w for w in widths), *table]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    print(f"\nmedians of {args.rounds} alternating rounds. no trigger: the writer sets the old "
          "column; no trigger, both: the writer sets both columns (app mode); trigger: the "
          "writer sets the old column and the trigger the new one. Ratios are time / time "
          "(1.00x = same cost).")


if __name__ == "__main__":
    main()
