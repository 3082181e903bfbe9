"""The Django app: ``"dualwrite_django"`` in ``INSTALLED_APPS``."""

from __future__ import annotations

import logging

from django.apps import AppConfig
from django.conf import settings

from dualwrite_django import checks as _checks  # noqa: F401  (registers the system checks)
from dualwrite_django.conf import load_settings
from dualwrite_django.install import install

__all__ = ["DualwriteConfig"]

log = logging.getLogger("dualwrite.django")


class DualwriteConfig(AppConfig):
    """Reads ``settings.DUALWRITE``, binds the specs to models and patches reads/writes.

    Nothing touches a database here: stages are read on first use, per database alias.
    """

    name = "dualwrite_django"
    label = "dualwrite_django"
    verbose_name = "dualwrite"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        registry = install(load_settings(getattr(settings, "DUALWRITE", None)))
        for p in registry.problems:
            (log.error if p.level == "error" else log.warning)(
                "dualwrite: %s (%s) -- fix: %s", p.msg, p.id, p.hint)
