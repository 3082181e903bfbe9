"""The whole migration of the shop under live traffic, with one command::

    python examples/sqlalchemy_app/run.py                  # embedded SQLite, a temp file
    python examples/sqlalchemy_app/run.py --database-url postgresql://user@host/db

It creates and seeds ``orders``, serves the shop (``app.py``) over HTTP, starts customers
that create, update and read back their orders all along (each read is checked against
what that customer last wrote), and drives the migration ``amount`` -> ``amount_cents``
with the real ``dualwrite`` CLI in subprocesses, deploying the shop's releases 2 and 3 at
the right moments. One line per step; a summary at the end. Exit 0 only if no request
failed, no read was stale, verify was clean and every order holds, after contract, the
amount its customer last wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import money
from app import (
    SPEC_FILE,
    STAGE_CACHE_SECONDS,
    Release1,
    Release2,
    Release3,
    ShopApp,
    create_orders_table,
    dualwrite_context,
    engine_for,
    load_migrations,
    orders_columns,
    serve,
)
from sqlalchemy import Engine, inspect, text

from dualwrite.db import Database, redact_url
from dualwrite.errors import DualwriteError
from dualwrite.migrator import Migrator

HERE = Path(__file__).resolve().parent
KEY = "orders-amount-cents"
ACTOR = "sqlalchemy-app-example"


class StepFailed(Exception):
    """A step of the story went wrong: stop, clean up, exit 1."""


# -- output -------------------------------------------------------------------------------

class Log:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def step(self, name: str, message: str) -> None:
        print(f"[{time.monotonic() - self.started:5.1f}s] {name:<9} {message}", flush=True)


# -- the dualwrite CLI, in subprocesses -----------------------------------------------------

@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def summary(self) -> str:
        """The line that says what the command did (its last one, hints aside)."""
        lines = [line.strip() for line in self.stdout.splitlines()
                 if line.strip() and not line.startswith(("next:", "note:"))]
        return lines[-1] if lines else "(no output)"


class Cli:
    """Runs ``dualwrite --database-url URL --spec dualwrite.toml COMMAND`` like an operator."""

    def __init__(self, database_url: str, log: Log, verbose: bool) -> None:
        script = Path(sys.executable).with_name("dualwrite")
        self.program = [str(script)] if script.exists() else [sys.executable, "-m", "dualwrite"]
        self.database_url = database_url
        self.log = log
        self.verbose = verbose
        # the spec names its Python transforms by import path (money:to_cents)
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])}

    def run(self, *args: str) -> CliResult:
        cmd = [*self.program, "--database-url", self.database_url, "--spec", str(SPEC_FILE),
               "--actor", ACTOR, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=300,
                              check=False)
        if self.verbose:
            for line in (proc.stdout + proc.stderr).splitlines():
                print(f"          | {line}", flush=True)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    def step(self, name: str, *args: str, wait_for_fleet: bool = False) -> CliResult:
        """Run one command and print one line; a refusal because the application has not
        picked the stage up yet (exit 3, "instance") is retried for up to 30 s."""
        shown = shlex.join(["dualwrite", *args])
        started = time.monotonic()
        refused_at: float | None = None
        while True:
            res = self.run(*args)
            if (wait_for_fleet and res.code == 3 and "instance" in res.stderr
                    and time.monotonic() < started + 30):
                refused_at = refused_at or time.monotonic()
                time.sleep(0.2)
                continue
            break
        note = "" if refused_at is None else \
            f" (after {time.monotonic() - refused_at:.1f}s waiting for the shop to pick up " \
            "the stage)"
        if res.code != 0:
            error = (res.stderr.strip() or res.stdout.strip()).replace("\n", " / ")
            self.log.step(name, f"$ {shown}  FAILED (exit {res.code}): {error}")
            raise StepFailed(f"{shown} exited {res.code}")
        self.log.step(name, f"$ {shown}  =>  {res.summary().removeprefix(KEY + ': ')}{note}")
        return res

    def wait_for_fleet(self, name: str, stage: str) -> None:
        """Like an operator after an advance: ``dualwrite status`` until every live instance
        of the shop reports ``stage``. The backfill must not start before: an instance that
        still writes the old column alone would leave stale rows behind it."""
        started = time.monotonic()
        while True:
            res = self.run("status", KEY, "--json")
            if res.code != 0:
                self.log.step(name, f"$ dualwrite status {KEY}  FAILED (exit {res.code}): "
                                    f"{res.stderr.strip()}")
                raise StepFailed(f"dualwrite status exited {res.code}")
            fleet = json.loads(res.stdout)[0]["fleet"]
            behind = [i["instance_id"] for i in fleet if i["stage"] != stage]
            if not behind:
                break
            if time.monotonic() > started + 30:
                raise StepFailed(f"instances {behind} did not pick {stage} up in 30s")
            time.sleep(0.2)
        # the instance reports a stage when a first request sees it; the others of that
        # instance follow within the adapter's stage cache period
        time.sleep(STAGE_CACHE_SECONDS)
        self.log.step(name, f"$ dualwrite status {KEY} --json  =>  {len(fleet)} live "
                            f"instance(s), all serving {stage}")


# -- the shop's customers -------------------------------------------------------------------

@dataclass
class Tally:
    creates: int = 0
    updates: int = 0
    reads: int = 0
    errors: list[str] = field(default_factory=list)
    stale_reads: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return self.creates + self.updates + self.reads


class Customer(threading.Thread):
    """Sends requests one after another: create an order, change an amount, read an order
    back. It owns its orders (nobody else writes them), so every read must return exactly
    what it last wrote."""

    def __init__(self, index: int, base_url: str, orders: dict[int, str], pace: float,
                 stop: threading.Event) -> None:
        super().__init__(name=f"customer-{index}", daemon=True)
        self.base_url = base_url
        self.orders = orders  # order id -> the amount this customer last wrote
        self.ids = list(orders)
        self.pace = pace
        self.halt = stop
        self.rng = random.Random(index)
        self.tally = Tally()
        # no proxy from the environment for 127.0.0.1
        self.http = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def request(self, method: str, path: str, body: dict[str, Any] | None = None
                ) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(
            self.base_url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"X-Customer": self.name, "Content-Type": "application/json"})
        try:
            with self.http.open(req, timeout=60) as resp:
                return int(resp.status), json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read())
            except ValueError:
                return exc.code, {"error": exc.reason}

    def amount(self) -> str:
        return f"{self.rng.randint(0, 99_999)}.{self.rng.randint(0, 99):02d}"

    def check(self, what: str, order_id: int, status: int, body: dict[str, Any],
              expected_status: int) -> None:
        if status != expected_status:
            self.tally.errors.append(f"{what} order {order_id}: HTTP {status} "
                                     f"{body.get('error', body)}")
        elif body.get("amount") != self.orders[order_id]:
            self.tally.stale_reads.append(f"{what} order {order_id}: got {body.get('amount')!r},"
                                          f" last wrote {self.orders[order_id]!r}")

    def create(self) -> None:
        amount = self.amount()
        status, body = self.request("POST", "/orders", {"customer": self.name, "amount": amount})
        self.tally.creates += 1
        if status != 201 or not isinstance(body.get("id"), int):
            self.tally.errors.append(f"create: HTTP {status} {body.get('error', body)}")
            return
        self.orders[body["id"]] = amount
        self.ids.append(body["id"])
        self.check("create", body["id"], status, body, 201)

    def update(self, order_id: int) -> None:
        amount = self.amount()
        status, body = self.request("PATCH", f"/orders/{order_id}", {"amount": amount})
        self.tally.updates += 1
        if status == 200:
            self.orders[order_id] = amount
        self.check("update", order_id, status, body, 200)

    def read(self, order_id: int) -> None:
        status, body = self.request("GET", f"/orders/{order_id}")
        self.tally.reads += 1
        self.check("read", order_id, status, body, 200)

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                roll = self.rng.random()
                if roll < 0.15 or not self.ids:
                    self.create()
                elif roll < 0.5:
                    order_id = self.rng.choice(self.ids)
                    self.update(order_id)
                    self.read(order_id)  # read your own write
                else:
                    self.read(self.rng.choice(self.ids))
            except Exception as exc:  # noqa: BLE001 -- counted and shown in the summary
                self.tally.errors.append(f"{type(exc).__name__}: {exc}")
            self.halt.wait(self.pace)


class Traffic:
    """The customers, each owning a share of the seeded orders."""

    def __init__(self, base_url: str, seeded: dict[int, str], customers: int,
                 pace: float) -> None:
        self.stop_event = threading.Event()
        self.customers = [
            Customer(i, base_url, {k: v for k, v in seeded.items() if k % customers == i},
                     pace, self.stop_event) for i in range(customers)]

    def start(self) -> Traffic:
        for c in self.customers:
            c.start()
        return self

    def stop(self) -> Tally:
        self.stop_event.set()
        for c in self.customers:
            c.join(timeout=120)
        total = Tally()
        for c in self.customers:
            total.creates += c.tally.creates
            total.updates += c.tally.updates
            total.reads += c.tally.reads
            total.errors += c.tally.errors
            total.stale_reads += c.tally.stale_reads
        return total

    def expected(self) -> dict[int, str]:
        """Every order and the amount its customer last wrote."""
        return {k: v for c in self.customers for k, v in c.orders.items()}


# -- the story ------------------------------------------------------------------------------

@dataclass
class Outcome:
    tally: Tally = field(default_factory=Tally)
    rows_verified: int = 0
    verify_clean: bool = False
    orders_checked: int = 0
    orders_wrong: list[str] = field(default_factory=list)
    old_column_dropped: bool = False
    failure: str | None = None
    expected: dict[int, str] = field(default_factory=dict)
    #: Transactions the shop retried after a deadlock or lock timeout.
    retries: int = 0

    @property
    def ok(self) -> bool:
        return (self.failure is None and not self.tally.errors and not self.tally.stale_reads
                and self.verify_clean and self.old_column_dropped and not self.orders_wrong
                and self.orders_checked > 0)


def prepare(engine: Engine, database_url: str, rows: int, reset: bool) -> dict[int, str]:
    """Create and seed ``orders`` (refusing to touch an existing one unless ``reset``)."""
    db = Database.from_url(database_url)
    try:
        migrator = Migrator(db, load_migrations())
        registered = migrator.state.is_initialized() and \
            migrator.state.find(KEY) is not None
        exists = inspect(engine).has_table("orders")
        if (exists or registered) and not reset:
            raise StepFailed(f"{db.display_url} already has "
                             f"{'a table orders' if exists else 'dualwrite state for ' + KEY}; "
                             "pass --reset to drop it and start over (or use another database)")
        if registered:
            migrator.state.forget(KEY)
        if exists:
            with engine.begin() as conn:
                conn.execute(text("DROP TABLE orders"))
        for query in db.dialect.concurrent_access():  # SQLite: WAL, readers beside a writer
            db.execute_autocommit(query)
    finally:
        db.close()
    return create_orders_table(engine, rows)


def legacy_job(engine: Engine, order_ids: list[int]) -> None:
    """A nightly script that updates amounts with raw SQL: the adapter cannot see it."""
    with engine.begin() as conn:
        for order_id in order_ids:
            conn.execute(text("UPDATE orders SET amount = '0.01' WHERE id = :id"),
                         {"id": order_id})


def story(args: argparse.Namespace, database_url: str, log: Log, out: Outcome) -> None:
    cli = Cli(database_url, log, args.verbose)
    engine = engine_for(database_url)
    try:
        seeded = prepare(engine, database_url, args.rows, args.reset)
        log.step("setup", f"created orders with {len(seeded):,} rows (amount: dollars as text)")
        shop = ShopApp(Release1(database_url))
        server = serve(dualwrite_context(shop))
        threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
        traffic = Traffic(f"http://127.0.0.1:{server.server_port}", seeded, args.customers,
                          args.pace).start()
        log.step("deploy", f"release 1 (maps amount only) serves http://127.0.0.1:"
                           f"{server.server_port}; {args.customers} customers send requests")
        try:
            migrate(cli, shop, engine, database_url, seeded, args, log, out)
        except (StepFailed, DualwriteError) as exc:
            out.failure = str(exc)
        finally:
            out.tally = traffic.stop()
            server.shutdown()
            server.server_close()
            shop.release.stop()
            out.retries = sum(r.retries for r in shop.releases)
        out.expected = traffic.expected()
        if out.failure is None:
            check(engine, out, log)
            history = json.loads(cli.run("history", KEY, "--json").stdout or "[]")
            log.step("history", f"$ dualwrite history {KEY}  =>  {len(history)} transitions "
                                "recorded, with who, when and why")
    finally:
        engine.dispose()


def migrate(cli: Cli, shop: ShopApp, engine: Engine, database_url: str,
            seeded: dict[int, str], args: argparse.Namespace, log: Log, out: Outcome) -> None:
    """The runbook, step by step, while the customers keep sending requests."""
    dwell = args.dwell
    cli.step("init", "init")                    # state tables; the spec checked, stage off
    cli.step("expand", "expand", KEY)           # ADD COLUMN amount_cents, NULL, online
    time.sleep(dwell)
    # deploy the release that maps amount_cents and installs the adapter
    shop.deploy(Release2(database_url))
    log.step("deploy", "release 2 (maps amount_cents too, adapter installed); "
                       "release 1 drained and stopped")
    time.sleep(dwell)
    # dualwrite: every write of amount also writes amount_cents; reads stay on amount
    cli.step("advance", "advance", KEY, "--reason", "release 2 mirrors writes")
    cli.wait_for_fleet("status", "dualwrite")
    cli.step("backfill", "backfill", KEY)       # amount_cents = f(amount) for the old rows
    # shadow: reads still from amount; each loaded row is compared with f(amount)
    cli.step("advance", "advance", KEY, wait_for_fleet=True)
    time.sleep(dwell)
    if args.legacy_writer:
        ids = sorted(seeded)[-3:]
        legacy_job(engine, ids)
        log.step("legacy", f"a nightly job sets amount with raw SQL on orders {ids}: "
                           "app mode cannot mirror it (trigger mode would)")
    verify(cli, out, "verify")                  # the live gate reads this result
    # live: reads from COALESCE(amount_cents, f(amount))
    cli.step("advance", "advance", KEY)
    time.sleep(dwell)
    # a rehearsal: back to shadow (both columns are written, nothing to repair), and again
    cli.step("rollback", "rollback", KEY, "--reason", "rehearse: reads back on amount")
    time.sleep(dwell)
    cli.step("advance", "advance", KEY, wait_for_fleet=True)
    time.sleep(dwell)
    # rampdown: amount_cents is the source of truth; amount = g(amount_cents) still written
    cli.step("advance", "advance", KEY, wait_for_fleet=True)
    time.sleep(dwell)
    verify(cli, out, "verify")
    # complete: amount is no longer needed (the example skips the 24h confidence window)
    cli.step("advance", "advance", KEY, "--confidence-window", "0s", wait_for_fleet=True)
    time.sleep(dwell)
    # deploy the release that forgets amount, then drop it
    shop.deploy(Release3(database_url))
    log.step("deploy", "release 3 (maps amount_cents only); release 2 drained, "
                       "adapter uninstalled")
    time.sleep(dwell)
    cli.step("contract", "contract", KEY, "--confirm", KEY, "--confidence-window", "0s")
    time.sleep(dwell)


def verify(cli: Cli, out: Outcome, name: str) -> None:
    res = cli.run("verify", KEY, "--json")
    try:
        report = json.loads(res.stdout)
    except ValueError:
        report = None
    if not isinstance(report, dict):
        cli.log.step(name, f"$ dualwrite verify {KEY}  FAILED (exit {res.code}): "
                           f"{res.stderr.strip()}")
        raise StepFailed(f"dualwrite verify exited {res.code}")
    out.rows_verified = int(report["rows_checked"])
    out.verify_clean = bool(report["clean"]) and res.code == 0
    cli.log.step(name, f"$ dualwrite verify {KEY}  =>  {report['rows_checked']:,} rows "
                       f"checked, {report['mismatches']} mismatching, "
                       f"{report['unbackfilled']} unbackfilled"
                       + ("" if out.verify_clean else f" (sample: {report['sample_keys']})"))
    if not out.verify_clean:
        raise StepFailed(f"verify found {report['mismatches'] + report['unbackfilled']} "
                         "differing row(s)")


def check(engine: Engine, out: Outcome, log: Log) -> None:
    """After contract: the old column is gone and every order holds, in amount_cents, the
    amount its customer last wrote."""
    columns = orders_columns(engine)
    out.old_column_dropped = "amount" not in columns and "amount_cents" in columns
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, amount_cents FROM orders"))
        stored = {int(r[0]): r[1] for r in rows}
    for order_id, amount in sorted(out.expected.items()):
        got = stored.get(order_id)
        if got is None or money.from_cents(int(got)) != amount:
            out.orders_wrong.append(f"order {order_id}: amount_cents {got!r}, expected "
                                    f"{money.to_cents(amount)}")
    out.orders_checked = len(out.expected)
    log.step("check", f"orders columns {columns}; {out.orders_checked - len(out.orders_wrong):,}"
                      f" of {out.orders_checked:,} orders hold the amount their customer "
                      "last wrote")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Migrate the shop's orders.amount (text dollars) to amount_cents (integer "
                    "cents) under live traffic, with the dualwrite CLI and the SQLAlchemy "
                    "adapter.")
    parser.add_argument("--database-url", metavar="URL",
                        help="postgresql://user@host/db or mysql://user@host/db (default: "
                             "SQLite in a temporary file)")
    parser.add_argument("--reset", action="store_true",
                        help="drop an existing orders table and its dualwrite state first")
    parser.add_argument("--rows", type=int, default=5000, help="seeded orders (default 5000)")
    parser.add_argument("--customers", type=int, default=4,
                        help="customer threads sending requests (default 4)")
    parser.add_argument("--pace", type=float, default=0.002,
                        help="seconds each customer waits between requests (default 0.002)")
    parser.add_argument("--dwell", type=float, default=0.5,
                        help="seconds of traffic between steps (default 0.5)")
    parser.add_argument("--legacy-writer", action="store_true",
                        help="also run a job that writes amount with raw SQL, bypassing the "
                             "adapter: verify catches it and the run fails")
    parser.add_argument("--report", metavar="FILE",
                        help="write the outcome as JSON (with every order's expected amount)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show the CLI's whole output")
    args = parser.parse_args(argv)

    tmp = None if args.database_url else tempfile.mkdtemp(prefix="dualwrite-sqla-")
    database_url = args.database_url or f"sqlite:///{Path(tmp or '.') / 'shop.db'}"
    log = Log()
    out = Outcome()
    print(f"dualwrite + SQLAlchemy: the shop migrates orders.amount -> amount_cents under "
          f"traffic\ndatabase: {redact_url(database_url)}\n"
          f"CLI: dualwrite --database-url URL --spec {SPEC_FILE} COMMAND\n", flush=True)
    try:
        story(args, database_url, log, out)
    except (StepFailed, DualwriteError) as exc:
        out.failure = str(exc)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    t = out.tally
    print(f"\nsummary: {t.requests:,} requests served ({t.creates:,} creates, {t.updates:,} "
          f"updates, {t.reads:,} reads; {out.retries} retried after a deadlock), errors "
          f"{len(t.errors)}, stale reads "
          f"{len(t.stale_reads)}, rows verified {out.rows_verified:,}, orders checked after "
          f"contract {out.orders_checked - len(out.orders_wrong):,}/{out.orders_checked:,}")
    for problem in (t.errors[:5] + t.stale_reads[:5] + out.orders_wrong[:5]):
        print(f"  ! {problem}")
    if out.failure:
        print(f"  ! stopped: {out.failure}")
    if args.report:
        Path(args.report).write_text(json.dumps({
            "ok": out.ok, "requests": t.requests, "creates": t.creates, "updates": t.updates,
            "reads": t.reads, "retries": out.retries, "errors": t.errors,
            "stale_reads": t.stale_reads,
            "rows_verified": out.rows_verified, "verify_clean": out.verify_clean,
            "old_column_dropped": out.old_column_dropped, "orders_wrong": out.orders_wrong,
            "failure": out.failure, "expected": out.expected}))
    print("OK: zero errors, zero stale reads, verify clean, amount dropped" if out.ok
          else "FAILED", flush=True)
    return 0 if out.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
