#!/usr/bin/env python
"""The whole story of a zero-downtime column rename in a Django project, in one command.

    python examples/django_project/run.py [--database-url URL] [--keep]

The shop's ``shop_customer.name`` becomes ``full_name`` while the shop serves requests:
three releases of the code (see ``shopsite/settings.py``) run under ``manage.py
runserver``, the schema changes are Django migrations using dualwrite's operations, and
every stage change is a ``manage.py dualwrite ...`` command. After each step the script
asks the running application (HTTP) and the database (raw SQL) whether everything is as
it should be, and prints one line. Exit status 0 only if every check passed.

Without ``--database-url`` (or ``DATABASE_URL``) it runs on a fresh SQLite file in a
temporary directory; a PostgreSQL or MySQL/MariaDB URL must name an empty database (or
PostgreSQL schema, with ``?options=-csearch_path%3Dname``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from dualwrite.db import Database
from dualwrite.errors import DualwriteError
from dualwrite.schema import inspect_table
from dualwrite.state import StateStore

HERE = Path(__file__).resolve().parent
MANAGE = HERE / "manage.py"
KEY = "customers-full-name"
TABLE = "shop_customer"
SEEDED = 500


class Failed(Exception):
    """A check did not hold: the story stops here."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class App:
    """One release of the shop, served by ``manage.py runserver`` in its own process."""

    def __init__(self, release: int, env: dict[str, str], log: Path) -> None:
        self.release = release
        self.log = log
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        with log.open("ab") as out:
            # --nothreading: one request at a time, so every step sees a settled server
            self.proc = subprocess.Popen(
                [sys.executable, str(MANAGE), "runserver", "--noreload", "--nothreading",
                 f"127.0.0.1:{port}"],
                env={**env, "SHOP_RELEASE": str(release)}, cwd=HERE,
                stdout=out, stderr=subprocess.STDOUT)
        try:
            self._wait_until_up(deadline=time.monotonic() + 30)
        except BaseException:
            self.stop()
            raise

    def _wait_until_up(self, deadline: float) -> None:
        while True:
            if self.proc.poll() is not None:
                raise Failed(f"release {self.release} exited with {self.proc.returncode}:\n"
                             f"{self.log_tail()}")
            try:
                self.get("/healthz")
                return
            except OSError:
                check(time.monotonic() < deadline, f"release {self.release} did not answer "
                                                   f"within 30 s:\n{self.log_tail()}")
                time.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def request(self, method: str, path: str, body: dict[str, Any] | None = None
                ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def get(self, path: str) -> Any:
        status, payload = self.request("GET", path)
        check(status == 200, f"release {self.release}: GET {path} -> {status}: {payload}")
        return payload

    def post(self, path: str, body: dict[str, Any], expect: int = 200) -> Any:
        status, payload = self.request("POST", path, body)
        check(status == expect,
              f"release {self.release}: POST {path} {body} -> {status}: {payload}")
        return payload

    def name_of(self, pk: int) -> str:
        name: str = self.get(f"/customers/{pk}")["name"]
        return name

    def expect_name(self, pk: int, name: str) -> None:
        got = self.name_of(pk)
        check(got == name, f"release {self.release}: GET /customers/{pk} -> name {got!r}, "
                           f"expected {name!r}")

    def wait_for_stage(self, stage: str, timeout: float = 15.0) -> None:
        """Until the application serves ``stage`` (it re-reads the state table every second)."""
        deadline = time.monotonic() + timeout
        while True:
            served = self.get("/healthz")["stages"].get(KEY)
            if served == stage:
                return
            check(time.monotonic() < deadline,
                  f"release {self.release} still serves {served!r}, not {stage!r}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Ctrl-C, as an operator would: the process deregisters from the fleet and exits."""
        deadline = time.monotonic() + 15
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                break
            # Repeated: a Ctrl-C that lands while a request is logged only ends that request.
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=1)
        self.proc.wait()


class Story:
    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.workdir = workdir
        self.env = {**os.environ, "DATABASE_URL": url, "PYTHONUNBUFFERED": "1",
                    "DJANGO_SETTINGS_MODULE": "shopsite.settings"}
        self.db = Database.from_url(url)
        self.apps: list[App] = []
        self.number = 0
        self.step_name = "start"
        self.step_started = time.monotonic()

    # -- output --------------------------------------------------------------------------

    def step(self, name: str) -> None:
        self.number += 1
        self.step_name = name
        self.step_started = time.monotonic()

    def done(self, detail: str) -> None:
        took = time.monotonic() - self.step_started
        print(f"{self.number:>2}. {self.step_name:<10} {detail} ({took:.1f} s)", flush=True)

    # -- the project's own commands ------------------------------------------------------

    def manage(self, release: int, *args: str, expect: int = 0) -> tuple[str, str]:
        """``python manage.py ARGS`` of ``release``: its stdout and stderr."""
        proc = subprocess.run([sys.executable, str(MANAGE), *args], cwd=HERE,
                              env={**self.env, "SHOP_RELEASE": str(release)},
                              capture_output=True, text=True, timeout=300, check=False)
        check(proc.returncode == expect,
              f"release {release}: manage.py {' '.join(args)} exited {proc.returncode}, "
              f"expected {expect}\n{proc.stdout}{proc.stderr}")
        return proc.stdout, proc.stderr

    def dualwrite(self, release: int, *args: str, expect: int = 0) -> Any:
        """``manage.py dualwrite ARGS --json``: its JSON report (on stdout, or an error's on
        stderr)."""
        out, err = self.manage(release, "dualwrite", *args, "--json", expect=expect)
        report = out.strip() or (err.strip().splitlines() or [""])[-1]
        try:
            return json.loads(report)
        except ValueError:
            raise Failed(f"manage.py dualwrite {' '.join(args)}: no JSON report:\n{out}{err}"
                         ) from None

    def advance(self, to: str, reason: str) -> None:
        report = self.dualwrite(2, "advance", KEY, "--reason", reason)
        check(report["steps"][-1]["to"] == to, f"advance: {report}")
        check(self.recorded_stage() == to, f"the recorded stage is not {to}")

    def serve(self, release: int) -> App:
        app = App(release, self.env, self.workdir / f"release-{release}.log")
        self.apps.append(app)
        return app

    # -- the database, read past the application (raw SQL) -------------------------------

    def columns(self) -> set[str]:
        info = inspect_table(self.db, TABLE)
        check(info is not None, f"table {TABLE} does not exist")
        assert info is not None
        return set(info.columns)

    def stored(self, pk: int) -> dict[str, Any]:
        cols = sorted(self.columns() & {"name", "full_name"})
        row = self.db.fetchone((f"SELECT {', '.join(cols)} FROM {TABLE} WHERE id = "
                                f"{self.db.dialect.p}", (pk,)))
        check(row is not None, f"no customer {pk}")
        assert row is not None
        return dict(zip(cols, row, strict=True))

    def recorded_stage(self) -> str:
        """The stage in dualwrite's state table (read with its Python API)."""
        state = StateStore(self.db).find(KEY)
        return "off" if state is None else state.stage.value

    def gate_fleet(self, to: str) -> list[Any]:
        """The application instances the gate of the last step to ``to`` counted."""
        entries = [h for h in StateStore(self.db).history(KEY) if h.to_stage == to]
        check(bool(entries), f"no step to {to} in the history")
        fleet: list[Any] = (entries[-1].details or {}).get("fleet", [])
        return fleet

    def count(self, where: str = "1 = 1") -> int:
        row = self.db.fetchone((f"SELECT COUNT(*) FROM {TABLE} WHERE {where}", ()))
        return int(row[0]) if row else 0

    def expect_stored(self, pk: int, **values: Any) -> None:
        got = self.stored(pk)
        check(got == values, f"customer {pk} is stored as {got}, expected {values}")

    # -- the story -----------------------------------------------------------------------

    def run(self) -> None:
        self.step("migrate")
        if inspect_table(self.db, TABLE) is not None:
            raise Failed(f"{self.db.display_url} already has a {TABLE} table: "
                         "point --database-url at an empty database")
        self.manage(1, "migrate", "shop", "0001")
        check(self.columns() == {"id", "email", "name"}, f"columns: {self.columns()}")
        self.done("release 1: manage.py migrate shop 0001 -> shop_customer(id, email, name)")

        self.step("seed")
        v1 = self.serve(1)
        ids: dict[str, int] = {}
        for email, name in [("ada@example.com", "Ada Lovelace"),
                            ("alan@example.com", "Alan Turing"),
                            ("grace@example.com", "Grace Hopper")]:
            ids[name.split()[0].lower()] = v1.post("/customers", {"email": email, "name": name},
                                                   expect=201)["id"]
        self.manage(1, "seed_customers", "--count", str(SEEDED))
        total = 3 + SEEDED
        check(self.count() == total, f"{self.count()} customers, expected {total}")
        ada, alan, grace = ids["ada"], ids["alan"], ids["grace"]
        v1.expect_name(ada, "Ada Lovelace")
        self.done(f"release 1 serves {v1.base}: 3 sign-ups (POST /customers) + {SEEDED} "
                  f"seeded = {total} customers; GET /customers/{ada} -> 'Ada Lovelace'")

        self.step("init")
        [registered] = self.dualwrite(2, "init")["migrations"]
        check(registered["stage"] == "off", f"init: {registered}")
        check(self.recorded_stage() == "off", "not registered at off")
        self.done(f"manage.py dualwrite init: {KEY} (name -> full_name) registered at off")

        self.step("expand")
        self.manage(2, "migrate", "shop", "0002")
        check("full_name" in self.columns(), "full_name was not added")
        check(self.recorded_stage() == "expand", "AddNewColumn did not record expand")
        nulls = self.count("full_name IS NULL")
        check(nulls == total, f"full_name is set in {total - nulls} rows already")
        self.done(f"manage.py migrate shop 0002 (AddNewColumn): full_name added, NULL in "
                  f"{nulls} rows; stage expand")

        self.step("deploy")
        v2 = self.serve(2)
        v2.wait_for_stage("expand")
        v1.stop()
        v2.expect_name(ada, "Ada Lovelace")
        self.done(f"release 2 (name + full_name, dualwrite_django) replaces release 1 at "
                  f"{v2.base}; GET /customers/{ada} -> 'Ada Lovelace'")

        self.step("dualwrite")
        self.advance("dualwrite", "release 2 deployed")
        v2.wait_for_stage("dualwrite")
        v2.post(f"/customers/{alan}", {"name": "Alan M. Turing"})
        self.expect_stored(alan, name="Alan M. Turing", full_name="Alan M. Turing")
        katherine = v2.post("/customers", {"email": "katherine@example.com",
                                           "name": "Katherine Johnson"}, expect=201)["id"]
        self.expect_stored(katherine, name="Katherine Johnson", full_name="Katherine Johnson")
        total += 1
        nulls = self.count("full_name IS NULL")
        check(nulls == total - 2, f"full_name NULL in {nulls} rows, expected {total - 2}")
        self.done(f"advance: the app mirrors writes: POST rename -> name = full_name = "
                  f"'Alan M. Turing', 1 sign-up; older rows to backfill: {nulls}")

        self.step("backfill")
        self.manage(2, "dualwrite", "backfill", KEY)
        check(self.count("full_name IS NULL") == 0, "the backfill left NULLs")
        check(self.count("full_name = name") == total, "full_name differs from name")
        self.done(f"manage.py dualwrite backfill: full_name = name in all {total} rows")

        self.step("shadow")
        self.advance("shadow", "backfilled")
        v2.wait_for_stage("shadow")
        fleet = self.gate_fleet("shadow")
        check(len(fleet) == 1, f"the shadow gate saw {len(fleet)} instances, expected 1")
        v2.expect_name(grace, "Grace Hopper")
        self.done(f"advance: the gate saw {len(fleet)} live instance mirroring writes; "
                  "reads still come from name, full_name is compared")

        self.step("gate")
        refused = self.dualwrite(2, "advance", KEY, expect=3)
        check(refused["error"] == "TransitionRefused", f"not a refusal: {refused}")
        check(self.recorded_stage() == "shadow", "the refused advance changed the stage")
        self.done(f"advance to live refused (exit 3): {refused['reason']}")

        self.step("raw write")
        p = self.db.dialect.p
        self.db.execute((f"UPDATE {TABLE} SET name = {p} WHERE id = {p}",
                         ("Grace B. Hopper", grace)))  # a script past the ORM: not mirrored
        self.expect_stored(grace, name="Grace B. Hopper", full_name="Grace Hopper")
        v2.expect_name(grace, "Grace B. Hopper")
        logged = f"dualwrite shadow mismatch: {KEY} pk={grace}"
        check(logged in v2.log.read_text(), f"the server log has no {logged!r}")
        self.done(f"a raw SQL UPDATE of name (app mode cannot see it): GET -> 'Grace B. "
                  f"Hopper', shadow mismatch pk={grace} in the server log")

        self.step("verify")
        found = self.dualwrite(2, "verify", KEY, expect=5)
        check(found["mismatches"] == 1 and found["sample_keys"] == [[grace]],
              f"verify found {found}")
        fixed = self.dualwrite(2, "verify", KEY, "--fix")
        check(fixed["clean"] and fixed["fixed"] == 1, f"verify --fix: {fixed}")
        self.expect_stored(grace, name="Grace B. Hopper", full_name="Grace B. Hopper")
        self.done(f"verify: exit 5, 1 differing row ({found['rows_checked']} checked); "
                  "verify --fix: repaired, clean")

        self.step("live")
        self.advance("live", "verify clean")
        v2.wait_for_stage("live")
        found_ids = v2.get("/customers?name=Grace+B.+Hopper")["ids"]
        check(found_ids == [grace], f"search -> {found_ids}")
        v2.expect_name(alan, "Alan M. Turing")
        self.done("advance: reads come from full_name (COALESCE with name); "
                  f"GET /customers?name=Grace+B.+Hopper -> [{grace}]")

        self.step("rollback")
        self.dualwrite(2, "rollback", KEY, "--reason", "rehearsal")
        check(self.recorded_stage() == "shadow", "rollback did not go back to shadow")
        v2.wait_for_stage("shadow")
        v2.expect_name(grace, "Grace B. Hopper")
        self.advance("live", "rehearsal over")
        v2.wait_for_stage("live")
        self.done("rollback live -> shadow (reads from name again), advance -> live again")

        self.step("rampdown")
        self.advance("rampdown", "live is fine")
        v2.wait_for_stage("rampdown")
        v2.post(f"/customers/{ada}", {"name": "Augusta Ada King"})
        self.expect_stored(ada, name="Augusta Ada King", full_name="Augusta Ada King")
        v2.expect_name(ada, "Augusta Ada King")
        self.done("advance: full_name is authoritative, name still written: POST rename -> "
                  "both 'Augusta Ada King'")

        self.step("complete")
        self.advance("complete", "rampdown is fine")
        v2.wait_for_stage("complete")
        v2.post(f"/customers/{katherine}", {"name": "Katherine G. Johnson"})
        self.expect_stored(katherine, name="Katherine G. Johnson",
                           full_name="Katherine G. Johnson")
        v2.expect_name(katherine, "Katherine G. Johnson")
        self.done("advance: nothing is mirrored into name any more; release 2 still writes "
                  "name, so its rename sets full_name too: 'Katherine G. Johnson'")

        self.step("deploy")
        self.manage(3, "migrate", "shop", "0003")
        v3 = self.serve(3)
        v3.wait_for_stage("complete")
        v3.post(f"/customers/{ada}", {"name": "Ada King"})
        check(self.stored(ada) == {"name": "Augusta Ada King", "full_name": "Ada King"},
              f"release 3's rename: {self.stored(ada)}")
        v2.expect_name(ada, "Ada King")  # release 2 reads name as g(full_name)
        dorothy = v3.post("/customers", {"email": "dorothy@example.com",
                                         "name": "Dorothy Vaughan"}, expect=201)["id"]
        total += 1
        self.expect_stored(dorothy, name=None, full_name="Dorothy Vaughan")
        v2.expect_name(dorothy, "Dorothy Vaughan")
        v2.stop()
        self.done("migrate shop 0003 (name nullable); release 3 (full_name only) renames "
                  "'Ada King' (name keeps 'Augusta Ada King') and signs up 'Dorothy Vaughan' "
                  "(name NULL); release 2, still up, reads both right; release 2 stopped")

        self.step("contract")
        self.manage(3, "migrate", "shop", "0004")
        check(self.recorded_stage() == "contract", "DropOldColumn did not record contract")
        check(self.columns() == {"id", "email", "full_name"}, f"columns: {self.columns()}")
        fleet = self.gate_fleet("contract")
        check(len(fleet) == 1, f"the contract gate saw {len(fleet)} instances, expected 1 "
                               "(release 3; release 2 deregistered when it stopped)")
        self.done("manage.py migrate shop 0004 (DropOldColumn): the gate saw 1 instance at "
                  "complete; name dropped, stage contract")

        self.step("after")
        expected = {ada: "Ada King", alan: "Alan M. Turing", grace: "Grace B. Hopper",
                    katherine: "Katherine G. Johnson", dorothy: "Dorothy Vaughan"}
        for pk, name in expected.items():
            v3.expect_name(pk, name)
        check(v3.get("/customers?name=Ada+King")["ids"] == [ada], "search after contract")
        v3.post("/customers", {"email": "mary@example.com", "name": "Mary Jackson"},
                expect=201)
        total += 1
        check(self.count() == total, f"{self.count()} customers, expected {total}")
        check(self.count("full_name IS NULL") == 0, "a customer without full_name")
        self.done(f"release 3: {len(expected)} renamed/new customers read back as expected, "
                  f"search and sign-up work; {total} customers, none lost")

        self.step("history")
        steps = [h["to"] for h in self.dualwrite(3, "history", KEY)]
        expected_steps = ["expand", "dualwrite", "shadow", "live", "shadow", "live",
                          "rampdown", "complete", "contract"]
        check(steps == expected_steps, f"history: {steps}")
        self.done("manage.py dualwrite history: " + " -> ".join(["off", *steps]))

    def close(self) -> None:
        for app in self.apps:
            app.stop()
        self.db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="an empty PostgreSQL/MySQL database (default: a fresh SQLite file)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the working directory (SQLite file, server logs)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="dualwrite-django-example-"))
    url = args.database_url or f"sqlite:///{workdir / 'shop.db'}"
    started = time.monotonic()
    story: Story | None = None
    try:
        story = Story(url, workdir)
        print(f"dualwrite Django example on {story.db.display_url}", flush=True)
        story.run()
    except (Failed, DualwriteError) as exc:
        where = f"step {story.number} ({story.step_name})" if story else "setup"
        print(f"FAILED at {where}: {exc}", file=sys.stderr, flush=True)
        for app in story.apps if story else []:
            print(f"--- release {app.release} log ({app.log}):\n{app.log_tail()}",
                  file=sys.stderr)
        return 1
    finally:
        if story is not None:
            story.close()
        if args.keep:
            print(f"kept {workdir}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(workdir)
    print(f"OK: every check passed in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
