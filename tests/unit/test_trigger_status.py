"""Trigger status classification from catalog rows (pure: no database)."""

from __future__ import annotations

import pytest

from dualwrite.dialects import MySQLDialect, PostgresDialect, SQLiteDialect
from dualwrite.dialects.base import TriggerTarget
from dualwrite.triggers import TriggerState, _overall, classify
from tests.trigger_specs import RENAME

TARGET = TriggerTarget(schema="app", state_schema="app", key_columns=("id",),
                       new_wins_stages=("live",))


@pytest.mark.parametrize("dialect", [PostgresDialect(), MySQLDialect(), SQLiteDialect()])
def test_each_state_from_the_catalog(dialect) -> None:  # type: ignore[no-untyped-def]
    objs = dialect.trigger_objects(RENAME, TARGET)
    o = objs[-1]
    exact = {(x.name, x.kind): (x.definition, x.shape) for x in objs}

    def state(definition: str, shape: str | None = None) -> TriggerState:
        cat = {**exact, (o.name, o.kind): (definition, o.shape if shape is None else shape)}
        return classify(RENAME, objs, cat)[-1].state

    assert [s.state for s in classify(RENAME, objs, exact)] == [TriggerState.INSTALLED] * len(objs)
    assert [s.state for s in classify(RENAME, objs, {})] == [TriggerState.MISSING] * len(objs)
    assert state("BEGIN SELECT 1; END") is TriggerState.FOREIGN
    other_key = o.definition.replace(f"dualwrite:{RENAME.key}:", "dualwrite:someone-else:")
    assert state(other_key) is TriggerState.FOREIGN
    old_hash = o.definition.replace(o.digest, "0" * 16)
    assert state(old_hash) is TriggerState.OUTDATED
    assert state(o.definition + "\n-- edited") is TriggerState.DRIFTED
    assert state(o.definition, "disabled") is TriggerState.DRIFTED
    assert state("\n  " + o.definition + "\n") is TriggerState.INSTALLED  # outer whitespace


def test_overall_state() -> None:
    i, m, o, d, f = (TriggerState.INSTALLED, TriggerState.MISSING, TriggerState.OUTDATED,
                     TriggerState.DRIFTED, TriggerState.FOREIGN)
    assert _overall([i, i]) is i
    assert _overall([m, m]) is m
    assert _overall([i, m]) is d  # partly dropped by hand
    assert _overall([o, i]) is o
    assert _overall([o, d]) is o
    assert _overall([i, f]) is f
