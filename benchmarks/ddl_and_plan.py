"""Two measurements of the operations tools, each against a baseline taken in the same run.

1. **Writer wait behind an ALTER** (PostgreSQL, MySQL/MariaDB). Another session holds the
   table in an open transaction for ``--hold`` seconds while a writer inserts rows, one
   transaction each. Baseline: a plain ``ALTER TABLE ... ADD COLUMN`` (the server's default
   lock wait) -- every writer queues behind it until the holder ends. dualwrite: ``expand``
   under a ``--lock-timeout`` with retries. Prints the writer's longest wait for both, their
   ratio, and dualwrite's longest wait in lock timeouts.

2. **Plan estimate vs a real backfill** (every backend). ``dualwrite plan``'s backfill
   estimate (catalog size + a rolled-back sample + a commit probe) against the time of the
   backfill's own batched UPDATE over ``--rows`` rows; ``--rounds`` pairs, median ratio.

    python benchmarks/ddl_and_plan.py [--backends sqlite,postgresql,mysql] [--rows 200000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from trigger_overhead import fresh_database

from dualwrite.db import Database
from dualwrite.ddl import LockPolicy, OnlineDdl
from dualwrite.migrator import Migrator
from dualwrite.plan import build_runbook
from dualwrite.spec import RenameColumn

SPEC = RenameColumn(key="bench-ddl", table="users", old="full_name", new="display_name")
# Benchmark fixtures only (the library builds its SQL in dualwrite/dialects/).
TEXT = {"postgresql": "TEXT", "mysql": "VARCHAR(100)", "sqlite": "TEXT"}


def _table(db: Database, rows: int, with_new: bool) -> None:
    t = TEXT[db.dialect.name]
    pk = "INTEGER PRIMARY KEY" if db.dialect.name == "sqlite" else "BIGINT PRIMARY KEY"
    new = f", display_name {t}" if with_new else ""
    db.execute((f"CREATE TABLE users (id {pk}, full_name {t}{new})", ()))
    p = db.dialect.p
    with db.transaction() as tx:
        for lo in range(1, rows + 1, 1000):
            chunk = range(lo, min(lo + 1000, rows + 1))
            tx.execute((f"INSERT INTO users (id, full_name) VALUES "
                        f"{', '.join([f'({p}, {p})'] * len(chunk))}",
                        tuple(v for i in chunk for v in (i, f"User {i}"))))


def _writer_max_wait(url: str, hold: float, alter: threading.Thread, first_id: int) -> float:
    """Hold the table ``hold`` s in another session; start ``alter``; insert rows meanwhile.
    The writer's longest insert."""
    holder, writer = Database.from_url(url), Database.from_url(url)
    locked, release = threading.Event(), threading.Event()  # the holder ends after `hold`

    def hold_it() -> None:
        with holder.transaction() as tx:
            tx.fetchall(("SELECT * FROM users LIMIT 1", ()))
            locked.set()
            release.wait(hold)

    h = threading.Thread(target=hold_it, daemon=True)
    h.start()
    locked.wait(10)
    alter.start()
    time.sleep(0.2)
    p = writer.dialect.p
    waits: list[float] = []
    end = time.monotonic() + hold
    i = first_id
    while time.monotonic() < end or alter.is_alive():
        i += 1
        t0 = time.perf_counter()
        writer.execute((f"INSERT INTO users (id, full_name) VALUES ({p}, {p})", (i, "w")))
        waits.append(time.perf_counter() - t0)
        time.sleep(0.02)
    h.join(10)
    alter.join(60)
    holder.close()
    writer.close()
    return max(waits)


def writer_wait(backend: str, hold: float, lock_timeout: float) -> tuple[float, float, float]:
    """(baseline max wait, dualwrite max wait, applied lock timeout)."""
    with fresh_database(backend) as db:
        _table(db, 1000, with_new=False)
        url = db.url or ""
        plain = Database.from_url(url)
        base = _writer_max_wait(url, hold, threading.Thread(target=lambda: plain.execute(
            ("ALTER TABLE users ADD COLUMN display_name " + TEXT[backend], ())), daemon=True),
            10_000_000)
        plain.execute(("ALTER TABLE users DROP COLUMN display_name", ()))
        plain.close()
        m = Migrator(Database.from_url(url), [SPEC])
        ddl = OnlineDdl(m, policy=LockPolicy(lock_timeout=lock_timeout, retries=100,
                                             backoff=0.2, backoff_max=0.5))
        ours = _writer_max_wait(url, hold, threading.Thread(
            target=lambda: ddl.expand(SPEC.key), daemon=True), 20_000_000)
        m.db.close()
        return base, ours, db.dialect.lock_timeout_applied(lock_timeout)


def plan_vs_real(backend: str, rows: int, rounds: int) -> list[tuple[float, float]]:
    """(estimate, real) seconds per round."""
    out = []
    with fresh_database(backend) as db:
        _table(db, rows, with_new=True)
        m = Migrator(db, [SPEC])
        m.init()
        d = db.dialect
        for _ in range(rounds):
            est = build_runbook(m, SPEC.key).step("backfill").seconds or 0.0
            t0 = time.perf_counter()
            for lo in range(0, rows, 1000):
                db.execute(d.backfill_update(SPEC, ("id",), "forward", (lo,), (lo + 1000,)))
            out.append((est, time.perf_counter() - t0))
            db.execute(("UPDATE users SET display_name = NULL", ()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default="sqlite,postgresql,mysql")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hold", type=float, default=6.0)
    ap.add_argument("--lock-timeout", type=float, default=1.0)
    a = ap.parse_args()
    backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    print(f"1. writer's longest wait while a transaction holds the table {a.hold:g}s")
    print(f"{'backend':<11} {'plain ALTER':>12} {'dualwrite':>10} {'ratio':>7} "
          f"{'in lock timeouts':>17}")
    for b in backends:
        if b == "sqlite":
            continue
        base, ours, lt = writer_wait(b, a.hold, a.lock_timeout)
        print(f"{b:<11} {base:>11.2f}s {ours:>9.2f}s {ours / base:>6.2f}x {ours / lt:>16.2f}x")
    print(f"\n2. plan's backfill estimate vs the real batched backfill, {a.rows} rows")
    print(f"{'backend':<11} {'estimate':>9} {'real':>8} {'ratio (median of ' + str(a.rounds) + ')':>22}")
    for b in backends:
        pairs = plan_vs_real(b, a.rows, a.rounds)
        ratio = statistics.median(e / r for e, r in pairs)
        est = statistics.median(e for e, _ in pairs)
        real = statistics.median(r for _, r in pairs)
        print(f"{b:<11} {est:>8.2f}s {real:>7.2f}s {ratio:>21.2f}x")


if __name__ == "__main__":
    main()
