"""Release 2, expand: add the new column ``full_name`` (nullable) and record the column
migration ``customers-full-name`` at stage ``expand`` in the same transaction."""

# ruff: noqa: RUF012  (Django declares a migration's operations as class attributes)

from django.db import migrations, models
from dualwrite_django.operations import AddNewColumn


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        AddNewColumn("customer", "full_name", models.CharField(max_length=200, null=True),
                     key="customers-full-name"),
    ]
