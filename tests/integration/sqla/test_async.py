"""AsyncSession goes through the same events (its sync_session) on every backend."""

from __future__ import annotations

import asyncio

import dualwrite_sqlalchemy
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from dualwrite.stages import Stage
from tests.helpers import insert_rows
from tests.integration.sqla.conftest import RENAME, Base, Env, User

ASYNC_DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+aiomysql",
                 "sqlite": "sqlite+aiosqlite"}


def test_async_session_mirrors_and_routes(env: Env) -> None:
    url = ASYNC_DRIVERS[env.backend] + "://" + env.engine.url.render_as_string(
        hide_password=False).split("://", 1)[1]
    engine = create_async_engine(url)
    factory = async_sessionmaker(engine, expire_on_commit=False)
    handle = dualwrite_sqlalchemy.install(factory, [RENAME], bases=[Base], fleet=False,
                                          cache_ttl=0)
    env.installed.append(handle)
    env.walk(Stage.LIVE)
    insert_rows(env.db, "users", [{"id": 1, "full_name": "o1", "display_name": "n1"},
                                  {"id": 2, "full_name": "o2", "display_name": None}])

    async def work() -> tuple[list[tuple[int, str | None, str | None]], str | None]:
        async with factory() as s:
            s.add(User(id=3, full_name="new"))
            await s.commit()
            await s.execute(update(User).where(User.id == 2)
                            .values(full_name=func.upper(User.full_name)))
            await s.commit()
        async with factory() as s:
            rows = [(u.id, u.full_name, u.display_name)
                    for u in (await s.scalars(select(User).order_by(User.id))).all()]
            found = (await s.scalars(select(User.display_name)
                                     .where(User.display_name == "O2"))).one_or_none()
        await engine.dispose()
        return rows, found

    rows, found = asyncio.run(work())
    assert rows == [(1, "n1", "n1"), (2, "O2", "O2"), (3, "new", "new")]
    assert found == "O2"
    assert env.raw("users", 3) == ("new", "new")
    handle.uninstall()
    env.installed.clear()
    assert "sync_session_class" not in factory.kw   # the factory is as it was
