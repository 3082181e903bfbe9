"""lc_users (tests/e2e/lifecycle_specs.py) as the Django application maps it."""

from __future__ import annotations

from django.db import models

from tests.e2e.lifecycle_specs import TABLE


class LcUser(models.Model):
    """Both columns of the rename (``lifecycle_specs.RENAME``), like ``LcUser`` of the
    SQLAlchemy application; the table is the harness's, so Django never creates it."""

    id = models.BigIntegerField(primary_key=True)
    full_name = models.CharField(max_length=200, null=True)     # old column
    display_name = models.CharField(max_length=200, null=True)  # new column

    class Meta:
        app_label = "lifecycle"
        db_table = TABLE
        managed = False
