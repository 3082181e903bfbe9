"""Shadow compare on loaded rows, percentage rollout, fleet registration, trigger mode and
raw-SQL warnings, on every backend."""

from __future__ import annotations

import logging
import time
from typing import Any

import dualwrite_sqlalchemy
import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails
from openfeature.provider import AbstractProvider, Metadata
from sqlalchemy import event, select, text, update

from dualwrite.compare import Mismatch, MismatchError
from dualwrite.flags import flag_key
from dualwrite.migrator import Migrator
from dualwrite.spec import RenameColumn
from dualwrite.stages import Mode, Stage
from dualwrite.state import StateStore
from tests.helpers import insert_rows
from tests.integration.sqla.conftest import RENAME, Base, Env, User

ROWS = [{"id": 1, "full_name": "o1", "display_name": "n1"},      # mismatch
        {"id": 2, "full_name": "o2", "display_name": None},      # not backfilled
        {"id": 3, "full_name": "o3", "display_name": "o3"}]      # match


class Collect:
    def __init__(self) -> None:
        self.seen: list[Mismatch] = []

    def publish(self, mismatch: Mismatch) -> None:
        self.seen.append(mismatch)


def _count_selects(env: Env) -> tuple[list[str], Any]:
    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "dualwrite_" not in statement:
            statements.append(statement)
    event.listen(env.engine, "before_cursor_execute", capture)
    return statements, capture


@pytest.mark.parametrize("stage", [Stage.SHADOW, Stage.LIVE], ids=str)
def test_loaded_rows_are_compared_without_an_extra_query(env: Env, stage: Stage) -> None:
    publisher = Collect()
    handle = env.install(fleet=False, publisher=publisher)
    env.walk(stage)
    insert_rows(env.db, "users", ROWS)
    statements, capture = _count_selects(env)
    try:
        with env.Session() as s, dualwrite_sqlalchemy.evaluation_context("user-7"):
            assert len(s.scalars(select(User)).all()) == 3
    finally:
        event.remove(env.engine, "before_cursor_execute", capture)
    assert len(statements) == 1
    counts = handle.comparators[RENAME.key].counts
    assert (counts["mismatch"], counts["unbackfilled"], counts["match"]) == (1, 1, 1)
    [m] = publisher.seen
    assert (m.key, m.primary_key, m.stage) == (RENAME.key, 1, stage)
    assert m.diff == {"display_name": ("n1", "o1")} and m.context == {"targeting_key": "user-7"}


def test_default_publisher_logs_and_sampling_and_raising(env: Env,
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    env.walk(Stage.SHADOW)
    insert_rows(env.db, "users", ROWS)
    handle = env.install(fleet=False)
    with caplog.at_level(logging.WARNING, logger="dualwrite.compare"), env.Session() as s:
        s.scalars(select(User)).all()
    [record] = [r for r in caplog.records if "shadow mismatch" in r.getMessage()]
    assert record.migration_key == RENAME.key and record.primary_key == 1  # type: ignore[attr-defined]
    handle.uninstall()
    env.installed.clear()

    sampled = env.install(fleet=False, sample_rate=0.0)
    with env.Session() as s:
        s.scalars(select(User)).all()
    counts = sampled.comparators[RENAME.key].counts
    assert counts["skipped"] == 3 and counts["mismatch"] == 0
    sampled.uninstall()
    env.installed.clear()

    env.install(fleet=False, raise_on_mismatch=True)
    with env.Session() as s, pytest.raises(MismatchError) as exc:
        s.scalars(select(User).where(User.id == 1)).all()
    assert exc.value.mismatch.primary_key == 1


class ByUser(AbstractProvider):
    """Serves ``live`` to the targeting keys in ``live_for``, ``shadow`` to the others."""

    def __init__(self, live_for: set[str]) -> None:
        super().__init__()
        self.live_for = live_for

    def get_metadata(self) -> Metadata:
        return Metadata(name="by-user")

    def resolve_string_details(self, flag_key: str, default_value: str,
                               evaluation_context: EvaluationContext | None = None
                               ) -> FlagResolutionDetails[str]:
        key = evaluation_context.targeting_key if evaluation_context else None
        return FlagResolutionDetails(value="live" if key in self.live_for else "shadow")

    def resolve_boolean_details(self, *a: Any, **k: Any) -> Any:
        raise NotImplementedError

    resolve_integer_details = resolve_float_details = resolve_object_details = \
        resolve_boolean_details


def test_percentage_rollout_by_evaluation_context(env: Env, request: Any) -> None:
    domain = f"sqla-{request.node.name}"
    api.set_provider(ByUser({"alice"}), domain)
    env.install(fleet=False, client=api.get_client(domain))
    env.walk(Stage.LIVE)
    insert_rows(env.db, "users", ROWS[:1])
    for who, want in (("alice", "n1"), ("bob", "o1"), (None, "o1")):
        with dualwrite_sqlalchemy.evaluation_context(who), env.Session() as s:
            assert s.scalars(select(User)).one().display_name == want, who
            assert s.scalars(select(User.display_name)).one() == want, who
    assert flag_key(RENAME.key) == "dualwrite.users-display-name.stage"


def test_fleet_registration_reports_the_observed_stage(env: Env) -> None:
    handle = env.install(heartbeat_interval=60)
    store = StateStore(env.db)
    [inst] = store.fleet(RENAME.key)
    assert str(inst.stage) == "off" and inst.instance_id == handle.fleet.instance_id  # type: ignore[union-attr]
    env.walk(Stage.DUALWRITE)
    deadline = time.monotonic() + 10   # SQLite reports a change from a helper thread
    while str(store.fleet(RENAME.key)[0].stage) != "dualwrite":
        assert time.monotonic() < deadline, store.fleet(RENAME.key)
        time.sleep(0.02)
    handle.uninstall()
    env.installed.clear()
    assert store.fleet(RENAME.key) == []


def test_raw_text_write_warns_and_names_trigger_mode(env: Env,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    env.install(fleet=False)
    insert_rows(env.db, "users", ROWS[:1])
    raw_write = text("UPDATE users SET full_name = 'raw' WHERE id = 1")
    with caplog.at_level(logging.WARNING, logger="dualwrite.sqlalchemy"):
        with env.engine.begin() as c:
            c.execute(raw_write)              # off: nothing to mirror, nothing to say
        env.walk(Stage.DUALWRITE)
        with env.engine.begin() as c:
            c.execute(text("SELECT full_name FROM users"))
            assert not caplog.records
            c.execute(raw_write)
            c.execute(raw_write)              # said once
    [record] = caplog.records
    assert "trigger mode" in record.getMessage() and "full_name" in record.getMessage()


def test_trigger_mode_routes_reads_but_does_not_mirror(env: Env) -> None:
    spec = RenameColumn(key="users-trigger", table="users", old="full_name",
                        new="display_name", mode=Mode.TRIGGER)
    Migrator(env.db, [spec]).init()
    env.db.execute(("UPDATE dualwrite_migrations SET stage = 'live', stage_ceiling = 'live' "
                    f"WHERE migration_key = {env.db.dialect.p}", (spec.key,)))
    insert_rows(env.db, "users", ROWS)
    publisher = Collect()
    handle = dualwrite_sqlalchemy.install(env.Session, [spec], bases=[Base], fleet=False,
                                          cache_ttl=0, publisher=publisher)
    env.installed.append(handle)
    with env.Session() as s:
        assert s.get(User, 2).display_name == "o2"             # type: ignore[union-attr]
        s.add(User(id=9, full_name="by-app"))
        s.execute(update(User).where(User.id == 3).values(full_name="x"))
        s.commit()
    assert env.raw("users", 9) == ("by-app", None)      # the database's triggers would mirror
    assert env.raw("users", 3) == ("x", "o3")
    assert handle.comparators[spec.key].counts["unbackfilled"] == 1
