"""State tables on every backend: idempotent init, registration, CAS under concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from dualwrite.db import Database
from dualwrite.errors import (
    ConcurrentTransitionError,
    SpecChangedError,
    StateNotInitializedError,
    TransitionRefused,
)
from dualwrite.migrator import Migrator
from dualwrite.spec import RenameColumn
from dualwrite.stages import Mode, Stage
from dualwrite.state import StateStore
from tests.helpers import add_column, users_table

SPEC = RenameColumn(key="users-display-name", table="users", old="full_name",
                    new="display_name")


def test_init_is_idempotent_and_concurrent_safe(db_url: str) -> None:
    dbs = [Database.from_url(db_url) for _ in range(4)]
    try:
        barrier = threading.Barrier(4)

        def go(d: Database) -> None:
            barrier.wait()
            StateStore(d).init()

        with ThreadPoolExecutor(4) as ex:
            list(ex.map(go, dbs))
        store = StateStore(dbs[0])
        assert store.is_initialized()
        assert store.init() is False
        assert store.all() == []
    finally:
        for d in dbs:
            d.close()


def test_require_says_run_init(db: Database) -> None:
    with pytest.raises(StateNotInitializedError, match="do not exist") as exc:
        StateStore(db).require()
    assert exc.value.hint == "run: dualwrite init"


def test_register_records_off_and_refuses_a_changed_spec_later(db: Database) -> None:
    users_table(db, 3)
    m = Migrator(db, [SPEC])
    [st] = m.init()
    assert (st.stage, st.ceiling, st.mode, st.version) == (Stage.OFF, Stage.OFF, Mode.APP, 1)
    assert st.spec["old"] == ["full_name"]
    assert m.init()[0].version == 1  # same spec: nothing changes
    changed = RenameColumn(key=SPEC.key, table="users", old="full_name", new="label")
    st2 = Migrator(db, [changed]).init()[0]  # at off a spec may still change
    assert st2.spec_hash == changed.spec_hash() and st2.version == 2
    add_column(db, "users", "label")
    Migrator(db, [changed]).advance(SPEC.key)
    Migrator(db, [changed]).advance(SPEC.key)
    before = StateStore(db).get(SPEC.key)
    with pytest.raises(SpecChangedError, match="the spec changed") as exc:
        Migrator(db, [SPEC]).advance(SPEC.key)
    assert exc.value.recorded_hash == changed.spec_hash()
    assert "dualwrite rollback" in (exc.value.hint or "")
    assert StateStore(db).get(SPEC.key) == before


@pytest.mark.parametrize("workers", [8])
def test_concurrent_advance_exactly_one_wins(db_url: str, workers: int) -> None:
    setup = Database.from_url(db_url)
    users_table(setup, 5, with_new=True)
    Migrator(setup, [SPEC]).init()
    setup.close()
    barrier = threading.Barrier(workers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def go(i: int) -> None:
        d = Database.from_url(db_url)
        m = Migrator(d, [SPEC], actor=f"worker-{i}")
        barrier.wait()
        try:
            m.advance(SPEC.key, Stage.EXPAND)
            result = "won"
        except ConcurrentTransitionError:
            result = "lost-cas"
        except TransitionRefused as exc:
            assert "already at expand" in exc.message
            result = "already"
        finally:
            d.close()
        with lock:
            outcomes.append(result)

    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(go, range(workers)))
    assert outcomes.count("won") == 1, outcomes
    check = Database.from_url(db_url)
    try:
        hist = StateStore(check).history(SPEC.key)
        assert [(h.from_stage, h.to_stage) for h in hist] == [("off", "expand")]
        assert StateStore(check).get(SPEC.key).version == 2
    finally:
        check.close()


def test_fleet_heartbeat_upserts(db: Database) -> None:
    store = StateStore(db)
    store.init()
    store.heartbeat("pod-a", "host-a", 11, "0.1.0", [("k1", Stage.DUALWRITE), ("k2", Stage.OFF)])
    store.heartbeat("pod-a", "host-a", 11, "0.1.1", [("k1", Stage.SHADOW)])
    store.heartbeat("pod-b", "host-b", 12, "0.1.0", [("k1", Stage.DUALWRITE)])
    fleet = {i.instance_id: i for i in store.fleet("k1")}
    assert fleet["pod-a"].stage is Stage.SHADOW and fleet["pod-a"].version == "0.1.1"
    assert fleet["pod-b"].stage is Stage.DUALWRITE
    assert fleet["pod-a"].heartbeat_at >= fleet["pod-a"].started_at
    store.deregister("pod-a")
    assert [i.instance_id for i in store.fleet("k1")] == ["pod-b"]
    assert store.fleet("k2") == []
