"""Per-operation overhead of the Django app against plain Django, measured in one run.

    python benchmarks/django_overhead.py [--backends sqlite,postgresql,mysql] [--rounds 7]
                                         [--sample-rate 1.0]

Uses the test project's ``shop`` app (``tests/django``) with the ``customer-name`` rename at
``live`` -- the most expensive stage: writes are mirrored, reads are routed
(``COALESCE`` / the index-friendly OR form in SQL, Python fix-up and shadow comparison of
loaded rows; ``--sample-rate``, default 1.0 as in the settings). Default settings otherwise
(stage cache 1 s, state TTL 1 s; fleet heartbeat off so no background thread runs during
timing).

Each round times every operation once with the adapter installed and once with it
uninstalled (plain Django, same database, same rows), alternating; the table shows the
best (minimum) per-operation wall time of each over the rounds -- the least disturbed by
other load on the machine -- their ratio (adapter / plain), and the CPU time the adapter
adds per operation in this process (best adapter CPU minus best plain CPU): the part of
the cost that does not depend on the database server or on other load.
SQLite runs in memory (the worst case: the ORM's own cost dominates, nothing hides it).
PostgreSQL/MySQL come from DUALWRITE_TEST_POSTGRES_URL / DUALWRITE_TEST_MYSQL_URL or the
local default ports; each gets a scratch schema/database, dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pymysql

pymysql.install_as_MySQLdb()

import django  # noqa: E402
from django.conf import settings  # noqa: E402

URLS = {"postgresql": os.environ.get("DUALWRITE_TEST_POSTGRES_URL",
                                     "postgresql://postgres@127.0.0.1:5432/test"),
        "mysql": os.environ.get("DUALWRITE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")}
SCRATCH = f"dwbench_{uuid.uuid4().hex[:8]}"
KEY = "customer-name"
ROWS = 200


def _configure(sample_rate: float) -> None:
    from tests.conftest import _with_query  # the test rig's URL helper
    from tests.django.settings import SETTINGS, django_database

    pg = django_database(_with_query(URLS["postgresql"], f"options=-csearch_path%3D{SCRATCH}"))
    my = django_database(URLS["mysql"].rsplit("/", 1)[0] + f"/{SCRATCH}")
    databases = {
        "default": {"ENGINE": "django.db.backends.sqlite3",
                    "NAME": f"file:{SCRATCH}?mode=memory&cache=shared"},
        "postgresql": {"ENGINE": "django.db.backends.postgresql", **pg},
        "mysql": {"ENGINE": "django.db.backends.mysql", **my},
    }
    dualwrite = {**SETTINGS["DUALWRITE"], "STATE_TTL": 1.0, "STAGE_CACHE_SECONDS": 1.0,
                 "SAMPLE_RATE": sample_rate}
    settings.configure(**{**SETTINGS, "DATABASES": databases, "MIDDLEWARE": [],
                          "DUALWRITE": dualwrite})
    django.setup()


@contextlib.contextmanager
def scratch(backend: str) -> Iterator[str]:
    """A migrated scratch database for ``backend``; its alias."""
    from django.core.management import call_command

    from dualwrite.db import Database

    alias = {"sqlite": "default"}.get(backend, backend)
    admin = Database.from_url(URLS[backend]) if backend != "sqlite" else None
    if admin is not None:
        admin.execute((f'CREATE SCHEMA "{SCRATCH}"' if backend == "postgresql"
                       else f"CREATE DATABASE `{SCRATCH}`", ()))
    try:
        call_command("migrate", database=alias, verbosity=0)
        yield alias
    finally:
        from django.db import connections

        connections[alias].close()
        if admin is not None:
            admin.execute((f'DROP SCHEMA "{SCRATCH}" CASCADE' if backend == "postgresql"
                           else f"DROP DATABASE `{SCRATCH}`", ()))
            admin.close()


def walk_to_live(alias: str) -> None:
    from dualwrite_django.bridge import database_for

    from dualwrite.migrator import Migrator
    from dualwrite.stages import Stage
    from tests.django.shop.specs import SPECS
    from tests.helpers import record_backfill_and_verify

    db = database_for(alias)
    m = Migrator(db, SPECS, actor="bench")
    m.init()
    for step in (Stage.DUALWRITE, Stage.SHADOW, Stage.LIVE):
        if step is Stage.LIVE:
            record_backfill_and_verify(db, KEY, m.state.get(KEY).spec_hash)
        m.advance(KEY, step)
    db.close()


def resync() -> None:
    """Make both columns agree again after plain-Django writes (not timed)."""
    from django.db.models import F

    from tests.django.shop.models import Customer

    Customer.all_objects.update(display_name=F("full_name"))


def operations(alias: str) -> dict[str, Callable[[int], None]]:
    from django.db.models.functions import Upper

    from tests.django.router import ACTIVE
    from tests.django.shop.models import Customer

    ACTIVE["alias"] = alias
    Customer.objects.all().delete()
    Customer.objects.bulk_create([Customer(email=f"b{i}", full_name=f"Name {i}")
                                  for i in range(ROWS)])
    pks = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    one = Customer.objects.get(pk=pks[0])

    def save(i: int) -> None:
        one.full_name = f"Saved {i}"
        one.save()

    def save_update_fields(i: int) -> None:
        one.full_name = f"Fields {i}"
        one.save(update_fields=["full_name"])

    def create(i: int) -> None:
        Customer.objects.create(email=f"c{uuid.uuid4().hex}", full_name=f"New {i}")

    def bulk_update(i: int) -> None:
        objs = list(Customer.objects.filter(pk__in=pks[:50]))
        for o in objs:
            o.full_name = f"Bulk {i} {o.pk}"
        Customer.objects.bulk_update(objs, ["full_name"])

    def update(i: int) -> None:
        Customer.objects.filter(pk=pks[i % ROWS]).update(full_name=f"Upd {i}")

    def update_expression(i: int) -> None:
        Customer.objects.filter(pk=pks[i % ROWS]).update(full_name=Upper("full_name"))

    def get_by_field(i: int) -> None:
        Customer.objects.filter(full_name=f"Name {i % ROWS}").first()

    def get_by_pk(i: int) -> None:
        Customer.objects.get(pk=pks[i % ROWS])

    def list_100(i: int) -> None:
        list(Customer.objects.order_by("pk")[:100])

    return {"save()": save, "save(update_fields)": save_update_fields, "create": create,
            "bulk_update 50": bulk_update, "QuerySet.update": update,
            "update(Upper())": update_expression, "get by field": get_by_field,
            "get by pk": get_by_pk, "list 100 rows": list_100}


def timed(fn: Callable[[int], None], n: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) per call."""
    fn(0)  # warm
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n, (time.process_time() - cpu) / n


Row = tuple[str, str, float, float, float]


def run(backend: str, rounds: int, n: int) -> list[Row]:
    from django.conf import settings as dj
    from dualwrite_django.conf import load_settings
    from dualwrite_django.install import install, uninstall

    with scratch(backend) as alias:
        install(load_settings(dj.DUALWRITE))
        walk_to_live(alias)
        ops = operations(alias)
        samples: dict[str, dict[str, list[tuple[float, float]]]] = {
            k: {"plain": [], "adapter": []} for k in ops}
        for r in range(rounds):
            for name, fn in ops.items():
                count = n // 5 if name in ("bulk_update 50", "list 100 rows") else n
                order = ("adapter", "plain") if r % 2 == 0 else ("plain", "adapter")
                for mode in order:
                    if mode == "plain":
                        uninstall()
                    else:
                        install(load_settings(dj.DUALWRITE))
                    samples[name][mode].append(timed(fn, count))
                    if mode == "plain":  # plain writes did not mirror: bring the rows back
                        resync()
        uninstall()
        return [(backend, name, min(w for w, _ in s["plain"]), min(w for w, _ in s["adapter"]),
                 min(c for _, c in s["adapter"]) - min(c for _, c in s["plain"]))
                for name, s in samples.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("-n", type=int, default=200, help="operations per timing")
    parser.add_argument("--sample-rate", type=float, default=1.0,
                        help="SAMPLE_RATE: share of loaded rows shadow-compared")
    args = parser.parse_args()
    _configure(args.sample_rate)
    rows: list[Row] = []
    for backend in args.backends.split(","):
        rows.extend(run(backend.strip(), args.rounds, args.n))
    print(f"\nDjango adapter overhead at stage 'live', SAMPLE_RATE {args.sample_rate:g} "
          f"(best of {args.rounds} rounds, {args.n} ops each)\n")
    print("| backend | operation | plain Django | with dualwrite | ratio | added CPU/op |")
    print("|---|---|---:|---:|---:|---:|")
    for backend, name, plain, adapter, cpu in rows:
        print(f"| {backend} | {name} | {plain * 1e6:,.0f} µs | {adapter * 1e6:,.0f} µs | "
              f"{adapter / plain:.3f} | {cpu * 1e6:,.0f} µs |")


if __name__ == "__main__":
    main()
