"""Specs bound to the application's mapped tables, checked at install time.

A spec's table must be mapped by a model that maps every old and new column; a spec that
does not match the models fails here, before any event is registered, with an error that
names the model and the column to map.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy.orm import Mapper
from sqlalchemy.orm.exc import UnmappedColumnError
from sqlalchemy.sql.elements import ColumnElement

from dualwrite.compare import Comparator
from dualwrite.errors import ConfigurationError, SpecError, UnknownColumnError, UnknownTableError
from dualwrite.spec import MigrationSpec
from dualwrite_sqlalchemy.expressions import SqlBuilder

__all__ = ["Bound", "Registry", "all_mappers"]


@dataclass(eq=False)
class Bound:
    """One migration on one mapped table."""

    spec: MigrationSpec
    table: Table
    mapper: Mapper[Any]
    comparator: Comparator
    #: column name -> mapped attribute key
    attr: dict[str, str]
    #: column name -> ``Column.key`` (the key Core parameter dicts use)
    col_key: dict[str, str]
    #: ``Column.key`` -> column name, for the migrated columns
    by_col_key: dict[str, str] = field(default_factory=dict)
    #: position of each migrated column in the table (UPDATE ... SET order)
    position: dict[str, int] = field(default_factory=dict)
    pk_attrs: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The migration key."""
        return self.spec.key

    def columns_of(self, from_clause: Any) -> dict[str, ColumnElement[Any]]:
        """The migrated columns as they appear in ``from_clause`` (the table or an alias)."""
        return {name: from_clause.c[self.col_key[name]] for name in self.col_key}


def all_mappers(bases: Iterable[Any] = ()) -> list[Mapper[Any]]:
    """Every configured mapper: of the given declarative bases/registries, else of all."""
    from sqlalchemy.orm import configure_mappers
    from sqlalchemy.orm.mapper import _all_registries

    configure_mappers()
    registries = [getattr(b, "registry", b) for b in bases] or list(_all_registries())
    return [m for r in registries for m in r.mappers]


def _table_matches(table: Any, spec: MigrationSpec) -> bool:
    return isinstance(table, Table) and table.name == spec.table and \
        (spec.schema is None or table.schema == spec.schema)


class Registry:
    """The bound migrations, looked up by table and by mapper."""

    def __init__(self, specs: Sequence[MigrationSpec], mappers: Sequence[Mapper[Any]],
                 builder: SqlBuilder, comparators: dict[str, Comparator]) -> None:
        self.bounds: list[Bound] = []
        seen: set[str] = set()
        for spec in specs:
            if spec.key in seen:
                raise ConfigurationError(f"migration {spec.key!r} is given twice",
                                         hint="pass each spec once to install()")
            seen.add(spec.key)
            self.bounds.append(self._bind(spec, mappers, builder, comparators[spec.key]))
        self.by_table: dict[tuple[str | None, str], list[Bound]] = {}
        self.by_mapper: dict[Mapper[Any], list[Bound]] = {}
        for b in self.bounds:
            self.by_table.setdefault((b.table.schema, b.table.name), []).append(b)
            self.by_mapper.setdefault(b.mapper, []).append(b)
        self.tables = {b.table for b in self.bounds}

    @staticmethod
    def _bind(spec: MigrationSpec, mappers: Sequence[Mapper[Any]], builder: SqlBuilder,
              comparator: Comparator) -> Bound:
        if not spec.has_python_transforms:
            raise SpecError(f"migration {spec.key!r} has no Python transforms",
                            key=spec.key, table=spec.table,
                            hint="give forward and backward as Python callables: the "
                                 "SQLAlchemy adapter mirrors attribute values in Python")
        candidates = [m for m in mappers if _table_matches(m.local_table, spec)]
        if not candidates:
            raise UnknownTableError(f"migration {spec.key!r}: no SQLAlchemy model maps table "
                                    f"{spec.table!r}", key=spec.key, table=spec.table,
                                    hint="import the models before install(), or pass "
                                         "bases=[YourDeclarativeBase]")
        roots = {m.base_mapper for m in candidates}
        if len(roots) > 1:
            names = ", ".join(sorted(m.class_.__name__ for m in roots))
            raise ConfigurationError(f"migration {spec.key!r}: several models map table "
                                     f"{spec.table!r} ({names})",
                                     hint="pass bases=[YourDeclarativeBase] to install() to say "
                                          "which models are the application's")
        mapper = roots.pop()
        table = mapper.local_table
        assert isinstance(table, Table)
        attr: dict[str, str] = {}
        col_key: dict[str, str] = {}
        position: dict[str, int] = {}
        order = [c.name for c in table.columns]
        for name in (*spec.old_columns, *spec.new_columns):
            col = next((c for c in table.columns if c.name == name), None)
            prop = None
            if isinstance(col, Column):
                try:
                    prop = mapper.get_property_by_column(col)
                except UnmappedColumnError:
                    prop = None
            if col is None or prop is None:
                raise UnknownColumnError(
                    f"migration {spec.key!r}: model {mapper.class_.__name__} does not map "
                    f"column {name!r} of table {spec.table!r}", key=spec.key, table=spec.table,
                    column=name, hint=f"add `{name} = mapped_column(...)` (nullable) to "
                                      f"{mapper.class_.__name__}, or fix the spec's column name")
            attr[name] = prop.key
            col_key[name] = col.key
            position[name] = order.index(name)
        bound = Bound(spec=spec, table=table, mapper=mapper, comparator=comparator, attr=attr,
                      col_key=col_key, by_col_key={v: k for k, v in col_key.items()},
                      position=position,
                      pk_attrs=tuple(mapper.get_property_by_column(c).key
                                     for c in mapper.primary_key))
        builder.check(spec, bound.columns_of(table))
        return bound

    def for_table(self, table: Any) -> list[Bound]:
        """The migrations on ``table`` (a Table, possibly annotated by the ORM)."""
        name = getattr(table, "name", None)
        if name is None:
            return []
        return self.by_table.get((getattr(table, "schema", None), name), [])

    def for_mapper(self, mapper: Mapper[Any]) -> list[Bound]:
        """The migrations on ``mapper``'s table (subclass mappers share the base's)."""
        found = self.by_mapper.get(mapper)
        if found is None:
            found = []
            for m in mapper.iterate_to_root():
                if m in self.by_mapper:
                    found = self.by_mapper[m]
                    break
            self.by_mapper[mapper] = found
        return found
