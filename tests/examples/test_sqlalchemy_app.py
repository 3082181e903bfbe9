"""examples/sqlalchemy_app: the one command migrates the shop under traffic on every
backend, exits 0, and leaves the database as the story says (old column dropped, every
order holding the amount its customer last wrote); a writer outside the adapter fails it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dualwrite.db import Database
from dualwrite.migrator import Migrator
from dualwrite.schema import inspect_table
from dualwrite.stages import Stage

RUN = Path(__file__).resolve().parents[2] / "examples" / "sqlalchemy_app" / "run.py"
KEY = "orders-amount-cents"
SEEDED = 5000  # run.py's default --rows
SUMMARY = re.compile(r"^summary: ([\d,]+) requests served \(([\d,]+) creates, ([\d,]+) "
                     r"updates, ([\d,]+) reads; \d+ retried after a deadlock\), errors (\d+), "
                     r"stale reads (\d+), rows verified ([\d,]+)", re.MULTILINE)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUN), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300, check=False)


def number(text: str) -> int:
    return int(text.replace(",", ""))


def cents(amount: str) -> int:
    """The expected amount_cents of a dollar amount (independent of the example's code)."""
    return int(Decimal(amount) * 100)


def step_lines(output: str, step: str) -> list[str]:
    return [line for line in output.splitlines() if re.match(rf"^\[\s*[\d.]+s\] {step}\s", line)]


def test_the_shop_migrates_under_traffic(backend: str, db_url: str, tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    proc = run("--database-url", db_url, "--report", str(report_file), cwd=tmp_path)
    out = proc.stdout
    print(out)
    assert proc.returncode == 0, out + proc.stderr
    assert out.rstrip().endswith("OK: zero errors, zero stale reads, verify clean, amount dropped")

    # one line per step, in the order of the runbook, each from the real CLI
    for step, count in (("setup", 1), ("deploy", 3), ("init", 1), ("expand", 1),
                        ("backfill", 1), ("advance", 6), ("verify", 2), ("rollback", 1),
                        ("status", 1), ("contract", 1), ("check", 1), ("history", 1)):
        assert len(step_lines(out, step)) == count, (step, out)
    moves = [m.group(1) for line in step_lines(out, "(advance|rollback)")
             if (m := re.search(r"=>\s+(\w+ -> \w+)", line))]
    assert moves == ["expand -> dualwrite", "dualwrite -> shadow", "shadow -> live",
                     "live -> shadow", "shadow -> live", "live -> rampdown",
                     "rampdown -> complete"]
    assert "$ dualwrite contract orders-amount-cents --confirm orders-amount-cents" in out
    backfill = step_lines(out, "backfill")[0]
    assert re.search(r"forward finished: walked \d+ rows", backfill), backfill
    for line in step_lines(out, "verify"):
        assert re.search(r"=>\s+[\d,]+ rows checked, 0 mismatching, 0 unbackfilled$", line), line

    m = SUMMARY.search(out)
    assert m, out
    requests, creates, updates, reads, errors, stale, verified = map(number, m.groups())
    assert (errors, stale) == (0, 0)
    assert requests == creates + updates + reads and creates and updates and reads
    assert verified >= SEEDED

    report: dict[str, Any] = json.loads(report_file.read_text())
    assert report["ok"] and report["errors"] == [] and report["stale_reads"] == []
    expected = {int(k): cents(v) for k, v in report["expected"].items()}
    assert len(expected) == SEEDED + creates  # every order the customers created is known

    db = Database.from_url(db_url)
    try:
        # contract dropped the old column; the new one holds every acknowledged write
        table = inspect_table(db, "orders")
        assert table is not None
        assert sorted(table.columns) == ["amount_cents", "customer", "id"]
        stored = {int(r[0]): r[1] for r in db.fetchall(("SELECT id, amount_cents FROM orders",
                                                        ()))}
        assert stored == expected
        state = Migrator(db, []).state
        assert state.get(KEY).stage is Stage.CONTRACT
        moves_recorded = [(e.from_stage, e.to_stage) for e in state.history(KEY)]
        assert ("live", "shadow") in moves_recorded
        assert moves_recorded[-1] == ("complete", "contract")
    finally:
        db.close()


@pytest.mark.sqlite
def test_the_one_command_needs_no_setup(tmp_path: Path) -> None:
    """Exactly the command of the README: SQLite in a temporary file, removed afterwards."""
    proc = run(cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = re.search(r"^database: sqlite:///(\S+)$", proc.stdout, re.MULTILINE)
    assert m, proc.stdout
    assert not Path(m.group(1)).exists()
    assert SUMMARY.search(proc.stdout)
    assert list(tmp_path.iterdir()) == []  # nothing left in the working directory


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_writer_outside_the_adapter_fails_the_run(db_url: str, tmp_path: Path) -> None:
    """Raw SQL that bypasses the adapter is not mirrored in app mode: verify catches the
    rows it wrote, the run stops before live and exits 1."""
    report_file = tmp_path / "report.json"
    proc = run("--database-url", db_url, "--legacy-writer", "--dwell", "0.2",
               "--report", str(report_file), cwd=tmp_path)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert out.rstrip().endswith("FAILED")
    (verify,) = step_lines(out, "verify")
    assert re.search(r"[\d,]+ rows checked, 3 mismatching, 0 unbackfilled", verify), verify
    assert "stopped: verify found 3 differing row(s)" in out
    assert not step_lines(out, "contract")
    report = json.loads(report_file.read_text())
    assert not report["ok"] and not report["verify_clean"]
    db = Database.from_url(db_url)
    try:
        assert Migrator(db, []).state.get(KEY).stage is Stage.SHADOW
        table = inspect_table(db, "orders")
        assert table is not None and "amount" in table.columns
    finally:
        db.close()
