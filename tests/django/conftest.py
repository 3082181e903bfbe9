"""pytest-django for the Django app tests, without touching the rest of the suite.

Django is configured here (``settings.configure``) with three aliases -- ``default``
(SQLite), ``postgresql`` and ``mysql`` -- that stay placeholders until a test asks for
one: the ``alias`` fixture then fills it in from the same isolated schema / database /
file the rest of the suite uses (``tests/conftest.py:isolated_url``), migrates it once per
session, routes every model to it and gives the test a transactional database
(pytest-django ``django_db(transaction=True)``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest

pymysql.install_as_MySQLdb()  # Django's MySQL backend on PyMySQL (no mysqlclient build)

import django  # noqa: E402
from django.conf import settings  # noqa: E402

from tests.django.settings import SETTINGS, django_database  # noqa: E402

if not settings.configured:
    settings.configure(**SETTINGS)
    django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

from tests.conftest import isolated_url  # noqa: E402
from tests.django.helpers import reset_state  # noqa: E402
from tests.django.router import ACTIVE  # noqa: E402

KINDS = {"default": "sqlite", "postgresql": "postgresql", "mysql": "mysql"}


@pytest.fixture(scope="session")
def django_db_setup() -> Iterator[None]:
    """The databases are set up per alias on first use (see ``alias``)."""
    yield


@pytest.fixture(scope="session")
def django_databases(servers: Any, tmp_path_factory: pytest.TempPathFactory,
                     django_db_blocker: Any) -> Iterator[Callable[[str], str]]:
    ready: dict[str, str] = {}
    stack = contextlib.ExitStack()

    def ensure(alias: str) -> str:
        if alias not in ready:
            kind = KINDS[alias]
            url = stack.enter_context(isolated_url(servers, kind, tmp_path_factory.mktemp(kind)))
            settings.DATABASES[alias].update(django_database(url))
            connections[alias].close()
            with django_db_blocker.unblock():
                call_command("migrate", database=alias, verbosity=0)
            ready[alias] = url
        return ready[alias]

    yield ensure
    from dualwrite_django.registry import get_registry

    registry = get_registry()
    if registry is not None:
        registry.runtimes.close()
    for alias in ready:
        connections[alias].close()
    stack.close()


def _param(alias: str) -> Any:
    kind = KINDS[alias]
    return pytest.param(alias, id=kind, marks=[
        getattr(pytest.mark, kind), pytest.mark.django_db(transaction=True, databases=[alias])])


@pytest.fixture(params=[_param(a) for a in KINDS])
def alias(request: pytest.FixtureRequest, django_databases: Callable[[str], str]) -> Iterator[str]:
    """A migrated, empty database of each backend, every model routed to it, every
    migration registered at ``off``."""
    name = str(request.param)
    django_databases(name)
    ACTIVE["alias"] = name
    reset_state(name)
    yield name
    ACTIVE["alias"] = "default"
