"""Views that read the migrated fields the way application code does."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from tests.django.shop.models import Customer


def customer_detail(request: HttpRequest, pk: int) -> JsonResponse:
    c = Customer.objects.get(pk=pk)
    return JsonResponse({"display_name": c.display_name, "full_name": c.full_name,
                         "orders": sorted(o.price_cents for o in c.orders.all())})


def customer_search(request: HttpRequest) -> JsonResponse:
    ids: list[Any] = list(Customer.objects.filter(display_name=request.GET["q"])
                          .order_by("id").values_list("id", flat=True))
    return JsonResponse({"ids": ids})
