"""Release 3, before it serves: ``name`` becomes nullable, so that release 3 (whose model
no longer has the field) can insert customers while the column still exists.

PostgreSQL drops the NOT NULL without a scan; MySQL/MariaDB change it in place; SQLite
rebuilds the (small) table.
"""

# ruff: noqa: RUF012  (Django declares a migration's operations as class attributes)

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_expand")]

    operations = [
        migrations.AlterField("customer", "name", models.CharField(max_length=200, null=True)),
    ]
