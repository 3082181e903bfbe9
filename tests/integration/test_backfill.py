"""Backfill and verify on every backend: exact results for every key kind, concurrency with
application writers, workers and leases, kill -9 and resume, bad input."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dualwrite.backfill import Backfill, BackfillOptions, Verifier, backfill_status
from dualwrite.backfill_state import BackfillStore
from dualwrite.db import Database
from dualwrite.errors import (
    BackfillError,
    BackfillTransformError,
    NoUsableKeyError,
    SpecChangedError,
    UnknownColumnError,
)
from dualwrite.migrator import Migrator
from dualwrite.spec import MigrationSpec, RenameColumn
from dualwrite.stages import Stage
from dualwrite.state import StateStore
from tests.backfill_specs import FAILING_PY, RENAME, UPPER_PY, UPPER_SQL
from tests.helpers import TEXT, create_table, insert_rows, q, snapshot, users_table

ROOT = Path(__file__).resolve().parents[2]
FAST = BackfillOptions(initial_batch_size=7, min_batch_size=1, lease_seconds=5)


def ready(db: Database, spec: MigrationSpec, rows: int = 60, **kw: Any) -> Migrator:
    """users(id, full_name, display_name) with ``rows`` rows, ``spec`` at dualwrite."""
    users_table(db, rows, with_new=True, **kw)
    m = Migrator(db, [spec], actor="test")
    m.init()
    m.advance(spec.key, Stage.DUALWRITE)
    return m


def expected_upper(db: Database) -> list[tuple[Any, ...]]:
    return [(i, n, n.upper()) for i, n, _ in snapshot(db, "users")]


def state_rows(db: Database) -> list[list[tuple[Any, ...]]]:
    return [db.fetchall((f"SELECT * FROM {t} ORDER BY 1, 2", ()))
            for t in ("dualwrite_backfill", "dualwrite_backfill_runs", "dualwrite_verify",
                      "dualwrite_migrations")]


# -- exact results --------------------------------------------------------------------------
@pytest.mark.parametrize("spec", [UPPER_SQL, UPPER_PY], ids=["sql", "python"])
def test_backfill_is_exact_and_feeds_the_live_gate(db: Database, spec: MigrationSpec) -> None:
    m = ready(db, spec, 100)
    db.execute((f"UPDATE users SET {q(db, 'display_name')} = 'stale' WHERE id IN (3, 4)", ()))
    from prometheus_client import REGISTRY

    labels = {"migration_key": spec.key, "direction": "forward"}
    counted = REGISTRY.get_sample_value("dualwrite_rows_backfilled_total", labels) or 0.0
    before = Verifier(db, spec, record=False).run()
    assert (before.rows_checked, before.unbackfilled, before.mismatches) == (100, 98, 2)
    assert before.sample_keys[:2] == [[1], [2]]
    result = Backfill(db, spec, FAST).run()
    assert result.finished and result.rows_done == 100 and result.rows_written == 100
    assert REGISTRY.get_sample_value("dualwrite_rows_backfilled_total", labels) == counted + 100
    assert snapshot(db, "users") == expected_upper(db)
    report = Verifier(db, spec).run()
    assert report.clean and report.rows_checked == 100 and report.recorded
    facts = m.gate_facts(spec, m.state.get(spec.key))
    assert facts.backfill_complete is True and facts.verify_mismatches == 0
    # a second run has nothing left: the run is done and writes nothing
    again = Backfill(db, spec, FAST).run()
    assert again.finished and again.rows_written == 0


@pytest.mark.parametrize("kind", ["text", "composite"])
def test_text_and_composite_keys_split_across_workers(db: Database, kind: str) -> None:
    d = db.dialect.name
    if kind == "text":
        create_table(db, "users", {"id": f"{TEXT[d] if d != 'mysql' else 'VARCHAR(64)'} "
                                         "PRIMARY KEY", "full_name": "text",
                                   "display_name": "text"})
        rows = [{"id": f"{random.Random(i).getrandbits(64):016x}-{i}", "full_name": f"n{i}"}
                for i in range(150)]
    else:
        db.execute((f"CREATE TABLE users (a BIGINT NOT NULL, b VARCHAR(20) NOT NULL, "
                    f"full_name {TEXT[d]}, display_name {TEXT[d]}, PRIMARY KEY (a, b))", ()))
        rows = [{"a": i % 7, "b": f"k{i:04d}", "full_name": f"n{i}"} for i in range(150)]
    insert_rows(db, "users", rows)
    m = Migrator(db, [UPPER_SQL], actor="test")
    m.init()
    m.advance(UPPER_SQL.key, Stage.DUALWRITE)
    res = Backfill(db, UPPER_SQL, BackfillOptions(workers=3, parts=4, initial_batch_size=9,
                                                 min_batch_size=2)).run()
    assert res.finished and res.rows_done == 150 and res.rows_written == 150
    parts = BackfillStore(db, UPPER_SQL.key, "forward").parts()
    assert len(parts) == 4 and sum(p.rows_done for p in parts) == 150
    got = db.fetchall(("SELECT full_name, display_name FROM users", ()))
    assert sorted(got) == sorted((r["full_name"], r["full_name"].upper()) for r in rows)
    assert Verifier(db, UPPER_SQL, chunk_size=11).run().clean


def test_reverse_backfill_writes_old_from_new_and_never_nulls(db: Database) -> None:
    m = ready(db, RENAME, 30)
    Backfill(db, RENAME, FAST).run()
    for to in (Stage.SHADOW, Stage.LIVE, Stage.RAMPDOWN):
        m.state.transition(m.state.get(RENAME.key), to, actor="t", reason="test")
    db.execute(("UPDATE users SET display_name = 'renamed' WHERE id <= 5", ()))
    db.execute(("UPDATE users SET display_name = NULL, full_name = 'kept' WHERE id = 30", ()))
    assert not Verifier(db, RENAME, direction="reverse").run().clean
    res = Backfill(db, RENAME, BackfillOptions(direction="reverse", initial_batch_size=4, min_batch_size=2)).run()
    assert res.finished and res.rows_written == 5
    rows = snapshot(db, "users")
    assert all(r[1] == "renamed" for r in rows[:5]) and rows[29][1] == "kept"
    assert Verifier(db, RENAME, direction="reverse").run().clean
    assert m._reverse_in_sync(RENAME, m.state.get(RENAME.key))


# -- concurrency ------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", [UPPER_SQL, UPPER_PY], ids=["sql", "python"])
def test_concurrent_writers_are_never_overwritten(db_url: str, db: Database,
                                                  spec: MigrationSpec) -> None:
    ready(db, spec, 300)
    stop = threading.Event()
    errors: list[BaseException] = []
    writes = [0]

    def writer(seed: int) -> None:
        # the application in dualwrite: every write sets old and new = f(old) together
        wdb = Database.from_url(db_url)
        rnd = random.Random(seed)
        p = wdb.dialect.p
        try:
            while not stop.is_set():
                i = rnd.randint(1, 300)
                value = f"w{seed}-{rnd.random():.8f}"
                for attempt in range(20):
                    try:
                        wdb.execute((f"UPDATE users SET full_name = {p}, display_name = {p} "
                                     f"WHERE id = {p}", (value, value.upper(), i)))
                        writes[0] += 1
                        time.sleep(0.002)  # a busy application, not a lock hog
                        break
                    except Exception:  # noqa: BLE001 -- lock conflict: the app retries
                        time.sleep(0.01 * (attempt + 1))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            wdb.close()

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    try:
        res = Backfill(db, spec, BackfillOptions(workers=2, initial_batch_size=5,
                                                 min_batch_size=2, max_batch_size=20,
                                                 sleep=0.005)).run()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors and writes[0] > 0
    assert res.finished
    assert snapshot(db, "users") == expected_upper(db)  # no stale value survived
    assert Verifier(db, spec).run().clean


def test_workers_and_processes_share_parts_through_leases(db: Database) -> None:
    ready(db, UPPER_SQL, 200)
    a = Backfill(db, UPPER_SQL, BackfillOptions(workers=2, parts=6, batch_size=10,
                                                lease_seconds=5), owner="pod-a")
    b = Backfill(db, UPPER_SQL, BackfillOptions(workers=2, parts=6, batch_size=10,
                                                lease_seconds=5), owner="pod-b")
    results: list[Any] = []
    threads = [threading.Thread(target=lambda x=x: results.append(x.run())) for x in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and all(r.finished for r in results)
    assert sum(r.rows_done for r in results) == 200  # no part walked twice
    assert snapshot(db, "users") == expected_upper(db)


def test_expired_lease_is_taken_over_from_its_checkpoint(db: Database) -> None:
    ready(db, UPPER_SQL, 50)
    store = BackfillStore(db, UPPER_SQL.key, "forward")
    # a worker that died after 2 batches: lease held, cursor at 20, nothing renewed since
    dead = Backfill(db, UPPER_SQL, BackfillOptions(batch_size=10, lease_seconds=1),
                    owner="dead-pod")
    dead.store.create(UPPER_SQL.spec_hash(), ("id",), (1,), (50,), [], 50,
                      {"batch_size": 10, "sleep": 0, "max_rows_per_second": None})
    assert store.claim(0, "dead-pod/0", 1)
    p = db.dialect.p
    db.execute((f"UPDATE dualwrite_backfill SET cursor_pos = {p}, rows_done = 20", ("[20]",)))
    assert backfill_status(db, UPPER_SQL.key)["parts"][0]["health"] == "running"
    time.sleep(1.2)
    assert backfill_status(db, UPPER_SQL.key)["parts"][0]["health"] == "dead"
    res = Backfill(db, UPPER_SQL, BackfillOptions(batch_size=10), owner="pod-b").run()
    assert res.finished and res.rows_done == 30 and res.rows_written == 30
    rows = snapshot(db, "users")
    assert all(r[2] is None for r in rows[:20])  # resumed after the checkpoint, not before
    assert all(r[2] == r[1].upper() for r in rows[20:])
    assert not Verifier(db, UPPER_SQL).run().clean  # what the dead pod "did" is reported


def _cli(db_url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "dualwrite", "--database-url", db_url,
            "--spec", "tests.backfill_specs:ALL", *args]


def test_kill_minus_9_mid_run_then_resume_is_exact(db_url: str, db: Database) -> None:
    ready(db, UPPER_SQL, 400)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(_cli(db_url, "backfill", UPPER_SQL.key, "--batch-size", "10",
                                 "--sleep", "0.02"), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = BackfillStore(db, UPPER_SQL.key, "forward")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        parts = store.parts() if store.run() else []
        if parts and 50 <= parts[0].rows_done:
            break
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    part = store.parts()[0]
    assert 0 < part.rows_done < 400 and part.status == "running"
    done = part.rows_done
    # the checkpoint and the table agree: exactly the rows before the cursor are written
    rows = snapshot(db, "users")
    assert [r[2] is not None for r in rows] == [i < done for i in range(400)]
    # resume (the dead process's lease is taken over once it expires; shorten the wait)
    db.execute(("UPDATE dualwrite_backfill SET lease_expires_at = started_at", ()))
    out = subprocess.run(_cli(db_url, "backfill", UPPER_SQL.key, "--batch-size", "50"),
                         check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"walked {400 - done} rows" in out.stdout
    assert snapshot(db, "users") == expected_upper(db)
    ver = subprocess.run(_cli(db_url, "verify", UPPER_SQL.key, "--json"), check=False, cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert ver.returncode == 0 and '"clean": true' in ver.stdout


# -- bad input: a clear error, nothing changed ----------------------------------------------------
def test_no_usable_key_and_missing_column_change_nothing(db: Database) -> None:
    create_table(db, "users", {"id": "int", "full_name": "text", "display_name": "text"},
                 primary_key=None)
    insert_rows(db, "users", [{"id": 1, "full_name": "a"}])
    StateStore(db).init()
    StateStore(db).register(RENAME)
    st = StateStore(db)
    st.transition(st.get(RENAME.key), Stage.EXPAND, actor="t", reason="t")
    st.transition(st.get(RENAME.key), Stage.DUALWRITE, actor="t", reason="t")
    before = (snapshot(db, "users"), state_rows(db))
    with pytest.raises(NoUsableKeyError) as exc:
        Backfill(db, RENAME).run()
    assert exc.value.hint and "primary key" in exc.value.hint
    other = RenameColumn(key="users-rename", table="users", old="full_name", new="nope")
    with pytest.raises((UnknownColumnError, SpecChangedError)):
        Backfill(db, other).run()
    assert (snapshot(db, "users"), state_rows(db)) == before


def test_missing_new_column_and_early_stage_are_refused(db: Database) -> None:
    users_table(db, 5)
    m = Migrator(db, [RENAME], actor="t")
    m.init()
    before = (snapshot(db, "users"), state_rows(db))
    with pytest.raises(BackfillError, match="does not write the new column") as exc:
        Backfill(db, RENAME).run()
    assert exc.value.hint == f"run: dualwrite advance {RENAME.key} --to dualwrite"
    m.state.transition(m.state.get(RENAME.key), Stage.DUALWRITE, actor="t", reason="forced")
    before = (snapshot(db, "users"), state_rows(db))
    with pytest.raises(UnknownColumnError, match="display_name") as exc2:
        Backfill(db, RENAME).run()
    assert exc2.value.hint == f"run: dualwrite expand {RENAME.key}"
    with pytest.raises(UnknownColumnError):
        Verifier(db, RENAME).run()
    assert (snapshot(db, "users"), state_rows(db)) == before


def test_backfill_refuses_while_live_instances_do_not_write_its_column(db: Database) -> None:
    """App mode: an instance still at ``off`` would leave stale every row it changes behind
    the backfill; a reverse backfill needs every instance writing the old column again."""
    m = ready(db, UPPER_SQL, 20)
    m.state.heartbeat("old-pod", "h", 1, "0", [(UPPER_SQL.key, Stage.OFF)])
    m.state.heartbeat("new-pod", "h", 2, "0", [(UPPER_SQL.key, Stage.DUALWRITE)])
    before = (snapshot(db, "users"), state_rows(db))
    with pytest.raises(BackfillError, match=r"1 live application instance\(s\) serve off "
                                            "and do not write the new column") as exc:
        Backfill(db, UPPER_SQL, FAST).run()
    assert exc.value.hint and f"dualwrite status {UPPER_SQL.key}" in exc.value.hint
    assert (snapshot(db, "users"), state_rows(db)) == before
    m.state.heartbeat("old-pod", "h", 1, "0", [(UPPER_SQL.key, Stage.DUALWRITE)])
    assert Backfill(db, UPPER_SQL, FAST).run().finished
    assert snapshot(db, "users") == expected_upper(db)
    for stage in (Stage.SHADOW, Stage.LIVE, Stage.RAMPDOWN, Stage.COMPLETE):
        m.state.transition(m.state.get(UPPER_SQL.key), stage, actor="t", reason="forced")
    m.state.heartbeat("new-pod", "h", 2, "0", [(UPPER_SQL.key, Stage.COMPLETE)])
    before = (snapshot(db, "users"), state_rows(db))
    with pytest.raises(BackfillError, match="serve complete and do not write the old column"):
        Backfill(db, UPPER_SQL, BackfillOptions(direction="reverse")).run()
    assert (snapshot(db, "users"), state_rows(db)) == before


def test_failing_transform_stop_reports_keys_and_applies_nothing(db: Database) -> None:
    ready(db, FAILING_PY, 30)
    db.execute(("UPDATE users SET full_name = 'bad one' WHERE id IN (12, 17)", ()))
    with pytest.raises(BackfillTransformError) as exc:
        Backfill(db, FAILING_PY, BackfillOptions(batch_size=10)).run()
    assert exc.value.keys == [[12], [17]]
    assert "cannot transform" in (exc.value.error or "")
    assert exc.value.hint and "--on-error skip" in exc.value.hint
    rows = snapshot(db, "users")
    assert all(r[2] == r[1].upper() for r in rows[:10])  # batches before it stay done
    assert all(r[2] is None for r in rows[10:])  # the failing batch: nothing applied
    part = BackfillStore(db, FAILING_PY.key, "forward").parts()[0]
    assert part.cursor == (10,) and part.lease_owner is None  # released for a rerun
    res = Backfill(db, FAILING_PY, BackfillOptions(batch_size=10, on_error="skip")).run()
    assert res.finished and res.rows_failed == 2 and res.failed_keys == [[12], [17]]
    rows = snapshot(db, "users")
    assert [r[0] for r in rows if r[2] is None] == [12, 17]
    rep = Verifier(db, FAILING_PY).run()
    assert rep.unbackfilled == 2 and rep.sample_keys == [[12], [17]]


def test_changed_spec_is_a_clear_error_and_restart_starts_over(db: Database) -> None:
    m = ready(db, UPPER_SQL, 40)
    Backfill(db, UPPER_SQL, BackfillOptions(batch_size=10)).run()
    m.rollback(UPPER_SQL.key, Stage.EXPAND)
    changed = type(UPPER_SQL)(key=UPPER_SQL.key, table="users", old="full_name",
                              new="display_name", forward_sql="LOWER({old})",
                              backward_sql="UPPER({new})", confidence_window=0)
    m2 = Migrator(db, [changed], actor="t")
    m2.advance(changed.key, Stage.DUALWRITE)
    before = (snapshot(db, "users"), state_rows(db))
    with pytest.raises(SpecChangedError, match="began with spec") as exc:
        Backfill(db, changed).run()
    assert exc.value.hint == f"start it over: dualwrite backfill {changed.key} --restart"
    assert (snapshot(db, "users"), state_rows(db)) == before
    with pytest.raises(SpecChangedError, match="is not the one registered"):
        Backfill(db, UPPER_SQL).run()
    res = Backfill(db, changed, BackfillOptions(batch_size=10, restart=True)).run()
    assert res.finished and res.rows_written == 40
    assert all(r[2] == r[1].lower() for r in snapshot(db, "users"))


def test_bad_options_are_refused_before_anything(db: Database) -> None:
    ready(db, RENAME, 3)
    before = state_rows(db)
    for opts in (BackfillOptions(direction="sideways"), BackfillOptions(workers=0),
                 BackfillOptions(on_error="ignore"), BackfillOptions(batch_size=0)):
        with pytest.raises(BackfillError) as exc:
            Backfill(db, RENAME, opts)
        assert exc.value.hint == "fix the options"
    assert state_rows(db) == before


def test_dry_run_plans_and_changes_nothing(db: Database) -> None:
    ready(db, UPPER_SQL, 25)
    before = (snapshot(db, "users"), state_rows(db))
    plan = Backfill(db, UPPER_SQL, BackfillOptions(workers=2)).plan()
    assert plan.key_columns == ["id"] and plan.transform == "sql"
    assert plan.range_lo == [1] and plan.range_hi == [25] and plan.parts == 2
    assert plan.rows_to_write_estimate == 25 and "UPDATE" in plan.batch_sql
    assert (snapshot(db, "users"), state_rows(db)) == before


def test_verify_fix_repairs_and_cli_exit_codes(db_url: str, db: Database) -> None:
    ready(db, UPPER_SQL, 20)
    Backfill(db, UPPER_SQL).run()
    db.execute(("UPDATE users SET display_name = 'drift' WHERE id IN (2, 9)", ()))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bad = subprocess.run(_cli(db_url, "verify", UPPER_SQL.key, "--json"), check=False, cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 5 and '"mismatches": 2' in bad.stdout
    assert '"sample_keys": [[2], [9]]' in bad.stdout
    fixed = Verifier(db, UPPER_SQL, fix=True).run()
    assert fixed.fixed == 2 and fixed.clean
    assert snapshot(db, "users") == expected_upper(db)
