"""Write mirroring (app mode): every write path that can set one side sets the other.

* the unit-of-work flush (``before_flush``): new objects and changed attributes only, on
  the objects themselves, so the identity map holds both sides;
* ORM-enabled ``insert(Model)``/``update(Model)`` with ``.values()`` (``do_orm_execute``),
  including SQL expressions, which are mirrored as SQL through the spec's SQL transform;
* everything else that reaches a Connection as an ``Insert``/``Update`` on a registered
  table (``before_execute``): Core statements, ORM bulk INSERT / UPDATE by primary key with
  a list of parameter dicts, ``bulk_insert_mappings``/``bulk_update_mappings``/
  ``bulk_save_objects``. Statements already mirrored above are skipped.
* raw ``text()`` writing a registered column cannot be mirrored: a warning names trigger
  mode as the fix.

Which side is computed from which is :func:`dualwrite.mirror.mirror_direction` /
:func:`~dualwrite.mirror.mirror_values`; this module only translates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from sqlalchemy import bindparam, literal
from sqlalchemy.engine import Connection
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.base import NO_VALUE
from sqlalchemy.sql.dml import Insert, Update, ValuesBase
from sqlalchemy.sql.elements import BindParameter, ClauseElement, Null, TextClause

from dualwrite.dialects import Dialect
from dualwrite.errors import SpecError
from dualwrite.metrics import METRICS, log_fields
from dualwrite.mirror import mirror_direction, mirror_values
from dualwrite.stages import Mode, Stage
from dualwrite_sqlalchemy.expressions import SqlBuilder
from dualwrite_sqlalchemy.registry import Bound, Registry

__all__ = ["MIRRORED_OPTION", "WriteMirror"]

log = logging.getLogger("dualwrite.sqlalchemy")

#: Execution option marking a statement whose values the ORM-level hook already mirrored.
MIRRORED_OPTION = "dualwrite_mirrored"

#: The session whose flush is running on this thread/task (its statements are mirrored on
#: the objects, before the flush).
_FLUSHING: ContextVar[Session | None] = ContextVar("dualwrite_flushing", default=None)

_WARN_CACHE_SIZE = 1024


def _plain(value: Any) -> Any:
    """A statement value as Python when it is a plain bound value or NULL."""
    if isinstance(value, BindParameter) and value.callable is None:
        return value.value
    if isinstance(value, Null):
        return None
    return value


class WriteMirror:
    """The write hooks of one installation."""

    def __init__(self, registry: Registry, builder: SqlBuilder, dialect: Dialect,
                 stage: Callable[[Bound], Stage]) -> None:
        self.registry = registry
        self.builder = builder
        self.dialect = dialect
        self.stage = stage
        self._touched: dict[str, list[tuple[Bound, list[str]]]] = {}
        self._warned: set[tuple[str, str]] = set()

    def _active(self, b: Bound) -> Stage | None:
        """The stage to mirror at, or ``None`` when this adapter does not mirror ``b``."""
        if b.spec.mode is Mode.TRIGGER:
            return None
        stage = self.stage(b)
        return None if stage.app_stage is Stage.OFF else stage

    # -- the rule, on one row -----------------------------------------------------------
    def mirror_row(self, b: Bound, stage: Stage, values: Mapping[str, Any], *, insert: bool,
                   current: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The column values (by column name) to add to one written row.

        ``values`` are Python values or SQL expressions. In an INSERT a migrated column
        given as ``None`` counts as not given (ORMs send every column). With a SQL
        expression the transform is applied in SQL.
        """
        spec = b.spec
        given = dict(values)
        if insert:
            given = {c: v for c, v in values.items() if v is not None} or given
        direction = mirror_direction(spec, stage, given)
        if direction is None:
            return {}
        if not any(isinstance(v, ClauseElement) for v in given.values()):
            return mirror_values(spec, stage, given, current)
        forward = direction == "forward"
        sources = spec.old_columns if forward else spec.new_columns
        targets = spec.new_columns if forward else spec.old_columns
        table = b.table
        src: dict[str, Any] = {}
        for s in sources:
            col = table.c[b.col_key[s]]
            if s in given:
                v = given[s]
                src[s] = v if isinstance(v, ClauseElement) else literal(v, col.type)
            elif current is not None and s in current:
                src[s] = literal(current[s], col.type)
            elif not insert:
                src[s] = col  # an UPDATE sees the row's current value
            else:
                raise SpecError(f"migration {spec.key!r}: an INSERT sets only part of the "
                                f"columns the transform reads ({s!r} is missing)", key=spec.key,
                                table=spec.table, column=s,
                                hint="give every column of the split in the INSERT")
        out: dict[str, Any] = {}
        for t in targets:
            args = dict(src)
            if not insert and self.dialect.update_assigns_in_order:
                # MySQL assigns left to right: a source SET earlier already holds its value
                for s in sources:
                    if s in given and b.position[s] < b.position[t]:
                        args[s] = table.c[b.col_key[s]]
            ttype = table.c[b.col_key[t]].type
            out[t] = (self.builder.forward(spec, t, args, ttype) if forward
                      else self.builder.backward(spec, t, args, ttype))
        return out

    # -- unit of work -------------------------------------------------------------------
    def before_flush(self, session: Session, flush_context: Any, instances: Any) -> None:
        """Mirror on new objects and on changed attributes of dirty ones."""
        _FLUSHING.set(session)
        active: dict[str, Stage | None] = {}
        counts: dict[str, int] = {}
        for_mapper = self.registry.for_mapper
        for state in (*session._new, *session.identity_map._modified):
            bounds = for_mapper(state.mapper)
            if not bounds:
                continue
            obj = state.obj()
            if obj is None:
                continue
            d = state.dict
            pending = state.key is None
            for b in bounds:
                if pending:
                    values = {n: d[a] for n, a in b.attr.items() if a in d}
                else:
                    committed = state.committed_state
                    values = {}
                    for n, a in b.attr.items():
                        if a in committed and a in d:
                            v = d[a]
                            before = committed[a]
                            # changed: as the flush will see it (SQL expressions always are)
                            if isinstance(v, ClauseElement) or before is NO_VALUE or \
                                    (before is not v and before != v):
                                values[n] = v
                if not values:
                    continue
                if b.key not in active:
                    active[b.key] = self._active(b)
                stage = active[b.key]
                if stage is None:
                    continue
                current = values if pending else {n: d[a] for n, a in b.attr.items() if a in d}
                extra = self.mirror_row(b, stage, values, insert=pending, current=current)
                if not extra:
                    continue
                for n, v in extra.items():
                    setattr(obj, b.attr[n], v)
                    if not pending:
                        flag_modified(obj, b.attr[n])
                counts[b.key] = counts.get(b.key, 0) + 1
        self._count(counts)

    def after_flush(self, session: Session, flush_context: Any) -> None:
        """The flush's statements are done."""
        _FLUSHING.set(None)

    @staticmethod
    def _count(counts: Mapping[str, int]) -> None:
        for key, n in counts.items():
            METRICS.mirrored_writes.labels(migration_key=key, adapter="sqlalchemy").inc(n)

    # -- statements ---------------------------------------------------------------------
    def orm_execute(self, orm_state: ORMExecuteState) -> None:
        """ORM ``insert(Model)``/``update(Model)`` with ``.values()``: mirror in the
        statement, so the ORM's session synchronisation sees both sides."""
        stmt = orm_state.statement
        if not isinstance(stmt, (Insert, Update)) or orm_state.parameters:
            return  # a list of parameter dicts is mirrored where Core sees it
        new = self.mirror_statement(stmt, [{}])
        if new is not None:
            orm_state.statement = new[0]
            orm_state.update_execution_options(**{MIRRORED_OPTION: True})

    def before_execute(self, conn: Connection, elem: Any, multiparams: Any, params: Any,
                       execution_options: Mapping[str, Any]) -> tuple[Any, Any, Any]:
        """Core ``before_execute`` (``retval=True``)."""
        if isinstance(elem, TextClause):
            self._check_text(elem.text)
            return elem, multiparams, params
        if not isinstance(elem, (Insert, Update)) or execution_options.get(MIRRORED_OPTION):
            return elem, multiparams, params
        flushing = _FLUSHING.get()
        if flushing is not None and flushing._flushing:
            return elem, multiparams, params
        rows: list[dict[str, Any]] = list(multiparams) if multiparams else [dict(params or {})]
        new = self.mirror_statement(elem, rows)
        if new is None:
            return elem, multiparams, params
        stmt, rows = new
        if multiparams:
            return stmt, rows, {}
        return stmt, [], rows[0]

    def mirror_statement(self, stmt: ValuesBase, rows: Sequence[Mapping[str, Any]]
                         ) -> tuple[Any, list[dict[str, Any]]] | None:
        """Mirror an INSERT/UPDATE given its parameter rows; ``None`` if nothing to add."""
        bounds = self.registry.for_table(stmt.table)
        if not bounds:
            return None
        insert = isinstance(stmt, Insert)
        changed = False
        out_rows = [dict(r) for r in rows]
        for b in bounds:
            stage = self._active(b)
            if stage is None:
                continue
            result = self._mirror_one(b, stage, stmt, out_rows, insert)
            if result is not None:
                stmt, out_rows = result
                changed = True
        return (stmt, out_rows) if changed else None

    def _name(self, b: Bound, key: Any) -> str | None:
        if isinstance(key, str):
            name = b.by_col_key.get(key)
            if name is None:
                name = next((n for n, a in b.attr.items() if a == key), None)
            return name
        table = getattr(key, "table", None)
        if table is None or getattr(table, "name", None) != b.table.name:
            return None
        name = getattr(key, "name", None)
        return name if name in b.attr else None

    def _mirror_one(self, b: Bound, stage: Stage, stmt: ValuesBase,
                    rows: list[dict[str, Any]], insert: bool
                    ) -> tuple[Any, list[dict[str, Any]]] | None:
        spec = b.spec
        if stmt._multi_values:
            return self._mirror_multi_values(b, stage, stmt, rows)
        explicit: dict[str, Any] = {}
        for key, value in (stmt._values or {}).items():
            name = self._name(b, key)
            if name is not None:
                explicit[name] = value
        from_params = any(k in b.by_col_key for k in rows[0]) or any(
            isinstance(v, BindParameter) and v.key in rows[0] for v in explicit.values())
        if not explicit and not from_params:
            return None
        if not from_params or (len(rows) == 1 and not rows[0]):
            values = {n: _plain(v) for n, v in explicit.items()}
            extra = self.mirror_row(b, stage, values, insert=insert)
            if not extra:
                return None
            if stmt._maintain_values_ordering:
                log.warning("dualwrite: %s: an UPDATE with ordered_values() on %s is not "
                            "mirrored; use values()", spec.key, spec.table,
                            extra=log_fields(spec.key, stage))
                return None
            self._count({spec.key: 1})
            return stmt.values({b.table.c[b.col_key[n]]: v for n, v in extra.items()}), rows
        # per row, from the parameter dicts
        extras: list[dict[str, Any]] = []
        for row in rows:
            values = {}
            for n, v in explicit.items():
                values[n] = row[v.key] if isinstance(v, BindParameter) and v.key in row \
                    else _plain(v)
            for k, v in row.items():
                if k in b.by_col_key:
                    values[b.by_col_key[k]] = v
            extras.append(self.mirror_row(b, stage, values, insert=insert))
        targets = {n for e in extras for n in e}
        if not targets:
            return None
        new_rows = []
        for row, extra in zip(rows, extras, strict=True):
            new_row = dict(row)
            for n in targets:
                ck = b.col_key[n]
                value = extra[n] if n in extra else row.get(ck)
                if n in explicit:
                    new_row[f"dualwrite_{ck}"] = value
                else:
                    new_row[ck] = value
            new_rows.append(new_row)
        overrides: dict[Any, Any] = {b.table.c[b.col_key[n]]: bindparam(f"dualwrite_{b.col_key[n]}")
                     for n in targets if n in explicit}
        if overrides:
            stmt = stmt.values(overrides)
        self._count({spec.key: len(rows)})
        return stmt, new_rows

    def _mirror_multi_values(self, b: Bound, stage: Stage, stmt: ValuesBase,
                             rows: list[dict[str, Any]]
                             ) -> tuple[Any, list[dict[str, Any]]] | None:
        new_multi: list[dict[Any, Any]] = []
        changed = False
        multi: Any = stmt._multi_values[0]
        for row in multi:
            values = {}
            for key, v in row.items():
                name = self._name(b, key)
                if name is not None:
                    values[name] = _plain(v)
            extra = self.mirror_row(b, stage, values, insert=True) if values else {}
            changed = changed or bool(extra)
            new_multi.append({**row, **{b.table.c[b.col_key[n]]: v for n, v in extra.items()}})
        if not changed:
            return None
        new = stmt._generate()
        new._multi_values = (new_multi,)
        self._count({b.key: len(new_multi)})
        return new, rows

    # -- raw SQL ------------------------------------------------------------------------
    def _check_text(self, sql: str) -> None:
        touched = self._touched.get(sql)
        if touched is None:
            if len(self._touched) > _WARN_CACHE_SIZE:
                self._touched.clear()
            touched = self._touched[sql] = [
                (b, cols) for b in self.registry.bounds if b.spec.mode is not Mode.TRIGGER
                and (cols := self.dialect.writes_columns(sql, b.table.name, b.attr))]
        for b, cols in touched:
            if (sql, b.key) in self._warned or self._active(b) is None:
                continue
            if len(self._warned) > _WARN_CACHE_SIZE:
                self._warned.clear()
            self._warned.add((sql, b.key))
            log.warning("dualwrite: raw SQL writes %s.%s of migration %s; text() cannot be "
                        "mirrored in app mode: switch the migration to trigger mode "
                        "(mode='trigger') or write through the ORM / Core constructs",
                        b.table.name, ", ".join(cols), b.key,
                        extra=log_fields(b.key, sql=sql[:500], columns=cols))
