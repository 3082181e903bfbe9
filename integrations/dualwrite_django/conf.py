"""``settings.DUALWRITE``: read once, checked, turned into :class:`DualwriteSettings`.

::

    DUALWRITE = {
        # specs: MigrationSpec objects, "pkg.module:SPECS" object paths, .toml files, or
        # dicts shaped like a TOML [[migration]] table (their mode defaults to MODE)
        "MIGRATIONS": ["myapp.migrations_spec:SPECS"],
        "MODE": "app",                       # default mode of dict entries: app | trigger
        "MODELS": {"users-display-name": "accounts.User"},  # optional: key -> app_label.Model
        "OPENFEATURE_CLIENT": None,          # a client, or "pkg.mod:client" / a callable
        "OPENFEATURE_PROVIDER": None,        # else: a provider (default: the state table)
        "SAMPLE_RATE": 1.0,                  # shadow comparison sampling
        "PUBLISHER": None,                   # "pkg.mod:publisher" (default: a log record)
        "RAISE_ON_MISMATCH": False,
        "COMPARE_IN_BACKGROUND": False,
        "FLEET": True,                       # register this process in the fleet table
        "FLEET_INTERVAL": 10.0,
        "STATE_TTL": 1.0,                    # how long the recorded stages are cached (s)
        "STAGE_CACHE_SECONDS": 1.0,          # outside a request: reuse a resolved stage (s)
        "CONTEXT_BUILDER": None,             # "pkg.mod:fn(request) -> EvaluationContext"
    }

Bad settings raise :class:`DualwriteImproperlyConfigured`, both a
:class:`~dualwrite.errors.ConfigurationError` (with a ``hint``) and Django's
``ImproperlyConfigured``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from dualwrite.config import _import, _spec_from_table, load_specs
from dualwrite.errors import ConfigurationError
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Mode

__all__ = ["DualwriteImproperlyConfigured", "DualwriteSettings", "load_settings"]

_KNOWN = {"MIGRATIONS", "MODE", "MODELS", "OPENFEATURE_CLIENT", "OPENFEATURE_PROVIDER",
          "SAMPLE_RATE", "PUBLISHER", "RAISE_ON_MISMATCH", "COMPARE_IN_BACKGROUND", "FLEET",
          "FLEET_INTERVAL", "STATE_TTL", "STAGE_CACHE_SECONDS", "CONTEXT_BUILDER"}


class DualwriteImproperlyConfigured(ConfigurationError, ImproperlyConfigured):
    """``settings.DUALWRITE`` is wrong: what, and how to fix it."""


def _bad(message: str, hint: str) -> DualwriteImproperlyConfigured:
    return DualwriteImproperlyConfigured(f"settings.DUALWRITE: {message}", hint=hint)


@dataclass(frozen=True)
class DualwriteSettings:
    """The parsed ``settings.DUALWRITE``."""

    specs: tuple[MigrationSpec, ...] = ()
    models: Mapping[str, str] = field(default_factory=dict)
    client: Any = None
    provider: Any = None
    sample_rate: float = 1.0
    publisher: Any = None
    raise_on_mismatch: bool = False
    compare_in_background: bool = False
    fleet: bool = True
    fleet_interval: float = 10.0
    state_ttl: float = 1.0
    stage_cache_seconds: float = 1.0
    context_builder: Callable[[Any], Any] | None = None


def _resolve(value: Any, what: str) -> Any:
    """An object, or the object a ``pkg.mod:attr`` path names."""
    if isinstance(value, str):
        try:
            return _import(value)
        except ConfigurationError as exc:
            raise _bad(f"{what}: {exc.message}", exc.hint or "check the object path") from None
    return value


def _specs(entries: Any, mode: Mode) -> tuple[MigrationSpec, ...]:
    if not isinstance(entries, (list, tuple)):
        raise _bad("MIGRATIONS must be a list",
                   "give a list of specs, 'pkg.mod:SPECS' paths, .toml files or dicts")
    out: list[MigrationSpec] = []
    for i, entry in enumerate(entries):
        try:
            if isinstance(entry, MigrationSpec):
                out.append(entry)
            elif isinstance(entry, str):
                out.extend(load_specs([entry]))
            elif isinstance(entry, Mapping):
                out.append(_spec_from_table({"mode": mode.value, **entry},
                                            f"MIGRATIONS[{i}]"))
            else:
                raise _bad(f"MIGRATIONS[{i}] is a {type(entry).__name__}",
                           "use a MigrationSpec, 'pkg.mod:SPECS', a .toml path or a dict")
        except DualwriteImproperlyConfigured:
            raise
        except ConfigurationError as exc:
            raise _bad(exc.message, exc.hint or "fix the migration entry") from None
    keys = [s.key for s in out]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise _bad(f"two migrations share the key {dupes[0]!r}",
                   "every migration needs its own key")
    return tuple(out)


def _number(raw: Mapping[str, Any], name: str, default: float, lo: float,
            hi: float | None = None) -> float:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < lo or \
            (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise _bad(f"{name} = {value!r} is not a number {bounds}", f"set {name} to a number {bounds}")
    return float(value)


def _flag(raw: Mapping[str, Any], name: str, default: bool) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise _bad(f"{name} = {value!r} is not True or False", f"set {name} to True or False")
    return value


def load_settings(raw: Any) -> DualwriteSettings:
    """Parse the ``DUALWRITE`` setting (``None``: nothing to do)."""
    if raw is None:
        return DualwriteSettings()
    if not isinstance(raw, Mapping):
        raise _bad(f"expected a dict, got {type(raw).__name__}",
                   "set DUALWRITE = {'MIGRATIONS': [...]} in settings.py")
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise _bad(f"unknown option(s) {', '.join(unknown)}",
                   f"valid options: {', '.join(sorted(_KNOWN))}")
    try:
        mode = Mode(raw.get("MODE", Mode.APP.value))
    except ValueError:
        raise _bad(f"MODE = {raw.get('MODE')!r} is not a mode", "MODE is 'app' or 'trigger'") \
            from None
    models = raw.get("MODELS", {})
    if not isinstance(models, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in models.items()):
        raise _bad("MODELS must map migration keys to 'app_label.Model' strings",
                   "e.g. MODELS = {'users-display-name': 'accounts.User'}")
    builder = _resolve(raw.get("CONTEXT_BUILDER"), "CONTEXT_BUILDER")
    if builder is not None and not callable(builder):
        raise _bad("CONTEXT_BUILDER is not callable",
                   "point it at a function(request) -> EvaluationContext")
    client = _resolve(raw.get("OPENFEATURE_CLIENT"), "OPENFEATURE_CLIENT")
    if client is not None and not hasattr(client, "get_string_details") and callable(client):
        client = client()
    if client is not None and not hasattr(client, "get_string_details"):
        raise _bad("OPENFEATURE_CLIENT is not an OpenFeature client",
                   "pass openfeature.api.get_client(...) or a path to one")
    provider = _resolve(raw.get("OPENFEATURE_PROVIDER"), "OPENFEATURE_PROVIDER")
    if isinstance(provider, type):
        provider = provider()
    if provider is not None and not hasattr(provider, "resolve_string_details"):
        raise _bad("OPENFEATURE_PROVIDER is not an OpenFeature provider",
                   "pass a provider instance, class or a path to one")
    publisher = _resolve(raw.get("PUBLISHER"), "PUBLISHER")
    if isinstance(publisher, type):
        publisher = publisher()
    if publisher is not None and not hasattr(publisher, "publish"):
        raise _bad("PUBLISHER has no publish(mismatch) method",
                   "pass a MismatchPublisher instance, class or a path to one")
    return DualwriteSettings(
        specs=_specs(raw.get("MIGRATIONS", []), mode),
        models=dict(models),
        client=client,
        provider=provider,
        sample_rate=_number(raw, "SAMPLE_RATE", 1.0, 0.0, 1.0),
        publisher=publisher,
        raise_on_mismatch=_flag(raw, "RAISE_ON_MISMATCH", False),
        compare_in_background=_flag(raw, "COMPARE_IN_BACKGROUND", False),
        fleet=_flag(raw, "FLEET", True),
        fleet_interval=_number(raw, "FLEET_INTERVAL", 10.0, 0.1),
        state_ttl=_number(raw, "STATE_TTL", 1.0, 0.0),
        stage_cache_seconds=_number(raw, "STAGE_CACHE_SECONDS", 1.0, 0.0),
        context_builder=builder,
    )
