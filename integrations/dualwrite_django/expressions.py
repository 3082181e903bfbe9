"""Django expressions for migrated columns: stage-routed reads and SQL transforms.

* :class:`Transformed` is f(inputs) or g(inputs) in SQL: the spec's transform template for
  the connection's dialect, with each placeholder replaced by a compiled Django expression
  (a column, ``Upper("full_name")``, ``F("price") * 2``, ...). The template text comes from
  the spec and the dialect (:meth:`~dualwrite.dialects.base.Dialect.template_parts`).
* :class:`Routed` stands for a migrated column wherever Django reads it (SELECT lists of
  ``values()``/``only()``, filters, ``order_by``, ``F()``). When it is compiled it asks the
  runtime for the stage on the query's database and becomes the form of
  :func:`dualwrite.routing.read_form`: the column, f(old), ``Coalesce(new, f(old))``,
  ``Coalesce(g(new), old)`` or g(new).
* In ``live`` a lookup on a ``Coalesce`` form is rewritten to stay index-friendly:
  ``(a IS NOT NULL AND a = v) OR (a IS NULL AND b = v)`` instead of
  ``COALESCE(a, b) = v`` (same truth value for every row, also under ``NOT``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.db.models import Expression, Field
from django.db.models.expressions import Col
from django.db.models.functions import Coalesce
from django.db.models.lookups import IsNull, Lookup
from django.db.models.sql.where import AND, OR, WhereNode

from dualwrite.dialects import Dialect, dialect_for
from dualwrite.errors import SpecError
from dualwrite.routing import ReadForm, read_form
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Stage

if TYPE_CHECKING:
    from dualwrite_django.registry import Binding

__all__ = ["Routed", "Transformed", "django_dialect", "has_template", "transformed"]

log = logging.getLogger("dualwrite.django")

_DIALECTS: dict[str, Dialect] = {}

#: Lookups rewritten to the index-friendly OR form in ``live``.
INDEX_FRIENDLY = frozenset({"exact", "iexact", "in", "gt", "gte", "lt", "lte", "range",
                            "startswith"})


def django_dialect(connection: Any) -> Dialect:
    """The dualwrite dialect for a Django connection, in Django's ``%s`` parameter style."""
    name = connection.vendor
    d = _DIALECTS.get(name)
    if d is None:
        d = _DIALECTS[name] = dialect_for(name, "format")
    return d


_BARE = re.compile(r"\s*\{(\w+)\}\s*")


def transformed(spec: MigrationSpec, direction: str, column: str, inputs: Mapping[str, Any],
                output_field: Field[Any, Any], dialect: str) -> Any:
    """f or g of ``inputs`` as a Django expression: the input itself when the transform is
    the identity (``"{old}"``: a rename), else :class:`Transformed`."""
    try:
        template = (spec.forward_template(dialect, column) if direction == "forward"
                    else spec.backward_template(dialect, column))
    except SpecError:
        template = None
    m = _BARE.fullmatch(template) if template is not None else None
    if m is not None and len(inputs) == 1:
        name = m.group(1)
        if name in inputs or name == ("old" if direction == "forward" else "new"):
            return next(iter(inputs.values()))
    return Transformed(spec, direction, column, inputs, output_field)


def has_template(spec: MigrationSpec, dialect: str, direction: str, column: str) -> bool:
    """Whether the spec has the SQL form of ``direction`` for ``column`` on ``dialect``."""
    try:
        if direction == "forward":
            return spec.forward_template(dialect, column) is not None
        return spec.backward_template(dialect, column) is not None
    except SpecError:
        return False


class Transformed(Expression):
    """``f(inputs)`` (``direction="forward"``, computing new ``column``) or ``g(inputs)``
    (``"backward"``, computing old ``column``), rendered from the spec's SQL template."""

    def __init__(self, spec: MigrationSpec, direction: str, column: str,
                 inputs: Mapping[str, Any], output_field: Field[Any, Any]) -> None:
        super().__init__(output_field=output_field)
        self.spec = spec
        self.direction = direction
        self.column = column
        self.names = list(inputs)
        self.inputs = list(inputs.values())

    def __repr__(self) -> str:
        return f"Transformed({self.spec.key}, {self.direction}, {self.column})"

    def get_source_expressions(self) -> list[Any]:
        return self.inputs

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        self.inputs = list(exprs)

    def template(self, dialect: str) -> str:
        """The SQL template for ``dialect``, or a :class:`SpecError` saying what to add."""
        spec = self.spec
        t = (spec.forward_template(dialect, self.column) if self.direction == "forward"
             else spec.backward_template(dialect, self.column))
        if t is None:
            attr = "forward_sql" if self.direction == "forward" else "backward_sql"
            raise SpecError(f"migration {spec.key!r}: an SQL expression on {spec.table} cannot be "
                            f"mirrored to {self.column!r} without a SQL {self.direction} "
                            "transform", key=spec.key, table=spec.table, column=self.column,
                            hint=f"give {attr} in the spec, or write plain values")
        return t

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        dialect = django_dialect(connection)
        by_name = dict(zip(self.names, self.inputs, strict=True))
        if len(self.names) == 1:
            by_name["old" if self.direction == "forward" else "new"] = self.inputs[0]
        segments, placeholders = dialect.template_parts(self.spec, self.template(dialect.name),
                                                        by_name)
        sql = [dialect.literal_escape(segments[0])]
        params: list[Any] = []
        for name, seg in zip(placeholders, segments[1:], strict=True):
            part, part_params = compiler.compile(by_name[name])
            sql.append(part)
            params.extend(part_params)
            sql.append(dialect.literal_escape(seg))
        return "".join(sql), params


class Routed(Expression):
    """A migrated column, read in the form its stage defines (decided when compiled)."""

    def __init__(self, col: Col, binding: Binding, column: str,
                 stage_of: Callable[[str, str], Stage]) -> None:
        super().__init__(output_field=col.output_field)
        self.col = col
        self.binding = binding
        self.column = column
        self.stage_of = stage_of

    def __repr__(self) -> str:
        return f"Routed({self.binding.spec.key}, {self.col!r})"

    def __getstate__(self) -> dict[str, Any]:
        # A pickled queryset (a cache) keeps the migration key, not the live binding.
        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("binding", "stage_of", "_constructor_args", "identity")}
        state["_binding_key"] = self.binding.key
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        from dualwrite_django.registry import get_registry

        key = state.pop("_binding_key")
        self.__dict__.update(state)
        registry = get_registry()
        binding = registry.binding(key) if registry is not None else None
        if registry is None or binding is None:
            raise SpecError(f"cannot unpickle a query on migration {key!r}: it is not "
                            "configured here", key=key,
                            hint="add it to settings.DUALWRITE['MIGRATIONS']")
        self.binding = binding
        self.stage_of = registry.runtimes.stage
        self._constructor_args: tuple[Any, ...] = ((self.col, binding, self.column,
                                                    self.stage_of), {})

    @property
    def target(self) -> Any:
        """The field, as on a :class:`Col`."""
        return self.col.target

    @property
    def alias(self) -> str | None:
        """The table alias, as on a :class:`Col`."""
        alias: str | None = self.col.alias
        return alias

    def get_source_expressions(self) -> list[Any]:
        return [self.col]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.col,) = exprs

    def get_group_by_cols(self) -> list[Any]:
        return [self]

    def _column(self, name: str) -> Col:
        return Col(self.col.alias, self.binding.fields[name])

    def _transform(self, direction: str, dialect: str) -> Any:
        spec = self.binding.spec
        sources = spec.old_columns if direction == "forward" else spec.new_columns
        if not all(c in self.binding.fields for c in sources) or \
                not has_template(spec, dialect, direction, self.column):
            self.binding.warn_once(f"no SQL {direction} transform on {dialect} for "
                                   f"{self.column!r}: SQL reads use the stored column")
            return None
        return transformed(spec, direction, self.column, {c: self._column(c) for c in sources},
                           self.col.output_field, dialect)

    def routed(self, connection: Any) -> Any:
        """The expression this column is read as, on ``connection``, now."""
        spec = self.binding.spec
        form = read_form(spec, self.stage_of(connection.alias, spec.key), self.column)
        if form is ReadForm.RAW:
            return self.col
        dialect = django_dialect(connection).name
        if form in (ReadForm.FORWARD, ReadForm.NEW_OR_FORWARD):
            fwd = self._transform("forward", dialect)
            if fwd is None:
                return self.col
            return fwd if form is ReadForm.FORWARD else \
                Coalesce(self.col, fwd, output_field=self.col.output_field)
        back = self._transform("backward", dialect)
        if back is None:
            return self.col
        return back if form is ReadForm.BACKWARD else \
            Coalesce(back, self.col, output_field=self.col.output_field)

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        return compiler.compile(self.routed(connection))

    def get_lookup(self, lookup: str) -> Any:
        base = self.output_field.get_lookup(lookup)
        if base is None or lookup not in INDEX_FRIENDLY:
            return base
        return _live_lookup(base)


class _LiveLookup:
    """Mixed into a lookup on a :class:`Routed` column: the OR form on ``Coalesce``."""

    base: type[Lookup]
    lhs: Any
    rhs: Any

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs = self.lhs
        expr = lhs.routed(connection)
        if not isinstance(expr, Coalesce):
            return compiler.compile(self.base(expr, self.rhs))
        first, fallback = expr.get_source_expressions()
        rhs = self.rhs
        node = WhereNode([
            WhereNode([IsNull(first, False), self.base(first, rhs)], AND),
            WhereNode([IsNull(first, True), self.base(fallback, rhs)], AND),
        ], OR)
        return compiler.compile(node)

    def __reduce__(self) -> tuple[Any, ...]:
        # the class is made at run time: pickle how to make it again
        return _make_live_lookup, (self.base, self.lhs, self.rhs)


_LIVE_LOOKUPS: dict[type[Any], type[Any]] = {}


def _make_live_lookup(base: type[Any], lhs: Any, rhs: Any) -> Any:
    return _live_lookup(base)(lhs, rhs)


def _live_lookup(base: type[Any]) -> type[Any]:
    cls = _LIVE_LOOKUPS.get(base)
    if cls is None:
        cls = _LIVE_LOOKUPS[base] = type(f"Live{base.__name__}", (_LiveLookup, base),
                                         {"base": base})
    return cls
