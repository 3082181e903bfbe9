"""Settings of the test project (``settings.configure(**SETTINGS)`` in conftest.py).

The three aliases point at placeholders until a test needs them: the conftest then fills
in an isolated PostgreSQL schema, MySQL database or SQLite file and migrates it.
"""

from __future__ import annotations

import tempfile
from typing import Any

SETTINGS: dict[str, Any] = {
    "DEBUG": False,
    "SECRET_KEY": "dualwrite-tests",
    "USE_TZ": True,
    "ALLOWED_HOSTS": ["*"],
    "INSTALLED_APPS": ["dualwrite_django", "tests.django.shop"],
    "DATABASES": {
        "default": {"ENGINE": "django.db.backends.sqlite3",
                    "NAME": f"{tempfile.mkdtemp(prefix='dw-django-')}/unused.db"},
        "postgresql": {"ENGINE": "django.db.backends.postgresql", "NAME": "unused"},
        "mysql": {"ENGINE": "django.db.backends.mysql", "NAME": "unused"},
        # a database dualwrite does not support (for the system checks)
        "other": {"ENGINE": "django.db.backends.dummy"},
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
