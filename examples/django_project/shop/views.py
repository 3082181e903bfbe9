"""A JSON API over customers. The code reads and writes ``NAME_FIELD`` (``name`` until
release 3); the API's own field is ``name`` in every release."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from shop.models import NAME_FIELD, Customer


def _as_json(customer: Customer) -> dict[str, Any]:
    return {"id": customer.pk, "email": customer.email, "name": getattr(customer, NAME_FIELD)}


def _body(request: HttpRequest) -> dict[str, Any]:
    data = json.loads(request.body or b"{}")
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ValueError('expected a JSON object with a "name" string')
    return data


@csrf_exempt
@require_http_methods(["GET", "POST"])
def customers(request: HttpRequest) -> JsonResponse | HttpResponseBadRequest:
    """``GET /customers?name=...``: the ids of the customers with that name.
    ``POST /customers`` ``{"email": ..., "name": ...}``: sign a customer up."""
    if request.method == "POST":
        try:
            data = _body(request)
        except ValueError as exc:
            return HttpResponseBadRequest(str(exc))
        customer = Customer.objects.create(email=data["email"], **{NAME_FIELD: data["name"]})
        return JsonResponse(_as_json(customer), status=201)
    found = Customer.objects.filter(**{NAME_FIELD: request.GET.get("name", "")})
    return JsonResponse({"ids": list(found.order_by("pk").values_list("pk", flat=True))})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def customer(request: HttpRequest, pk: int) -> JsonResponse | HttpResponseBadRequest:
    """``GET /customers/<pk>``: one customer. ``POST`` ``{"name": ...}``: rename them."""
    found = get_object_or_404(Customer, pk=pk)
    if request.method == "POST":
        try:
            setattr(found, NAME_FIELD, _body(request)["name"])
        except ValueError as exc:
            return HttpResponseBadRequest(str(exc))
        found.save()
    return JsonResponse(_as_json(found))


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The release this process runs and the stage it serves for each column migration."""
    body: dict[str, Any] = {"release": settings.SHOP_RELEASE, "stages": {}}
    if "dualwrite_django" in settings.INSTALLED_APPS:
        import dualwrite_django

        for entry in settings.DUALWRITE["MIGRATIONS"]:
            body["stages"][entry["key"]] = dualwrite_django.stage(entry["key"]).value
    return JsonResponse(body)
