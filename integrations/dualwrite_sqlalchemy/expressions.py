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

from sqlalchemy import and_, func, or_
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

__all__ = ["SqlBuilder", "TemplateExpression", "core_dialect"]

_FAMILIES = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql",
             "sqlite": "sqlite"}

Columns = Mapping[str, ColumnElement[Any]]


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


class SqlBuilder:
    """Builds the transform and read expressions of specs for one database family."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

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
        segments, placeholders = self.dialect.template_parts(spec, template, names)
        return TemplateExpression(segments, [names[p] for p in placeholders], type_)

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
        if form is ReadForm.NEW_OR_FORWARD:
            return func.coalesce(cols[column], self.forward(spec, column, cols, type_),
                                 type_=type_)
        if form is ReadForm.BACKWARD_OR_OLD:
            return func.coalesce(self.backward(spec, column, cols, type_), cols[column],
                                 type_=type_)
        return self.backward(spec, column, cols, type_)

    def lookup(self, spec: MigrationSpec, stage: Stage, column: str, cols: Columns,
               value: ColumnElement[Any]) -> ColumnElement[Any] | None:
        """An index-friendly ``read(column) = value``, or ``None`` where there is none.

        ``live``, new column: ``new = :v OR (new IS NULL AND old = g(:v) AND f(old) = :v)``
        (for a rename ``old = :v``); the old column symmetrically. The recheck keeps it
        exact for a transform that is not one-to-one.
        """
        form = read_form(spec, stage, column)
        if len(spec.old_columns) != 1 or len(spec.new_columns) != 1:
            return None
        old, new = spec.old_columns[0], spec.new_columns[0]
        rename = spec.kind == "rename"
        if form is ReadForm.NEW_OR_FORWARD:
            by_old = cols[old] == self.backward(spec, old, {new: value}, cols[old].type)
            if not rename:
                by_old = and_(by_old, self.forward(spec, new, cols, cols[new].type) == value)
            return or_(cols[new] == value, and_(cols[new].is_(None), by_old))
        if form in (ReadForm.BACKWARD_OR_OLD, ReadForm.BACKWARD):
            by_new = cols[new] == self.forward(spec, new, {old: value}, cols[new].type)
            if not rename:
                by_new = and_(by_new, self.backward(spec, old, cols, cols[old].type) == value)
            if form is ReadForm.BACKWARD:
                return by_new
            return or_(by_new, and_(cols[new].is_(None), cols[old] == value))
        return None
