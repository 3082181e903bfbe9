"""A small shop: customers (a column rename in progress) and their orders (a type change)."""

from __future__ import annotations

from typing import Any

from django.db import models


class CustomerQuerySet(models.QuerySet):  # type: ignore[type-arg]
    def active(self) -> CustomerQuerySet:
        return self.filter(active=True)


class CustomerManager(models.Manager.from_queryset(CustomerQuerySet)):  # type: ignore[misc]
    """The default manager hides deleted customers (a custom default manager)."""

    def get_queryset(self) -> Any:
        return super().get_queryset().filter(deleted=False)


class Customer(models.Model):
    email = models.CharField(max_length=100, unique=True)
    full_name = models.CharField(max_length=200)                # old column
    display_name = models.CharField(max_length=200, null=True, db_index=True)  # new column
    active = models.BooleanField(default=True)
    deleted = models.BooleanField(default=False)

    objects = CustomerManager()
    all_objects = models.Manager()

    class Meta:
        db_table = "shop_customer"
        indexes = [models.Index(fields=["full_name"], name="customer_full_name")]

    def save(self, *args: Any, **kwargs: Any) -> None:
        # An override that changes the old column before saving: the mirror must see it.
        self.full_name = self.full_name.strip()
        super().save(*args, **kwargs)


class Order(models.Model):
    customer = models.ForeignKey(Customer, related_name="orders", on_delete=models.CASCADE)
    price = models.FloatField()                                 # old column
    price_cents = models.BigIntegerField(null=True)             # new column

    class Meta:
        db_table = "shop_order"


class Person(models.Model):
    name = models.CharField(max_length=200)                     # old column
    first_name = models.CharField(max_length=100, null=True)    # new columns (a split)
    last_name = models.CharField(max_length=100, null=True)

    class Meta:
        db_table = "shop_person"
