"""Reads at every stage on every backend: loaded objects, selected columns, filters and
ORDER BY return the stage's values; a stage flip never leaves a stale value behind."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import aliased

from dualwrite.stages import Stage
from tests.helpers import insert_rows
from tests.integration.sqla.conftest import APP_STAGES, Env, Product, User

ROWS = [{"id": 1, "full_name": "o1", "display_name": "n1"},      # drifted
        {"id": 2, "full_name": "o2", "display_name": None},      # not backfilled
        {"id": 3, "full_name": "o3", "display_name": "o3"}]      # in sync

#: (full_name, display_name) as the application must see them, per stage and row.
EXPECTED: dict[Stage, dict[int, tuple[Any, Any]]] = {
    Stage.OFF: {1: ("o1", "n1"), 2: ("o2", None), 3: ("o3", "o3")},
    Stage.DUALWRITE: {1: ("o1", "o1"), 2: ("o2", "o2"), 3: ("o3", "o3")},
    Stage.SHADOW: {1: ("o1", "o1"), 2: ("o2", "o2"), 3: ("o3", "o3")},
    Stage.LIVE: {1: ("n1", "n1"), 2: ("o2", "o2"), 3: ("o3", "o3")},
    Stage.RAMPDOWN: {1: ("n1", "n1"), 2: ("o2", None), 3: ("o3", "o3")},
    Stage.COMPLETE: {1: ("n1", "n1"), 2: (None, None), 3: ("o3", "o3")},
}


@pytest.mark.parametrize("stage", APP_STAGES, ids=str)
def test_reads_return_the_stage_values(env: Env, stage: Stage) -> None:
    env.install(fleet=False)
    env.walk(stage)
    insert_rows(env.db, "users", ROWS)
    want = EXPECTED[stage]
    with env.Session() as s:
        loaded = {u.id: (u.full_name, u.display_name) for u in s.scalars(select(User))}
        assert loaded == want, "loaded objects"
    with env.Session() as s:
        cols = {r.id: (r.full_name, r.display_name) for r in
                s.execute(select(User.id, User.full_name, User.display_name))}
        assert cols == want, "selected columns"
        for attr, i in ((User.display_name, 1), (User.full_name, 0)):
            for value in {v[i] for v in want.values() if v[i] is not None}:
                ids = set(s.scalars(select(User.id).where(attr == value)))
                assert ids == {k for k, v in want.items() if v[i] == value}, (attr, value)
                ids = set(s.scalars(select(User.id).where(attr.like(value))))
                assert ids == {k for k, v in want.items() if v[i] == value}, (attr, "like")
        ordered = [i for i in s.scalars(select(User.id).order_by(User.display_name, User.id))
                   if want[i][1] is not None]
        assert ordered == sorted(ordered, key=lambda i: (want[i][1], i)), "order by"
        alias = aliased(User)
        got = s.execute(select(alias.id, alias.display_name).where(alias.id == 1)).one()
        assert got.display_name == want[1][1], "aliased entity"


def test_flip_while_a_session_holds_objects(env: Env) -> None:
    env.install(fleet=False)
    env.walk(Stage.SHADOW)
    insert_rows(env.db, "users", ROWS)
    with env.Session() as s:
        u = s.get(User, 1)
        assert u is not None and u.display_name == "o1"
        env.walk(Stage.LIVE)
        s.execute(select(Product.id)).all()        # any statement notices the flip
        assert u.display_name == "n1" and u.full_name == "n1"
        env.walk(Stage.SHADOW)
        same = s.scalars(select(User).where(User.id == 1)).one()   # identity-map object
        assert same is u and u.display_name == "o1" and u.full_name == "o1"


def test_flip_keeps_a_pending_change(env: Env) -> None:
    env.install(fleet=False)
    env.walk(Stage.SHADOW)
    insert_rows(env.db, "users", ROWS)
    with env.Session() as s:
        u = s.get(User, 3)
        assert u is not None
        u.full_name = "changed"
        env.walk(Stage.LIVE)
        s.execute(select(Product.id)).all()
        assert u.full_name == "changed"
        s.commit()
    assert env.raw("users", 3) == ("changed", "changed")


def test_rollback_live_shadow_live_keeps_values_right(env: Env) -> None:
    env.install(fleet=False)
    env.walk(Stage.LIVE)
    with env.Session() as s:
        s.add(User(id=1, full_name="live-1"))
        s.commit()
    env.walk(Stage.SHADOW)
    with env.Session() as s:
        u = s.get(User, 1)
        assert u is not None and u.display_name == "live-1"
        u.full_name = "shadow-1"
        s.add(User(id=2, display_name="shadow-2"))
        s.commit()
    env.walk(Stage.LIVE)
    with env.Session() as s:
        assert [(u.id, u.full_name, u.display_name) for u in
                s.scalars(select(User).order_by(User.id))] == [
            (1, "shadow-1", "shadow-1"), (2, "shadow-2", "shadow-2")]
        u = s.get(User, 2)
        assert u is not None
        u.display_name = "live-2"
        s.commit()
    assert env.raw("users", 1) == ("shadow-1", "shadow-1")
    assert env.raw("users", 2) == ("live-2", "live-2")
