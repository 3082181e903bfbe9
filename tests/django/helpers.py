"""Test helpers for the Django app: stage walking, raw reads (test-only SQL)."""

from __future__ import annotations

from typing import Any

import dualwrite_django
from django.db import connections
from dualwrite_django.registry import get_registry

from dualwrite.db import Database
from dualwrite.migrator import Migrator
from dualwrite.stages import Stage
from dualwrite.state import StateStore
from tests.helpers import record_backfill_and_verify

STAGES = [Stage.OFF, Stage.EXPAND, Stage.DUALWRITE, Stage.SHADOW, Stage.LIVE, Stage.RAMPDOWN,
          Stage.COMPLETE]


def state_db(alias: str) -> Database:
    """The adapter's own state database for ``alias``."""
    registry = get_registry()
    assert registry is not None
    return registry.runtimes(alias).db


def migrator(alias: str) -> Migrator:
    registry = get_registry()
    assert registry is not None
    return Migrator(state_db(alias), list(registry.settings.specs), actor="tests")


def reset_state(alias: str) -> None:
    """Forget every recorded migration: each starts again at ``off``."""
    db = state_db(alias)
    StateStore(db).init()
    with db.transaction() as tx:
        for table in ("dualwrite_history", "dualwrite_verify", "dualwrite_backfill",
                      "dualwrite_fleet", "dualwrite_migrations"):
            tx.execute((f"DELETE FROM {table}", ()))
    migrator(alias).init()
    dualwrite_django.refresh()


def set_stage(alias: str, key: str, stage: Stage) -> None:
    """Walk migration ``key`` to ``stage`` through the real gates (facts recorded)."""
    m = migrator(alias)
    db = m.db
    state = m.state.get(key)
    while state.stage is not stage:
        if stage > state.stage:
            step = state.stage.next()
            assert step is not None
            if step is Stage.LIVE:
                record_backfill_and_verify(
                    db, key, state.spec_hash,
                    backfill=not m.state.backfill_complete(key, state.spec_hash))
            m.advance(key, step, confidence_window=0)
        else:
            step = state.stage.previous()
            assert step is not None
            if state.stage is Stage.COMPLETE:
                record_backfill_and_verify(db, key, state.spec_hash, direction="reverse",
                                           backfill=False)
            m.rollback(key, step)
        state = m.state.get(key)
    dualwrite_django.refresh()


def raw_rows(alias: str, table: str, columns: str, order: str = "id") -> list[tuple[Any, ...]]:
    """Rows as stored, read past the adapter."""
    with connections[alias].cursor() as cur:
        cur.execute(f"SELECT {columns} FROM {table} ORDER BY {order}")
        return [tuple(r) for r in cur.fetchall()]


def raw_execute(alias: str, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Run test-only SQL past the adapter."""
    with connections[alias].cursor() as cur:
        cur.execute(sql, params)
