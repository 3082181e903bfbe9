"""Trigger-mode specs and tables used by the trigger tests and the benchmark (per backend)."""

from __future__ import annotations

from typing import Any

from dualwrite.db import Database
from dualwrite.spec import ChangeColumnType, RenameColumn, SplitColumn
from dualwrite.stages import Mode, Stage
from dualwrite.state import StateStore
from tests.helpers import create_table

RENAME = RenameColumn(key="users-display-name", table="users", old="full_name",
                      new="display_name", mode=Mode.TRIGGER, confidence_window=0)

CENTS = ChangeColumnType(
    key="orders-cents", table="orders", old="price", new="price_cents", mode=Mode.TRIGGER,
    new_type={"postgresql": "BIGINT", "mysql": "BIGINT", "sqlite": "INTEGER"},
    forward_sql={"postgresql": "CAST(ROUND({old} * 100) AS BIGINT)",
                 "mysql": "CAST(ROUND({old} * 100) AS SIGNED)",
                 "sqlite": "CAST(ROUND({old} * 100) AS INTEGER)"},
    backward_sql="{new} / 100.0",
    forward=lambda p: round(p * 100), backward=lambda c: c / 100)


def _first(pos: str) -> str:
    return f"CASE WHEN {pos}({{old}}, ' ') > 0 THEN substr({{old}}, 1, {pos}({{old}}, ' ') - 1) " \
           f"ELSE {{old}} END"


def _rest(pos: str) -> str:
    return f"CASE WHEN {pos}({{old}}, ' ') > 0 THEN substr({{old}}, {pos}({{old}}, ' ') + 1) " \
           f"ELSE '' END"


_POS = {"postgresql": "strpos", "mysql": "INSTR", "sqlite": "instr"}
SPLIT = SplitColumn(
    key="people-split-name", table="people", old="full_name", new=["first_name", "last_name"],
    mode=Mode.TRIGGER,
    forward_sql={"first_name": {d: _first(p) for d, p in _POS.items()},
                 "last_name": {d: _rest(p) for d, p in _POS.items()}},
    backward_sql={"postgresql": "rtrim({first_name} || ' ' || COALESCE({last_name}, ''))",
                  "sqlite": "rtrim({first_name} || ' ' || COALESCE({last_name}, ''))",
                  "mysql": "RTRIM(CONCAT({first_name}, ' ', COALESCE({last_name}, '')))"},
    forward=lambda v: tuple(v.split(" ", 1)) if " " in v else (v, ""),
    backward=lambda first, last: f"{first} {last or ''}".rstrip())


def users(db: Database, rows: int = 10, table: str = "users") -> None:
    """users(id, full_name, display_name) with ``rows`` rows (new column empty)."""
    create_table(db, table, {"id": "pk", "full_name": "text", "display_name": "text"})
    _fill(db, f"INSERT INTO {db.dialect.quote(table)} (id, full_name) VALUES ",
          [(i, f"User {i}") for i in range(1, rows + 1)])


def orders(db: Database, rows: int = 10) -> None:
    """orders(id, price real, price_cents bigint)."""
    create_table(db, "orders", {"id": "pk", "price": "real", "price_cents": "BIGINT"})
    _fill(db, "INSERT INTO orders (id, price) VALUES ",
          [(i, round(i * 1.25, 2)) for i in range(1, rows + 1)])


def people(db: Database, rows: int = 10) -> None:
    """people(id, full_name, first_name, last_name)."""
    create_table(db, "people", {"id": "pk", "full_name": "text", "first_name": "text",
                                "last_name": "text"})
    _fill(db, "INSERT INTO people (id, full_name) VALUES ",
          [(i, f"Ada{i} Love lace" if i % 2 else f"Plato{i}") for i in range(1, rows + 1)])


def _fill(db: Database, head: str, rows: list[tuple[Any, ...]], chunk: int = 500) -> None:
    p = db.dialect.p
    with db.transaction() as tx:
        for i in range(0, len(rows), chunk):
            part = rows[i:i + chunk]
            values = ", ".join([f"({p}, {p})"] * len(part))
            tx.execute((head + values, tuple(v for r in part for v in r)))


def set_stage(db: Database, spec: Any, stage: Stage) -> None:
    """Record ``stage`` for ``spec`` directly (the trigger reads it; gates not involved)."""
    store = StateStore(db)
    store.init()
    state = store.register(spec)
    if state.stage is not stage:
        store.transition(state, stage, actor="test", reason="test")
