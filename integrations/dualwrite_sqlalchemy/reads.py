"""Read routing: every read of a migrated column returns the stage's value.

* In ORM ``select()`` statements, migrated columns in the columns clause, WHERE, ORDER BY,
  GROUP BY and HAVING are replaced by the stage's read expression
  (:func:`dualwrite.routing.read_form`); an equality against a value becomes an
  index-friendly lookup in ``live`` (``new = :v OR (new IS NULL AND old = :v)``).
* Loaded objects: the raw values of both sides come from the row; the ``load``/``refresh``
  events compare them (``shadow``/``live``, sampled, no extra query) and then set the
  attributes to the stage's values (:func:`dualwrite.routing.read_values`).
* A stage flip expires the migrated attributes of the objects a session holds, so none
  serves a value of the previous stage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import QueryContext, Session
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, ColumnClause, Label
from sqlalchemy.sql.selectable import Alias, FromClause, Select
from sqlalchemy.sql.visitors import replacement_traverse

from dualwrite.routing import ReadForm, read_form, read_values
from dualwrite.stages import Stage
from dualwrite_sqlalchemy.context import current_evaluation_context
from dualwrite_sqlalchemy.expressions import SqlBuilder
from dualwrite_sqlalchemy.registry import Bound, Registry

__all__ = ["ReadRouter"]

_SESSION_STAGES = "dualwrite_stages"

Stages = Mapping[str, Stage]
_UNROUTED = frozenset(s for s in Stage if s.app_stage is Stage.OFF)
_COMPARED = frozenset(s for s in Stage if s.compares)
_SEEN_SIZE = 4096
#: The clauses of a Select that can name a column.
_CLAUSES = ("_raw_columns", "_where_criteria", "_order_by_clauses", "_group_by_clauses",
            "_having_criteria")


def _base_table(from_clause: Any) -> Table | None:
    """The Table behind a column's FROM element: the table or a plain alias of it."""
    if isinstance(from_clause, Table):
        return from_clause
    if isinstance(from_clause, Alias) and isinstance(from_clause.element, Table):
        return from_clause.element
    return None


class ReadRouter:
    """The read hooks of one installation."""

    def __init__(self, registry: Registry, builder: SqlBuilder,
                 stages: Callable[[], dict[str, Stage]]) -> None:
        self.registry = registry
        self.builder = builder
        self.stages = stages
        self._by_column: dict[tuple[str | None, str, str], Bound] = {}
        self._seen: dict[int, tuple[Any, tuple[Bound, str, Any] | None]] = {}
        for b in registry.bounds:
            for name in b.attr:
                self._by_column[(b.table.schema, b.table.name, name)] = b

    # -- statements -----------------------------------------------------------------------
    def _match(self, elem: Any) -> tuple[Bound, str, Any] | None:
        if not isinstance(elem, ColumnClause):
            return None
        hit = self._seen.get(id(elem))
        if hit is not None and hit[0] is elem:
            return hit[1]
        from_clause = elem.table
        table = _base_table(from_clause)
        found = None
        if table is not None:
            b = self._by_column.get((table.schema, table.name, elem.name))
            if b is not None and (table is b.table or table.compare(b.table)):
                found = (b, elem.name, from_clause)
        if len(self._seen) > _SEEN_SIZE:
            self._seen.clear()
        self._seen[id(elem)] = (elem, found)   # ORM attributes hand out the same column
        return found

    def _replacer(self, stages: Stages) -> Callable[[Any], Any]:
        cache: dict[Any, Any] = {}

        def replace(elem: Any, **kw: Any) -> Any | None:
            if isinstance(elem, BinaryExpression) and elem.operator is operators.eq:
                for col, value in ((elem.left, elem.right), (elem.right, elem.left)):
                    m = self._match(col)
                    if m is not None and isinstance(value, BindParameter):
                        b, name, frm = m
                        found = self.builder.lookup(b.spec, stages[b.key], name,
                                                    b.columns_of(frm), value)
                        if found is not None:
                            return found
                return None
            m = self._match(elem)
            if m is None:
                return None
            key = (id(m[2]), m[1])
            if key not in cache:
                b, name, frm = m
                expr = self.builder.read(b.spec, stages[b.key], name, b.columns_of(frm))
                cache[key] = None if expr is None else Label(elem.key, expr)
            return cache[key]

        return replace

    def _routed(self, elem: Any, stages: Stages) -> bool:
        """Whether ``elem`` reads a migrated column whose stage reroutes it."""
        if isinstance(elem, BindParameter):
            return False
        if isinstance(elem, ColumnClause):
            m = self._match(elem)
            return m is not None and read_form(m[0].spec, stages[m[0].key], m[1]) is not \
                ReadForm.RAW
        if isinstance(elem, BinaryExpression):   # the common filter: walk it directly
            return self._routed(elem.left, stages) or self._routed(elem.right, stages)
        return any(self._routed(e, stages) for e in elem.get_children())

    def rewrite(self, stmt: Select[Any], stages: Stages) -> Select[Any] | None:
        """``stmt`` with every migrated column it names (columns clause, WHERE, ORDER BY,
        GROUP BY, HAVING) read as the stage defines; ``None`` when nothing changes.

        Entities in the columns clause are left alone: their rows are routed on load.
        Only the affected clauses are copied, so a statement that names no migrated column
        costs one walk over its clauses.
        """
        replace: Any = None
        changes: dict[str, tuple[Any, ...]] = {}
        for part in _CLAUSES:
            items = getattr(stmt, part, ())
            if not any(not isinstance(e, FromClause) and self._routed(e, stages)
                       for e in items):
                continue
            replace = replace or self._replacer(stages)
            changes[part] = tuple(
                e if isinstance(e, FromClause) else replacement_traverse(e, {}, replace)
                for e in items)
        if not changes:
            return None
        new = stmt._generate()
        for part, items in changes.items():
            setattr(new, part, items)
        return new

    # -- loaded objects -------------------------------------------------------------------
    def on_load(self, target: Any, context: QueryContext) -> None:
        """Compare the raw row, then set the stage's values (``load`` event)."""
        self._route_loaded(target, context)

    def on_refresh(self, target: Any, context: QueryContext, attrs: Any) -> None:
        """The same for a refresh / an expired attribute load."""
        self._route_loaded(target, context)

    def _route_loaded(self, target: Any, context: QueryContext) -> None:
        state = instance_state(target)
        bounds = self.registry.for_mapper(state.mapper)
        if not bounds:
            return
        stages = self.stages()
        d = state.dict
        for b in bounds:
            stage = stages[b.key]
            if stage in _UNROUTED:
                continue
            row = {n: d[a] for n, a in b.attr.items() if a in d}
            if not row:
                continue
            if stage in _COMPARED and len(row) == len(b.attr):
                ctx = current_evaluation_context()
                pk = tuple(d.get(a) for a in b.pk_attrs)
                b.comparator.compare(stage, pk[0] if len(pk) == 1 else pk, row,
                                     {"targeting_key": ctx.targeting_key} if ctx else None)
            for n, v in read_values(b.spec, stage, row).items():
                d[b.attr[n]] = v

    # -- stage flips ----------------------------------------------------------------------
    def sync_session(self, session: Session, stages: Stages) -> None:
        """Expire the migrated attributes a session holds if the stages changed since it
        last loaded them (unmodified attributes only: a pending change stays)."""
        seen = session.info.get(_SESSION_STAGES)
        if seen == stages:
            return
        session.info[_SESSION_STAGES] = dict(stages)
        if seen is None:
            return
        for state in list(session.identity_map.all_states()):
            bounds = self.registry.for_mapper(state.mapper)
            if not bounds:
                continue
            keys = {a for b in bounds if seen.get(b.key) is not stages[b.key]
                    for a in b.attr.values()}
            keys -= set(state.committed_state)
            keys &= set(state.dict)
            if keys:
                state._expire_attributes(state.dict, keys)
