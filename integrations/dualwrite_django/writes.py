"""Writes (app mode): every ORM write of a migrated column also writes its counterpart.

The rule is the core's (:func:`dualwrite.mirror.mirror_values` for values,
:func:`dualwrite.mirror.mirror_direction` for SQL expressions); this module only finds
what each Django write path sets and adds the mirrored columns to it:

* ``Model.save_base`` (so ``save()`` with or without ``update_fields``, ``create``,
  ``get_or_create``, ``update_or_create``): the mirrored field is set on the instance and
  added to ``update_fields``. Which side a full ``save()`` writes is found by comparing with
  the values loaded from the database: the side the application changed wins (if neither
  changed, the stage's authoritative side is written again).
* ``QuerySet.bulk_create`` / ``bulk_update``: per object, mirrored fields added to ``fields``
  (and to ``update_fields`` of an upsert).
* ``QuerySet.update()``: plain values are mirrored in Python; ``F()`` and database functions
  (``update(full_name=Upper("full_name"))``) are mirrored as SQL expressions
  (:class:`~dualwrite_django.expressions.Transformed`), never as a stale value.

The patches sit on ``Model``/``QuerySet`` classes, so they apply to custom managers and
querysets alike (as long as an override calls ``super()``). Raw SQL is not mirrored in app
mode: use trigger mode for it.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.db import router
from django.db.models import F, Model, QuerySet, Value
from django.db.models.expressions import Col

from dualwrite.dialects import Dialect
from dualwrite.errors import SpecError
from dualwrite.metrics import METRICS
from dualwrite.mirror import mirror_direction, mirror_values
from dualwrite.stages import Stage
from dualwrite_django.expressions import (
    Transformed,
    django_dialect,
    has_template,
    transformed,
)
from dualwrite_django.reads import loaded_values, remember_loaded
from dualwrite_django.registry import Binding, Registry, get_registry

__all__ = ["install_writes"]

#: Set while bulk_update runs its own update(): that one is already mirrored.
_inside_bulk = contextvars.ContextVar("dualwrite_inside_bulk", default=False)


def _count(binding: Binding, n: int = 1) -> None:
    METRICS.mirrored_writes.labels(migration_key=binding.key, adapter="django").inc(n)


def _mirroring(registry: Registry, binding: Binding, alias: str) -> Stage | None:
    """The stage if this write is to be mirrored by the adapter, else ``None``."""
    if not binding.mirrors:
        return None
    stage = registry.runtimes.stage(alias, binding.key)
    return None if stage.app_stage is Stage.OFF else stage


def _written(binding: Binding, instance: Model, candidates: Iterable[str]) -> list[str]:
    """Which of ``candidates`` (columns a write includes) the application actually set."""
    d = instance.__dict__
    cands = [c for c in candidates if binding.fields[c].attname in d]
    loaded = loaded_values(instance, binding.key)
    if loaded is None:  # never loaded: what the application gave
        return [c for c in cands if d[binding.attname(c)] is not None]
    changed = [c for c in cands if c not in loaded or d[binding.attname(c)] != loaded[c]]
    return changed or cands


def _mirror_instance(registry: Registry, binding: Binding, stage: Stage, instance: Model,
                     candidates: Iterable[str]) -> list[str]:
    """Set the mirrored attributes of one instance; the columns it set."""
    written = _written(binding, instance, candidates)
    if not written:
        return []
    d = instance.__dict__
    values = {c: d[binding.attname(c)] for c in written}
    current = {c: d[f.attname] for c, f in binding.fields.items() if f.attname in d}
    out = []
    for column, value in mirror_values(binding.spec, stage, values, current).items():
        if column in binding.fields:
            d[binding.attname(column)] = value
            out.append(column)
    return out


def _field_columns(binding: Binding, names: Iterable[str]) -> list[str]:
    names = set(names)
    return [c for c, f in binding.fields.items() if f.name in names or f.attname in names]


def _mirror_save(registry: Registry, instance: Model, using: str,
                 update_fields: Iterable[str] | None) -> Iterable[str] | None:
    for b in registry.for_model(type(instance)):
        stage = _mirroring(registry, b, using)
        if stage is None:
            continue
        cands = list(b.fields) if update_fields is None else _field_columns(b, update_fields)
        extra = _mirror_instance(registry, b, stage, instance, cands)
        if extra:
            _count(b)
        if update_fields is not None and extra:
            update_fields = frozenset(update_fields) | {b.fields[c].name for c in extra}
    return update_fields


def _patch_save_base(registry: Registry, model: type[Model]) -> Callable[[], None]:
    had_own = "save_base" in model.__dict__
    original = model.save_base
    params = [p for p in inspect.signature(original).parameters if p != "self"]

    def save_base(self: Model, *args: Any, **kwargs: Any) -> Any:
        if args:  # positional call: name the arguments
            kwargs.update(zip(params, args, strict=False))
            args = ()
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        kwargs["using"] = using
        kwargs["update_fields"] = _mirror_save(registry, self, using,
                                               kwargs.get("update_fields"))
        result = original(self, **kwargs)
        remember_loaded(self, registry.for_model(type(self)))
        return result

    model.save_base = save_base

    def undo() -> None:
        if had_own:
            model.save_base = original
        else:
            del model.save_base
    return undo


def _queryset_alias(qs: QuerySet[Any]) -> str:
    alias: str = qs._db or router.db_for_write(qs.model, **qs._hints)
    return alias


def _bulk_create(original: Callable[..., Any]) -> Callable[..., Any]:
    def bulk_create(self: QuerySet[Any], objs: Iterable[Model], *args: Any, **kwargs: Any) -> Any:
        registry = get_registry()
        bindings = registry.for_model(self.model) if registry is not None else ()
        if not bindings or registry is None:
            return original(self, objs, *args, **kwargs)
        objs = list(objs)
        alias = _queryset_alias(self)
        extra: set[str] = set()
        for b in bindings:
            stage = _mirroring(registry, b, alias)
            if stage is None:
                continue
            mirrored = 0
            for obj in objs:
                names = [b.fields[c].name for c in
                         _mirror_instance(registry, b, stage, obj, b.fields)]
                extra.update(names)
                mirrored += bool(names)
            if mirrored:
                _count(b, mirrored)
        upd = kwargs.get("update_fields")
        if upd is not None and extra:
            kwargs["update_fields"] = list(dict.fromkeys([*upd, *sorted(extra)]))
        result = original(self, objs, *args, **kwargs)
        for obj in objs:
            remember_loaded(obj, bindings)
        return result
    return bulk_create


def _bulk_update(original: Callable[..., Any]) -> Callable[..., Any]:
    def bulk_update(self: QuerySet[Any], objs: Iterable[Model], fields: Iterable[str],
                    *args: Any, **kwargs: Any) -> Any:
        registry = get_registry()
        bindings = registry.for_model(self.model) if registry is not None else ()
        if not bindings or registry is None:
            return original(self, objs, fields, *args, **kwargs)
        objs, fields = list(objs), list(fields)
        alias = _queryset_alias(self)
        extra: list[str] = []
        for b in bindings:
            stage = _mirroring(registry, b, alias)
            if stage is None:
                continue
            cands = _field_columns(b, fields)
            mirrored = 0
            for obj in objs:
                cols = _mirror_instance(registry, b, stage, obj, cands)
                mirrored += bool(cols)
                for c in cols:
                    name = b.fields[c].name
                    if name not in fields and name not in extra:
                        extra.append(name)
            if mirrored:
                _count(b, mirrored)
        token = _inside_bulk.set(True)
        try:
            result = original(self, objs, [*fields, *extra], *args, **kwargs)
        finally:
            _inside_bulk.reset(token)
        for obj in objs:
            remember_loaded(obj, bindings)
        return result
    return bulk_update


def _is_expression(value: Any) -> bool:
    return hasattr(value, "resolve_expression")


def _sql_mirror(binding: Binding, stage: Stage, values: Mapping[str, Any],
                dialect: Dialect) -> dict[str, Any]:
    """Mirrored columns as SQL expressions of the written ones (F() for the rest).

    The mirrored assignments come after the written ones in the SET list. Where a SET
    assignment sees the ones before it (MySQL), they read the just-assigned columns.
    """
    spec = binding.spec
    direction = mirror_direction(spec, stage, values)
    if direction is None:
        return {}
    sources, targets = ((spec.old_columns, spec.new_columns) if direction == "forward"
                        else (spec.new_columns, spec.old_columns))
    missing = [c for c in sources if c not in binding.fields]
    if missing:
        raise SpecError(f"migration {spec.key!r}: cannot mirror, {missing[0]!r} is not a field "
                        f"of {binding.model._meta.label}", key=spec.key, table=spec.table,
                        column=missing[0], hint="add the field to the model")
    if dialect.update_assigns_in_order:
        table = binding.model._meta.db_table
        inputs = {c: Col(table, binding.fields[c]) for c in sources}
    else:
        inputs = {c: (values[c] if _is_expression(values[c]) else
                      Value(values[c], output_field=binding.fields[c])) if c in values
                  else F(binding.fields[c].name) for c in sources}
    out: dict[str, Any] = {}
    for t in targets:
        if t not in binding.fields:
            continue
        if not has_template(spec, dialect.name, direction, t):
            # raises the SpecError that says what to add
            Transformed(spec, direction, t, inputs, binding.fields[t]).template(dialect.name)
        out[t] = transformed(spec, direction, t, inputs, binding.fields[t], dialect.name)
    return out


def _update(original: Callable[..., Any]) -> Callable[..., Any]:
    def update(self: QuerySet[Any], **kwargs: Any) -> Any:
        registry = get_registry()
        if registry is None or _inside_bulk.get():
            return original(self, **kwargs)
        bindings = registry.for_model(self.model)
        if not bindings:
            return original(self, **kwargs)
        alias = _queryset_alias(self)
        for b in bindings:
            stage = _mirroring(registry, b, alias)
            if stage is None:
                continue
            names = {c: f.name if f.name in kwargs else f.attname
                     for c, f in b.fields.items() if f.name in kwargs or f.attname in kwargs}
            if not names:
                continue
            values = {c: kwargs[n] for c, n in names.items()}
            split_partial = any(
                0 < sum(c in values for c in side) < len(side)
                for side in (b.spec.old_columns, b.spec.new_columns))
            if any(_is_expression(v) for v in values.values()) or split_partial:
                from django.db import connections

                extra = _sql_mirror(b, stage, values, django_dialect(connections[alias]))
            else:
                extra = mirror_values(b.spec, stage, values)
            if extra:
                _count(b)
            for column, value in extra.items():
                if column in b.fields:  # after the written columns in the SET list
                    kwargs.pop(b.fields[column].name, None)
                    kwargs.pop(b.fields[column].attname, None)
                    kwargs[b.fields[column].name] = value
        return original(self, **kwargs)
    return update


def install_writes(registry: Registry) -> list[Callable[[], None]]:
    """Mirror writes of every bound model; returns the undo callbacks."""
    undo: list[Callable[[], None]] = []
    for model, bindings in registry.by_model.items():
        if model._meta.proxy or any(model is not b.model and issubclass(model, b.model)
                                    for b in bindings):
            continue
        undo.append(_patch_save_base(registry, model))
    originals = {name: getattr(QuerySet, name) for name in ("bulk_create", "bulk_update",
                                                             "update")}
    QuerySet.bulk_create = _bulk_create(originals["bulk_create"])
    QuerySet.bulk_update = _bulk_update(originals["bulk_update"])
    QuerySet.update = _update(originals["update"])

    def restore() -> None:
        for name, fn in originals.items():
            setattr(QuerySet, name, fn)
    undo.append(restore)
    return undo
