"""Flags on every backend: the state-table provider, the ceiling, provider failures."""

from __future__ import annotations

import time
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

from dualwrite.db import Database
from dualwrite.errors import DatabaseError, MigrationNotFoundError
from dualwrite.flags import StageResolver, StateCache, StateTableProvider, flag_key
from dualwrite.migrator import Migrator
from dualwrite.spec import RenameColumn
from dualwrite.stages import Stage
from tests.helpers import record_backfill_and_verify, users_table

SPEC = RenameColumn(key="users-display-name", table="users", old="full_name",
                    new="display_name", confidence_window=0)
FLAG = flag_key(SPEC.key)


def client_with(provider: AbstractProvider, domain: str) -> OpenFeatureClient:
    api.set_provider(provider, domain)
    return api.get_client(domain)


@pytest.fixture
def migrated(db: Database) -> Migrator:
    users_table(db, 5, with_new=True)
    m = Migrator(db, [SPEC])
    m.init()
    return m


def walk_to(m: Migrator, stage: Stage) -> None:
    m.advance(SPEC.key, stage)


def test_state_table_provider_serves_recorded_stage_with_cache(db: Database,
                                                               migrated: Migrator,
                                                               request: Any) -> None:
    provider = StateTableProvider(db, ttl=0.2)
    client = client_with(provider, f"t-{request.node.name}")
    assert client.get_string_value(FLAG, "x") == "off"
    walk_to(migrated, Stage.DUALWRITE)
    # within the cache interval the old value may still be served; after it, the new one
    deadline = time.monotonic() + 5
    while client.get_string_value(FLAG, "x") != "dualwrite":
        assert time.monotonic() < deadline, "stage change never became visible"
        time.sleep(0.05)
    details = client.get_string_details("dualwrite.unknown.stage", "dflt")
    assert details.value == "dflt" and details.error_code is not None
    assert client.get_boolean_value(FLAG, True) is True  # wrong type -> default


def test_resolver_with_default_noop_client_uses_recorded_stage(db: Database,
                                                              migrated: Migrator) -> None:
    walk_to(migrated, Stage.DUALWRITE)
    resolver = StageResolver(db, client=api.get_client("nobody-configured-this"), ttl=0)
    assert resolver.stage(SPEC.key) is Stage.DUALWRITE


def test_flag_is_capped_at_the_ceiling_and_floor(db: Database, migrated: Migrator,
                                                 request: Any) -> None:
    walk_to(migrated, Stage.SHADOW)
    domain = f"t-{request.node.name}"
    for flag, served in [("complete", Stage.SHADOW), ("live", Stage.SHADOW),
                         ("shadow", Stage.SHADOW), ("dualwrite", Stage.DUALWRITE),
                         ("off", Stage.DUALWRITE)]:
        provider = InMemoryProvider({FLAG: InMemoryFlag("v", {"v": flag})})
        resolver = StageResolver(db, client=client_with(provider, domain), ttl=0)
        assert resolver.stage(SPEC.key) is served, flag


class FailingProvider(AbstractProvider):
    """A provider whose service is down."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = True
        self.value = "shadow"

    def get_metadata(self) -> Metadata:
        return Metadata(name="failing")

    def resolve_string_details(self, flag_key: str, default_value: str,
                               evaluation_context: EvaluationContext | None = None
                               ) -> FlagResolutionDetails[str]:
        if self.fail:
            raise ConnectionError("flag service unreachable")
        return FlagResolutionDetails(value=self.value, reason=Reason.STATIC)

    def resolve_boolean_details(self, *a: Any, **k: Any) -> FlagResolutionDetails[bool]:
        raise NotImplementedError

    def resolve_integer_details(self, *a: Any, **k: Any) -> FlagResolutionDetails[int]:
        raise NotImplementedError

    def resolve_float_details(self, *a: Any, **k: Any) -> FlagResolutionDetails[float]:
        raise NotImplementedError

    def resolve_object_details(self, *a: Any, **k: Any) -> FlagResolutionDetails[Any]:
        raise NotImplementedError


def test_provider_failure_keeps_last_known_else_recorded(db: Database, migrated: Migrator,
                                                         request: Any) -> None:
    walk_to(migrated, Stage.SHADOW)
    provider = FailingProvider()
    resolver = StageResolver(db, client=client_with(provider, f"t-{request.node.name}"), ttl=0)
    assert resolver.stage(SPEC.key) is Stage.SHADOW  # none known: the recorded stage
    provider.fail, provider.value = False, "dualwrite"
    assert resolver.stage(SPEC.key) is Stage.DUALWRITE  # the flag holds it one step back
    provider.fail = True
    assert resolver.stage(SPEC.key) is Stage.DUALWRITE  # last known kept, not the recorded
    assert resolver.last_known(SPEC.key) is Stage.DUALWRITE


def test_database_down_keeps_the_cached_state(db_url: str, db: Database,
                                              migrated: Migrator) -> None:
    walk_to(migrated, Stage.DUALWRITE)
    flaky = Database.from_url(db_url)
    cache = StateCache(flaky, ttl=0)
    resolver = StageResolver(cache=cache, client=api.get_client("nobody-2"))
    assert resolver.stage(SPEC.key) is Stage.DUALWRITE

    def broken() -> Any:
        raise OSError("connection refused")

    flaky.close()
    flaky._connect = broken  # the database goes away for this process
    assert resolver.stage(SPEC.key) is Stage.DUALWRITE
    assert isinstance(cache.last_error, DatabaseError)
    fresh = StageResolver(cache=StateCache(flaky, ttl=0), client=api.get_client("nobody-3"))
    with pytest.raises(DatabaseError, match="stage of 'users-display-name' is unknown"):
        fresh.stage(SPEC.key)


def test_unregistered_key(db: Database, migrated: Migrator) -> None:
    with pytest.raises(MigrationNotFoundError, match="not registered"):
        StageResolver(db, client=api.get_client("nobody-4"), ttl=0).stage("other")


def test_percentage_rollout_between_shadow_and_live(db: Database, migrated: Migrator,
                                                    request: Any) -> None:
    """A context evaluator sends a share of targeting keys to live; the rest stay in shadow."""
    from dualwrite.state import StateStore

    walk_to(migrated, Stage.SHADOW)
    record_backfill_and_verify(db, SPEC.key, SPEC.spec_hash())
    walk_to(migrated, Stage.LIVE)
    assert StateStore(db).get(SPEC.key).ceiling is Stage.LIVE

    def ten_percent(flag: InMemoryFlag[str], ctx: EvaluationContext
                    ) -> FlagResolutionDetails[str]:
        bucket = int(ctx.targeting_key or "0") % 100
        variant = "live" if bucket < 10 else "shadow"
        return FlagResolutionDetails(value=flag.variants[variant], variant=variant,
                                     reason=Reason.TARGETING_MATCH)

    provider = InMemoryProvider({FLAG: InMemoryFlag("shadow", {"shadow": "shadow", "live": "live"},
                                                    context_evaluator=ten_percent)})
    resolver = StageResolver(db, client=client_with(provider, f"t-{request.node.name}"), ttl=1)
    served = [resolver.stage(SPEC.key, EvaluationContext(targeting_key=str(i)))
              for i in range(1000)]
    assert served.count(Stage.LIVE) == 100
    assert served.count(Stage.SHADOW) == 900
