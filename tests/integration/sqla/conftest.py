"""Fixtures for the SQLAlchemy adapter tests: models, an engine per backend, stage walks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dualwrite_sqlalchemy
import pytest
from dualwrite_sqlalchemy import Installation
from sqlalchemy import BigInteger, Engine, Float, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from dualwrite.db import Database
from dualwrite.migrator import Migrator
from dualwrite.spec import ChangeColumnType, RenameColumn
from dualwrite.stages import Stage
from tests.helpers import record_backfill_and_verify


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    full_name: Mapped[str | None] = mapped_column(String(100))
    display_name: Mapped[str | None] = mapped_column(String(100))


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    price: Mapped[float | None] = mapped_column(Float)
    price_cents: Mapped[int | None] = mapped_column(BigInteger)


RENAME = RenameColumn(key="users-display-name", table="users", old="full_name",
                      new="display_name", confidence_window=0)
_INT = {"postgresql": "BIGINT", "mysql": "SIGNED", "sqlite": "INTEGER"}
CENTS = ChangeColumnType(
    key="products-cents", table="products", old="price", new="price_cents", confidence_window=0,
    forward_sql={d: f"CAST(ROUND({{old}} * 100) AS {t})" for d, t in _INT.items()},
    forward=lambda p: round(p * 100),
    backward_sql="{new} / 100.0", backward=lambda c: c / 100)
SPECS = [RENAME, CENTS]

#: The stages the application can be in, in order.
APP_STAGES = [Stage.OFF, Stage.DUALWRITE, Stage.SHADOW, Stage.LIVE, Stage.RAMPDOWN,
              Stage.COMPLETE]


def sa_url(url: str) -> str:
    """A dualwrite test URL as a SQLAlchemy URL (explicit drivers)."""
    scheme, rest = url.split("://", 1)
    return {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}.get(scheme, scheme) \
        + "://" + rest


@dataclass
class Env:
    """One backend, its tables, the migrator, and the adapter installed on a sessionmaker."""

    backend: str
    engine: Engine
    db: Database
    migrator: Migrator
    Session: sessionmaker[Any]
    install: Callable[..., Installation]
    installed: list[Installation]

    def walk(self, stage: Stage) -> None:
        """Move every migration to ``stage`` one step at a time, forward or back (recording
        the facts the ``live`` gate needs; installed adapters observe each step)."""
        for spec in SPECS:
            while (current := self.migrator.state.get(spec.key).stage) is not stage:
                if stage > current:
                    nxt = current.next()
                    assert nxt is not None
                    if nxt is Stage.LIVE:
                        done = self.migrator.state.backfill_complete(spec.key,
                                                                     spec.spec_hash())
                        record_backfill_and_verify(self.db, spec.key, spec.spec_hash(),
                                                   backfill=not done)
                    self.migrator.advance(spec.key, nxt)
                else:
                    prev = current.previous()
                    assert prev is not None
                    self.migrator.rollback(spec.key, prev)
                for h in self.installed:
                    h.stages()

    def raw(self, table: str, row_id: int) -> tuple[Any, ...] | None:
        """(old, new) as stored, read without the adapter."""
        old, new = ("full_name", "display_name") if table == "users" else ("price",
                                                                           "price_cents")
        q = self.db.dialect.quote
        return self.db.fetchone((f"SELECT {q(old)}, {q(new)} FROM {q(table)} "
                                 f"WHERE {q('id')} = {self.db.dialect.p}", (row_id,)))


@pytest.fixture
def env(db_url: str, backend: str) -> Iterator[Env]:
    engine = create_engine(sa_url(db_url))
    Base.metadata.create_all(engine)
    db = Database.from_url(db_url)
    migrator = Migrator(db, SPECS)
    migrator.init()
    Session = sessionmaker(bind=engine)
    installed: list[Installation] = []

    def install(**options: Any) -> Installation:
        options.setdefault("cache_ttl", 0)
        options.setdefault("bases", [Base])
        handle = dualwrite_sqlalchemy.install(Session, SPECS, **options)
        installed.append(handle)
        return handle

    yield Env(backend, engine, db, migrator, Session, install, installed)
    for h in installed:
        h.uninstall()
    engine.dispose()
    db.close()
