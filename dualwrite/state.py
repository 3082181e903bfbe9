"""The state tables: migrations, history, backfill checkpoints, verifications, fleet.

They live in the migrated database itself (the connection's default schema), so the
application, the CLI and other services see one truth. Stage changes are compare-and-set on
a version column: of two concurrent ``advance`` calls, exactly one succeeds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dualwrite.db import Database
from dualwrite.dialects.base import STATE_TABLES
from dualwrite.errors import (
    ConcurrentTransitionError,
    DatabaseError,
    MigrationNotFoundError,
    SpecChangedError,
    StateNotInitializedError,
)
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Mode, Stage

__all__ = ["DEFAULT_FLEET_TTL", "FleetInstance", "HistoryEntry", "MigrationState", "StateStore",
           "VerifyResult", "utcnow"]

#: Seconds after its last heartbeat that an instance still counts as live.
DEFAULT_FLEET_TTL = 30.0


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class MigrationState:
    """One row of ``dualwrite_migrations``."""

    key: str
    kind: str
    table: str
    spec_hash: str
    spec: dict[str, Any]
    mode: Mode
    stage: Stage
    ceiling: Stage
    version: int
    created_at: datetime
    updated_at: datetime
    stage_changed_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"key": self.key, "kind": self.kind, "table": self.table,
                "spec_hash": self.spec_hash, "mode": self.mode.value, "stage": self.stage.value,
                "stage_ceiling": self.ceiling.value, "version": self.version,
                "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(),
                "stage_changed_at": self.stage_changed_at.isoformat()}


@dataclass(frozen=True)
class HistoryEntry:
    """One recorded transition."""

    id: int
    from_stage: str
    to_stage: str
    changed_at: datetime
    actor: str
    reason: str
    details: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "from": self.from_stage, "to": self.to_stage,
                "at": self.changed_at.isoformat(), "by": self.actor, "why": self.reason,
                "details": self.details}


@dataclass(frozen=True)
class FleetInstance:
    """One application process running an adapter, as last reported."""

    instance_id: str
    host: str
    pid: int
    version: str
    stage: Stage
    started_at: datetime
    heartbeat_at: datetime

    def alive(self, now: datetime, ttl: float) -> bool:
        """Whether its last heartbeat is at most ``ttl`` seconds old."""
        return (now - self.heartbeat_at).total_seconds() <= ttl

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"instance_id": self.instance_id, "host": self.host, "pid": self.pid,
                "version": self.version, "stage": self.stage.value,
                "started_at": self.started_at.isoformat(),
                "heartbeat_at": self.heartbeat_at.isoformat()}


@dataclass(frozen=True)
class VerifyResult:
    """The latest finished verify of one migration and direction."""

    spec_hash: str
    started_at: datetime
    finished_at: datetime
    rows_checked: int
    mismatches: int
    unbackfilled: int


class StateStore:
    """Reads and writes the dualwrite state tables of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.d = db.dialect

    # -- lifecycle of the tables --------------------------------------------------------
    def is_initialized(self) -> bool:
        """Whether every state table exists."""
        row = self.db.fetchone(self.d.state_tables_present())
        return bool(row) and int(row[0]) == len(STATE_TABLES)  # type: ignore[index]

    def init(self) -> bool:
        """Create the state tables if missing (idempotent, safe to race). True if created."""
        if self.is_initialized():
            return False
        for ddl in self.d.state_ddl():
            try:
                self.db.execute((ddl, ()))
            except DatabaseError:
                # Another process may have created it at the same moment.
                if not self.is_initialized():
                    self.db.execute((ddl, ()))
        return True

    def require(self) -> None:
        """Raise :class:`StateNotInitializedError` unless the tables exist."""
        if not self.is_initialized():
            raise StateNotInitializedError(
                f"the dualwrite state tables do not exist in {self.db.display_url}",
                hint="run: dualwrite init")

    # -- migrations ---------------------------------------------------------------------
    def _row_to_state(self, r: tuple[Any, ...]) -> MigrationState:
        t = self.d.from_db_time
        return MigrationState(key=r[0], kind=r[1], table=r[2], spec_hash=r[3],
                              spec=json.loads(r[4]), mode=Mode(r[5]), stage=Stage(r[6]),
                              ceiling=Stage(r[7]), version=int(r[8]),
                              created_at=t(r[9]) or utcnow(), updated_at=t(r[10]) or utcnow(),
                              stage_changed_at=t(r[11]) or utcnow())

    def all(self) -> list[MigrationState]:
        """Every registered migration."""
        return [self._row_to_state(r) for r in self.db.fetchall(self.d.select_migrations())]

    def find(self, key: str) -> MigrationState | None:
        """One migration, or ``None``."""
        row = self.db.fetchone(self.d.select_migrations(key))
        return self._row_to_state(row) if row else None

    def get(self, key: str) -> MigrationState:
        """One migration, or :class:`MigrationNotFoundError`."""
        st = self.find(key)
        if st is None:
            raise MigrationNotFoundError(f"migration {key!r} is not registered in "
                                         f"{self.db.display_url}", key=key,
                                         hint="run: dualwrite init (with the spec loaded)")
        return st

    def register(self, spec: MigrationSpec) -> MigrationState:
        """Record ``spec`` at stage ``off``, or check it against the recorded one.

        A changed spec is accepted while nothing has been written by it (stage ``off`` or
        ``expand``); later it raises :class:`SpecChangedError`.
        """
        now = utcnow()
        h = spec.spec_hash()
        blob = json.dumps(spec.describe(), sort_keys=True)
        existing = self.find(spec.key)
        if existing is None:
            t = self.d.to_db_time(now)
            try:
                self.db.execute(self.d.insert_migration(
                    (spec.key, spec.kind, spec.table, h, blob, spec.mode.value, Stage.OFF.value,
                     Stage.OFF.value, 1, t, t, t)))
            except DatabaseError:
                if self.find(spec.key) is None:  # not a lost race: a real failure
                    raise
            return self.register(spec)
        if existing.spec_hash == h:
            return existing
        if existing.stage <= Stage.EXPAND:
            self.db.execute(self.d.update_spec(spec.key, spec.kind, spec.table, h, blob,
                                               spec.mode.value, now, existing.version))
            return self.get(spec.key)
        raise SpecChangedError(
            f"migration {spec.key!r}: the spec changed since the migration started "
            f"(recorded {existing.spec_hash}, now {h}) and it is at {existing.stage.value}",
            key=spec.key, recorded_hash=existing.spec_hash, current_hash=h,
            hint=f"restore the original spec, or roll back to expand first: "
                 f"dualwrite rollback {spec.key} --to expand; a new change wants a new key")

    def transition(self, state: MigrationState, to: Stage, *, actor: str, reason: str,
                   details: dict[str, Any] | None = None) -> MigrationState:
        """Move ``state`` to ``to`` (ceiling follows) if nobody changed it since it was read."""
        now = utcnow()
        with self.db.transaction() as tx:
            n = tx.execute(self.d.update_stage_cas(state.key, state.version, to.value,
                                                   to.value, now))
            if n != 1:
                raise ConcurrentTransitionError(
                    f"migration {state.key!r} was changed by another process while moving "
                    f"{state.stage.value} -> {to.value}", key=state.key,
                    from_stage=state.stage.value, to_stage=to.value,
                    reason="lost a concurrent transition",
                    hint=f"check: dualwrite status {state.key}")
            tx.execute(self.d.insert_history(state.key, state.stage.value, to.value, now, actor,
                                             reason, json.dumps(details, default=str)
                                             if details else None))
        return self.get(state.key)

    def history(self, key: str, limit: int = 100) -> list[HistoryEntry]:
        """The latest ``limit`` transitions, oldest first."""
        t = self.d.from_db_time
        rows = self.db.fetchall(self.d.select_history(key, limit))
        return [HistoryEntry(id=int(r[0]), from_stage=r[1], to_stage=r[2],
                             changed_at=t(r[3]) or utcnow(), actor=r[4], reason=r[5],
                             details=json.loads(r[6]) if r[6] else None)
                for r in reversed(rows)]

    # -- fleet --------------------------------------------------------------------------
    def heartbeat(self, instance_id: str, host: str, pid: int, version: str,
                  stages: Iterable[tuple[str, Stage]]) -> None:
        """Register or refresh one instance, with the stage it observes per migration."""
        now = utcnow()
        with self.db.transaction() as tx:
            for key, stage in stages:
                tx.execute(self.d.upsert_fleet(instance_id, key, host, pid, version, stage.value,
                                               now))

    def deregister(self, instance_id: str) -> None:
        """Forget an instance (clean shutdown)."""
        self.db.execute(self.d.delete_fleet(instance_id))

    def forget(self, key: str) -> None:
        """Delete every state row of ``key``: stage, history, backfill, verify, fleet. Its
        table and columns are untouched; registering the spec again starts at ``off``."""
        with self.db.transaction() as tx:
            for query in self.d.forget_migration(key):
                tx.execute(query)

    def live_fleet(self, key: str, ttl: float = DEFAULT_FLEET_TTL) -> list[FleetInstance]:
        """The instances of ``key`` whose heartbeat is younger than ``ttl`` seconds."""
        now = utcnow()
        return [i for i in self.fleet(key) if i.alive(now, ttl)]

    def fleet(self, key: str) -> list[FleetInstance]:
        """Every instance that reported for ``key``, latest heartbeat first."""
        t = self.d.from_db_time
        return [FleetInstance(instance_id=r[0], host=r[1], pid=int(r[2]), version=r[3],
                              stage=Stage(r[4]), started_at=t(r[5]) or utcnow(),
                              heartbeat_at=t(r[6]) or utcnow())
                for r in self.db.fetchall(self.d.select_fleet(key))]

    # -- backfill and verify (written by dualwrite.backfill) ------------------------------
    def backfill_complete(self, key: str, spec_hash: str, direction: str = "forward"
                          ) -> bool | None:
        """True if every part of the backfill finished with this spec; ``None`` if none ran."""
        rows = self.db.fetchall(self.d.select_backfill_parts(key, direction))
        if not rows:
            return None
        return all(r[1] == spec_hash and r[2] == "done" for r in rows)

    def latest_verify(self, key: str, direction: str = "forward") -> VerifyResult | None:
        """The latest finished verify, or ``None``."""
        r = self.db.fetchone(self.d.select_latest_verify(key, direction))
        if r is None:
            return None
        t = self.d.from_db_time
        return VerifyResult(spec_hash=r[0], started_at=t(r[1]) or utcnow(),
                            finished_at=t(r[2]) or utcnow(), rows_checked=int(r[3]),
                            mismatches=int(r[4]), unbackfilled=int(r[5]))
