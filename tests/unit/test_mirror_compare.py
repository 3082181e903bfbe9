"""The mirror rule and the comparator (pure, no database)."""

from __future__ import annotations

import logging

import pytest

from dualwrite.compare import Comparator, CompareOutcome, Mismatch, MismatchError
from dualwrite.errors import SpecError
from dualwrite.mirror import mirror_values
from dualwrite.spec import ChangeColumnType, RenameColumn, SplitColumn
from dualwrite.stages import Stage

RENAME = RenameColumn(key="r", table="t", old="a", new="b")
CENTS = ChangeColumnType(key="c", table="t", old="price", new="cents",
                         forward=lambda p: round(p * 100), backward=lambda c: c / 100)
SPLIT = SplitColumn(key="s", table="t", old="full", new=["first", "last"],
                    forward=lambda v: tuple(v.split(" ", 1)),
                    backward=lambda f, la: f"{f} {la}")


@pytest.mark.parametrize("stage, values, expected", [
    (Stage.OFF, {"a": 1}, {}),
    (Stage.EXPAND, {"a": 1}, {}),
    (Stage.DUALWRITE, {"a": 1}, {"b": 1}),
    (Stage.DUALWRITE, {"b": 2}, {"a": 2}),
    (Stage.SHADOW, {"a": 1, "b": 9}, {"b": 1}),      # old wins before rampdown
    (Stage.LIVE, {"a": 1, "b": 9}, {"b": 1}),
    (Stage.RAMPDOWN, {"a": 1, "b": 9}, {"a": 9}),    # new wins from rampdown
    (Stage.RAMPDOWN, {"a": 1}, {"b": 1}),            # a writer still behind
    (Stage.COMPLETE, {"b": 3}, {}),
    (Stage.COMPLETE, {"a": 3}, {"b": 3}),
    (Stage.CONTRACT, {"b": 3}, {}),
    (Stage.LIVE, {"other": 1}, {}),
])
def test_rename_mirror_per_stage(stage: Stage, values: dict, expected: dict) -> None:
    assert mirror_values(RENAME, stage, values) == expected


def test_type_change_mirror_uses_transforms() -> None:
    assert mirror_values(CENTS, Stage.DUALWRITE, {"price": 1.25}) == {"cents": 125}
    assert mirror_values(CENTS, Stage.RAMPDOWN, {"cents": 250}) == {"price": 2.5}
    assert mirror_values(CENTS, Stage.SHADOW, {"price": None}) == {"cents": None}


def test_split_partial_write_needs_the_other_part() -> None:
    assert mirror_values(SPLIT, Stage.LIVE, {"full": "Ada Lovelace"}) == \
        {"first": "Ada", "last": "Lovelace"}
    assert mirror_values(SPLIT, Stage.RAMPDOWN, {"first": "Grace"},
                         current={"first": "Ada", "last": "Hopper"}) == {"full": "Grace Hopper"}
    with pytest.raises(SpecError, match="'last' is not loaded"):
        mirror_values(SPLIT, Stage.RAMPDOWN, {"first": "Grace"})


class Collect:
    def __init__(self) -> None:
        self.items: list[Mismatch] = []

    def publish(self, mismatch: Mismatch) -> None:
        self.items.append(mismatch)


def test_comparator_outcomes_and_publisher() -> None:
    pub = Collect()
    c = Comparator(CENTS, publisher=pub)
    assert c.compare(Stage.SHADOW, 1, {"price": 1.5, "cents": 150}) == CompareOutcome.MATCH
    assert c.compare(Stage.SHADOW, 2, {"price": 1.5, "cents": None}) == \
        CompareOutcome.UNBACKFILLED
    assert c.compare(Stage.LIVE, 3, {"price": 1.5, "cents": 149},
                     {"targeting_key": "u1"}) == CompareOutcome.MISMATCH
    assert c.compare(Stage.DUALWRITE, 4, {"price": 1.5, "cents": 1}) == CompareOutcome.SKIPPED
    assert c.counts == {"match": 1, "mismatch": 1, "unbackfilled": 1, "skipped": 1,
                        "dropped": 0, "slow": 0}
    [m] = pub.items
    assert (m.primary_key, m.stage, m.diff, m.context) == (3, Stage.LIVE, {"cents": (149, 150)},
                                                           {"targeting_key": "u1"})


def test_comparator_sampling_and_raise(caplog: pytest.LogCaptureFixture) -> None:
    draws = iter([0.05, 0.5, 0.09, 0.95])
    c = Comparator(RENAME, sample_rate=0.1, rng=lambda: next(draws))
    outcomes = [c.compare(Stage.SHADOW, i, {"a": 1, "b": 2}) for i in range(4)]
    assert outcomes == ["mismatch", "skipped", "mismatch", "skipped"]
    with caplog.at_level(logging.WARNING, logger="dualwrite.compare"):
        Comparator(RENAME).compare(Stage.SHADOW, 7, {"a": 1, "b": 2})
    rec = caplog.records[-1]
    assert rec.migration_key == "r" and rec.migration_stage == "shadow"  # type: ignore[attr-defined]
    assert rec.primary_key == 7  # type: ignore[attr-defined]
    strict = Comparator(RENAME, raise_on_mismatch=True)
    with pytest.raises(MismatchError, match="shadow mismatch on 1") as exc:
        strict.compare(Stage.LIVE, 1, {"a": 1, "b": 2})
    assert exc.value.hint == "run: dualwrite verify r --fix"
    with pytest.raises(ValueError):
        Comparator(RENAME, sample_rate=1.5)


def test_broken_publisher_never_breaks_the_read() -> None:
    class Broken:
        def publish(self, mismatch: Mismatch) -> None:
            raise RuntimeError("sink down")

    c = Comparator(RENAME, publisher=Broken())
    assert c.compare(Stage.SHADOW, 1, {"a": 1, "b": 2}) == CompareOutcome.MISMATCH


def test_background_mode_runs_heavy_comparisons_off_the_caller_thread() -> None:
    import threading

    from dualwrite.normalize import ColumnComparison

    release = threading.Event()
    seen_threads: list[str] = []

    def heavy(found: object, expected: object) -> bool:
        seen_threads.append(threading.current_thread().name)
        release.wait(5)  # a slow user hook
        return found == expected

    pub = Collect()
    c = Comparator(RENAME, comparison=ColumnComparison(hooks={"b": heavy}), publisher=pub,
                   background=True, time_limit=0.0, queue_size=1)
    assert c.compare(Stage.SHADOW, 1, {"a": 1, "b": 2}) == CompareOutcome.QUEUED
    # the hook is blocked on the worker; the caller already has its answer
    assert c.compare(Stage.SHADOW, 2, {"a": 1, "b": 1}) in (CompareOutcome.QUEUED,
                                                             CompareOutcome.DROPPED)
    assert c.compare(Stage.SHADOW, 3, {"a": 1, "b": 1}) == CompareOutcome.DROPPED
    release.set()
    assert c.flush()
    c.close()
    assert seen_threads and set(seen_threads) == {"dualwrite-compare"}
    assert [m.primary_key for m in pub.items] == [1]
    assert c.counts["slow"] >= 1 and c.counts["dropped"] >= 1
    assert c.counts["mismatch"] == 1
