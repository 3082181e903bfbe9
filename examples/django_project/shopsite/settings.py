"""Settings of the example shop.

One codebase, three deploys of it (``SHOP_RELEASE``), the way a column rename ships:

* release 1, before the migration: ``Customer.name`` only, no dualwrite;
* release 2, during it: ``name`` and the new, nullable ``full_name`` on the model, and
  ``dualwrite_django`` mirroring writes and routing reads stage by stage;
* release 3, after it: the code uses ``full_name`` only; its migrations make ``name``
  nullable (so this release can insert rows) and then drop it (contract).

The database is ``DATABASE_URL`` (``sqlite:////abs/path.db``, ``postgresql://user@host/db``,
``mysql://user@host/db``), by default a SQLite file next to this project.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

#: Which deploy of the shop this process runs: 1 (before), 2 (during), 3 (after).
SHOP_RELEASE = int(os.environ.get("SHOP_RELEASE", "2"))
if SHOP_RELEASE not in (1, 2, 3):
    raise ValueError(f"SHOP_RELEASE={SHOP_RELEASE} is not 1, 2 or 3")

#: The key of the column migration: shop_customer.name -> shop_customer.full_name.
CUSTOMER_NAME_MIGRATION = "customers-full-name"


def database_from_url(url: str) -> dict[str, Any]:
    """A Django ``DATABASES`` entry from a dualwrite-style database URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme == "sqlite":
        path = url.split("://", 1)[1]
        return {"ENGINE": "django.db.backends.sqlite3",
                "NAME": unquote(path[1:] if path.startswith("/") else path)}
    entry: dict[str, Any] = {
        "NAME": unquote(parts.path.lstrip("/")), "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""), "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
    }
    query = dict(parse_qsl(parts.query))
    if scheme in ("postgresql", "postgres"):
        # e.g. ?options=-csearch_path%3Dmyschema: the libpq options, search_path included
        entry["ENGINE"] = "django.db.backends.postgresql"
        entry["OPTIONS"] = {"options": query["options"]} if "options" in query else {}
        return entry
    if scheme in ("mysql", "mariadb"):
        import pymysql

        pymysql.install_as_MySQLdb()  # Django's MySQL backend on PyMySQL (no C build)
        entry["ENGINE"] = "django.db.backends.mysql"
        entry["OPTIONS"] = {"charset": "utf8mb4"}
        return entry
    raise ValueError(f"DATABASE_URL: unsupported scheme {parts.scheme!r} "
                     "(use sqlite:///, postgresql:// or mysql://)")


SECRET_KEY = "django-example-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
ROOT_URLCONF = "shopsite.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": database_from_url(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'shop.db'}"),
}

INSTALLED_APPS = ["shop"] if SHOP_RELEASE == 1 else ["dualwrite_django", "shop"]

MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
if SHOP_RELEASE >= 2:
    # Every query of a request sees one stage per migration, evaluated with the request's
    # OpenFeature context (a flag provider could roll `live` out to a share of clients).
    MIDDLEWARE.append("dualwrite_django.middleware.EvaluationContextMiddleware")

DUALWRITE = {
    "MIGRATIONS": [{
        "key": CUSTOMER_NAME_MIGRATION,
        "table": "shop_customer",
        "old": "name",
        "new": "full_name",
        # How long rampdown and complete must last before the next step. Keep the default
        # (24h) in production; 0 here so that the whole story runs in seconds.
        "confidence_window": "0s",
    }],
    "MODE": "app",  # the ORM mirrors writes; "trigger" would make the database do it
}


# dualwrite logs shadow mismatches, flag floors and fleet problems as warnings.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"dualwrite": {"handlers": ["console"], "level": "WARNING"}},
}
