"""watch (one render and JSON) and the Prometheus exporter (scraped for real), every backend."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from dualwrite.backfill import Backfill, Verifier
from dualwrite.cli import main
from dualwrite.db import Database
from dualwrite.ddl import OnlineDdl
from dualwrite.exporter import serve_metrics
from dualwrite.migrator import Migrator
from dualwrite.spec import RenameColumn
from dualwrite.stages import Stage
from dualwrite.watch import Watcher
from tests.helpers import users_table

KEY = "users-display-name"
SPEC = RenameColumn(key=KEY, table="users", old="full_name", new="display_name")
ROWS = 50


@pytest.fixture
def migrating(db: Database) -> Migrator:
    """A migration in dualwrite with a finished backfill, a clean verify, two instances."""
    users_table(db, ROWS)
    m = Migrator(db, [SPEC])
    m.init()
    OnlineDdl(m).expand(KEY)
    m.advance(KEY, Stage.DUALWRITE)
    Backfill(db, SPEC).run()
    Verifier(db, SPEC).run()
    for pod in ("pod-a", "pod-b"):
        m.state.heartbeat(pod, "host", 1, "1.0", [(KEY, Stage.DUALWRITE)])
    return m


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_snapshot(db: Database, migrating: Migrator) -> None:
    (view,) = Watcher(db).snapshot(KEY)
    assert view.state.stage is Stage.DUALWRITE
    (fwd,) = view.backfills
    assert fwd.state == "done" and fwd.rows_done == ROWS and fwd.ratio == 1.0
    assert fwd.eta_seconds is None
    assert view.verify is not None and view.verify.mismatches == 0
    assert view.verify.rows_checked == ROWS
    assert len(view.fleet) == 2
    if db.dialect.name == "sqlite":
        assert view.lock_waits is None  # SQLite shows no other session
    else:
        assert view.lock_waits == 0


def test_watch_once_and_json(db: Database, db_url: str, migrating: Migrator) -> None:
    r = CliRunner().invoke(main, ["--database-url", db_url, "watch", "--once"])
    assert r.exit_code == 0, r.output
    out = r.stdout
    for text in (KEY, "dualwrite", "100.0%", f"{ROWS}/{ROWS} rows", "clean",
                 "fleet: 2 live", "pod-a"):
        assert text in out, text
    r = CliRunner().invoke(main, ["--database-url", db_url, "watch", KEY, "--json"])
    assert r.exit_code == 0
    (doc,) = json.loads(r.stdout)
    assert doc["stage"] == "dualwrite" and doc["backfills"][0]["progress"] == 1.0
    assert doc["verify"]["mismatches"] == 0 and len(doc["fleet"]) == 2


def test_watch_bad_input(db: Database, db_url: str) -> None:
    r = CliRunner().invoke(main, ["--database-url", db_url, "watch", "--once"])
    assert r.exit_code == 1 and "dualwrite init" in r.stderr
    Migrator(db, []).init()
    r = CliRunner().invoke(main, ["--database-url", db_url, "watch", "nope", "--json"])
    assert r.exit_code == 1 and json.loads(r.stderr)["error"] == "MigrationNotFoundError"
    r = CliRunner().invoke(main, ["--database-url", db_url, "watch", "--once"])
    assert r.exit_code == 0 and "no migration is registered" in r.stdout


def test_exporter_is_scraped(db: Database, migrating: Migrator) -> None:
    server, thread = serve_metrics(db, 0)
    try:
        m = scrape(server.server_port)
    finally:
        server.shutdown()
        thread.join(5)
    assert m[("dualwrite_state_up", ())] == 1
    assert m[("dualwrite_migration_stage", (("migration_key", KEY), ("stage", "dualwrite")))] \
        == Stage.DUALWRITE.position
    fwd = (("direction", "forward"), ("migration_key", KEY))
    assert m[("dualwrite_backfill_rows_done", fwd)] == ROWS
    assert m[("dualwrite_backfill_progress_ratio", fwd)] == 1.0
    assert m[("dualwrite_verify_mismatches", (("migration_key", KEY),))] == 0
    assert m[("dualwrite_verify_rows_checked", (("migration_key", KEY),))] == ROWS
    assert m[("dualwrite_fleet_instances", (("migration_key", KEY), ("stage", "dualwrite")))] \
        == 2


def test_exporter_reports_state_down(db: Database) -> None:
    server, thread = serve_metrics(db, 0)  # no state tables in this database
    try:
        m = scrape(server.server_port)
    finally:
        server.shutdown()
        thread.join(5)
    assert m[("dualwrite_state_up", ())] == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_metrics_serve(db: Database, db_url: str, migrating: Migrator,
                           tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dualwrite", "--database-url", db_url, "metrics", "serve",
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                m = scrape(port)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "the exporter never answered"
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(10)
    assert m[("dualwrite_state_up", ())] == 1
    assert m[("dualwrite_backfill_rows_done", (("direction", "forward"),
                                               ("migration_key", KEY)))] == ROWS
