"""Which stage this process serves, per Django database alias and evaluation context.

The state of a migration lives in the database that holds its table, so each alias gets
its own :class:`AliasRuntime`: a bridged :class:`~dualwrite.db.Database`, a
:class:`~dualwrite.flags.StateCache`, a :class:`~dualwrite.flags.StageResolver` and, when
enabled, a :class:`~dualwrite.fleet.FleetMember` (started on first use, not at import).

A *scope* holds the request's OpenFeature ``EvaluationContext`` and the stages resolved
for it: inside a request (see :mod:`dualwrite_django.middleware`) every query sees one
stage per migration. Outside any scope a resolved stage is reused for
``STAGE_CACHE_SECONDS``.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from openfeature import api
from openfeature.evaluation_context import EvaluationContext

from dualwrite.db import Database
from dualwrite.errors import DatabaseError, MigrationNotFoundError
from dualwrite.flags import StageResolver, StateCache, StateTableProvider
from dualwrite.fleet import FleetMember
from dualwrite.metrics import METRICS
from dualwrite.stages import Stage
from dualwrite.state import StateStore
from dualwrite_django.bridge import database_for
from dualwrite_django.conf import DualwriteSettings

__all__ = ["AliasRuntime", "Runtimes", "Scope", "current_context", "evaluation_scope"]

log = logging.getLogger("dualwrite.django")

DOMAIN_PREFIX = "dualwrite-django:"


@dataclass
class Scope:
    """One evaluation context and the stages resolved under it."""

    context: EvaluationContext | None = None
    stages: dict[tuple[str, str], tuple[Stage, float]] = field(default_factory=dict)
    #: ``None``: entries never expire (a request); else seconds an entry is reused.
    ttl: float | None = None


_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("dualwrite_scope",
                                                                      default=None)


def current_context() -> EvaluationContext | None:
    """The evaluation context of the current request or :func:`evaluation_scope`."""
    scope = _scope.get()
    return scope.context if scope is not None else None


@contextmanager
def evaluation_scope(context: EvaluationContext | None) -> Iterator[Scope]:
    """Evaluate stages with ``context`` inside the block, one stage per migration."""
    token = _scope.set(Scope(context))
    try:
        yield _scope.get()  # type: ignore[misc]
    finally:
        _scope.reset(token)


class AliasRuntime:
    """Stage resolution (and fleet membership) for one Django database alias."""

    def __init__(self, alias: str, settings: DualwriteSettings) -> None:
        self.alias = alias
        self.settings = settings
        self.db: Database = database_for(alias)
        self.cache = StateCache(self.db, settings.state_ttl)
        client = settings.client
        if client is None:
            provider = settings.provider or StateTableProvider(cache=self.cache)
            domain = DOMAIN_PREFIX + alias
            api.set_provider(provider, domain)
            client = api.get_client(domain)
        self.resolver = StageResolver(cache=self.cache, client=client)
        self.fleet: FleetMember | None = None
        self._observed: dict[str, Stage] = {}
        self._missing_until = 0.0
        self._default = Scope(ttl=settings.stage_cache_seconds)
        self._lock = threading.Lock()

    def _state_missing(self) -> bool:
        """Whether the state tables do not exist (checked at most once per TTL)."""
        now = time.monotonic()
        if now < self._missing_until:
            return True
        if StateStore(self.db).is_initialized():
            return False
        self._missing_until = now + max(self.settings.state_ttl, 0.5)
        return True

    def _resolve(self, key: str, context: EvaluationContext | None) -> Stage:
        try:
            return self.resolver.stage(key, context)
        except MigrationNotFoundError:
            return Stage.OFF
        except DatabaseError:
            if self._state_missing():
                return Stage.OFF
            raise

    def stage(self, key: str) -> Stage:
        """The stage to serve for migration ``key`` now, in the current scope."""
        scope = _scope.get() or self._default
        now = time.monotonic()
        hit = scope.stages.get((self.alias, key))
        if hit is not None and (scope.ttl is None or now < hit[1]):
            return hit[0]
        stage = self._resolve(key, scope.context)
        scope.stages[(self.alias, key)] = (stage, now + (scope.ttl or 0.0))
        if self._observed.get(key) is not stage:
            self._observe(key, stage)
        return stage

    def _observe(self, key: str, stage: Stage) -> None:
        self._observed[key] = stage
        METRICS.set_stage(key, stage)
        if not self.settings.fleet:
            return
        with self._lock:
            if self.fleet is None:
                self.fleet = FleetMember(self.db, interval=self.settings.fleet_interval)
                self.fleet.observe(key, stage)
                self.fleet.start()
                return
        self.fleet.observe(key, stage)

    def invalidate(self) -> None:
        """Forget cached stages: the next query reads the state table again."""
        self.cache.invalidate()
        self._default.stages.clear()
        self._missing_until = 0.0
        scope = _scope.get()
        if scope is not None:
            scope.stages.clear()

    def close(self) -> None:
        """Stop the fleet heartbeat (deregistering) and close the state connections."""
        if self.fleet is not None:
            self.fleet.stop()
            self.fleet = None
        self.db.close()


class Runtimes:
    """The :class:`AliasRuntime` of every alias used so far (created on first use)."""

    def __init__(self, settings: DualwriteSettings) -> None:
        self.settings = settings
        self._by_alias: dict[str, AliasRuntime] = {}
        self._lock = threading.Lock()
        self._atexit = False

    def __call__(self, alias: str) -> AliasRuntime:
        rt = self._by_alias.get(alias)
        if rt is None:
            with self._lock:
                rt = self._by_alias.get(alias)
                if rt is None:
                    rt = self._by_alias[alias] = AliasRuntime(alias, self.settings)
                    if not self._atexit:
                        atexit.register(self.close)
                        self._atexit = True
        return rt

    def stage(self, alias: str, key: str) -> Stage:
        """Shortcut: the stage of ``key`` on ``alias``."""
        return self(alias).stage(key)

    def invalidate(self) -> None:
        """Forget every cached stage."""
        for rt in list(self._by_alias.values()):
            rt.invalidate()

    def close(self) -> None:
        """Close every runtime (at exit, or when the app is reconfigured)."""
        for rt in list(self._by_alias.values()):
            rt.close()
        self._by_alias.clear()
        if self._atexit:
            atexit.unregister(self.close)
            self._atexit = False

    def all(self) -> list[AliasRuntime]:
        """The runtimes created so far."""
        return list(self._by_alias.values())


def context_of(value: Any) -> EvaluationContext | None:
    """``value`` as an EvaluationContext (a mapping becomes its attributes)."""
    if value is None or isinstance(value, EvaluationContext):
        return value
    if isinstance(value, dict):
        attrs = dict(value)
        key = attrs.pop("targeting_key", None)
        return EvaluationContext(targeting_key=None if key is None else str(key),
                                 attributes=attrs)
    raise TypeError(f"not an evaluation context: {value!r}")
