"""Expand: the new columns, recorded at ``expand`` (dualwrite_django.operations)."""

from django.db import migrations, models
from dualwrite_django.operations import AddNewColumn


class Migration(migrations.Migration):

    dependencies = [
        ("shop", "0001_initial"),
    ]

    operations = [
        AddNewColumn("order", "price_cents", models.BigIntegerField(null=True),
                     key="order-cents"),
        AddNewColumn("customer", "display_name",
                     models.CharField(max_length=200, null=True, db_index=True),
                     key="customer-name"),
    ]
