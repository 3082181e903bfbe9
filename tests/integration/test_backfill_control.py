"""Operator controls of a running backfill, health signals induced for real, and guaranteed
termination under a steady stream of writes."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from dualwrite.backfill import Backfill, BackfillOptions, BackfillResult, Verifier
from dualwrite.backfill_control import BackfillControl
from dualwrite.backfill_state import BackfillStore
from dualwrite.db import Database
from dualwrite.errors import BackfillAborted, BackfillError
from dualwrite.health import HealthThresholds
from dualwrite.migrator import Migrator
from dualwrite.spec import ChangeColumnType
from dualwrite.stages import Stage
from dualwrite.state import utcnow
from tests.backfill_specs import UPPER_SQL
from tests.helpers import snapshot, users_table
from tests.integration.test_backfill import expected_upper, ready, state_rows

QUIET = HealthThresholds(max_replica_lag=None, max_batch_over_target=None, max_vacuums=None,
                         max_wal_bytes_per_second=None, max_lock_waiters=None,
                         max_threads_running=None, critical_threads_running=None)


class Runner:
    """A backfill running in a thread."""

    def __init__(self, db: Database, backfill: Backfill) -> None:
        self.result: BackfillResult | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(backfill,))
        self.thread.start()

    def _run(self, backfill: Backfill) -> None:
        try:
            self.result = backfill.run()
        except BaseException as exc:  # noqa: BLE001 -- checked by the test
            self.error = exc

    def join(self, timeout: float = 60) -> BackfillResult:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "backfill did not stop"
        if self.error:
            raise self.error
        assert self.result is not None
        return self.result


def wait_for(cond: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def part0(db: Database) -> Any:
    parts = BackfillStore(db, UPPER_SQL.key, "forward").parts()
    return parts[0] if parts else None


def test_pause_set_resume_are_applied_by_running_workers(db: Database) -> None:
    m = ready(db, UPPER_SQL, 300)
    ctl = BackfillControl(db, UPPER_SQL.key, actor="ops")
    run = Runner(db, Backfill(db, UPPER_SQL, BackfillOptions(batch_size=5, sleep=0.05,
                                                             control_interval=0.2,
                                                             hold_interval=0.2,
                                                             health=QUIET)))
    wait_for(lambda: part0(db) is not None and part0(db).rows_done >= 10)
    ctl.pause(reason="peak traffic")
    wait_for(lambda: part0(db).hold_signal == "paused")
    assert part0(db).health(utcnow()) == "held"
    frozen = part0(db).rows_done
    time.sleep(0.6)
    assert part0(db).rows_done == frozen  # nothing moves while paused
    ctl.set(batch_size=100, sleep=0)
    ctl.resume()
    res = run.join()
    assert res.finished and res.holds.get("paused", 0) >= 0.4
    assert part0(db).batch_size == 100 and part0(db).rows_done == 300
    assert snapshot(db, "users") == expected_upper(db)
    entries = [e for e in m.history(UPPER_SQL.key) if e.details and "backfill" in e.details]
    assert [e.details["backfill"] for e in entries] == ["pause", "set", "resume"]  # type: ignore[index]
    assert entries[0].actor == "ops" and entries[0].reason == "peak traffic"
    assert entries[1].details["settings"]["to"] == {"batch_size": 100, "sleep": 0}  # type: ignore[index]
    assert all(e.from_stage == e.to_stage == "dualwrite" for e in entries)


def test_cancel_stops_workers_and_a_rerun_resumes(db: Database) -> None:
    ready(db, UPPER_SQL, 200)
    run = Runner(db, Backfill(db, UPPER_SQL, BackfillOptions(batch_size=5, sleep=0.05,
                                                             control_interval=0.2,
                                                             hold_interval=0.2,
                                                             health=QUIET)))
    wait_for(lambda: part0(db) is not None and part0(db).rows_done >= 10)
    BackfillControl(db, UPPER_SQL.key).cancel()
    res = run.join()
    assert not res.finished and res.state == "cancelled"
    part = part0(db)
    assert part.lease_owner is None and 0 < part.rows_done < 200
    rest = Backfill(db, UPPER_SQL, BackfillOptions(health=QUIET)).run()
    assert rest.finished and rest.rows_done == 200 - part.rows_done
    assert snapshot(db, "users") == expected_upper(db)


def test_controls_refuse_bad_input_and_change_nothing(db: Database) -> None:
    ready(db, UPPER_SQL, 20)
    ctl = BackfillControl(db, UPPER_SQL.key)
    before = state_rows(db)
    with pytest.raises(BackfillError, match="no forward backfill") as exc:
        ctl.pause()
    assert exc.value.hint == f"start one: dualwrite backfill {UPPER_SQL.key}"
    Backfill(db, UPPER_SQL, BackfillOptions(batch_size=5, health=QUIET)).run()
    before = state_rows(db)
    with pytest.raises(BackfillError, match="has finished"):
        ctl.pause()
    with pytest.raises(BackfillError, match="nothing to set"):
        ctl.set()
    with pytest.raises(BackfillError, match="must be >= 0"):
        ctl.set(sleep=-1)
    assert state_rows(db) == before


def test_termination_under_a_steady_stream_of_inserts_and_updates(db_url: str,
                                                                  db: Database) -> None:
    ready(db, UPPER_SQL, 300)
    stop = threading.Event()
    counts = {"inserts": 0, "updates": 0}

    def app() -> None:
        # the application in dualwrite: inserts and updates write both columns
        adb = Database.from_url(db_url)
        p = adb.dialect.p
        rnd = random.Random(7)
        next_id = 301
        while not stop.is_set():
            try:
                if rnd.random() < 0.5:
                    v = f"new {next_id}"
                    adb.execute((f"INSERT INTO users (id, full_name, display_name) VALUES "
                                 f"({p}, {p}, {p})", (next_id, v, v.upper())))
                    next_id += 1
                    counts["inserts"] += 1
                else:
                    v = f"upd {rnd.random():.6f}"
                    adb.execute((f"UPDATE users SET full_name = {p}, display_name = {p} "
                                 f"WHERE id = {p}", (v, v.upper(), rnd.randint(1, next_id - 1))))
                    counts["updates"] += 1
            except Exception:  # noqa: BLE001 -- a lock conflict: the app retries later
                pass
            time.sleep(0.002)
        adb.close()

    writer = threading.Thread(target=app)
    writer.start()
    try:
        wait_for(lambda: counts["inserts"] >= 5)
        res = Backfill(db, UPPER_SQL, BackfillOptions(batch_size=10, health=QUIET)).run()
        inserted_during = counts["inserts"]
    finally:
        stop.set()
        writer.join()
    run = BackfillStore(db, UPPER_SQL.key, "forward").run()
    assert res.finished and run is not None and run.range_hi is not None
    assert inserted_during > 5 and counts["updates"] > 0
    # the walk ended at the key fixed at start; later rows came from the dual writes
    assert res.rows_done <= int(run.range_hi[0])
    rep = Verifier(db, UPPER_SQL).run()
    assert rep.clean and rep.rows_checked == len(snapshot(db, "users"))


def test_a_lock_held_by_another_session_is_waited_out(db_url: str, db: Database,
                                                      backend: str) -> None:
    ready(db, UPPER_SQL, 40)
    holder = Database.from_url(db_url)
    locked = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with holder.transaction() as tx:
            tx.execute(("UPDATE users SET full_name = full_name WHERE id = 5", ()))
            locked.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    locked.wait(5)
    threading.Timer(2.5, release.set).start()
    try:
        res = Backfill(db, UPPER_SQL, BackfillOptions(batch_size=10, lock_timeout=0.3,
                                                      retry_backoff=0.2,
                                                      health=QUIET)).run()
    finally:
        release.set()
        t.join()
        holder.close()
    assert res.finished and snapshot(db, "users") == expected_upper(db)
    if backend != "sqlite":  # SQLite's writer waits on its busy timeout instead
        assert res.retries >= 1


def test_unreadable_signals_are_reported_unavailable_not_healthy(db: Database,
                                                                 backend: str) -> None:
    ready(db, UPPER_SQL, 10)
    res = Backfill(db, UPPER_SQL, BackfillOptions(batch_size=5)).run()
    assert res.finished and not res.holds
    # no replica streams from the test servers: the lag cannot be known
    assert res.signals["replica_lag"] == "unavailable"
    expected = {"sqlite": {"vacuum": "unavailable", "wal_rate": "unavailable",
                           "threads_running": "unavailable", "lock_waits": "unavailable"},
                "postgresql": {"vacuum": "ok", "threads_running": "unavailable"},
                "mysql": {"vacuum": "unavailable", "wal_rate": "unavailable",
                          "lock_waits": "unavailable"}}[backend]
    assert {k: res.signals[k] for k in expected} == expected


@pytest.mark.postgresql
def test_postgres_lock_waits_caused_by_a_batch_hold_the_next(servers: Any, tmp_path: Any
                                                              ) -> None:
    from tests.conftest import isolated_url

    slow = ChangeColumnType(key="users-slow", table="users", old="full_name",
                            new="display_name",
                            forward_sql={"postgresql": "{old} || CASE WHEN pg_sleep(0.02)::text = '' "
                                                       "THEN '' ELSE '' END"},
                            backward_sql="{new}", confidence_window=0)
    with isolated_url(servers, "postgresql", tmp_path) as url:
        db = Database.from_url(url)
        users_table(db, 20, with_new=True)
        m = Migrator(db, [slow], actor="t")
        m.init()
        m.advance(slow.key, Stage.DUALWRITE)
        other = Database.from_url(url)
        waiter = threading.Thread(target=lambda: (time.sleep(0.2), other.execute((
            "UPDATE users SET full_name = 'app', display_name = 'app' WHERE id = 1", ()))))
        waiter.start()
        th = HealthThresholds(max_replica_lag=None, max_batch_over_target=None,
                              max_wal_bytes_per_second=None, max_lock_waiters=0)
        res = Backfill(db, slow, BackfillOptions(batch_size=10, health=th,
                                                 hold_interval=0.2)).run()
        waiter.join()
        other.close()
        assert res.finished and res.holds.get("lock_waits", 0) > 0
        assert Verifier(db, slow).run().clean
        db.close()


@pytest.mark.postgresql
def test_postgres_wal_rate_holds_until_cancelled(servers: Any, tmp_path: Any) -> None:
    from tests.conftest import isolated_url

    with isolated_url(servers, "postgresql", tmp_path) as url:
        db = Database.from_url(url)
        ready(db, UPPER_SQL, 100)
        th = HealthThresholds(max_replica_lag=None, max_batch_over_target=None,
                              max_wal_bytes_per_second=1.0)
        run = Runner(db, Backfill(db, UPPER_SQL, BackfillOptions(
            batch_size=5, sleep=0.1, health=th, hold_interval=0.2)))
        wait_for(lambda: part0(db) is not None and part0(db).hold_signal == "wal_rate")
        held = part0(db)
        assert held.hold_since is not None
        BackfillControl(db, UPPER_SQL.key).cancel()
        res = run.join()
        assert res.state == "cancelled" and res.holds.get("wal_rate", 0) > 0
        st = part0(db)
        assert st.held_ms > 0 and st.lease_owner is None
        db.close()


def _threads_running(db: Database) -> int:
    with db.transaction() as tx:
        return int(tx.fetchall(("SHOW GLOBAL STATUS LIKE 'Threads_running'", ()))[0][1])


def _sleepers(url: str, n: int, seconds: float) -> list[threading.Thread]:
    def sleep() -> None:
        s = Database.from_url(url)
        try:
            s.fetchone((f"SELECT SLEEP({seconds})", ()))
        finally:
            s.close()
    threads = [threading.Thread(target=sleep) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


@pytest.mark.mysql
def test_mysql_max_load_holds_and_critical_load_aborts(servers: Any, tmp_path: Any) -> None:
    from tests.conftest import isolated_url

    with isolated_url(servers, "mysql", tmp_path) as url:
        db = Database.from_url(url)
        ready(db, UPPER_SQL, 40)
        base = _threads_running(db)
        sleepers = _sleepers(url, 8, 2)
        wait_for(lambda: _threads_running(db) >= base + 6)
        critical = HealthThresholds(max_replica_lag=None, max_batch_over_target=None,
                                    max_threads_running=base + 2,
                                    critical_threads_running=base + 5)
        before = snapshot(db, "users")
        with pytest.raises(BackfillAborted) as exc:
            Backfill(db, UPPER_SQL, BackfillOptions(batch_size=10, health=critical)).run()
        assert exc.value.signal == "threads_running" and exc.value.exit_code == 4
        assert snapshot(db, "users") == before  # stopped before any batch
        assert part0(db).lease_owner is None and part0(db).rows_done == 0
        hold = HealthThresholds(max_replica_lag=None, max_batch_over_target=None,
                                max_threads_running=base + 3, critical_threads_running=None)
        res = Backfill(db, UPPER_SQL, BackfillOptions(batch_size=10, health=hold,
                                                      hold_interval=0.2)).run()
        for t in sleepers:
            t.join()
        assert res.finished and res.holds.get("threads_running", 0) > 0
        assert snapshot(db, "users") == expected_upper(db)
        db.close()


def test_status_json_shows_a_dead_worker(db: Database) -> None:
    ready(db, UPPER_SQL, 10)
    store = BackfillStore(db, UPPER_SQL.key, "forward")
    store.create(UPPER_SQL.spec_hash(), ("id",), (1,), (10,), [], 10,
                 {"batch_size": None, "sleep": 0, "max_rows_per_second": None})
    assert store.claim(0, "crashed-pod/0", 0.05)
    time.sleep(0.2)
    from dualwrite.backfill import backfill_status

    st = json.loads(json.dumps(backfill_status(db, UPPER_SQL.key), default=str))
    assert st["parts"][0]["health"] == "dead" and st["parts"][0]["lease_owner"] == \
        "crashed-pod/0"


def test_cli_controls_status_and_errors(db: Database, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    from dualwrite.cli.app import run_embedded

    ready(db, UPPER_SQL, 30)
    key, specs = UPPER_SQL.key, [UPPER_SQL]
    assert run_embedded(["backfill", "pause", key], db, specs) == 1
    assert "no forward backfill" in capsys.readouterr().err
    assert run_embedded(["backfill", key, "--dry-run", "--json"], db, specs) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["rows_estimate"] == 30 and plan["transform"] == "sql"
    store = BackfillStore(db, key, "forward")
    store.create(UPPER_SQL.spec_hash(), ("id",), (1,), (30,), [], 30,
                 {"batch_size": None, "sleep": 0, "max_rows_per_second": None})
    assert store.claim(0, "gone-pod/0", 0.05)
    time.sleep(0.2)
    assert run_embedded(["backfill", "set", key, "--batch-size", "7", "--json"], db,
                        specs) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["batch_size"] == 7
    assert run_embedded(["backfill", "pause", key], db, specs) == 0
    assert "pause (running -> paused)" in capsys.readouterr().out
    assert run_embedded(["backfill", "status", key], db, specs) == 0
    out = capsys.readouterr().out
    assert "paused" in out and "dead" in out and "gone-pod/0" in out
    assert "signal replica_lag: unavailable" in out
    assert run_embedded(["backfill", "resume", key], db, specs) == 0
    assert run_embedded(["backfill", key, "--json"], db, specs) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["finished"] and res["rows_done"] == 30
    assert snapshot(db, "users") == expected_upper(db)
    assert run_embedded(["verify", key], db, specs) == 0
    assert "0 mismatching, 0 unbackfilled" in capsys.readouterr().out
    assert run_embedded(["backfill", "cancel", key], db, specs) == 1
    assert "has finished" in capsys.readouterr().err


@pytest.mark.postgresql
def test_postgres_vacuum_on_the_table_holds_the_backfill(servers: Any, tmp_path: Any) -> None:
    import psycopg

    from tests.conftest import isolated_url

    with isolated_url(servers, "postgresql", tmp_path) as url:
        db = Database.from_url(url)
        ready(db, UPPER_SQL, 3000)
        db.execute(("UPDATE users SET full_name = full_name", ()))  # dead tuples to vacuum
        vacuuming = threading.Event()

        def slow_vacuum() -> None:
            # a real VACUUM, slowed by its cost delay and stopped by a statement timeout
            with psycopg.connect("postgresql://" + url.split("://", 1)[1],
                                 autocommit=True) as conn:
                conn.execute("SET vacuum_cost_delay = 100")
                conn.execute("SET vacuum_cost_limit = 1")
                conn.execute("SET statement_timeout = 2500")
                vacuuming.set()
                try:
                    conn.execute("VACUUM users")
                except psycopg.errors.QueryCanceled:
                    pass

        t = threading.Thread(target=slow_vacuum)
        t.start()
        vacuuming.wait(5)
        wait_for(lambda: (db.fetchone(db.dialect.health_vacuum(UPPER_SQL)) or (0,))[0] >= 1)
        th = HealthThresholds(max_replica_lag=None, max_batch_over_target=None,
                              max_wal_bytes_per_second=None, max_lock_waiters=None)
        res = Backfill(db, UPPER_SQL, BackfillOptions(health=th, hold_interval=0.2)).run()
        t.join()
        assert res.finished and res.holds.get("vacuum", 0) > 0
        assert snapshot(db, "users") == expected_upper(db)
        db.close()
