"""Writes through every SQLAlchemy path, at every stage, on every backend: both columns
end up as the stage's mirror rule says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import bindparam, func, insert, update

from dualwrite.stages import Stage
from tests.helpers import insert_rows
from tests.integration.sqla.conftest import APP_STAGES, Env, Product, User

USERS = User.__table__
PRODUCTS = Product.__table__
SEED = "seed"


def _seed(env: Env, rid: int) -> None:
    insert_rows(env.db, "users", [{"id": rid, "full_name": SEED, "display_name": SEED}])


def flush_new(env: Env, rid: int, col: str, v: Any) -> None:
    with env.Session() as s:
        s.add(User(id=rid, **{col: v}))
        s.commit()


def flush_dirty(env: Env, rid: int, col: str, v: Any) -> None:
    _seed(env, rid)
    with env.Session() as s:
        u = s.get(User, rid)
        setattr(u, col, v)
        s.commit()


def orm_insert_values(env: Env, rid: int, col: str, v: Any) -> None:
    with env.Session() as s:
        s.execute(insert(User).values(id=rid, **{col: v}))
        s.commit()


def orm_insert_list(env: Env, rid: int, col: str, v: Any) -> None:
    with env.Session() as s:
        s.execute(insert(User), [{"id": rid, col: v}])
        s.commit()


def orm_update_values(env: Env, rid: int, col: str, v: Any) -> None:
    _seed(env, rid)
    with env.Session() as s:
        s.execute(update(User).where(User.id == rid).values({col: v}))
        s.commit()


def orm_bulk_update_by_pk(env: Env, rid: int, col: str, v: Any) -> None:
    _seed(env, rid)
    with env.Session() as s:
        s.execute(update(User), [{"id": rid, col: v}])
        s.commit()


def bulk_insert_mappings(env: Env, rid: int, col: str, v: Any) -> None:
    with env.Session() as s:
        s.bulk_insert_mappings(User, [{"id": rid, col: v}])  # type: ignore[arg-type]
        s.commit()


def bulk_update_mappings(env: Env, rid: int, col: str, v: Any) -> None:
    _seed(env, rid)
    with env.Session() as s:
        s.bulk_update_mappings(User, [{"id": rid, col: v}])  # type: ignore[arg-type]
        s.commit()


def bulk_save_objects_new(env: Env, rid: int, col: str, v: Any) -> None:
    with env.Session() as s:
        s.bulk_save_objects([User(id=rid, **{col: v})])
        s.commit()


def bulk_save_objects_changed(env: Env, rid: int, col: str, v: Any) -> None:
    _seed(env, rid)
    with env.Session() as s:
        u = s.get(User, rid)
        s.expunge(u)
        setattr(u, col, v)
        s.bulk_save_objects([u])
        s.commit()


def core_insert(env: Env, rid: int, col: str, v: Any) -> None:
    with env.engine.begin() as c:
        c.execute(USERS.insert().values(id=rid, **{col: v}))


def core_insert_many(env: Env, rid: int, col: str, v: Any) -> None:
    with env.engine.begin() as c:
        c.execute(USERS.insert(), [{"id": rid, col: v}, {"id": rid + 1000, col: v}])


def core_update(env: Env, rid: int, col: str, v: Any) -> None:
    _seed(env, rid)
    with env.engine.begin() as c:
        c.execute(USERS.update().where(USERS.c.id == rid).values({col: v}))


def core_update_many(env: Env, rid: int, col: str, v: Any) -> None:
    _seed(env, rid)
    with env.engine.begin() as c:
        c.execute(USERS.update().where(USERS.c.id == bindparam("b_id"))
                  .values({col: bindparam("b_v")}), [{"b_id": rid, "b_v": v}])


PATHS: list[tuple[Callable[[Env, int, str, Any], None], bool]] = [
    (flush_new, True), (flush_dirty, False), (orm_insert_values, True),
    (orm_insert_list, True), (orm_update_values, False), (orm_bulk_update_by_pk, False),
    (bulk_insert_mappings, True), (bulk_update_mappings, False),
    (bulk_save_objects_new, True), (bulk_save_objects_changed, False),
    (core_insert, True), (core_insert_many, True), (core_update, False),
    (core_update_many, False),
]


def expected(stage: Stage, side: str, v: str, inserted: bool) -> tuple[Any, Any]:
    """(old, new) after writing ``v`` to one side of a seeded (or new) row."""
    before = None if inserted else SEED
    app = stage.app_stage
    if app is Stage.OFF or (app is Stage.COMPLETE and side == "new"):
        return (v, before) if side == "old" else (before, v)
    return v, v


@pytest.mark.parametrize("stage", APP_STAGES, ids=str)
def test_every_write_path_mirrors_per_stage(env: Env, stage: Stage) -> None:
    env.install(fleet=False)
    env.walk(stage)
    failures = []
    rid = 1
    for side, col in (("old", "full_name"), ("new", "display_name")):
        for path, inserted in PATHS:
            value = f"{path.__name__}-{side}"
            path(env, rid, col, value)
            got, want = env.raw("users", rid), expected(stage, side, value, inserted)
            if got != want:
                failures.append(f"{path.__name__} writing {side}: got {got}, want {want}")
            rid += 1
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("stage", [Stage.DUALWRITE, Stage.LIVE, Stage.RAMPDOWN], ids=str)
def test_sql_expression_updates_are_mirrored_as_sql(env: Env, stage: Stage) -> None:
    env.install(fleet=False)
    env.walk(stage)
    for rid in (1, 2, 3, 4):
        _seed(env, rid)
    with env.Session() as s:
        # ORM-enabled UPDATE with a function of the column
        s.execute(update(User).where(User.id == 1).values(full_name=func.upper(User.full_name)))
        # concatenation: on MySQL the mirror must not apply it twice (SET is left to right)
        s.execute(update(User).where(User.id == 2).values(full_name=User.full_name + "-x"))
        # a SQL expression assigned to an attribute, flushed by the unit of work
        u = s.get(User, 3)
        assert u is not None
        u.full_name = func.lower(User.full_name) + "!"  # type: ignore[assignment]
        s.commit()
    with env.engine.begin() as c:  # Core
        c.execute(USERS.update().where(USERS.c.id == 4).values(full_name=func.upper(
            USERS.c.full_name)))
    assert env.raw("users", 1) == ("SEED", "SEED")
    assert env.raw("users", 2) == ("seed-x", "seed-x")
    assert env.raw("users", 3) == ("seed!", "seed!")
    assert env.raw("users", 4) == ("SEED", "SEED")


@pytest.mark.parametrize("stage", [Stage.SHADOW, Stage.LIVE, Stage.RAMPDOWN, Stage.COMPLETE],
                         ids=str)
def test_type_change_transforms_both_ways(env: Env, stage: Stage) -> None:
    env.install(fleet=False)
    env.walk(stage)
    with env.Session() as s:
        s.add(Product(id=1, price=12.5))
        s.add(Product(id=2, price_cents=275))
        s.commit()
        p = s.get(Product, 1)
        assert p is not None
        p.price = 3.25
        s.commit()
        s.execute(update(Product).where(Product.id == 2).values(price=Product.price * 2))
        s.commit()
    with env.engine.begin() as c:
        c.execute(PRODUCTS.insert().values(id=3, price_cents=50))
    app = stage.app_stage
    assert env.raw("products", 1) == (3.25, 325)
    assert env.raw("products", 3)[1] == 50
    if app is Stage.COMPLETE:   # only new is written; a write of new alone is not mirrored
        # old was never written, so price*2 is NULL, and a write of old sets new = f(old)
        assert env.raw("products", 2) == (None, None)
        assert env.raw("products", 3)[0] is None
    else:
        assert env.raw("products", 2) == (5.5, 550)
        assert env.raw("products", 3)[0] == 0.5


def test_partial_update_mirrors_only_what_changed(env: Env) -> None:
    env.install(fleet=False)
    env.walk(Stage.SHADOW)
    insert_rows(env.db, "users", [{"id": 1, "full_name": "a", "display_name": "drifted"}])
    statements: list[str] = []
    from sqlalchemy import event

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)
    event.listen(env.engine, "before_cursor_execute", capture)
    try:
        with env.Session() as s:
            u = s.get(User, 1)
            assert u is not None
            statements.clear()
            s.commit()          # nothing changed: nothing written
            assert not [x for x in statements if x.lstrip().upper().startswith("UPDATE")]
    finally:
        event.remove(env.engine, "before_cursor_execute", capture)
    assert env.raw("users", 1) == ("a", "drifted")
