"""Settings of the test project (``settings.configure(**SETTINGS)`` in conftest.py).

The three aliases point at placeholders until a test needs them: the conftest then fills
in an isolated PostgreSQL schema, MySQL database or SQLite file and migrates it. The
``lifecycle_*`` aliases are placeholders too, pointed by the lifecycle test at the
harness's own database for one test.
"""

from __future__ import annotations

import tempfile
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

_TMP = tempfile.mkdtemp(prefix="dw-django-")

SETTINGS: dict[str, Any] = {
    "DEBUG": False,
    "SECRET_KEY": "dualwrite-tests",
    "USE_TZ": True,
    "ALLOWED_HOSTS": ["*"],
    "INSTALLED_APPS": ["dualwrite_django", "tests.django.shop", "tests.django.lifecycle"],
    "DATABASES": {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": f"{_TMP}/unused.db"},
        "postgresql": {"ENGINE": "django.db.backends.postgresql", "NAME": "unused"},
        "mysql": {"ENGINE": "django.db.backends.mysql", "NAME": "unused"},
        # a database dualwrite does not support (for the system checks)
        "other": {"ENGINE": "django.db.backends.dummy"},
        # the lifecycle harness's own databases (tests/django/test_lifecycle.py), unmigrated
        "lifecycle_sqlite": {"ENGINE": "django.db.backends.sqlite3",
                             "NAME": f"{_TMP}/unused-lifecycle.db"},
        "lifecycle_postgresql": {"ENGINE": "django.db.backends.postgresql", "NAME": "unused"},
        "lifecycle_mysql": {"ENGINE": "django.db.backends.mysql", "NAME": "unused"},
    },
    "DATABASE_ROUTERS": ["tests.django.router.ActiveAliasRouter"],
    "ROOT_URLCONF": "tests.django.shop.urls",
    "MIDDLEWARE": ["dualwrite_django.middleware.EvaluationContextMiddleware"],
    "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
    "DUALWRITE": {
        "MIGRATIONS": ["tests.django.shop.specs:SPECS"],
        "FLEET": False,
        "STATE_TTL": 60.0,
        "STAGE_CACHE_SECONDS": 60.0,
    },
}


def django_database(url: str) -> dict[str, Any]:
    """Django DATABASES entries for a dualwrite test URL."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {"NAME": url.split("://", 1)[1][1:]}
    out: dict[str, Any] = {"NAME": unquote(parts.path.lstrip("/")), "HOST": parts.hostname or "",
                           "PORT": str(parts.port or ""), "USER": unquote(parts.username or ""),
                           "PASSWORD": unquote(parts.password or "")}
    query = dict(parse_qsl(parts.query))
    if parts.scheme.startswith("postgres"):
        out["OPTIONS"] = {k: query[k] for k in ("options", "application_name") if k in query}
    else:
        out["OPTIONS"] = {"charset": "utf8mb4"}
    return out
