"""The lifecycle on every backend: forward through every gate, back, forward again."""

from __future__ import annotations

import pytest

from dualwrite.db import Database
from dualwrite.errors import MigrationNotFoundError, StateNotInitializedError, TransitionRefused
from dualwrite.fleet import FleetMember
from dualwrite.migrator import Migrator
from dualwrite.spec import RenameColumn
from dualwrite.stages import Mode, Stage
from dualwrite.state import StateStore
from tests.helpers import (
    TEXT,
    add_column,
    create_table,
    record_backfill_and_verify,
    snapshot,
    users_table,
)

SPEC = RenameColumn(key="users-display-name", table="users", old="full_name",
                    new="display_name", confidence_window=0)


def refused(m: Migrator, to: Stage, match: str, *, back: bool = False, **kw: object) -> None:
    store = m.state
    before = store.get(SPEC.key)
    with pytest.raises(TransitionRefused, match=match) as exc:
        if back:
            m.rollback(SPEC.key, to)
        else:
            m.advance(SPEC.key, to, **kw)  # type: ignore[arg-type]
    assert exc.value.exit_code == 3
    assert store.get(SPEC.key) == before  # nothing changed


def test_full_lifecycle_with_gates_and_rollbacks(db: Database) -> None:
    users_table(db, 10)
    m = Migrator(db, [SPEC], actor="test")
    m.init()
    refused(m, Stage.EXPAND, "do not exist yet")
    add_column(db, "users", "display_name")
    member = FleetMember(db, instance_id="pod-1")
    member.observe(SPEC.key, Stage.OFF)
    member.beat()
    # --to walks one gated step at a time; the steps before a refusal stay taken
    with pytest.raises(TransitionRefused, match="1 live instance") as exc:
        m.advance(SPEC.key, Stage.SHADOW)
    assert (exc.value.from_stage, exc.value.to_stage) == ("dualwrite", "shadow")
    assert m.state.get(SPEC.key).stage is Stage.DUALWRITE
    refused(m, Stage.SHADOW, "1 live instance")  # pod-1 still observes off
    member.observe(SPEC.key, Stage.DUALWRITE)
    member.beat()
    m.advance(SPEC.key)
    refused(m, Stage.LIVE, "backfill has not finished")
    record_backfill_and_verify(db, SPEC.key, SPEC.spec_hash(), mismatches=2)
    refused(m, Stage.LIVE, "found 2 mismatching")
    record_backfill_and_verify(db, SPEC.key, SPEC.spec_hash(), backfill=False)
    m.advance(SPEC.key)
    refused(m, Stage.RAMPDOWN, "before shadow")
    member.observe(SPEC.key, Stage.LIVE)
    member.beat()
    m.advance(SPEC.key)
    refused(m, Stage.COMPLETE, "still read the old column")
    member.observe(SPEC.key, Stage.RAMPDOWN)
    member.beat()
    refused(m, Stage.COMPLETE, "confidence window", confidence_window=3600.0)
    m.advance(SPEC.key)
    assert m.state.get(SPEC.key).stage is Stage.COMPLETE
    # back from complete needs the old column in sync again
    refused(m, Stage.RAMPDOWN, "has not been written since complete", back=True)
    record_backfill_and_verify(db, SPEC.key, SPEC.spec_hash(), direction="reverse")
    m.rollback(SPEC.key)
    # pgroll-style: forward again through the same gate
    m.advance(SPEC.key)
    member.observe(SPEC.key, Stage.COMPLETE)
    member.beat()
    refused(m, Stage.CONTRACT, "irreversible")
    refused(m, Stage.CONTRACT, "irreversible", confirm="wrong-key")
    m.advance(SPEC.key, Stage.CONTRACT, confirm=SPEC.key)
    refused(m, Stage.COMPLETE, "irreversible", back=True)
    hist = [(h.from_stage, h.to_stage) for h in m.history(SPEC.key)]
    assert hist == [("off", "expand"), ("expand", "dualwrite"), ("dualwrite", "shadow"),
                    ("shadow", "live"), ("live", "rampdown"), ("rampdown", "complete"),
                    ("complete", "rampdown"), ("rampdown", "complete"),
                    ("complete", "contract")]
    assert all(h.actor == "test" for h in m.history(SPEC.key))
    member.stop()


def test_rollback_walks_back_step_by_step_and_forward_again(db: Database) -> None:
    users_table(db, 3, with_new=True)
    m = Migrator(db, [SPEC])
    m.init()
    m.advance(SPEC.key, Stage.SHADOW)
    steps = m.rollback(SPEC.key, Stage.OFF)
    assert [(s.from_stage, s.to_stage) for s in steps] == [
        (Stage.SHADOW, Stage.DUALWRITE), (Stage.DUALWRITE, Stage.EXPAND),
        (Stage.EXPAND, Stage.OFF)]
    st = m.state.get(SPEC.key)
    assert st.stage is Stage.OFF and st.ceiling is Stage.OFF
    m.advance(SPEC.key, Stage.SHADOW)
    assert m.state.get(SPEC.key).ceiling is Stage.SHADOW
    refused(m, Stage.SHADOW, "already at shadow")
    refused(m, Stage.DUALWRITE, "dualwrite is behind shadow")
    refused(m, Stage.LIVE, "live is ahead of shadow", back=True)


def test_stale_fleet_instances_do_not_block(db: Database) -> None:
    users_table(db, 3, with_new=True)
    m = Migrator(db, [SPEC], fleet_ttl=0.0)
    m.init()
    m.advance(SPEC.key, Stage.DUALWRITE)
    StateStore(db).heartbeat("old-pod", "h", 1, "0", [(SPEC.key, Stage.OFF)])
    # with a TTL of zero the heartbeat is already stale: the instance is not live
    m.advance(SPEC.key)
    assert m.state.get(SPEC.key).stage is Stage.SHADOW


def test_trigger_mode_is_refused_until_triggers_exist(db: Database) -> None:
    users_table(db, 3, with_new=True)
    spec = RenameColumn(key="t", table="users", old="full_name", new="display_name",
                        mode=Mode.TRIGGER)
    m = Migrator(db, [spec])
    m.init()
    m.advance("t")
    with pytest.raises(TransitionRefused, match="mirror triggers") as exc:
        m.advance("t")
    assert "dualwrite triggers install t" in (exc.value.hint or "")


def test_unknown_key_and_missing_state(db: Database) -> None:
    users_table(db, 1)
    m = Migrator(db, [SPEC])
    with pytest.raises(StateNotInitializedError):
        m.status()
    with pytest.raises(MigrationNotFoundError, match="no spec with key 'nope'") as exc:
        m.advance("nope")
    assert "users-display-name" in exc.value.message
    before = snapshot(db, "users")
    m.init()
    assert snapshot(db, "users") == before  # init touches only the state tables


def test_status_reports_next_step(db: Database) -> None:
    users_table(db, 3)
    m = Migrator(db, [SPEC])
    m.init()
    [rep] = m.status()
    assert rep.state is not None and rep.state.stage is Stage.OFF
    assert rep.next_step is not None and not rep.next_step.allowed
    assert "expand" in (rep.next_step.hint or "")
    d = rep.to_dict()
    assert d["stage"] == "off" and d["next"]["allowed"] is False
    add_column(db, "users", "display_name")
    [rep] = m.status(SPEC.key)
    assert rep.next_step is not None and rep.next_step.allowed
    with pytest.raises(MigrationNotFoundError):
        m.status("nope")


def test_complete_warns_while_the_old_column_is_not_null(db: Database) -> None:
    """App mode stops writing the old column at complete: were it NOT NULL, an insert that
    leaves it unset would fail from then on. Status and the steps say so (and the history
    records it); a nullable column draws no such warning."""
    d = db.dialect.name
    create_table(db, "users", {"id": "pk", "full_name": f"{TEXT[d]} NOT NULL",
                               "display_name": "text"})
    m = Migrator(db, [SPEC], actor="test")
    m.init()
    store = m.state
    for stage in (Stage.EXPAND, Stage.DUALWRITE, Stage.SHADOW):
        store.transition(store.get(SPEC.key), stage, actor="test", reason="forced")
    record_backfill_and_verify(db, SPEC.key, SPEC.spec_hash())
    (to_live,) = m.advance(SPEC.key, Stage.LIVE)
    assert not any("NOT NULL" in w for w in to_live.warnings)
    (report,) = m.status(SPEC.key)
    assert any("full_name is NOT NULL" in w for w in report.warnings), report.warnings
    assert report.to_dict()["warnings"] == list(report.warnings)
    (to_rampdown,) = m.advance(SPEC.key, Stage.RAMPDOWN)
    (to_complete,) = m.advance(SPEC.key, Stage.COMPLETE)
    for result in (to_rampdown, to_complete):
        assert any("full_name is NOT NULL" in w and "nullable before complete" in w
                   for w in result.warnings), result.warnings
    last = store.history(SPEC.key)[-1]
    assert last.to_stage == "complete" and "full_name is NOT NULL" in str(last.details)
    if d == "sqlite":
        return  # SQLite cannot drop NOT NULL without rebuilding the table
    relax = {"postgresql": "ALTER TABLE users ALTER COLUMN full_name DROP NOT NULL",
             "mysql": "ALTER TABLE users MODIFY full_name VARCHAR(255) NULL"}[d]
    db.execute((relax, ()))
    (report,) = m.status(SPEC.key)
    assert not any("NOT NULL" in w for w in report.warnings), report.warnings
