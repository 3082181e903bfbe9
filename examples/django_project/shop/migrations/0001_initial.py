"""Release 1: the shop's customers, with their ``name``."""

# ruff: noqa: RUF012  (Django declares a migration's operations as class attributes)

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="Customer",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                           serialize=False, verbose_name="ID")),
                ("email", models.EmailField(max_length=254, unique=True)),
                ("name", models.CharField(max_length=200)),
            ],
            options={"db_table": "shop_customer"},
        ),
    ]
