"""Every write path, at every stage, on every backend: the stored columns afterwards."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import F, Value
from django.db.models.functions import Concat, Upper

from dualwrite.stages import Stage
from tests.django.helpers import STAGES, raw_rows, set_stage
from tests.django.shop.models import Customer, Order

NAME = "customer-name"
CENTS = "order-cents"


def names(alias: str) -> dict[str, tuple[Any, Any]]:
    return {email: (full, display) for email, full, display in
            raw_rows(alias, "shop_customer", "email, full_name, display_name")}


def mirrored(stage: Stage, old: Any) -> tuple[Any, Any]:
    """What an old-column write of ``old`` leaves stored at ``stage``."""
    return (old, None) if stage.app_stage is Stage.OFF else (old, old)


@pytest.mark.parametrize("stage", STAGES, ids=[s.value for s in STAGES])
def test_old_column_writes(alias: str, stage: Stage) -> None:
    set_stage(alias, NAME, stage)
    # create / save of a new instance (the model's save() strips: the mirror sees it)
    Customer.objects.create(email="create", full_name=" Create ")
    c = Customer(email="save-new", full_name="SaveNew")
    c.save()
    # save of a loaded instance, with and without update_fields
    for email in ("save-full", "save-fields"):
        Customer.objects.create(email=email, full_name="before")
    c = Customer.objects.get(email="save-full")
    c.full_name = "SaveFull"
    c.save()
    c = Customer.objects.get(email="save-fields")
    c.full_name = "SaveFields"
    c.save(update_fields=["full_name"])
    # get_or_create / update_or_create
    Customer.objects.get_or_create(email="goc", defaults={"full_name": "GetOrCreate"})
    Customer.objects.create(email="uoc", full_name="before")
    Customer.objects.update_or_create(email="uoc", defaults={"full_name": "UpdateOrCreate"})
    # bulk_create / bulk_update
    Customer.objects.bulk_create([Customer(email=f"bulk{i}", full_name=f"Bulk{i}")
                                  for i in range(3)])
    objs = list(Customer.objects.filter(email__startswith="bulk").order_by("email"))
    for o in objs:
        o.full_name = o.full_name + "!"
    Customer.objects.bulk_update(objs, ["full_name"])
    # QuerySet.update: a value, F(), a database function, a concatenation
    for email in ("upd-value", "upd-f", "upd-func", "upd-concat"):
        Customer.objects.create(email=email, full_name="lower")
    Customer.objects.filter(email="upd-value").update(full_name="UpdValue")
    Customer.objects.filter(email="upd-f").update(full_name=F("email"))
    Customer.objects.filter(email="upd-func").update(full_name=Upper("full_name"))
    Customer.objects.filter(email="upd-concat").update(
        full_name=Concat(F("email"), Value("%"), F("full_name")))

    got = names(alias)
    want = {
        "create": "Create", "save-new": "SaveNew", "save-full": "SaveFull",
        "save-fields": "SaveFields", "goc": "GetOrCreate", "uoc": "UpdateOrCreate",
        "bulk0": "Bulk0!", "bulk1": "Bulk1!", "bulk2": "Bulk2!", "upd-value": "UpdValue",
        "upd-f": "upd-f", "upd-func": "LOWER", "upd-concat": "upd-concat%lower",
    }
    for email, old in want.items():
        assert got[email] == mirrored(stage, old), email


@pytest.mark.parametrize("stage", STAGES[2:], ids=[s.value for s in STAGES[2:]])
def test_new_column_writes(alias: str, stage: Stage) -> None:
    """New code writes the new column: the old one follows until complete."""
    set_stage(alias, NAME, stage)
    Customer.objects.create(email="create", full_name="x", display_name="Create")
    for email in ("save-fields", "upd-value", "upd-func", "bulk"):
        Customer.objects.create(email=email, full_name="old")
    c = Customer.objects.get(email="save-fields")
    c.display_name = "SaveFields"
    c.save(update_fields=["display_name"])
    Customer.objects.filter(email="upd-value").update(display_name="UpdValue")
    Customer.objects.filter(email="upd-func").update(display_name=Upper("email"))
    b = Customer.objects.get(email="bulk")
    b.display_name = "Bulk"
    Customer.objects.bulk_update([b], ["display_name"])

    got = names(alias)
    # create() sets both sides: the authoritative one wins (old until live, new from
    # rampdown); at complete only the new one is written, as given
    both = {Stage.DUALWRITE: ("x", "x"), Stage.SHADOW: ("x", "x"), Stage.LIVE: ("x", "x"),
            Stage.RAMPDOWN: ("Create", "Create"), Stage.COMPLETE: ("x", "Create")}
    assert got["create"] == both[stage]
    follows = stage < Stage.COMPLETE
    for email, new in {"save-fields": "SaveFields", "upd-value": "UpdValue",
                       "upd-func": "UPD-FUNC", "bulk": "Bulk"}.items():
        assert got[email] == ((new if follows else "old"), new), email


@pytest.mark.parametrize("stage", [Stage.OFF, Stage.DUALWRITE, Stage.LIVE, Stage.RAMPDOWN,
                                   Stage.COMPLETE], ids=lambda s: s.value)
def test_type_change_writes(alias: str, stage: Stage) -> None:
    """A type change (price -> price_cents): Python values and SQL expressions agree."""
    set_stage(alias, CENTS, stage)
    c = Customer.objects.create(email="c", full_name="C")
    o = Order.objects.create(customer=c, price=12.34)
    Order.objects.bulk_create([Order(customer=c, price=1.5)])
    Order.objects.filter(pk=o.pk).update(price=F("price") * 2)
    rows = raw_rows(alias, "shop_order", "price, price_cents")
    if stage.app_stage is Stage.OFF:
        assert rows == [(24.68, None), (1.5, None)]
    else:
        assert rows == [(24.68, 2468), (1.5, 150)]
