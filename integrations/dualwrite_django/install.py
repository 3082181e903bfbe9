"""Install and uninstall the adapter for a set of settings (``AppConfig.ready()`` does it)."""

from __future__ import annotations

from collections.abc import Callable

from dualwrite_django.conf import DualwriteSettings
from dualwrite_django.reads import install_reads, uninstall_reads
from dualwrite_django.registry import Registry, build_registry, get_registry, set_registry
from dualwrite_django.writes import install_writes

__all__ = ["install", "uninstall"]

_undo: list[Callable[[], None]] = []


def install(settings: DualwriteSettings) -> Registry:
    """Bind the specs to the loaded models and route their reads and writes.

    Installing again (new settings in tests) first undoes the previous installation.
    """
    uninstall()
    registry = build_registry(settings)
    _undo.extend(install_reads(registry))
    _undo.extend(install_writes(registry))
    set_registry(registry)
    return registry


def uninstall() -> None:
    """Undo :func:`install`: plain Django again; stop fleet heartbeats."""
    old = get_registry()
    uninstall_reads(_undo)
    _undo.clear()
    set_registry(None)
    if old is not None:
        old.runtimes.close()
        for b in old.bindings:
            if b.comparator is not None:
                b.comparator.close()
