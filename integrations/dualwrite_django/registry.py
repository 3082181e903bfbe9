"""Specs bound to Django models: which model and which fields each migration touches.

A spec names a table and columns; :func:`build_registry` finds the installed model whose
``db_table`` is the table (or the one ``MODELS`` names) and the concrete fields whose
``column`` are the spec's columns. What cannot be bound is kept in ``problems`` for the
system checks (:mod:`dualwrite_django.checks`) and is not mirrored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db.models import Field, Model

from dualwrite.compare import Comparator
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Mode, Stage
from dualwrite_django.conf import DualwriteSettings
from dualwrite_django.runtime import Runtimes

__all__ = ["Binding", "Problem", "Registry", "build_registry", "get_registry"]

log = logging.getLogger("dualwrite.django")


@dataclass(frozen=True)
class Problem:
    """Something in the settings that does not match the models (reported by the checks)."""

    id: str
    level: str  # "error" | "warning"
    msg: str
    hint: str
    key: str | None = None


@dataclass(eq=False)
class Binding:
    """One migration bound to one model."""

    spec: MigrationSpec
    model: type[Model]
    #: column -> concrete field, for the spec's columns the model has.
    fields: dict[str, Field[Any, Any]]
    comparator: Comparator | None = None
    _warned: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        spec = self.spec
        #: The migration key.
        self.key = spec.key
        #: The spec's columns present on the model (old first).
        self.columns = tuple(c for c in (*spec.old_columns, *spec.new_columns)
                             if c in self.fields)
        #: (column, attribute) of each of them.
        self.attnames = tuple((c, self.fields[c].attname) for c in self.columns)
        #: Whether every old and new column is a field of the model.
        self.complete = len(self.columns) == len(spec.old_columns) + len(spec.new_columns)
        #: Whether f and g can be computed in Python (mirroring values, fixing loaded rows).
        self.python = spec.has_python_transforms
        #: Whether this adapter mirrors writes (app mode); in trigger mode the database does.
        self.mirrors = spec.mode is Mode.APP
        self._plans: dict[Stage, tuple[bool, bool]] = {}
        self._contexts: dict[str, dict[str, str]] = {}

    def context(self, alias: str) -> dict[str, str]:
        """What a shadow mismatch on ``alias`` reports about where it was read."""
        ctx = self._contexts.get(alias)
        if ctx is None:
            ctx = self._contexts[alias] = {"model": self.model._meta.label, "database": alias}
        return ctx

    def read_plan(self, stage: Stage) -> tuple[bool, bool]:
        """(compare loaded rows?, fix loaded values?) at ``stage``."""
        plan = self._plans.get(stage)
        if plan is None:
            plan = self._plans[stage] = (
                self.comparator is not None and stage.compares and self.complete,
                stage.app_stage is not Stage.OFF)
        return plan

    def attname(self, column: str) -> str:
        """The model attribute holding ``column``."""
        name: str = self.fields[column].attname
        return name

    def warn_once(self, message: str) -> None:
        """Log ``message`` once per binding."""
        if message not in self._warned:
            self._warned.add(message)
            log.warning("dualwrite: migration %s: %s", self.key, message)


@dataclass
class Registry:
    """Everything the app set up from ``settings.DUALWRITE``."""

    settings: DualwriteSettings
    runtimes: Runtimes
    bindings: list[Binding] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: model class (concrete, proxy or MTI child) -> its bindings
    by_model: dict[type[Model], tuple[Binding, ...]] = field(default_factory=dict)

    def for_model(self, model: type[Model]) -> tuple[Binding, ...]:
        """The bindings of ``model`` (empty for a model no migration touches)."""
        return self.by_model.get(model, ())

    def binding(self, key: str) -> Binding | None:
        """The binding of migration ``key``."""
        for b in self.bindings:
            if b.key == key:
                return b
        return None


_current: list[Registry] = []


def get_registry() -> Registry | None:
    """The registry of the running app (``None`` before ``ready()``)."""
    return _current[0] if _current else None


def set_registry(registry: Registry | None) -> None:
    """Make ``registry`` current (the AppConfig does this)."""
    _current[:] = [] if registry is None else [registry]


def _find_model(spec: MigrationSpec, label: str | None,
                problems: list[Problem]) -> type[Model] | None:
    if label is not None:
        try:
            model: type[Model] = apps.get_model(label)
        except (LookupError, ValueError):
            problems.append(Problem("dualwrite_django.E002", "error",
                                    f"migration {spec.key!r}: MODELS names {label!r}, which is "
                                    "not an installed model",
                                    "use 'app_label.ModelName' of an installed app", spec.key))
            return None
        if model._meta.db_table != spec.table:
            problems.append(Problem("dualwrite_django.E002", "error",
                                    f"migration {spec.key!r}: model {label} has table "
                                    f"{model._meta.db_table!r}, the spec says {spec.table!r}",
                                    "make the spec's table the model's db_table", spec.key))
            return None
        return model
    found = [m for m in apps.get_models() if m._meta.db_table == spec.table
             and not m._meta.proxy]
    if not found:
        problems.append(Problem("dualwrite_django.E002", "error",
                                f"migration {spec.key!r}: no installed model has the table "
                                f"{spec.table!r}",
                                "check the spec's table (a model's db_table) or name the model "
                                "in DUALWRITE['MODELS']", spec.key))
        return None
    first: type[Model] = found[0]
    return first


def _bind(spec: MigrationSpec, model: type[Model], problems: list[Problem]) -> Binding | None:
    by_column = {f.column: f for f in model._meta.concrete_fields}
    fields = {c: by_column[c] for c in (*spec.old_columns, *spec.new_columns) if c in by_column}
    label = model._meta.label
    missing_new = [c for c in spec.new_columns if c not in fields]
    if missing_new:
        problems.append(Problem("dualwrite_django.E003", "error",
                                f"migration {spec.key!r}: the new column(s) "
                                f"{', '.join(missing_new)} are not fields of {label}",
                                f"add the field(s) to {label} (null=True) and a migration that "
                                "adds the column (dualwrite_django.operations.AddNewColumn)",
                                spec.key))
        return None
    for c in spec.new_columns:
        if not fields[c].null:
            problems.append(Problem("dualwrite_django.E004", "error",
                                    f"migration {spec.key!r}: {label}.{fields[c].name} must be "
                                    "nullable while the migration runs",
                                    "declare it with null=True (constraints come at contract)",
                                    spec.key))
    missing_old = [c for c in spec.old_columns if c not in fields]
    if missing_old:
        problems.append(Problem("dualwrite_django.W001", "warning",
                                f"migration {spec.key!r}: the old column(s) "
                                f"{', '.join(missing_old)} are not fields of {label}",
                                "fine once the migration is at complete or contract; before "
                                "that, writes of the old column cannot be mirrored", spec.key))
    if spec.mode is Mode.APP and not spec.has_python_transforms:
        problems.append(Problem("dualwrite_django.E005", "error",
                                f"migration {spec.key!r}: app mode needs Python transforms to "
                                "mirror values", "give forward= and backward= callables, or use "
                                "mode='trigger'", spec.key))
    if spec.mode is Mode.TRIGGER and not spec.has_sql_transforms:
        problems.append(Problem("dualwrite_django.E006", "error",
                                f"migration {spec.key!r}: trigger mode needs SQL transforms",
                                "give forward_sql and backward_sql", spec.key))
    return Binding(spec=spec, model=model, fields=fields)


def build_registry(settings: DualwriteSettings, runtimes: Runtimes | None = None) -> Registry:
    """Bind every spec of ``settings`` to its model (models must be loaded)."""
    reg = Registry(settings=settings, runtimes=runtimes or Runtimes(settings))
    used: dict[tuple[type[Model], str], str] = {}
    for spec in settings.specs:
        model = _find_model(spec, settings.models.get(spec.key), reg.problems)
        if model is None:
            continue
        binding = _bind(spec, model, reg.problems)
        if binding is None:
            continue
        clash = [used[(model, c)] for c in binding.fields if (model, c) in used]
        if clash:
            reg.problems.append(Problem("dualwrite_django.E007", "error",
                                        f"migrations {clash[0]!r} and {spec.key!r} touch the "
                                        f"same column of {model._meta.label}",
                                        "run one migration per column at a time", spec.key))
            continue
        for c in binding.fields:
            used[(model, c)] = spec.key
        if spec.has_python_transforms:
            s = settings
            binding.comparator = Comparator(spec, sample_rate=s.sample_rate,
                                            publisher=s.publisher,
                                            raise_on_mismatch=s.raise_on_mismatch,
                                            background=s.compare_in_background)
        reg.bindings.append(binding)
    for key in settings.models:
        if key not in {s.key for s in settings.specs}:
            reg.problems.append(Problem("dualwrite_django.E002", "error",
                                        f"DUALWRITE['MODELS'] names {key!r}, which is not a "
                                        "loaded migration", "remove it or add the spec", key))
    for model in apps.get_models():
        fields = set(model._meta.concrete_fields)
        found = tuple(b for b in reg.bindings if set(b.fields.values()) <= fields)
        if found:
            reg.by_model[model] = found
    return reg
