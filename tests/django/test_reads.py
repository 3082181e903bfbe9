"""Reads of the migrated field at every stage, on every backend, through every read path."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import F
from django.test import Client
from dualwrite_django.registry import get_registry

from dualwrite.compare import CompareOutcome
from dualwrite.stages import Stage
from tests.django.helpers import STAGES, raw_execute, set_stage
from tests.django.shop.models import Customer, Order

NAME = "customer-name"

# Stored rows: an unbackfilled one, a backfilled one, and one whose columns disagree.
ROWS = [(1, "a", "Old", None), (2, "b", "Same", "Same"), (3, "c", "OldVal", "NewVal")]

# What (full_name, display_name) read as, per stage, for each row (DESIGN.md read table).
EXPECTED: dict[Stage, list[tuple[Any, Any]]] = {
    Stage.OFF: [("Old", None), ("Same", "Same"), ("OldVal", "NewVal")],
    Stage.EXPAND: [("Old", None), ("Same", "Same"), ("OldVal", "NewVal")],
    Stage.DUALWRITE: [("Old", "Old"), ("Same", "Same"), ("OldVal", "OldVal")],
    Stage.SHADOW: [("Old", "Old"), ("Same", "Same"), ("OldVal", "OldVal")],
    Stage.LIVE: [("Old", "Old"), ("Same", "Same"), ("NewVal", "NewVal")],
    Stage.RAMPDOWN: [("Old", None), ("Same", "Same"), ("NewVal", "NewVal")],
    Stage.COMPLETE: [(None, None), ("Same", "Same"), ("NewVal", "NewVal")],
}


def seed(alias: str) -> None:
    for pk, email, full, display in ROWS:
        raw_execute(alias, "INSERT INTO shop_customer (id, email, full_name, display_name, "
                    "active, deleted) VALUES (%s, %s, %s, %s, %s, %s)",
                    (pk, email, full, display, True, False))


def matching(expected: list[tuple[Any, Any]], col: int, value: Any) -> list[int]:
    return [pk for (pk, *_), row in zip(ROWS, expected, strict=True) if row[col] == value]


@pytest.mark.parametrize("stage", STAGES, ids=[s.value for s in STAGES])
def test_read_paths(alias: str, stage: Stage) -> None:
    seed(alias)
    set_stage(alias, NAME, stage)
    want = EXPECTED[stage]
    qs = Customer.objects.order_by("id")
    # loaded objects (both columns selected: fixed in Python)
    assert [(c.full_name, c.display_name) for c in qs] == want
    # only()/defer(): one column selected, read in its SQL form
    assert [c.display_name for c in qs.only("id", "display_name")] == [w[1] for w in want]
    assert [c.full_name for c in qs.defer("display_name")] == [w[0] for w in want]
    # values()/values_list()
    assert list(qs.values_list("full_name", "display_name")) == want
    assert [r["display_name"] for r in qs.values("display_name")] == [w[1] for w in want]
    # filter/exclude on either attribute, equality, IN and ordering
    for col, field in ((0, "full_name"), (1, "display_name")):
        for value in ("Old", "Same", "OldVal", "NewVal"):
            hits = matching(want, col, value)
            assert list(qs.filter(**{field: value}).values_list("id", flat=True)) == hits, \
                (field, value)
            # Django's exclude() keeps NULLs of a nullable field only (display_name)
            others = [pk for pk, *_ in ROWS if pk not in hits and
                      (col == 1 or want[pk - 1][col] is not None)]
            assert list(qs.exclude(**{field: value}).values_list("id", flat=True)) == others, \
                (field, value)
        in_hits = sorted(set(matching(want, col, "Old")) | set(matching(want, col, "NewVal")))
        assert list(qs.filter(**{f"{field}__in": ["Old", "NewVal"]})
                    .values_list("id", flat=True)) == in_hits
        present = sorted((w[col], pk) for (pk, *_), w in zip(ROWS, want, strict=True)
                         if w[col] is not None)
        got = [pk for pk in Customer.objects.filter(**{f"{field}__isnull": False})
               .order_by(field, "id").values_list("id", flat=True)]
        assert got == [pk for _, pk in present]
    # F() of the migrated field in an annotation reads the stage value too
    assert [c.shown for c in qs.annotate(shown=F("display_name"))] == [w[1] for w in want]
    # refresh_from_db and a related lookup
    c = Customer.objects.get(pk=3)
    c.refresh_from_db()
    assert (c.full_name, c.display_name) == want[2]
    Order.objects.create(customer=c, price=1.0)
    assert Order.objects.filter(customer__display_name=want[2][1]).count() == 1


@pytest.mark.parametrize("stage", [Stage.SHADOW, Stage.LIVE], ids=lambda s: s.value)
def test_shadow_compare_on_loaded_rows(alias: str, stage: Stage) -> None:
    seed(alias)
    set_stage(alias, NAME, stage)
    registry = get_registry()
    assert registry is not None
    binding = registry.binding(NAME)
    assert binding is not None and binding.comparator is not None
    before = dict(binding.comparator.counts)
    list(Customer.objects.all())
    counts = binding.comparator.counts
    assert counts[CompareOutcome.MISMATCH] - before[CompareOutcome.MISMATCH] == 1
    assert counts[CompareOutcome.UNBACKFILLED] - before[CompareOutcome.UNBACKFILLED] == 1
    assert counts[CompareOutcome.MATCH] - before[CompareOutcome.MATCH] == 1


@pytest.mark.parametrize("stage", [Stage.SHADOW, Stage.LIVE, Stage.COMPLETE],
                         ids=lambda s: s.value)
def test_view_reads_the_stage_value(alias: str, stage: Stage) -> None:
    seed(alias)
    set_stage(alias, NAME, stage)
    set_stage(alias, "order-cents", stage)
    c = Customer.objects.get(pk=3)
    Order.objects.create(customer=c, price=12.5)
    client = Client()
    detail = client.get("/customers/3").json()
    full, display = EXPECTED[stage][2]
    assert detail == {"display_name": display, "full_name": full, "orders": [1250]}
    search = client.get("/customers", {"q": "NewVal"}).json()
    assert search == {"ids": [3] if display == "NewVal" else []}


def test_querysets_with_routed_columns_pickle(alias: str) -> None:
    import pickle

    seed(alias)
    set_stage(alias, NAME, Stage.LIVE)
    qs = Customer.objects.filter(display_name="NewVal").order_by("full_name")
    again = pickle.loads(pickle.dumps(qs.query))
    fresh = Customer.objects.all()
    fresh.query = again
    assert [c.pk for c in fresh] == [3]
