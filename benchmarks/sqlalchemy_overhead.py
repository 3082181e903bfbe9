"""Per-operation cost of the SQLAlchemy adapter against plain SQLAlchemy, in the same run.

For each backend, the same workloads run on the same table with and without the adapter
installed (migration in ``live``: writes mirror both ways, reads are rerouted, loaded rows
are compared -- the most work the adapter ever does), in alternating rounds so both sides
see the same caches and load:

* insert      -- ``--ops`` new objects, one flush
* flush       -- ``--ops`` loaded objects changed, one flush (``--ops`` UPDATEs)
* bulk update -- ``session.execute(update(User), [--ops dicts])`` (UPDATE by primary key)
* select pk   -- ``--ops`` times ``select(User).where(User.id == k)``
* select field-- ``--ops`` times ``select(User).where(User.display_name == v)`` (indexed)

Prints the best time of each side (the least disturbed by other load on the machine) and the ratio adapter/plain (1.00x = no cost).
Backends: ``sqlite`` (in memory: the worst case, where the ORM dominates), ``postgresql``
and ``mysql`` (``DUALWRITE_TEST_POSTGRES_URL`` / ``DUALWRITE_TEST_MYSQL_URL`` or the local
defaults; a fresh schema/database per run, dropped afterwards).

    python benchmarks/sqlalchemy_overhead.py [--backends sqlite,postgresql] [--ops 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import dualwrite_sqlalchemy
from sqlalchemy import BigInteger, Engine, Index, String, create_engine, delete, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

from dualwrite.db import Database
from dualwrite.migrator import Migrator
from dualwrite.spec import RenameColumn
from dualwrite.stages import Stage
from dualwrite.state import StateStore

SPEC = RenameColumn(key="bench-users", table="users", old="full_name", new="display_name")
DEFAULTS = {"postgresql": "postgresql://postgres@127.0.0.1:5432/test",
            "mysql": "mysql://root@127.0.0.1:3306/test"}
ENV = {"postgresql": "DUALWRITE_TEST_POSTGRES_URL", "mysql": "DUALWRITE_TEST_MYSQL_URL"}
DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    full_name: Mapped[str | None] = mapped_column(String(100), index=True)
    display_name: Mapped[str | None] = mapped_column(String(100))
    __table_args__ = (Index("users_display_name", "display_name"),)


@contextlib.contextmanager
def databases(backend: str) -> Iterator[tuple[Engine, Database]]:
    """The application's engine and the Database holding the state tables."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            engine = create_engine("sqlite://", poolclass=StaticPool,
                                   connect_args={"check_same_thread": False})
            state = Database.from_url(f"sqlite:///{Path(tmp) / 'state.db'}")
            Base.metadata.create_all(create_engine(f"sqlite:///{Path(tmp) / 'state.db'}"))
            try:
                yield engine, state
            finally:
                state.close()
                engine.dispose()
        return
    base = os.environ.get(ENV[backend]) or DEFAULTS[backend]
    name = f"dw_bench_{uuid.uuid4().hex[:8]}"
    admin = Database.from_url(base)
    q = admin.dialect.quote
    if backend == "postgresql":
        admin.execute((f"CREATE SCHEMA {q(name)}", ()))
        url = base + ("&" if "?" in base else "?") + f"options=-csearch_path%3D{name}"
    else:
        admin.execute((f"CREATE DATABASE {q(name)}", ()))
        url = base.rsplit("/", 1)[0] + "/" + name
    engine = create_engine(DRIVERS[backend] + "://" + url.split("://", 1)[1])
    state = Database.from_url(url)
    try:
        yield engine, state
    finally:
        state.close()
        engine.dispose()
        kind = "SCHEMA" if backend == "postgresql" else "DATABASE"
        admin.execute((f"DROP {kind} IF EXISTS {q(name)}" +
                       (" CASCADE" if backend == "postgresql" else ""), ()))
        admin.close()


def workloads(factory: sessionmaker[Session], ops: int) -> dict[str, Callable[[], None]]:
    """The measured operations (each leaves the table as it found it, rows 1..ops)."""
    counter = [0]

    def insert() -> None:
        with factory() as s:
            s.add_all(User(id=ops + 1 + i, full_name=f"new {i}") for i in range(ops))
            s.commit()
            s.execute(delete(User).where(User.id > ops))
            s.commit()

    def flush() -> None:
        counter[0] += 1
        with factory() as s:
            for u in s.scalars(select(User)):
                u.full_name = f"user {u.id} v{counter[0]}"
            s.commit()

    def bulk_update() -> None:
        counter[0] += 1
        with factory() as s:
            s.execute(update(User), [{"id": i, "full_name": f"user {i} b{counter[0]}"}
                                     for i in range(1, ops + 1)])
            s.commit()

    def select_pk() -> None:
        with factory() as s:
            for i in range(1, ops + 1):
                s.execute(select(User).where(User.id == i)).scalar_one()

    def select_field() -> None:
        with factory() as s:
            names = list(s.scalars(select(User.display_name).order_by(User.id)))
            s.expunge_all()
            for name in names:
                s.execute(select(User).where(User.display_name == name)).scalars().first()

    return {"insert": insert, "flush (1k updates)": flush, "bulk update": bulk_update,
            "select by pk": select_pk, "select by field": select_field}


def timed(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run_backend(backend: str, ops: int, rounds: int, sample_rate: float) -> list[list[str]]:
    with databases(backend) as (engine, state):
        Base.metadata.create_all(engine)
        with Session(engine) as s:
            s.add_all(User(id=i, full_name=f"user {i}", display_name=f"user {i}")
                      for i in range(1, ops + 1))
            s.commit()
        migrator = Migrator(state, [SPEC])
        migrator.init()
        store = StateStore(state)
        store.transition(store.get(SPEC.key), Stage.LIVE, actor="benchmark",
                         reason="measure the adapter in live")
        factory = sessionmaker(bind=engine)
        plain: dict[str, list[float]] = {}
        adapted: dict[str, list[float]] = {}
        work = workloads(factory, ops)
        for fn in work.values():   # warm up both paths (compiled caches, connections)
            fn()
        for _ in range(rounds):
            for name, fn in work.items():
                plain.setdefault(name, []).append(timed(fn))
                with engine.begin() as c:   # plain writes left new behind: sync it, untimed
                    c.execute(update(User).values(display_name=User.full_name))
                handle = dualwrite_sqlalchemy.install(factory, [SPEC], database=state,
                                                      bases=[Base], fleet=False,
                                                      sample_rate=sample_rate)
                try:
                    adapted.setdefault(name, []).append(timed(fn))
                finally:
                    handle.uninstall()
        rows = []
        for name in work:
            a, p = min(adapted[name]), min(plain[name])
            rows.append([backend, name, f"{p * 1000:.1f}", f"{a * 1000:.1f}", f"{a / p:.2f}x"])
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sample-rate", type=float, default=1.0,
                        help="shadow-compare sample rate of the adapter (default 1: every row)")
    args = parser.parse_args()
    rows = [["backend", "operation", "plain ms", "adapter ms", "ratio"]]
    for backend in args.backends.split(","):
        rows += run_backend(backend.strip(), args.ops, args.rounds, args.sample_rate)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    print(f"\nbest of {args.rounds} alternating rounds of {args.ops} operations; migration "
          f"in live, compare sample rate {args.sample_rate}. ratio = adapter / plain.")


if __name__ == "__main__":
    main()
