"""The whole-migration harness (tests/e2e/test_lifecycle.py) with writers of a Django
application: the choreography expand -> ... -> contract, its rollbacks and faults, while
two writer threads of a Django application write through ``create()``, ``save()``,
``save(update_fields=...)`` and ``QuerySet.update()`` and read every row back through the
model's attributes. The ``dualwrite_django`` adapter mirrors and routes, evaluating stages
through the run's own (sometimes failing) OpenFeature client, and heartbeats in the fleet
the gates consult.

The Django application runs on a ``lifecycle_<backend>`` alias pointed at the harness's
isolated database for the test (and back at its placeholder afterwards), with persistent
connections handled as Django's request cycle handles them.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import dualwrite_django
import pytest
from django.conf import settings
from django.db import Error, InterfaceError, OperationalError, close_old_connections, connections
from dualwrite_django.conf import load_settings
from dualwrite_django.install import install

from dualwrite.db import Database
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Mode
from tests.django.lifecycle.models import LcUser
from tests.django.router import ACTIVE
from tests.django.settings import django_database
from tests.e2e import lifecycle_specs
from tests.e2e.test_lifecycle import Run, run_lifecycle

T = TypeVar("T")

#: What Django raises when the server dropped the connection under a query.
LOST = (OperationalError, InterfaceError)


@contextlib.contextmanager
def django_alias(backend: str, url: str) -> Iterator[str]:
    """The ``lifecycle_<backend>`` alias on ``url`` (persistent connections), every model
    routed to it; its placeholder settings come back afterwards."""
    alias = f"lifecycle_{backend}"
    connections[alias].close()  # (the handler fills in the defaults of every alias first)
    entry = settings.DATABASES[alias]  # the very dict the connection handler reads
    saved = dict(entry)
    entry.update(django_database(url), CONN_MAX_AGE=None)
    ACTIVE["alias"] = alias
    try:
        yield alias
    finally:
        ACTIVE["alias"] = "default"
        connections[alias].close()
        entry.clear()
        entry.update(saved)


class DjangoApp:
    """An application written with Django and the dualwrite adapter (an OrmClient).

    Every operation runs between the ``close_old_connections()`` calls of Django's request
    signals (they close a connection that failed and is unusable). On even rows it is a
    request: in the adapter's evaluation scope with the row as targeting key (one stage per
    migration, as with the middleware); on odd rows a background job: no scope, stages
    reused for ``STAGE_CACHE_SECONDS``.
    """

    def __init__(self, alias: str, spec: MigrationSpec, client: Any) -> None:
        self.alias = alias
        self.deployed = threading.Event()
        #: Operations retried after the server dropped their connection.
        self.retries = 0
        #: Writes per path (create, save, update_fields, update).
        self.paths: Counter[str] = Counter()
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self.registry = install(load_settings({
            **settings.DUALWRITE, "MIGRATIONS": [spec], "MODELS": {spec.key: "lifecycle.LcUser"},
            "OPENFEATURE_CLIENT": client, "FLEET": True, "FLEET_INTERVAL": 0.2,
            "STATE_TTL": 0.05, "STAGE_CACHE_SECONDS": 0.05}))
        assert [b.model for b in self.registry.bindings] == [LcUser], self.registry.problems

    def ready(self) -> bool:
        return self.deployed.is_set()

    def _request(self, handler: Callable[..., T], key: int, *args: Any) -> T:
        close_old_connections()  # request_started
        try:
            if key % 2:  # a background job: no request scope, stages cached for a while
                return handler(key, *args)
            with dualwrite_django.evaluation_context({"targeting_key": str(key)}):
                return handler(key, *args)
        finally:
            close_old_connections()  # request_finished

    def _write(self, key: int, values: Mapping[str, Any], insert: bool) -> None:
        if insert:
            LcUser.objects.create(id=key, **values)
            path = "create"
        else:
            path = ("save", "update_fields", "update")[next(self._turn) % 3]
            if path == "update":
                updated = LcUser.objects.filter(pk=key).update(**values)
                assert updated == 1, f"row {key} is gone"
            else:
                row = LcUser.objects.get(pk=key)
                for column, value in values.items():
                    setattr(row, column, value)
                row.save(update_fields=list(values) if path == "update_fields" else None)
        with self._lock:
            self.paths[path] += 1

    def _read_or_none(self, key: int) -> dict[str, Any] | None:
        row = LcUser.objects.filter(pk=key).first()
        return None if row is None else {"full_name": row.full_name}

    def _retried(self) -> None:
        with self._lock:
            self.retries += 1

    def write(self, key: int, values: Mapping[str, Any], insert: bool) -> None:
        try:
            self._request(self._write, key, values, insert)
        except LOST:  # a dropped connection: retry once, as a request handler would
            self._retried()
            if insert and self._request(self._read_or_none, key) is not None:
                return  # the commit went through; only its answer was lost
            self._request(self._write, key, values, insert)

    def read(self, key: int) -> dict[str, Any]:
        try:
            found = self._request(self._read_or_none, key)
        except LOST:
            self._retried()
            found = self._request(self._read_or_none, key)
        assert found is not None, f"row {key} is gone"
        return found

    def thread_done(self) -> None:
        """A writer thread ends: close its connections (Django's are per thread)."""
        for conn in connections.all(initialized_only=True):
            with contextlib.suppress(Error):
                conn.close()

    def close(self) -> None:
        """The test settings' adapter again (stops this one's fleet heartbeat)."""
        install(load_settings(settings.DUALWRITE))


def test_django_application_through_the_lifecycle(
        db: Database, db_url: str, backend: str, request: pytest.FixtureRequest,
        django_db_blocker: Any) -> None:
    """The choreography with two writer threads of a Django application (the adapter
    mirrors and routes) beside a core writer, each checking what it reads back."""
    spec = lifecycle_specs.RENAME
    run = Run.on(db, db_url, spec, request)
    with django_db_blocker.unblock(), django_alias(backend, run.url) as alias:
        orm = DjangoApp(alias, spec, run.resolver.client)
        try:
            report = run_lifecycle(run, Mode.APP, orm)
            fleet = orm.registry.runtimes(alias).fleet  # the adapter's heartbeat, still on
            assert fleet is not None, "the Django application never joined the fleet"
            assert fleet.instance_id in {i.instance_id for i in run.migrator.live_fleet(spec.key)}
        finally:
            orm.close()
            run.db.close()
    print(f"\ndjango/app on {db.dialect.name}: {report.operations} operations "
          f"({report.writes} writes, {report.inserts} inserts, {report.reads} reads; "
          f"through Django: {dict(orm.paths)}, {orm.retries} retried), "
          f"{run.counts.rollbacks} rollbacks, {len(run.counts.faults)} faults")
    assert report.clean, (report.errors[:5], report.stale_reads[:5])
    assert report.writes and report.reads
    assert all(orm.paths[p] for p in ("create", "save", "update_fields", "update")), orm.paths
