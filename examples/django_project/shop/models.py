"""The shop's one model, as each release declares it (see ``settings.SHOP_RELEASE``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

RELEASE: int = settings.SHOP_RELEASE

#: The field the application code reads and writes: ``name`` until release 3.
NAME_FIELD = "full_name" if RELEASE >= 3 else "name"


class Customer(models.Model):
    email = models.EmailField(unique=True)
    if RELEASE <= 2:
        # The old column. Releases 1 and 2 read and write it; release 3 no longer knows it
        # (0003 makes it nullable for release 3's inserts, 0004 drops it: the contract).
        name = models.CharField(max_length=200)
    if RELEASE >= 2:
        # The new column, added by 0002_expand (dualwrite's AddNewColumn). It stays
        # nullable while the migration runs; dualwrite_django fills it.
        full_name = models.CharField(max_length=200, null=True)

    class Meta:
        db_table = "shop_customer"

    def __str__(self) -> str:
        return f"{self.email}: {getattr(self, NAME_FIELD)}"
