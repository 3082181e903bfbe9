"""Backfill benchmark: dualwrite's backfill against the baselines, measured in one run.

    python benchmarks/backfill.py                       # PostgreSQL, 1M rows
    python benchmarks/backfill.py --rows 200000 --url mysql://root@127.0.0.1:3306/test

Scenarios, each on a freshly loaded table ``bench(id BIGINT PK, amount NUMERIC(12,2),
amount_cents BIGINT NULL)`` migrating amount -> amount_cents = ROUND(amount * 100):

(a) one unbatched ``UPDATE bench SET amount_cents = f(amount)``: the practical ceiling;
(b) the common hand-written loop ``UPDATE ... WHERE id IN (SELECT id ... WHERE amount_cents
    IS NULL LIMIT 1000)``, committed per batch (stopped after --naive-budget seconds: it
    slows down as it goes, each batch rescanning what is done);
(c) ``dualwrite backfill`` at its defaults;
(d) a concurrent application workload (point reads and dual-written single-row updates,
    paced) alone, then while (c) runs: p50/p99 latency and errors;
(e) the same workload while the backfill runs throttled (``--sleep``, default 0.1 s
    between batches: about half the server's time left to the application).

It prints rows/s and ratios against (a), and the workload's latency ratios. Only numbers
from one run are compared with each other.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dualwrite.backfill import Backfill, BackfillOptions
from dualwrite.db import Database
from dualwrite.migrator import Migrator
from dualwrite.spec import ChangeColumnType
from dualwrite.stages import Stage

SPEC = ChangeColumnType(key="bench-cents", table="bench", old="amount", new="amount_cents",
                        new_type="BIGINT",
                        forward_sql={"postgresql": "CAST(ROUND({old} * 100) AS BIGINT)",
                                     "mysql": "CAST(ROUND({old} * 100) AS SIGNED)"},
                        backward_sql="{new} / 100.0", confidence_window=0)
F = {"postgresql": "CAST(ROUND(amount * 100) AS BIGINT)",
     "mysql": "CAST(ROUND(amount * 100) AS SIGNED)"}


class Bench:
    """One isolated schema (PostgreSQL) or database (MySQL/MariaDB) for the run."""

    def __init__(self, url: str, rows: int) -> None:
        self.admin = Database.from_url(url)
        self.kind = self.admin.dialect.name
        self.rows = rows
        self.name = f"dw_bench_{uuid.uuid4().hex[:8]}"
        if self.kind == "postgresql":
            self.admin.execute((f'CREATE SCHEMA "{self.name}"', ()))
            sep = "&" if "?" in url else "?"
            self.url = f"{url}{sep}options=-csearch_path%3D{self.name}"
        elif self.kind == "mysql":
            self.admin.execute((f"CREATE DATABASE `{self.name}`", ()))
            base = url.split("://", 1)
            self.url = f"{base[0]}://{base[1].split('/', 1)[0]}/{self.name}"
        else:
            raise SystemExit("benchmark PostgreSQL or MySQL/MariaDB")
        self.db = Database.from_url(self.url)

    def load(self) -> None:
        """A fresh table with ``rows`` rows, analyzed, new column NULL."""
        d, n = self.db, self.rows
        d.execute(("DROP TABLE IF EXISTS bench", ()))
        for t in ("dualwrite_backfill", "dualwrite_backfill_runs", "dualwrite_verify",
                  "dualwrite_history", "dualwrite_migrations"):
            d.execute((f"DROP TABLE IF EXISTS {t}", ()))
        if self.kind == "postgresql":
            d.execute(("CREATE TABLE bench (id BIGINT PRIMARY KEY, amount NUMERIC(12,2), "
                       "amount_cents BIGINT)", ()))
            d.execute(("INSERT INTO bench (id, amount) SELECT g, (g %% 100000) / 100.0 "
                       "FROM generate_series(1, %s) g", (n,)))
            d.execute(("ANALYZE bench", ()))
        else:
            d.execute(("CREATE TABLE bench (id BIGINT PRIMARY KEY, amount DECIMAL(12,2), "
                       "amount_cents BIGINT) ENGINE=InnoDB", ()))
            chunk = 5000
            for start in range(1, n + 1, chunk):
                ids = range(start, min(n, start + chunk - 1) + 1)
                d.execute(("INSERT INTO bench (id, amount) VALUES " +
                           ", ".join(f"({i}, {(i % 100000) / 100.0})" for i in ids), ()))
            d.execute(("ANALYZE TABLE bench", ()))

    def close(self) -> None:
        self.db.close()
        if self.kind == "postgresql":
            self.admin.execute((f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE', ()))
        else:
            self.admin.execute((f"DROP DATABASE IF EXISTS `{self.name}`", ()))
        self.admin.close()


def single_update(b: Bench) -> float:
    t0 = time.perf_counter()
    n = b.db.execute((f"UPDATE bench SET amount_cents = {F[b.kind]}", ()))
    dt = time.perf_counter() - t0
    assert n == b.rows, n
    return b.rows / dt


def naive_loop(b: Bench, budget: float) -> tuple[float, int]:
    """rows/s of the hand-written loop, and rows done before the budget ran out."""
    sql = (f"UPDATE bench SET amount_cents = {F[b.kind]} WHERE id IN (SELECT id FROM "
           f"(SELECT id FROM bench WHERE amount_cents IS NULL LIMIT 1000) s)")
    done = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < budget:
        n = b.db.execute((sql, ()))
        if n == 0:
            break
        done += n
    return done / (time.perf_counter() - t0), done


def dualwrite_backfill(b: Bench, options: BackfillOptions | None = None) -> float:
    m = Migrator(b.db, [SPEC], actor="bench")
    m.init()
    m.advance(SPEC.key, Stage.DUALWRITE)
    t0 = time.perf_counter()
    res = Backfill(b.db, SPEC, options).run()
    dt = time.perf_counter() - t0
    assert res.finished, res
    return b.rows / dt


class Workload:
    """Paced point reads and dual-written updates from ``threads`` threads."""

    def __init__(self, url: str, rows: int, threads: int, pace: float) -> None:
        self.url, self.rows, self.threads, self.pace = url, rows, threads, pace
        self.lat: list[float] = []
        self.errors = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def _run(self, seed: int) -> None:
        db = Database.from_url(self.url)
        p = db.dialect.p
        rnd = random.Random(seed)
        f = F[db.dialect.name]
        lat: list[float] = []
        errors = 0
        while not self.stop.is_set():
            i = rnd.randint(1, self.rows)
            t0 = time.perf_counter()
            try:
                if rnd.random() < 0.5:
                    db.fetchone((f"SELECT amount, amount_cents FROM bench WHERE id = {p}", (i,)))
                else:
                    amount = rnd.randint(0, 10_000_000) / 100
                    db.execute((f"UPDATE bench SET amount = {p}, amount_cents = "
                                f"{f.replace('amount', p)} WHERE id = {p}", (amount, amount, i)))
            except Exception:  # noqa: BLE001 -- counted, the workload goes on
                errors += 1
            lat.append(time.perf_counter() - t0)
            time.sleep(self.pace)
        db.close()
        with self._lock:
            self.lat.extend(lat)
            self.errors += errors

    def run_while(self, fn: Any) -> Any:
        threads = [threading.Thread(target=self._run, args=(s,)) for s in range(self.threads)]
        for t in threads:
            t.start()
        try:
            return fn()
        finally:
            self.stop.set()
            for t in threads:
                t.join()

    def percentiles(self) -> tuple[float, float, int]:
        qs = statistics.quantiles(self.lat, n=100)
        return qs[49] * 1000, qs[98] * 1000, len(self.lat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--naive-budget", type=float, default=60.0,
                    help="seconds the hand-written loop may run (it is stopped after)")
    ap.add_argument("--threads", type=int, default=2, help="workload threads")
    ap.add_argument("--pace", type=float, default=0.005, help="workload sleep between ops")
    ap.add_argument("--repeat", type=int, default=2,
                    help="runs of (a) and (c), interleaved; the best of each is compared")
    ap.add_argument("--throttled-sleep", type=float, default=0.1,
                    help="the backfill's --sleep in scenario (e)")
    args = ap.parse_args()
    b = Bench(args.url, args.rows)
    try:
        print(f"{b.kind}, {args.rows:,} rows")
        a_runs, c_runs = [], []
        for _ in range(args.repeat):  # interleaved, best of each: the host is shared
            b.load()
            a_runs.append(single_update(b))
            b.load()
            c_runs.append(dualwrite_backfill(b))
        a, c = max(a_runs), max(c_runs)
        print(f"(a) single UPDATE          {a:12,.0f} rows/s  (runs: "
              f"{', '.join(f'{x:,.0f}' for x in a_runs)})")
        b.load()
        naive, naive_rows = naive_loop(b, args.naive_budget)
        note = "" if naive_rows >= args.rows else \
            f" (stopped after {args.naive_budget:.0f}s at {naive_rows:,} rows)"
        print(f"(b) naive IS NULL loop     {naive:12,.0f} rows/s{note}")
        print(f"(c) dualwrite backfill     {c:12,.0f} rows/s  (runs: "
              f"{', '.join(f'{x:,.0f}' for x in c_runs)})")
        b.load()
        base = Workload(b.url, args.rows, args.threads, args.pace)
        base.run_while(lambda: time.sleep(max(5.0, args.rows / c)))
        b.load()
        loaded = Workload(b.url, args.rows, args.threads, args.pace)
        d = loaded.run_while(lambda: dualwrite_backfill(b))
        print(f"(d) dualwrite backfill under workload {d:12,.0f} rows/s")
        b.load()
        slowed = Workload(b.url, args.rows, args.threads, args.pace)
        e = slowed.run_while(lambda: dualwrite_backfill(
            b, BackfillOptions(sleep=args.throttled_sleep)))
        print(f"(e) throttled backfill under workload {e:12,.0f} rows/s")
        p50b, p99b, nb = base.percentiles()
        p50l, p99l, nl = loaded.percentiles()
        p50t, p99t, nt = slowed.percentiles()
        print()
        print("| measure | value | ratio |")
        print("|---|---|---|")
        print(f"| (a) single UPDATE rows/s | {a:,.0f} | 1.00 |")
        print(f"| (b) naive loop rows/s{note} | {naive:,.0f} | {naive / a:.2f} |")
        print(f"| (c) dualwrite backfill rows/s | {c:,.0f} | {c / a:.2f} |")
        print(f"| (d) backfill rows/s under workload | {d:,.0f} | {d / a:.2f} |")
        print(f"| workload p50 ms alone / during backfill | {p50b:.2f} / {p50l:.2f} | "
              f"{p50l / p50b:.2f} |")
        print(f"| workload p99 ms alone / during backfill | {p99b:.2f} / {p99l:.2f} | "
              f"{p99l / p99b:.2f} |")
        print(f"| workload ops (errors) alone / during | {nb} ({base.errors}) / {nl} "
              f"({loaded.errors}) | |")
        print(f"| (e) throttled backfill rows/s under workload | {e:,.0f} | {e / a:.2f} |")
        print(f"| workload p50 ms alone / during throttled | {p50b:.2f} / {p50t:.2f} | "
              f"{p50t / p50b:.2f} |")
        print(f"| workload p99 ms alone / during throttled | {p99b:.2f} / {p99t:.2f} | "
              f"{p99t / p99b:.2f} |")
        print(f"| workload ops (errors) during throttled | {nt} ({slowed.errors}) | |")
    finally:
        b.close()


if __name__ == "__main__":
    main()
