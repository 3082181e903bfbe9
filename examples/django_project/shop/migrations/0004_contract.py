"""Release 3, contract: drop the old column ``name``.

``DropOldColumn`` first passes dualwrite's contract gate (the migration is at ``complete``,
every live instance serves ``complete``, the confidence window has passed) and records
``contract``; a refusal fails this migration and changes nothing. Irreversible.
"""

# ruff: noqa: RUF012  (Django declares a migration's operations as class attributes)

from django.db import migrations
from dualwrite_django.operations import DropOldColumn


class Migration(migrations.Migration):
    dependencies = [("shop", "0003_name_nullable")]

    operations = [
        DropOldColumn("customer", "name", key="customers-full-name"),
    ]
