"""live: index-friendly lookups (EXPLAIN on PostgreSQL), rollback live -> shadow -> live,
and writers racing stage changes."""

from __future__ import annotations

import random
import threading

import dualwrite_django
import pytest
from django.db import connections
from django.db.models.functions import Upper

from dualwrite.stages import Stage
from tests.django.helpers import raw_execute, raw_rows, set_stage
from tests.django.shop.models import Customer

NAME = "customer-name"


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True, databases=["postgresql"])
def test_live_point_lookup_uses_an_index(django_databases: object) -> None:
    from tests.django.helpers import reset_state
    from tests.django.router import ACTIVE

    django_databases("postgresql")  # type: ignore[operator]
    ACTIVE["alias"] = "postgresql"
    try:
        reset_state("postgresql")
        raw_execute("postgresql", "INSERT INTO shop_customer (email, full_name, display_name, "
                    "active, deleted) SELECT 'u' || g, 'User ' || g, CASE WHEN g %% 2 = 0 "
                    "THEN 'User ' || g END, true, false FROM generate_series(1, 100000) g")
        raw_execute("postgresql", "ANALYZE shop_customer")
        set_stage("postgresql", NAME, Stage.LIVE)
        for field in ("display_name", "full_name"):
            qs = Customer.objects.filter(**{field: "User 77"})
            plan = qs.explain()
            assert "Seq Scan" not in plan, plan
            assert "Index" in plan, plan
            assert list(qs.values_list("email", flat=True)) == ["u77"]
        in_plan = Customer.objects.filter(display_name__in=["User 5", "User 6"]).explain()
        assert "Seq Scan" not in in_plan, in_plan
    finally:
        ACTIVE["alias"] = "default"


def test_rollback_live_shadow_live(alias: str) -> None:
    """Writes stay mirrored across a rollback and a second advance; reads follow."""
    set_stage(alias, NAME, Stage.LIVE)
    c = Customer.objects.create(email="a", full_name="In live")
    raw_execute(alias, "UPDATE shop_customer SET display_name = %s WHERE id = %s",
                ("Drifted", c.pk))  # a stray write to the new column only
    assert Customer.objects.get(pk=c.pk).full_name == "Drifted"  # live reads new
    set_stage(alias, NAME, Stage.SHADOW)
    assert Customer.objects.get(pk=c.pk).display_name == "In live"  # shadow reads old
    Customer.objects.filter(pk=c.pk).update(full_name=Upper("full_name"))
    d = Customer.objects.create(email="b", full_name="In shadow")
    set_stage(alias, NAME, Stage.LIVE)
    assert raw_rows(alias, "shop_customer", "full_name, display_name") == [
        ("IN LIVE", "IN LIVE"), ("In shadow", "In shadow")]
    assert Customer.objects.get(pk=d.pk).display_name == "In shadow"
    assert list(Customer.objects.filter(display_name="IN LIVE").values_list("email", flat=True)) \
        == ["a"]


def test_writers_race_stage_changes(alias: str) -> None:
    """Threads write through every path while the stage moves between dualwrite, shadow
    and live: no error, and every row ends with both columns equal."""
    set_stage(alias, NAME, Stage.DUALWRITE)
    Customer.objects.bulk_create([Customer(email=f"r{i}", full_name=f"R{i}") for i in range(20)])
    pks = list(Customer.objects.values_list("pk", flat=True))
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            for n in range(25):
                pk = rnd.choice(pks)
                path = n % 4
                if path == 0:
                    c = Customer.objects.get(pk=pk)
                    c.full_name = f"saved {seed}-{n}"
                    c.save()
                elif path == 1:
                    Customer.objects.filter(pk=pk).update(full_name=f"updated {seed}-{n}")
                elif path == 2:
                    Customer.objects.filter(pk=pk).update(full_name=Upper("full_name"))
                else:
                    c = Customer.objects.get(pk=pk)
                    c.full_name = f"fields {seed}-{n}"
                    c.save(update_fields=["full_name"])
        except BaseException as exc:  # noqa: BLE001 -- reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    def flipper() -> None:
        try:
            walk = [Stage.SHADOW, Stage.LIVE, Stage.SHADOW, Stage.DUALWRITE, Stage.SHADOW,
                    Stage.LIVE]
            for target in walk:
                if stop.is_set():
                    break
                set_stage(alias, NAME, target)
                dualwrite_django.refresh()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    threads.append(threading.Thread(target=flipper))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stop.set()
    assert not errors, errors
    rows = raw_rows(alias, "shop_customer", "full_name, display_name")
    assert len(rows) == 20
    assert all(full == display for full, display in rows), rows
