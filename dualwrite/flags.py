"""Stages through OpenFeature.

The stage of migration ``KEY`` is the string flag ``dualwrite.KEY.stage``, evaluated with
the caller's :class:`~openfeature.evaluation_context.EvaluationContext` so a provider can
roll reads out to a share of requests. :class:`StateTableProvider` serves the recorded
stages from the state table (no flag service needed); any provider works.

:class:`StageResolver` turns the flag into the stage an instance may serve:

* the flag is capped at the recorded stage ceiling, and never more than one step behind it
  (see :func:`dualwrite.stages.clamp_stage`);
* if the provider errors, the last stage this resolver served for the key is kept; with
  none, the recorded stage is used.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata

from dualwrite.db import Database
from dualwrite.errors import DatabaseError, DualwriteError, MigrationNotFoundError
from dualwrite.stages import Stage, clamp_stage
from dualwrite.state import MigrationState, StateStore

__all__ = ["DEFAULT_DOMAIN", "StageResolver", "StateCache", "StateTableProvider",
           "flag_key", "use_state_provider"]

log = logging.getLogger("dualwrite.flags")

DEFAULT_DOMAIN = "dualwrite"
DEFAULT_TTL = 1.0
_PREFIX, _SUFFIX = "dualwrite.", ".stage"


def flag_key(key: str) -> str:
    """The flag carrying migration ``key``'s stage."""
    return f"{_PREFIX}{key}{_SUFFIX}"


class StateCache:
    """The migrations table, read at most once per ``ttl`` seconds, shared by threads.

    If a refresh fails, the last rows read stay in use and ``last_error`` is set.
    """

    def __init__(self, db: Database, ttl: float = DEFAULT_TTL) -> None:
        self._store = StateStore(db)
        self.ttl = ttl
        self._rows: dict[str, MigrationState] | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()
        self.last_error: BaseException | None = None

    def _refresh(self) -> None:
        now = time.monotonic()
        if self._rows is not None and now - self._read_at < self.ttl:
            return
        with self._lock:
            if self._rows is not None and time.monotonic() - self._read_at < self.ttl:
                return
            try:
                self._rows = {s.key: s for s in self._store.all()}
                self.last_error = None
            except DualwriteError as exc:
                self.last_error = exc
                log.warning("dualwrite: could not read the migration state (%s); "
                            "keeping the last known stages", exc)
            self._read_at = time.monotonic()

    def get(self, key: str) -> MigrationState | None:
        """The recorded state of ``key`` (possibly up to ``ttl`` old), or ``None``."""
        self._refresh()
        return (self._rows or {}).get(key)

    def invalidate(self) -> None:
        """Force the next read to go to the database."""
        self._read_at = 0.0


class StateTableProvider(AbstractProvider):
    """An OpenFeature provider serving ``dualwrite.KEY.stage`` from the state table."""

    def __init__(self, db: Database | None = None, *, cache: StateCache | None = None,
                 ttl: float = DEFAULT_TTL) -> None:
        super().__init__()
        if cache is None:
            if db is None:
                raise ValueError("StateTableProvider needs a Database or a StateCache")
            cache = StateCache(db, ttl)
        self.cache = cache

    def get_metadata(self) -> Metadata:
        return Metadata(name="dualwrite-state-table")

    def _not_found(self, flag: str, default: Any) -> FlagResolutionDetails[Any]:
        return FlagResolutionDetails(value=default, error_code=ErrorCode.FLAG_NOT_FOUND,
                                     error_message=f"no dualwrite migration for flag {flag!r}",
                                     reason=Reason.ERROR)

    def resolve_string_details(self, flag_key: str, default_value: str,
                               evaluation_context: EvaluationContext | None = None
                               ) -> FlagResolutionDetails[str]:
        if not (flag_key.startswith(_PREFIX) and flag_key.endswith(_SUFFIX)):
            return self._not_found(flag_key, default_value)
        key = flag_key[len(_PREFIX):-len(_SUFFIX)]
        state = self.cache.get(key)
        if state is None:
            if self.cache.last_error is not None:
                return FlagResolutionDetails(value=default_value, error_code=ErrorCode.GENERAL,
                                             error_message=str(self.cache.last_error),
                                             reason=Reason.ERROR)
            return self._not_found(flag_key, default_value)
        reason = Reason.STALE if self.cache.last_error is not None else Reason.CACHED
        return FlagResolutionDetails(value=state.stage.value, reason=reason,
                                     variant=state.stage.value)

    def _type_mismatch(self, flag_key: str, default_value: Any) -> FlagResolutionDetails[Any]:
        return FlagResolutionDetails(value=default_value, error_code=ErrorCode.TYPE_MISMATCH,
                                     error_message="dualwrite flags are strings",
                                     reason=Reason.ERROR)

    def resolve_boolean_details(self, flag_key: str, default_value: bool,
                                evaluation_context: EvaluationContext | None = None
                                ) -> FlagResolutionDetails[bool]:
        return self._type_mismatch(flag_key, default_value)

    def resolve_integer_details(self, flag_key: str, default_value: int,
                                evaluation_context: EvaluationContext | None = None
                                ) -> FlagResolutionDetails[int]:
        return self._type_mismatch(flag_key, default_value)

    def resolve_float_details(self, flag_key: str, default_value: float,
                              evaluation_context: EvaluationContext | None = None
                              ) -> FlagResolutionDetails[float]:
        return self._type_mismatch(flag_key, default_value)

    def resolve_object_details(self, flag_key: str, default_value: Any,
                               evaluation_context: EvaluationContext | None = None
                               ) -> FlagResolutionDetails[Any]:
        return self._type_mismatch(flag_key, default_value)


def use_state_provider(db: Database, domain: str = DEFAULT_DOMAIN, *,
                       ttl: float = DEFAULT_TTL) -> StateTableProvider:
    """Install a :class:`StateTableProvider` for ``domain`` and return it."""
    provider = StateTableProvider(db, ttl=ttl)
    api.set_provider(provider, domain)
    return provider


class StageResolver:
    """The stage an instance serves for a migration, per evaluation context.

    ``client`` is the OpenFeature client to ask (default: the ``dualwrite`` domain client).
    ``cache`` supplies the recorded stage and ceiling.
    """

    def __init__(self, db: Database | None = None, *, client: OpenFeatureClient | None = None,
                 cache: StateCache | None = None, ttl: float = DEFAULT_TTL) -> None:
        if cache is None:
            if db is None:
                raise ValueError("StageResolver needs a Database or a StateCache")
            cache = StateCache(db, ttl)
        self.cache = cache
        self.client = client or api.get_client(DEFAULT_DOMAIN)
        self._last: dict[str, Stage] = {}
        self._warned: set[tuple[str, str]] = set()

    def last_known(self, key: str) -> Stage | None:
        """The last stage served for ``key`` by this resolver."""
        return self._last.get(key)

    def stage(self, key: str, context: EvaluationContext | None = None) -> Stage:
        """The stage to serve for ``key`` now, for a request with ``context``."""
        state = self.cache.get(key)
        if state is None:
            last = self._last.get(key)
            if last is not None:
                return last
            if self.cache.last_error is not None:
                raise DatabaseError(f"the stage of {key!r} is unknown: the state table cannot be "
                                    f"read ({self.cache.last_error})",
                                    hint="check the database connection")
            raise MigrationNotFoundError(f"migration {key!r} is not registered", key=key,
                                         hint="run: dualwrite init")
        try:
            details = self.client.get_string_details(flag_key(key), state.stage.value, context)
            failed = details.error_code is not None or details.reason == Reason.ERROR
            flag = None if failed else Stage.parse(details.value)
        except Exception as exc:  # noqa: BLE001 -- a broken provider must not break requests
            log.warning("dualwrite: flag provider failed for %s: %s", key, exc)
            flag = None
        if flag is None:
            fallback = self._last.get(key, state.stage)
            return fallback
        served = clamp_stage(flag, state.ceiling)
        if served is not flag and (key, flag.value) not in self._warned:
            self._warned.add((key, flag.value))
            log.warning("dualwrite: flag for %s says %s, serving %s (ceiling %s)", key,
                        flag.value, served.value, state.ceiling.value)
        self._last[key] = served
        return served
