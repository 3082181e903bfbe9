"""SQLAlchemy expressions for a spec's SQL transforms and the stage's read forms.

The SQL text comes from the spec's templates, split by the core dialect
(:meth:`dualwrite.dialects.Dialect.template_parts`); the placeholders are filled with
SQLAlchemy expressions (a column of the right table or alias, a bound value, the
application's own SQL expression), so quoting, aliasing and parameter style stay
SQLAlchemy's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Boolean
from sqlalchemy.engine import Dialect as SADialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from dualwrite.dialects import Dialect, dialect_for
from dualwrite.errors import ConfigurationError, SpecError
from dualwrite.routing import ReadForm, read_form
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Stage

__all__ = ["SqlBuilder", "TemplateExpression", "TemplatePredicate", "core_dialect"]

_FAMILIES = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql",
             "sqlite": "sqlite"}

Columns = Mapping[str, ColumnElement[Any]]
_PARTS_CACHE = 1024


def core_dialect(sa_dialect: SADialect) -> Dialect:
    """The dualwrite dialect for a SQLAlchemy dialect (parameters stay SQLAlchemy's)."""
    family = _FAMILIES.get(sa_dialect.name)
    if family is None:
        raise ConfigurationError(f"dualwrite does not support the {sa_dialect.name!r} database",
                                 hint="use PostgreSQL, MySQL/MariaDB or SQLite")
    return dialect_for(family, "qmark")


class TemplateExpression(ColumnElement[Any]):
    """A transform template with SQLAlchemy expressions in its placeholders."""

    __visit_name__ = "dualwrite_template"
    inherit_cache = True
    _traverse_internals = [("segments", InternalTraversal.dp_string_list),  # noqa: RUF012
                           ("args", InternalTraversal.dp_clauseelement_list),
                           ("type", InternalTraversal.dp_type)]

    def __init__(self, segments: list[str], args: list[ColumnElement[Any]], type_: Any) -> None:
        self.segments = segments
        self.args = args
        self.type = type_

    @property
    def _from_objects(self) -> list[Any]:
        return [f for a in self.args for f in a._from_objects]


@compiles(TemplateExpression)
def _compile_template(element: TemplateExpression, compiler: SQLCompiler, **kw: Any) -> str:
    out = [compiler.post_process_text(element.segments[0])]  # type: ignore[no-untyped-call]
    for arg, seg in zip(element.args, element.segments[1:], strict=True):
        out.append(compiler.process(arg, **kw))
        out.append(compiler.post_process_text(seg))  # type: ignore[no-untyped-call]
    return "".join(out)


class TemplatePredicate(TemplateExpression):
    """A template that is a condition (a lookup): rendered as is in WHERE, never compared
    to 1 on databases without a native boolean."""

    inherit_cache = True
    _is_implicitly_boolean = True


@compiles(TemplatePredicate)
def _compile_predicate(element: TemplatePredicate, compiler: SQLCompiler, **kw: Any) -> str:
    return _compile_template(element, compiler, **kw)


class SqlBuilder:
    """Builds the transform and read expressions of specs for one database family.

    Template splits are cached; building an expression allocates no SQLAlchemy operator
    machinery (a statement is rewritten on every execution, so this is on the hot path).
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._parts: dict[tuple[str, str, tuple[str, ...]], tuple[list[str], list[str]]] = {}

    def _fill(self, spec: MigrationSpec, template: str, names: Columns,
              type_: Any, cls: type[TemplateExpression] = TemplateExpression
              ) -> TemplateExpression:
        key = (spec.key, template, tuple(sorted(names)))
        parts = self._parts.get(key)
        if parts is None:
            if len(self._parts) > _PARTS_CACHE:
                self._parts.clear()
            parts = self._parts[key] = self.dialect.template_parts(spec, template, names)
        segments, placeholders = parts
        return cls(segments, [names[p] for p in placeholders], type_)

    def _render(self, spec: MigrationSpec, template: str | None, values: Columns,
                side: tuple[str, ...], alias: str, type_: Any, column: str, direction: str
                ) -> ColumnElement[Any]:
        if template is None:
            raise SpecError(f"migration {spec.key!r} has no SQL {direction} transform for "
                            f"{self.dialect.name}", key=spec.key, table=spec.table, column=column,
                            hint=f"give {direction}_sql: the SQLAlchemy adapter computes reads "
                                 "and SQL-expression writes in SQL")
        names = dict(values)
        if len(side) == 1 and side[0] in values:
            names[alias] = values[side[0]]
        return self._fill(spec, template, names, type_)

    def forward(self, spec: MigrationSpec, new_column: str, old: Columns,
                type_: Any) -> ColumnElement[Any]:
        """f(old) for ``new_column``, the old column(s) given as expressions."""
        return self._render(spec, spec.forward_template(self.dialect.name, new_column), old,
                            spec.old_columns, "old", type_, new_column, "forward")

    def backward(self, spec: MigrationSpec, old_column: str, new: Columns,
                 type_: Any) -> ColumnElement[Any]:
        """g(new) for ``old_column``, the new column(s) given as expressions."""
        return self._render(spec, spec.backward_template(self.dialect.name, old_column), new,
                            spec.new_columns, "new", type_, old_column, "backward")

    def check(self, spec: MigrationSpec, columns: Columns) -> None:
        """Build every transform once: a missing SQL form or a bad placeholder fails here."""
        for c in spec.new_columns:
            self.forward(spec, c, columns, columns[c].type)
        for c in spec.old_columns:
            self.backward(spec, c, columns, columns[c].type)

    def read(self, spec: MigrationSpec, stage: Stage, column: str,
             cols: Columns) -> ColumnElement[Any] | None:
        """The stage's read of ``column`` over the columns ``cols`` of one FROM element;
        ``None`` when the column is read as stored."""
        form = read_form(spec, stage, column)
        type_ = cols[column].type
        if form is ReadForm.RAW:
            return None
        if form is ReadForm.FORWARD:
            return self.forward(spec, column, cols, type_)
        if form is ReadForm.BACKWARD:
            return self.backward(spec, column, cols, type_)
        if form is ReadForm.NEW_OR_FORWARD:
            names = {"new": cols[column], "forward": self.forward(spec, column, cols, type_)}
        else:
            names = {"old": cols[column], "backward": self.backward(spec, column, cols, type_)}
        return self._fill(spec, self.dialect.read_template(form.value), names, type_)

    def lookup(self, spec: MigrationSpec, stage: Stage, column: str, cols: Columns,
               value: ColumnElement[Any]) -> ColumnElement[Any] | None:
        """An index-friendly ``read(column) = value``, or ``None`` where there is none
        (a split: no single column to look up).

        ``live``, new column: ``new = :v OR (new IS NULL AND old = g(:v) AND f(old) = :v)``
        (a rename needs no recheck: ``old = :v``); the old column symmetrically.
        """
        form = read_form(spec, stage, column)
        if form in (ReadForm.RAW, ReadForm.FORWARD) or len(spec.old_columns) != 1 or \
                len(spec.new_columns) != 1:
            return None
        old, new = spec.old_columns[0], spec.new_columns[0]
        recheck = spec.kind != "rename"
        names: dict[str, ColumnElement[Any]] = {"new": cols[new], "old": cols[old],
                                                "value": value}
        if form is ReadForm.NEW_OR_FORWARD:
            names["old_value"] = self.backward(spec, old, {new: value}, cols[old].type)
            if recheck:
                names["forward"] = self.forward(spec, new, cols, cols[new].type)
        else:
            names["new_value"] = self.forward(spec, new, {old: value}, cols[new].type)
            if recheck:
                names["backward"] = self.backward(spec, old, cols, cols[old].type)
        return self._fill(spec, self.dialect.lookup_template(form.value, recheck), names,
                          Boolean(), TemplatePredicate)
