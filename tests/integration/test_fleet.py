"""Fleet registration on every backend: heartbeats, stage changes, failure tolerance."""

from __future__ import annotations

import time

from dualwrite.db import Database
from dualwrite.fleet import FleetMember
from dualwrite.stages import Stage
from dualwrite.state import StateStore


def test_member_heartbeats_and_deregisters(db: Database) -> None:
    StateStore(db).init()
    m = FleetMember(db, interval=0.05)
    m.observe("k", Stage.DUALWRITE)
    m.start()
    first = StateStore(db).fleet("k")[0].heartbeat_at
    deadline = time.monotonic() + 5
    while StateStore(db).fleet("k")[0].heartbeat_at == first:
        assert time.monotonic() < deadline, "no second heartbeat"
        time.sleep(0.02)
    m.observe("k", Stage.SHADOW)  # a change is reported at once
    assert StateStore(db).fleet("k")[0].stage is Stage.SHADOW
    m.stop()
    assert StateStore(db).fleet("k") == []


def test_heartbeat_failure_is_counted_not_raised(db_url: str) -> None:
    broken = Database.from_url(db_url.replace("test.db", "missing-dir/x.db")
                               if db_url.startswith("sqlite") else db_url)
    m = FleetMember(broken, interval=60)
    m.observe("k", Stage.OFF)
    # no state tables in this database: the beat fails, is logged and counted
    assert m.beat() is False
    assert m.failures == 1
    m.stop(deregister=True)
    broken.close()
