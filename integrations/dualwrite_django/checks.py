"""System checks (``manage.py check``) for ``settings.DUALWRITE``.

* ``E001`` the setting itself is invalid; ``E002`` a migration names no installed model;
  ``E003`` a new column is not a field of the model; ``E004`` a new field is not nullable;
  ``E005`` app mode without Python transforms; ``E006`` trigger mode without SQL
  transforms; ``E007`` two migrations on one column; ``E008`` a database dualwrite does not
  support; ``E009`` trigger mode where the trigger installer is not available.
* ``W001`` the old column is not a field of the model (fine at complete/contract);
  ``W002`` (with ``--database``) a trigger-mode migration whose triggers are not installed
  and current in that database.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import connections

from dualwrite.errors import ConfigurationError, DualwriteError
from dualwrite.stages import Mode
from dualwrite_django.bridge import SUPPORTED_VENDORS, database_for
from dualwrite_django.conf import load_settings
from dualwrite_django.registry import Binding, build_registry, get_registry

__all__ = ["check_dualwrite"]


def _triggers_available() -> bool:
    return importlib.util.find_spec("dualwrite.triggers") is not None


def _database_messages(bindings: list[Binding], databases: Any) -> list[CheckMessage]:
    out: list[CheckMessage] = []
    for alias in databases or ():  # like Django's own database checks: --database / migrate
        vendor = connections[alias].vendor
        if vendor not in SUPPORTED_VENDORS and bindings:
            out.append(Error(f"database {alias!r} is {vendor!r}, which dualwrite does not support",
                             hint="use PostgreSQL, MySQL/MariaDB or SQLite for the migrated "
                                  "tables", id="dualwrite_django.E008"))
        elif vendor in SUPPORTED_VENDORS:
            out.extend(_trigger_messages(alias, bindings))
    if any(b.spec.mode is Mode.TRIGGER for b in bindings) and not _triggers_available():
        keys = ", ".join(b.key for b in bindings if b.spec.mode is Mode.TRIGGER)
        out.append(Error(f"trigger mode ({keys}) needs the trigger installer, which this "
                         "dualwrite version does not have",
                         hint="use mode='app', or upgrade dualwrite", id="dualwrite_django.E009"))
    return out


def _trigger_messages(alias: str, bindings: list[Binding]) -> list[CheckMessage]:
    triggered = [b for b in bindings if b.spec.mode is Mode.TRIGGER]
    if not triggered or not _triggers_available():
        return []
    from dualwrite.triggers import TriggerInstaller

    out: list[CheckMessage] = []
    db = database_for(alias)
    try:
        for b in triggered:
            try:
                state = TriggerInstaller(db).status(b.spec).state.value
            except DualwriteError as exc:
                state = f"not inspectable ({exc.message})"
            if state != "installed":
                out.append(Warning(f"migration {b.key!r} is in trigger mode but its triggers in "
                                   f"database {alias!r} are {state}",
                                   hint=f"python manage.py dualwrite --database {alias} "
                                        f"triggers install {b.key}",
                                   id="dualwrite_django.W002"))
    finally:
        db.close()
    return out


@register(Tags.models, Tags.database)
def check_dualwrite(app_configs: Any = None, databases: Any = None,
                    **kwargs: Any) -> list[CheckMessage]:
    """Check ``settings.DUALWRITE`` against the installed models and databases."""
    try:
        parsed = load_settings(getattr(settings, "DUALWRITE", None))
    except ConfigurationError as exc:
        return [Error(exc.message, hint=exc.hint, id="dualwrite_django.E001")]
    registry = get_registry()
    if registry is None or registry.settings != parsed:
        registry = build_registry(parsed)
    out: list[CheckMessage] = []
    for p in registry.problems:
        klass = Error if p.level == "error" else Warning
        out.append(klass(p.msg, hint=p.hint, id=p.id))
    out.extend(_database_messages(registry.bindings, databases))
    return out
