"""URLs of the example shop: a tiny JSON API over customers."""

from __future__ import annotations

from django.urls import path
from shop import views

urlpatterns = [
    path("customers", views.customers),
    path("customers/<int:pk>", views.customer),
    path("healthz", views.healthz),
]
