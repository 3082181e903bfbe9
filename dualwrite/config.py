"""Loading specs: from a Python object path (``pkg.mod:obj``) or a TOML file.

TOML lets a service in any language use the CLI and trigger mode::

    [[migration]]
    key = "users-display-name"
    kind = "rename"                 # rename | change_type | split
    table = "users"
    old = "full_name"
    new = "display_name"
    mode = "app"                    # or "trigger"
    confidence_window = "24h"       # s, m, h, d, or a number of seconds

    [[migration]]
    key = "orders-cents"
    kind = "change_type"
    table = "orders"
    old = "price"
    new = "price_cents"
    new_type = "BIGINT"             # or a table: { postgresql = "bigint", ... }
    forward_sql = "CAST(ROUND({old} * 100) AS BIGINT)"
    backward_sql = "{new} / 100.0"
    forward = "myapp.transforms:to_cents"   # optional Python forms, by import path
    backward = "myapp.transforms:from_cents"
"""

from __future__ import annotations

import importlib
import re
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dualwrite.errors import ConfigurationError
from dualwrite.spec import ChangeColumnType, MigrationSpec, RenameColumn, SplitColumn

__all__ = ["DEFAULT_SPEC_FILE", "load_specs", "parse_duration"]

DEFAULT_SPEC_FILE = "dualwrite.toml"
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | float | int) -> float:
    """Seconds from ``90``, ``"90s"``, ``"30m"``, ``"24h"`` or ``"2d"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = _DURATION_RE.match(str(value))
    if not m:
        raise ConfigurationError(f"not a duration: {value!r}",
                                 hint="use a number of seconds or e.g. 90s, 30m, 24h, 2d")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _import(path: str) -> Any:
    if ":" not in path:
        raise ConfigurationError(f"not an object path: {path!r}",
                                 hint="use package.module:attribute")
    module, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module!r}: {exc}",
                                 hint="check the module path and PYTHONPATH") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigurationError(f"{module!r} has no attribute {attr!r}",
                                     hint="check the name after ':'") from None
    return obj


def _specs_from_object(obj: Any, origin: str) -> list[MigrationSpec]:
    if callable(obj) and not isinstance(obj, MigrationSpec):
        obj = obj()
    if isinstance(obj, MigrationSpec):
        return [obj]
    if isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
        items = list(obj)
        if all(isinstance(i, MigrationSpec) for i in items):
            return items
    raise ConfigurationError(f"{origin} is not a spec or a list of specs",
                             hint="point --spec at a MigrationSpec, a list of them, or a "
                                  "function returning them")


_KINDS: dict[str, type[MigrationSpec]] = {
    "rename": RenameColumn, "change_type": ChangeColumnType, "split": SplitColumn,
}
_COMMON = {"key", "kind", "table", "schema", "mode", "confidence_window"}
_FIELDS: dict[str, set[str]] = {
    "rename": {"old", "new"},
    "change_type": {"old", "new", "new_type", "forward_sql", "backward_sql", "forward",
                    "backward"},
    "split": {"old", "new", "new_types", "forward_sql", "backward_sql", "forward", "backward"},
}


def _spec_from_table(entry: dict[str, Any], origin: str) -> MigrationSpec:
    kind = entry.get("kind", "rename")
    if kind not in _KINDS:
        raise ConfigurationError(f"{origin}: unknown kind {kind!r}",
                                 hint=f"kind is one of {', '.join(_KINDS)}")
    unknown = set(entry) - _COMMON - _FIELDS[kind]
    if unknown:
        raise ConfigurationError(f"{origin}: unknown field(s) {sorted(unknown)} for kind {kind!r}",
                                 hint=f"allowed: {sorted(_COMMON | _FIELDS[kind])}")
    kwargs = {k: v for k, v in entry.items() if k != "kind"}
    for name in ("forward", "backward"):
        if isinstance(kwargs.get(name), str):
            fn: Callable[..., Any] = _import(kwargs[name])
            kwargs[name] = fn
    if "confidence_window" in kwargs:
        kwargs["confidence_window"] = parse_duration(kwargs["confidence_window"])
    try:
        return _KINDS[kind](**kwargs)
    except TypeError as exc:
        raise ConfigurationError(f"{origin}: {exc}", hint="check the migration's fields") from exc


def _specs_from_toml(path: Path) -> list[MigrationSpec]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}",
                                 hint="fix the TOML file") from exc
    entries = data.get("migration", [])
    if not isinstance(entries, list):
        raise ConfigurationError(f"{path}: 'migration' must be an array of tables",
                                 hint="write each migration as [[migration]]")
    return [_spec_from_table(e, f"{path} migration #{i + 1}") for i, e in enumerate(entries)]


def load_specs(sources: Iterable[str]) -> list[MigrationSpec]:
    """Specs from every source: a ``.toml`` file or a ``pkg.mod:obj`` path.

    With no source, ``./dualwrite.toml`` is read if it exists.
    """
    sources = list(sources)
    if not sources and Path(DEFAULT_SPEC_FILE).exists():
        sources = [DEFAULT_SPEC_FILE]
    specs: list[MigrationSpec] = []
    for src in sources:
        path = Path(src)
        if src.endswith(".toml") or (path.exists() and ":" not in src):
            if not path.exists():
                raise ConfigurationError(f"spec file {src} does not exist",
                                         hint="check the --spec path")
            specs.extend(_specs_from_toml(path))
        else:
            specs.extend(_specs_from_object(_import(src), src))
    return specs
