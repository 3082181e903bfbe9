"""``manage.py seed_customers --count N``: N generated customers, in batches."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from shop.models import NAME_FIELD, Customer


class Command(BaseCommand):
    help = "Insert N generated customers (customer-<i>@example.com, 'Customer <i>')."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        count: int = options["count"]
        start = Customer.objects.count()
        Customer.objects.bulk_create(
            [Customer(email=f"customer-{i}@example.com", **{NAME_FIELD: f"Customer {i}"})
             for i in range(start, start + count)], batch_size=200)
        self.stdout.write(f"{count} customers inserted")
