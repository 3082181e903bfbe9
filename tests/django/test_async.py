"""Django's async ORM goes through the same (patched) sync paths."""

from __future__ import annotations

import asyncio

from django.db.models.functions import Upper

from dualwrite.stages import Stage
from tests.django.helpers import raw_rows, set_stage
from tests.django.shop.models import Customer


def test_async_orm_writes_and_reads(alias: str) -> None:
    set_stage(alias, "customer-name", Stage.LIVE)

    async def work() -> list[str | None]:
        c = await Customer.objects.acreate(email="a", full_name="Async")
        await Customer.objects.filter(pk=c.pk).aupdate(full_name=Upper("full_name"))
        c = await Customer.objects.aget(pk=c.pk)
        c.full_name = c.full_name + "!"
        await c.asave(update_fields=["full_name"])
        await Customer.objects.abulk_create([Customer(email="b", full_name="Bulk")])
        return [x.display_name async for x in Customer.objects.order_by("email")]

    assert asyncio.run(work()) == ["ASYNC!", "Bulk"]
    assert raw_rows(alias, "shop_customer", "full_name, display_name") == [
        ("ASYNC!", "ASYNC!"), ("Bulk", "Bulk")]
