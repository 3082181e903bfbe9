"""``install()``: wire the adapter into a session factory and its engine.

One :class:`Installation` per session factory: it binds the specs to the mapped tables
(failing early on a mismatch), resolves each migration's stage through OpenFeature with
the request's evaluation context, registers the process in the fleet table and listens to
the session, mapper and engine events. :meth:`Installation.uninstall` removes everything.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from openfeature.client import OpenFeatureClient
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker
from sqlalchemy.sql.selectable import Select

from dualwrite.compare import Comparator, MismatchPublisher
from dualwrite.db import Database
from dualwrite.errors import ConfigurationError, DualwriteError
from dualwrite.flags import DEFAULT_TTL, StageResolver, StateCache
from dualwrite.fleet import FleetMember
from dualwrite.metrics import METRICS, log_fields
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Stage
from dualwrite_sqlalchemy.context import current_evaluation_context
from dualwrite_sqlalchemy.expressions import SqlBuilder, core_dialect
from dualwrite_sqlalchemy.reads import ReadRouter
from dualwrite_sqlalchemy.registry import Bound, Registry, all_mappers
from dualwrite_sqlalchemy.writes import WriteMirror

__all__ = ["Installation", "install"]

log = logging.getLogger("dualwrite.sqlalchemy")

SessionTarget = sessionmaker[Any] | type[Session] | Any
_NO_MEMO = object()
_MEMO_SIZE = 10_000


def _engine_of(target: Any, bind: Any) -> Engine:
    bind = bind or getattr(target, "kw", {}).get("bind")
    bind = getattr(bind, "sync_engine", bind)
    if not isinstance(bind, Engine):
        raise ConfigurationError("install() needs the engine the sessions use",
                                 hint="pass bind=engine, or a sessionmaker(bind=engine)")
    return bind


def _session_class(target: Any) -> tuple[Any, Callable[[], None]]:
    """The object to listen on for session events, and how to undo any change made."""
    try:
        from sqlalchemy.ext.asyncio import async_sessionmaker
    except ImportError:  # pragma: no cover - asyncio extra missing
        async_sessionmaker = None  # type: ignore[assignment,misc]
    if async_sessionmaker is not None and isinstance(target, async_sessionmaker):
        # AsyncSession runs the ORM in a sync Session: listen on a private subclass of it
        had = "sync_session_class" in target.kw
        base = target.kw.get("sync_session_class", Session)
        sync_cls = type("DualwriteSyncSession", (base,), {})
        target.configure(sync_session_class=sync_cls)

        def undo() -> None:
            if had:
                target.configure(sync_session_class=base)
            else:
                target.kw.pop("sync_session_class", None)
        return sync_cls, undo
    if isinstance(target, sessionmaker) or (isinstance(target, type) and
                                            issubclass(target, Session)):
        return target, lambda: None
    raise ConfigurationError(f"install() takes a sessionmaker, an async_sessionmaker or a "
                             f"Session subclass, not {type(target).__name__}",
                             hint="pass the factory your application creates sessions with")


class Installation:
    """The adapter installed on one session factory. Build it with :func:`install`."""

    def __init__(self, target: SessionTarget, migrations: Sequence[MigrationSpec], *,
                 client: OpenFeatureClient | None = None, bind: Any = None,
                 database: Database | None = None, bases: Iterable[Any] = (),
                 sample_rate: float = 1.0, publisher: MismatchPublisher | None = None,
                 raise_on_mismatch: bool = False, background_compare: bool = False,
                 cache_ttl: float = DEFAULT_TTL, fleet: bool = True,
                 heartbeat_interval: float = 10.0, instance_id: str | None = None) -> None:
        if not migrations:
            raise ConfigurationError("install() needs at least one migration spec",
                                     hint="pass migrations=[RenameColumn(...), ...]")
        self.engine = _engine_of(target, bind)
        self.dialect = core_dialect(self.engine.dialect)
        self.builder = SqlBuilder(self.dialect)
        comparators = {s.key: Comparator(s, sample_rate=sample_rate, publisher=publisher,
                                         raise_on_mismatch=raise_on_mismatch,
                                         background=background_compare)
                       for s in migrations}
        try:
            self.registry = Registry(migrations, all_mappers(bases), self.builder, comparators)
        except BaseException:
            for c in comparators.values():
                c.close()
            raise
        self.comparators = comparators
        self._own_db = database is None
        if database is None:
            database = Database.from_url(self.engine.url.render_as_string(hide_password=False))
            database.dialect = database.dialect.state_reader()
        self.database = database
        self.resolver = StageResolver(client=client,
                                      cache=StateCache(self.database, cache_ttl))
        self.fleet = FleetMember(self.database, instance_id=instance_id,
                                 interval=heartbeat_interval) if fleet else None
        self.writes = WriteMirror(self.registry, self.builder, self.dialect, self.stage_of)
        self.reads = ReadRouter(self.registry, self.builder, self.stages)
        self._session_target, self._undo_target = _session_class(target)
        self._listeners: list[tuple[Any, str, Any]] = []
        self._observed: dict[str, Stage] = {}
        self._reporters: list[threading.Thread] = []
        self._unknown: set[str] = set()
        self.memo_ttl = cache_ttl
        self._memo: dict[Any, tuple[float, dict[str, Stage]]] = {}
        self._listen(self._session_target, "do_orm_execute", self._do_orm_execute)
        self._listen(self._session_target, "before_flush", self.writes.before_flush)
        self._listen(self._session_target, "after_flush_postexec", self.writes.after_flush)
        self._listen(self._session_target, "after_begin", self._after_begin)
        self._listen(self.engine, "before_execute", self.writes.before_execute, retval=True)
        for mapper in {b.mapper for b in self.registry.bounds}:
            self._listen(mapper, "load", self.reads.on_load, propagate=True)
            self._listen(mapper, "refresh", self.reads.on_refresh, propagate=True)
        if self.fleet is not None:
            self.stages()
            self.fleet.start()

    def _listen(self, target: Any, name: str, fn: Any, **kw: Any) -> None:
        event.listen(target, name, fn, **kw)
        self._listeners.append((target, name, fn))

    # -- stages ---------------------------------------------------------------------------
    def stage(self, key: str) -> Stage:
        """The stage this process serves for migration ``key`` in the current request.

        If it cannot be known (the migration is not registered yet: ``dualwrite init``;
        the state table cannot be read and no stage was served before), the last stage
        served is kept, else ``off``: the application keeps working and is told once.
        """
        try:
            stage = self.resolver.stage(key, current_evaluation_context())
        except DualwriteError as exc:
            stage = self._observed.get(key, Stage.OFF)
            if key not in self._unknown:
                self._unknown.add(key)
                log.warning("dualwrite: the stage of %s is unknown (%s); serving %s",
                            key, str(exc).replace("\n", " "), stage.value,
                            extra=log_fields(key, stage))
            return stage
        self._unknown.discard(key)
        if self._observed.get(key) is not stage:
            self._observed[key] = stage
            METRICS.set_stage(key, stage)
            if self.fleet is not None:
                self._observe(key, stage)
        return stage

    def _observe(self, key: str, stage: Stage) -> None:
        """Tell the fleet (a change is reported at once: a heartbeat write)."""
        assert self.fleet is not None
        if self.database.dialect.single_writer and self.fleet.observed():
            # this thread may hold the application's write lock: report from another
            thread = threading.Thread(target=self.fleet.observe, args=(key, stage),
                                      name="dualwrite-fleet-observe", daemon=True)
            self._reporters = [t for t in self._reporters if t.is_alive()] + [thread]
            thread.start()
        else:
            self.fleet.observe(key, stage)

    def stage_of(self, bound: Bound) -> Stage:
        """The stage of one bound migration."""
        return self.stages()[bound.key]

    def stages(self) -> dict[str, Stage]:
        """The stage of every installed migration, for the current request.

        Evaluated at most once per ``cache_ttl`` seconds per evaluation context (the same
        interval the recorded stages are cached for), so statements cost no flag
        evaluation.
        """
        ctx = current_evaluation_context()
        try:
            memo_key: Any = None if ctx is None else \
                (ctx.targeting_key, tuple(sorted(ctx.attributes.items())))
            hash(memo_key)
        except TypeError:
            memo_key = _NO_MEMO
        now = time.monotonic()
        hit = self._memo.get(memo_key)
        if hit is not None and hit[0] > now:
            return hit[1]
        stages = {b.key: self.stage(b.key) for b in self.registry.bounds}
        if memo_key is not _NO_MEMO and self.memo_ttl > 0:
            if len(self._memo) > _MEMO_SIZE:
                self._memo.clear()
            self._memo[memo_key] = (now + self.memo_ttl, stages)
        return stages

    def refresh(self) -> None:
        """Forget the cached stages so the next statement reads them again."""
        self.resolver.cache.invalidate()
        self._memo.clear()

    # -- events ---------------------------------------------------------------------------
    def _after_begin(self, session: Session, transaction: Any, connection: Any) -> None:
        self.reads.sync_session(session, self.stages())

    def _do_orm_execute(self, orm_state: ORMExecuteState) -> None:
        stages = self.stages()
        self.reads.sync_session(orm_state.session, stages)
        stmt = orm_state.statement
        if orm_state.is_select and isinstance(stmt, Select):
            routed = self.reads.rewrite(stmt, stages)
            if routed is not None:
                orm_state.statement = routed
        elif orm_state.is_insert or orm_state.is_update:
            self.writes.orm_execute(orm_state)

    # -- teardown -------------------------------------------------------------------------
    def uninstall(self) -> None:
        """Remove every listener, stop the heartbeat (deregistering) and the comparators."""
        for target, name, fn in reversed(self._listeners):
            if event.contains(target, name, fn):
                event.remove(target, name, fn)
        self._listeners.clear()
        self._undo_target()
        for thread in self._reporters:
            thread.join(timeout=35)
        if self.fleet is not None:
            self.fleet.stop()
        for c in self.comparators.values():
            c.close()
        if self._own_db:
            self.database.close()


def install(target: SessionTarget, migrations: Sequence[MigrationSpec], *,
            client: OpenFeatureClient | None = None, **options: Any) -> Installation:
    """Install the dualwrite adapter on a session factory.

    ``target`` is a ``sessionmaker`` (its ``bind`` is the engine), an
    ``async_sessionmaker`` or a ``Session`` subclass (then pass ``bind=engine``).
    ``migrations`` are the specs to serve; ``client`` the OpenFeature client stages are
    read through (default: the ``dualwrite`` domain client; with no provider set there,
    the recorded stages). Options: ``database`` (where the state tables are; default the
    engine's database), ``bases`` (declarative bases whose models to search), compare
    ``sample_rate``, ``publisher``, ``raise_on_mismatch``, ``background_compare``,
    ``cache_ttl`` (seconds a recorded stage is cached), ``fleet``,
    ``heartbeat_interval``, ``instance_id``.

    Every spec is checked against the models first; a mismatch raises before anything is
    installed. Returns the :class:`Installation`; call ``uninstall()`` to remove it.
    """
    return Installation(target, migrations, client=client, **options)
