"""Migration specs: declarative, database-agnostic descriptions of one column change.

A spec never touches a connection. Validation against a live schema lives in
:mod:`dualwrite.schema`.

SQL transforms are expression templates in which ``{old}`` stands for the old column and
``{<new column name>}`` (or ``{new}`` when there is one new column) for a new column. The
dialect substitutes quoted identifiers; nothing else in the template is touched. A template
can be one string for every database or a mapping ``{"postgresql": ..., "mysql": ...,
"sqlite": ...}``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dualwrite.errors import SpecError
from dualwrite.stages import Mode

__all__ = [
    "ChangeColumnType",
    "MigrationSpec",
    "RenameColumn",
    "SplitColumn",
    "SqlTemplate",
]

#: One SQL expression template, or one per dialect name.
SqlTemplate = str | Mapping[str, str]

_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
DEFAULT_CONFIDENCE_WINDOW = 24 * 3600.0


def _check_identifier(key: str, what: str, name: object, table: str | None = None) -> str:
    if not isinstance(name, str) or not name or "\x00" in name or len(name) > 64:
        raise SpecError(f"migration {key!r}: {what} {name!r} is not a valid identifier",
                        key=key, table=table, column=name if isinstance(name, str) else None,
                        hint="use a non-empty name of at most 64 characters without NUL bytes")
    return name


def _callable_name(fn: Callable[..., Any] | None) -> str | None:
    if fn is None:
        return None
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _template_for(key: str, template: SqlTemplate | None, dialect: str) -> str | None:
    if template is None:
        return None
    if isinstance(template, str):
        return template
    if dialect in template:
        return template[dialect]
    raise SpecError(f"migration {key!r}: no SQL transform for dialect {dialect!r} "
                    f"(given for {', '.join(sorted(template))})", key=key,
                    hint=f"add a {dialect!r} entry to the transform mapping")


_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def _python(spec: MigrationSpec, fn: _Fn | None, direction: str) -> _Fn:
    if fn is None:
        raise SpecError(f"migration {spec.key!r} has no Python {direction} transform",
                        key=spec.key, table=spec.table, hint=f"give {direction}")
    return fn


def _freeze_template(template: SqlTemplate | None) -> SqlTemplate | None:
    if template is None or isinstance(template, str):
        return template
    return dict(sorted(template.items()))


@dataclass(frozen=True, kw_only=True)
class MigrationSpec:
    """Base of every spec. Use :class:`RenameColumn`, :class:`ChangeColumnType` or
    :class:`SplitColumn`.

    ``confidence_window`` (seconds) is how long ``rampdown`` and ``complete`` must last
    before the next step; it is operational and not part of :meth:`spec_hash`.
    """

    key: str
    table: str
    schema: str | None = None
    mode: Mode = Mode.APP
    confidence_window: float = DEFAULT_CONFIDENCE_WINDOW

    kind = "abstract"

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not _KEY_RE.match(self.key):
            raise SpecError(f"migration key {self.key!r} is not valid", key=str(self.key),
                            hint="use 1-100 characters: letters, digits, '_', '.', '-', "
                                 "starting with a letter or digit")
        _check_identifier(self.key, "table", self.table)
        if self.schema is not None:
            _check_identifier(self.key, "schema", self.schema)
        if not isinstance(self.mode, Mode):
            try:
                object.__setattr__(self, "mode", Mode(self.mode))
            except ValueError:
                raise SpecError(f"migration {self.key!r}: unknown mode {self.mode!r}",
                                key=self.key, hint="mode is 'app' or 'trigger'") from None
        if not isinstance(self.confidence_window, (int, float)) or self.confidence_window < 0:
            raise SpecError(f"migration {self.key!r}: confidence_window must be >= 0 seconds",
                            key=self.key, hint="give it in seconds, e.g. 86400 for a day")
        for c in self.old_columns + self.new_columns:
            _check_identifier(self.key, "column", c, self.table)
        overlap = set(self.old_columns) & set(self.new_columns)
        if overlap:
            raise SpecError(f"migration {self.key!r}: column {sorted(overlap)[0]!r} is both old "
                            "and new", key=self.key, table=self.table,
                            column=sorted(overlap)[0], hint="the new column needs a new name")
        if len(set(self.new_columns)) != len(self.new_columns):
            raise SpecError(f"migration {self.key!r}: new columns repeat a name", key=self.key,
                            table=self.table, hint="give every new column its own name")

    # -- shape ------------------------------------------------------------------------
    @property
    def old_columns(self) -> tuple[str, ...]:
        """The old column(s)."""
        raise NotImplementedError

    @property
    def new_columns(self) -> tuple[str, ...]:
        """The new column(s)."""
        raise NotImplementedError

    @property
    def flag_key(self) -> str:
        """The OpenFeature flag that carries this migration's stage."""
        return f"dualwrite.{self.key}.stage"

    # -- transforms -------------------------------------------------------------------
    def forward_template(self, dialect: str, new_column: str) -> str | None:
        """The SQL template computing ``new_column`` from the old column(s), or ``None``."""
        raise NotImplementedError

    def backward_template(self, dialect: str, old_column: str) -> str | None:
        """The SQL template computing ``old_column`` from the new column(s), or ``None``."""
        raise NotImplementedError

    def apply_forward(self, old: Mapping[str, Any]) -> dict[str, Any]:
        """f: old column values -> new column values, in Python. ``None`` maps to ``None``."""
        raise NotImplementedError

    def apply_backward(self, new: Mapping[str, Any]) -> dict[str, Any]:
        """g: new column values -> old column values, in Python."""
        raise NotImplementedError

    @property
    def has_python_transforms(self) -> bool:
        """Whether f and g can be computed in Python."""
        return True

    @property
    def has_sql_transforms(self) -> bool:
        """Whether f and g are given as SQL (needed for trigger mode and SQL backfill)."""
        return True

    def declared_type(self, dialect: str, new_column: str) -> str | None:
        """The declared SQL type of ``new_column``; ``None`` means "the old column's type"."""
        return None

    # -- identity ---------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The spec as a JSON-ready mapping (what :meth:`spec_hash` is computed from)."""
        return {"kind": self.kind, "key": self.key, "schema": self.schema, "table": self.table,
                "old": list(self.old_columns), "new": list(self.new_columns),
                "mode": self.mode.value, **self._describe_transforms()}

    def _describe_transforms(self) -> dict[str, Any]:
        return {}

    def spec_hash(self) -> str:
        """A stable hash of what the migration does (not of operational settings)."""
        blob = json.dumps(self.describe(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True, kw_only=True)
class RenameColumn(MigrationSpec):
    """Rename ``old`` to ``new``: both transforms are the identity; same type."""

    old: str
    new: str
    kind = "rename"

    @property
    def old_columns(self) -> tuple[str, ...]:
        return (self.old,)

    @property
    def new_columns(self) -> tuple[str, ...]:
        return (self.new,)

    def forward_template(self, dialect: str, new_column: str) -> str | None:
        return "{old}"

    def backward_template(self, dialect: str, old_column: str) -> str | None:
        return "{new}"

    def apply_forward(self, old: Mapping[str, Any]) -> dict[str, Any]:
        return {self.new: old[self.old]}

    def apply_backward(self, new: Mapping[str, Any]) -> dict[str, Any]:
        return {self.old: new[self.new]}


@dataclass(frozen=True, kw_only=True)
class ChangeColumnType(MigrationSpec):
    """Move ``old`` to ``new`` of another type.

    ``forward_sql``/``backward_sql`` are SQL templates (``{old}``, ``{new}``), ``forward``/
    ``backward`` the same transforms as Python callables of one value. At least one form of
    each direction is required; where both are given they must agree (checked on real rows
    by :func:`dualwrite.schema.validate_spec`). ``None`` always maps to ``None``.
    """

    old: str
    new: str
    new_type: SqlTemplate | None = None
    forward_sql: SqlTemplate | None = None
    backward_sql: SqlTemplate | None = None
    forward: Callable[[Any], Any] | None = None
    backward: Callable[[Any], Any] | None = None
    kind = "change_type"

    def __post_init__(self) -> None:
        super().__post_init__()
        for direction, sql, fn in (("forward", self.forward_sql, self.forward),
                                   ("backward", self.backward_sql, self.backward)):
            if sql is None and fn is None:
                raise SpecError(f"migration {self.key!r}: no {direction} transform",
                                key=self.key, table=self.table, column=self.new,
                                hint=f"give {direction}_sql= (an SQL template) and/or "
                                     f"{direction}= (a Python callable)")
        object.__setattr__(self, "forward_sql", _freeze_template(self.forward_sql))
        object.__setattr__(self, "backward_sql",
                           _freeze_template(self.backward_sql))
        object.__setattr__(self, "new_type", _freeze_template(self.new_type))

    @property
    def old_columns(self) -> tuple[str, ...]:
        return (self.old,)

    @property
    def new_columns(self) -> tuple[str, ...]:
        return (self.new,)

    def forward_template(self, dialect: str, new_column: str) -> str | None:
        return _template_for(self.key, self.forward_sql, dialect)

    def backward_template(self, dialect: str, old_column: str) -> str | None:
        return _template_for(self.key, self.backward_sql, dialect)

    def apply_forward(self, old: Mapping[str, Any]) -> dict[str, Any]:
        forward = _python(self, self.forward, "forward")
        value = old[self.old]
        return {self.new: None if value is None else forward(value)}

    def apply_backward(self, new: Mapping[str, Any]) -> dict[str, Any]:
        backward = _python(self, self.backward, "backward")
        value = new[self.new]
        return {self.old: None if value is None else backward(value)}

    @property
    def has_python_transforms(self) -> bool:
        return self.forward is not None and self.backward is not None

    @property
    def has_sql_transforms(self) -> bool:
        return self.forward_sql is not None and self.backward_sql is not None

    def declared_type(self, dialect: str, new_column: str) -> str | None:
        return _template_for(self.key, self.new_type, dialect)

    def _describe_transforms(self) -> dict[str, Any]:
        return {"new_type": self.new_type,
                "forward_sql": self.forward_sql,
                "backward_sql": self.backward_sql,
                "forward": _callable_name(self.forward),
                "backward": _callable_name(self.backward)}


@dataclass(frozen=True, kw_only=True)
class SplitColumn(MigrationSpec):
    """Split one ``old`` column into several ``new`` ones.

    ``forward_sql`` maps each new column to a template over ``{old}``;
    ``backward_sql`` rebuilds the old value from ``{<new column>}`` placeholders.
    ``forward(old_value)`` returns one value per new column, in order;
    ``backward(*new_values)`` returns the old value.
    """

    old: str
    new: Sequence[str]
    new_types: Mapping[str, SqlTemplate] = field(default_factory=dict)
    forward_sql: Mapping[str, SqlTemplate] | None = None
    backward_sql: SqlTemplate | None = None
    forward: Callable[[Any], Sequence[Any]] | None = None
    backward: Callable[..., Any] | None = None
    kind = "split"

    def __post_init__(self) -> None:
        object.__setattr__(self, "new", tuple(self.new))
        super().__post_init__()
        if len(self.new) < 2:
            raise SpecError(f"migration {self.key!r}: a split needs at least two new columns",
                            key=self.key, table=self.table,
                            hint="use ChangeColumnType or RenameColumn for one new column")
        if self.forward_sql is None and self.forward is None:
            raise SpecError(f"migration {self.key!r}: no forward transform", key=self.key,
                            table=self.table, hint="give forward_sql and/or forward")
        if self.backward_sql is None and self.backward is None:
            raise SpecError(f"migration {self.key!r}: no backward transform", key=self.key,
                            table=self.table, hint="give backward_sql and/or backward")
        if self.forward_sql is not None:
            missing = [c for c in self.new if c not in self.forward_sql]
            extra = [c for c in self.forward_sql if c not in self.new]
            if missing or extra:
                col = (missing or extra)[0]
                raise SpecError(f"migration {self.key!r}: forward_sql must have one "
                                f"entry per new column ({col!r} is {'missing' if missing else 'unknown'})",
                                key=self.key, table=self.table, column=col,
                                hint=f"give exactly the keys {list(self.new)}")
            object.__setattr__(self, "forward_sql",
                               {c: _freeze_template(self.forward_sql[c]) for c in self.new})
        object.__setattr__(self, "backward_sql",
                           _freeze_template(self.backward_sql))
        object.__setattr__(self, "new_types",
                           {c: _freeze_template(t) for c, t in sorted(self.new_types.items())})

    @property
    def old_columns(self) -> tuple[str, ...]:
        return (self.old,)

    @property
    def new_columns(self) -> tuple[str, ...]:
        return tuple(self.new)

    def forward_template(self, dialect: str, new_column: str) -> str | None:
        if self.forward_sql is None:
            return None
        return _template_for(self.key, self.forward_sql[new_column], dialect)

    def backward_template(self, dialect: str, old_column: str) -> str | None:
        return _template_for(self.key, self.backward_sql, dialect)

    def apply_forward(self, old: Mapping[str, Any]) -> dict[str, Any]:
        forward = _python(self, self.forward, "forward")
        value = old[self.old]
        if value is None:
            return dict.fromkeys(self.new)
        parts = tuple(forward(value))
        if len(parts) != len(self.new):
            raise SpecError(f"migration {self.key!r}: forward returned {len(parts)} values "
                            f"for {len(self.new)} new columns", key=self.key, table=self.table,
                            hint="return one value per new column, in order")
        return dict(zip(self.new, parts, strict=True))

    def apply_backward(self, new: Mapping[str, Any]) -> dict[str, Any]:
        backward = _python(self, self.backward, "backward")
        values = [new[c] for c in self.new]
        if all(v is None for v in values):
            return {self.old: None}
        return {self.old: backward(*values)}

    @property
    def has_python_transforms(self) -> bool:
        return self.forward is not None and self.backward is not None

    @property
    def has_sql_transforms(self) -> bool:
        return self.forward_sql is not None and self.backward_sql is not None

    def declared_type(self, dialect: str, new_column: str) -> str | None:
        return _template_for(self.key, self.new_types.get(new_column), dialect)

    def _describe_transforms(self) -> dict[str, Any]:
        return {"new_types": dict(self.new_types),
                "forward_sql": self.forward_sql,
                "backward_sql": self.backward_sql,
                "forward": _callable_name(self.forward),
                "backward": _callable_name(self.backward)}
