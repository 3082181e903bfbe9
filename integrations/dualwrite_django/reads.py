"""Reads: every way Django reads a migrated column returns the stage's value.

* SQL (``filter``/``exclude``/``order_by``/``values``/``values_list``/``only``/``defer``,
  ``F()``): the migrated fields' ``get_col`` returns a :class:`~dualwrite_django.expressions.Routed`
  column, compiled per stage on the query's database.
* Loaded objects: when a query selects every column of a migration, they are selected as
  stored and the model's ``from_db`` computes the stage's values in Python
  (:func:`dualwrite.routing.read_values`) after handing the raw row to the shadow
  comparator (:class:`dualwrite.compare.Comparator`): no extra query. When only some are
  selected (``only()``/``defer()``), the SQL form is selected instead.

The loaded values are remembered on the instance (``_state``) so that a later ``save()``
knows which side the application changed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import Model
from django.db.models.sql.compiler import SQLCompiler

from dualwrite.routing import read_values
from dualwrite_django.expressions import Routed
from dualwrite_django.registry import Binding, Registry

__all__ = ["install_reads", "loaded_values", "remember_loaded", "uninstall_reads"]

_LOADED = "_dualwrite_loaded"
_ORIGINAL_GDC = SQLCompiler.get_default_columns


def loaded_values(instance: Model, key: str) -> dict[str, Any] | None:
    """The values of migration ``key``'s columns as last loaded or saved, if any."""
    loaded: dict[str, dict[str, Any]] | None = getattr(instance._state, _LOADED, None)
    return None if loaded is None else loaded.get(key)


def remember_loaded(instance: Model, bindings: Iterable[Binding]) -> None:
    """Remember the current values of the migrated columns as the stored ones."""
    d = instance.__dict__
    loaded: dict[str, dict[str, Any]] = getattr(instance._state, _LOADED, None) or {}
    for b in bindings:
        loaded[b.key] = {c: d[f.attname] for c, f in b.fields.items() if f.attname in d}
    setattr(instance._state, _LOADED, loaded)


def _fix_loaded(registry: Registry, instance: Model, db: str,
                bindings: tuple[Binding, ...]) -> None:
    d = instance.__dict__
    loaded: dict[str, dict[str, Any]] = {}
    for b in bindings:
        try:
            row = {c: d[a] for c, a in b.attnames}
        except KeyError:  # partially selected: the SQL form was selected
            loaded[b.key] = {c: d[a] for c, a in b.attnames if a in d}
            continue
        if b.python:
            stage = registry.runtimes.stage(db, b.key)
            compare, fix = b.read_plan(stage)
            if compare:
                b.comparator.compare(stage, instance.pk, row,  # type: ignore[union-attr]
                                     b.context(db))
            if fix:
                for column, value in read_values(b.spec, stage, row).items():
                    d[b.fields[column].attname] = row[column] = value
        loaded[b.key] = row
    setattr(instance._state, _LOADED, loaded)


def _patch_from_db(registry: Registry, model: type[Model],
                   bindings: tuple[Binding, ...]) -> Callable[[], None]:
    original = inspect.getattr_static(model, "from_db")
    func = original.__func__

    def from_db(cls: type[Model], db: str, field_names: Any, values: Any) -> Model:
        instance = func(cls, db, field_names, values)
        _fix_loaded(registry, instance, db, registry.for_model(cls) or bindings)
        return instance

    had_own = "from_db" in model.__dict__
    model.from_db = classmethod(from_db)

    def undo() -> None:
        if had_own:
            model.from_db = original
        else:
            del model.from_db
    return undo


def _patch_refresh(registry: Registry, model: type[Model]) -> Callable[[], None]:
    had_own = "refresh_from_db" in model.__dict__
    original = model.refresh_from_db

    def refresh_from_db(self: Model, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        remember_loaded(self, registry.for_model(type(self)))

    model.refresh_from_db = refresh_from_db

    def undo() -> None:
        if had_own:
            model.refresh_from_db = original
        else:
            del model.refresh_from_db
    return undo


def _patch_get_col(registry: Registry, binding: Binding, column: str) -> Callable[[], None]:
    field = binding.fields[column]
    original = field.get_col
    runtimes = registry.runtimes

    def get_col(alias: str | None, output_field: Any = None) -> Any:
        col = original(alias, output_field)
        if output_field is not None and output_field is not field:
            return col
        return Routed(col, binding, column, runtimes.stage)

    field.get_col = get_col

    def undo() -> None:
        field.__dict__.pop("get_col", None)
    return undo


def _get_default_columns(self: SQLCompiler, *args: Any, **kwargs: Any) -> list[Any]:
    cols: list[Any] = _ORIGINAL_GDC(self, *args, **kwargs)
    routed = [c for c in cols if isinstance(c, Routed)]
    if not routed:
        return cols
    present = {(c.binding.key, c.col.alias, c.column) for c in routed}
    out = []
    for c in cols:
        if isinstance(c, Routed) and c.binding.python and all(
                (c.binding.key, c.col.alias, other) in present for other in c.binding.columns):
            out.append(c.col)  # every column selected: stored values, fixed in from_db
        else:
            out.append(c)
    return out


def install_reads(registry: Registry) -> list[Callable[[], None]]:
    """Route reads of every bound model; returns the undo callbacks."""
    undo: list[Callable[[], None]] = []
    for b in registry.bindings:
        for column in b.fields:
            undo.append(_patch_get_col(registry, b, column))
    for model, bindings in registry.by_model.items():
        if model._meta.proxy:
            continue  # proxies inherit the concrete model's methods
        if any(model is not b.model and issubclass(model, b.model) for b in bindings):
            continue  # MTI children inherit their parent's patched methods
        undo.append(_patch_from_db(registry, model, bindings))
        undo.append(_patch_refresh(registry, model))
    SQLCompiler.get_default_columns = _get_default_columns

    def restore() -> None:
        SQLCompiler.get_default_columns = _ORIGINAL_GDC
    undo.append(restore)
    return undo


def uninstall_reads(undo: list[Callable[[], None]]) -> None:
    """Run undo callbacks in reverse order."""
    for fn in reversed(undo):
        fn()
