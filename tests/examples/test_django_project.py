"""examples/django_project: its one command walks a whole column rename and exits 0.

The command runs in a subprocess (its Django settings are the example's own, not the test
suite's), on each backend: SQLite exactly as the example's README says (a fresh file in a
temporary directory, kept here with ``--keep`` so the test can read it), PostgreSQL and
MariaDB/MySQL on an isolated schema/database. The test then reads the database itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dualwrite.db import Database
from dualwrite.schema import inspect_table
from dualwrite.stages import Stage
from dualwrite.state import StateStore

RUN = Path(__file__).resolve().parents[2] / "examples" / "django_project" / "run.py"
KEY = "customers-full-name"

STEPS = ["migrate", "seed", "init", "expand", "deploy", "dualwrite", "backfill", "shadow",
         "gate", "raw write", "verify", "live", "rollback", "rampdown", "complete", "deploy",
         "contract", "after", "history"]

#: Lines (or parts of them) the story must print, in this order.
KEY_LINES = [
    "503 customers",
    "registered at off",
    "full_name added, NULL in 503 rows; stage expand",
    "older rows to backfill: 502",
    "full_name = name in all 504 rows",
    "the gate saw 1 live instance mirroring writes",
    "advance to live refused (exit 3): no finished verify since the backfill",
    "shadow mismatch pk=3 in the server log",
    "verify: exit 5, 1 differing row (504 checked); verify --fix: repaired, clean",
    "GET /customers?name=Grace+B.+Hopper -> [3]",
    "rollback live -> shadow",
    "both 'Augusta Ada King'",
    "the gate saw 1 instance at complete; name dropped, stage contract",
    "506 customers, none lost",
    "off -> expand -> dualwrite -> shadow -> live -> shadow -> live -> rampdown -> complete "
    "-> contract",
    "OK: every check passed",
]


def run_example(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",
                                                              "DJANGO_SETTINGS_MODULE")}
    return subprocess.run([sys.executable, str(RUN), *args], capture_output=True, text=True,
                          env=env, timeout=600, check=False)


@pytest.fixture
def example_url(backend: str, db_url: str) -> Iterator[tuple[list[str], str | None]]:
    """The options to run the example with, and its database URL (SQLite: known after
    the run, from the ``kept`` line)."""
    if backend == "sqlite":
        yield ["--keep"], None
    else:
        yield ["--database-url", db_url], db_url


def test_the_example_runs_the_whole_story(example_url: tuple[list[str], str | None]) -> None:
    options, url = example_url
    proc = run_example(*options)
    out = proc.stdout
    kept = re.search(r"^kept (.+)$", out, re.MULTILINE)
    workdir = Path(kept.group(1)) if kept else None
    try:
        assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{proc.stderr}"
        assert "FAILED" not in out + proc.stderr
        # one numbered line per step, in order, each with its duration
        steps = re.findall(r"^\s*(\d+)\. (.+?)\s{2,}.* \(\d+\.\d s\)$", out, re.MULTILINE)
        names = [name.strip() for _, name in steps]
        assert names == STEPS, out
        assert [int(n) for n, _ in steps] == list(range(1, len(STEPS) + 1))
        position = 0
        for line in KEY_LINES:
            found = out.find(line, position)
            assert found >= 0, f"{line!r} missing (or out of order) in:\n{out}"
            position = found
        if url is None:
            assert workdir is not None, out
            url = f"sqlite:///{workdir / 'shop.db'}"
        check_database(url)
        # the example refuses a database it has already used: its exit status means something
        again = run_example("--database-url", url)
        assert again.returncode == 1
        assert "already has a shop_customer table" in again.stderr
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


def check_database(url: str) -> None:
    """The end state, read past the example: old column gone, every name where it belongs,
    the migration recorded at contract with its whole history."""
    db = Database.from_url(url)
    try:
        info = inspect_table(db, "shop_customer")
        assert info is not None
        assert set(info.columns) == {"id", "email", "full_name"}
        rows = dict(db.fetchall(("SELECT email, full_name FROM shop_customer", ())))
        assert len(rows) == 506
        assert all(name for name in rows.values())
        assert {e: rows[e] for e in ("ada@example.com", "alan@example.com", "grace@example.com",
                                     "katherine@example.com", "dorothy@example.com",
                                     "mary@example.com")} == {
            "ada@example.com": "Ada King", "alan@example.com": "Alan M. Turing",
            "grace@example.com": "Grace B. Hopper",
            "katherine@example.com": "Katherine G. Johnson",
            "dorothy@example.com": "Dorothy Vaughan", "mary@example.com": "Mary Jackson"}
        assert rows["customer-499@example.com"] == "Customer 499"
        state = StateStore(db)
        assert state.get(KEY).stage is Stage.CONTRACT
        history = state.history(KEY)
        assert [h.to_stage for h in history][-3:] == ["rampdown", "complete", "contract"]
        assert history[-1].actor == "django-migrate"  # DropOldColumn, in manage.py migrate
        assert state.fleet(KEY) == []  # every release deregistered when it stopped
    finally:
        db.close()
