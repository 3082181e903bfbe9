"""Operations on migrations: register, status, advance, rollback, history.

:class:`Migrator` is what the CLI, the Django management command and application code call.
It gathers the facts a gate needs from the database, asks :func:`dualwrite.stages.check_transition`
and records the step with a compare-and-set. It never changes the schema or the data.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dualwrite.db import Database
from dualwrite.errors import (
    ConfigurationError,
    DualwriteError,
    MigrationNotFoundError,
    TransitionRefused,
)
from dualwrite.schema import ValidationReport, validate_spec
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Decision, GateFacts, Mode, Stage, check_transition, path_between
from dualwrite.state import DEFAULT_FLEET_TTL, FleetInstance, MigrationState, StateStore, utcnow
from dualwrite.triggers import TriggerInstaller

__all__ = ["Migrator", "StatusReport", "TransitionResult"]


def default_actor() -> str:
    """``user@host`` of this process, recorded in the history."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 -- no login name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class TransitionResult:
    """One step taken."""

    key: str
    from_stage: Stage
    to_stage: Stage
    reason: str
    #: What the gate noticed but does not refuse on (also recorded in the history).
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"key": self.key, "from": self.from_stage.value, "to": self.to_stage.value,
                "reason": self.reason, "warnings": list(self.warnings)}


@dataclass
class StatusReport:
    """A migration as the database sees it now."""

    key: str
    state: MigrationState | None
    spec: MigrationSpec | None
    fleet: list[FleetInstance] = field(default_factory=list)
    next_step: Decision | None = None
    spec_matches: bool | None = None
    #: What the next step's gate notices without refusing on it.
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        st = self.state
        return {
            "key": self.key,
            "registered": st is not None,
            **(st.to_dict() if st else {}),
            "spec_matches_recorded": self.spec_matches,
            "fleet": [i.to_dict() for i in self.fleet],
            "next": None if self.next_step is None else {
                "allowed": self.next_step.allowed, "reason": self.next_step.reason,
                "hint": self.next_step.hint},
            "warnings": list(self.warnings),
        }


class Migrator:
    """Lifecycle operations for a set of specs on one database."""

    def __init__(self, db: Database, specs: Sequence[MigrationSpec] = (), *,
                 actor: str | None = None, fleet_ttl: float = DEFAULT_FLEET_TTL) -> None:
        keys = [s.key for s in specs]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ConfigurationError(f"two specs share the key {dupes[0]!r}",
                                     hint="every migration needs its own key")
        self.db = db
        self.specs = {s.key: s for s in specs}
        self.state = StateStore(db)
        self.actor = actor or default_actor()
        self.fleet_ttl = fleet_ttl

    # -- helpers ------------------------------------------------------------------------
    def spec(self, key: str) -> MigrationSpec:
        """The loaded spec with this key, or :class:`MigrationNotFoundError`."""
        try:
            return self.specs[key]
        except KeyError:
            known = ", ".join(sorted(self.specs)) or "none"
            raise MigrationNotFoundError(
                f"no spec with key {key!r} is loaded (loaded: {known})", key=key,
                hint="pass --spec pkg.module:SPECS or a dualwrite.toml that defines it") from None

    def live_fleet(self, key: str) -> list[FleetInstance]:
        """Instances whose heartbeat is within the fleet TTL."""
        return self.state.live_fleet(key, self.fleet_ttl)

    def gate_facts(self, spec: MigrationSpec, state: MigrationState, *,
                   report: ValidationReport | None = None, confirm: str | None = None,
                   confidence_window: float | None = None) -> GateFacts:
        """What the gates need, read from the database now."""
        if report is None:
            report = validate_spec(self.db, spec, check_transforms=False)
        verify = self.state.latest_verify(spec.key, "forward")
        verify_bad: int | None = None
        if verify is not None and verify.spec_hash == state.spec_hash:
            verify_bad = verify.mismatches + verify.unbackfilled
        warnings = list(report.warnings)
        fleet = self.live_fleet(spec.key)
        if not fleet:
            warnings.append("no live application instance is registered in the fleet")
        not_null = [c for c in spec.old_columns
                    if c in report.table.columns and not report.table.columns[c].nullable]
        if not_null and state.mode is Mode.APP and state.stage.app_stage >= Stage.LIVE:
            cols = ", ".join(not_null)
            warnings.append(
                f"{cols} is NOT NULL, and from complete the application no longer writes it: "
                "an insert that leaves it unset fails (SQLAlchemy sends NULL; Django sends the "
                f"field's default). Make {cols} nullable before complete, or use trigger mode")
        return GateFacts(
            mode=state.mode,
            new_columns_exist=report.new_columns_exist,
            triggers_current=self._triggers_current(spec),
            fleet_stages=tuple(i.stage for i in fleet),
            backfill_complete=self.state.backfill_complete(spec.key, state.spec_hash),
            verify_mismatches=verify_bad,
            reverse_in_sync=self._reverse_in_sync(spec, state),
            seconds_in_stage=(utcnow() - state.stage_changed_at).total_seconds(),
            confidence_window=(spec.confidence_window if confidence_window is None
                               else confidence_window),
            confirmed=confirm is not None and confirm == spec.key,
            warnings=tuple(warnings),
        )

    def _triggers_current(self, spec: MigrationSpec) -> bool | None:
        """Whether the mirror triggers are installed and match the spec (``None`` in app
        mode, where no gate asks; ``False`` when they cannot be inspected)."""
        if spec.mode is not Mode.TRIGGER:
            return None
        try:
            return TriggerInstaller(self.db).status(spec).current
        except DualwriteError:
            return False

    # -- operations ---------------------------------------------------------------------
    def init(self) -> list[MigrationState]:
        """Create the state tables (idempotent) and register every loaded spec."""
        self.state.init()
        return [self.register(s) for s in self.specs.values()]

    def register(self, spec: MigrationSpec) -> MigrationState:
        """Validate ``spec`` against the live schema and record it (stage ``off``)."""
        validate_spec(self.db, spec)
        return self.state.register(spec)

    def status(self, key: str | None = None) -> list[StatusReport]:
        """Every migration (loaded specs and recorded ones), or one."""
        self.state.require()
        states = {s.key: s for s in self.state.all()}
        keys = [key] if key else sorted(set(states) | set(self.specs))
        if key and key not in states and key not in self.specs:
            raise MigrationNotFoundError(f"migration {key!r} is neither loaded nor registered",
                                         key=key, hint="check the key: dualwrite status")
        out = []
        for k in keys:
            st, spec = states.get(k), self.specs.get(k)
            rep = StatusReport(key=k, state=st, spec=spec)
            if st is not None:
                rep.fleet = self.live_fleet(k)
                if spec is not None:
                    rep.spec_matches = spec.spec_hash() == st.spec_hash
                    nxt = st.stage.next()
                    if nxt is not None and rep.spec_matches:
                        try:
                            facts = self.gate_facts(spec, st)
                            rep.next_step = check_transition(k, st.stage, nxt, facts)
                            rep.warnings = facts.warnings
                        except Exception as exc:  # noqa: BLE001 -- status must still print
                            rep.next_step = Decision(False, str(exc).splitlines()[0], None)
            out.append(rep)
        return out

    def advance(self, key: str, to: Stage | None = None, *, reason: str = "",
                confirm: str | None = None, confidence_window: float | None = None
                ) -> list[TransitionResult]:
        """Move forward to ``to`` (default: the next stage), one gated step at a time.

        Raises :class:`TransitionRefused` at the first step whose gate fails; steps taken
        before it stay taken (each was safe on its own).
        """
        spec = self.spec(key)
        self.state.init()
        state = self.state.register(spec)
        target = to or state.stage.next()
        if target is None:
            raise TransitionRefused(f"migration {key!r} is at {state.stage.value}, the last stage",
                                    key=key, from_stage=state.stage.value,
                                    to_stage=state.stage.value, reason="nothing after contract")
        if target < state.stage:
            raise TransitionRefused(
                f"migration {key!r}: {target.value} is behind {state.stage.value}",
                key=key, from_stage=state.stage.value, to_stage=target.value,
                reason="advance only moves forward",
                hint=f"run: dualwrite rollback {key} --to {target.value}")
        return self._walk(spec, state, target, reason=reason, confirm=confirm,
                          confidence_window=confidence_window)

    def rollback(self, key: str, to: Stage | None = None, *, reason: str = "") -> list[TransitionResult]:
        """Move back to ``to`` (default: the previous stage), one checked step at a time."""
        spec = self.spec(key)
        self.state.require()
        state = self.state.register(spec)
        target = to or state.stage.previous()
        if target is None:
            raise TransitionRefused(f"migration {key!r} is at off; there is nothing to roll back",
                                    key=key, from_stage="off", to_stage="off",
                                    reason="already at the first stage")
        if target > state.stage:
            raise TransitionRefused(
                f"migration {key!r}: {target.value} is ahead of {state.stage.value}",
                key=key, from_stage=state.stage.value, to_stage=target.value,
                reason="rollback only moves back",
                hint=f"run: dualwrite advance {key} --to {target.value}")
        return self._walk(spec, state, target, reason=reason)

    def _walk(self, spec: MigrationSpec, state: MigrationState, target: Stage, *, reason: str,
              confirm: str | None = None, confidence_window: float | None = None
              ) -> list[TransitionResult]:
        if target is state.stage:
            raise TransitionRefused(f"migration {spec.key!r} is already at {target.value}",
                                    key=spec.key, from_stage=target.value, to_stage=target.value,
                                    reason=f"already at {target.value}")
        done: list[TransitionResult] = []
        for step in path_between(state.stage, target):
            forward = step > state.stage
            report = validate_spec(self.db, spec, check_transforms=step in (
                Stage.EXPAND, Stage.DUALWRITE)) if forward else None
            facts = self.gate_facts(spec, state, report=report, confirm=confirm,
                                    confidence_window=confidence_window) if forward else \
                self._rollback_facts(spec, state)
            decision = check_transition(spec.key, state.stage, step, facts)
            if not decision.allowed:
                raise TransitionRefused(
                    f"migration {spec.key!r}: {state.stage.value} -> {step.value} refused: "
                    f"{decision.reason}", key=spec.key, from_stage=state.stage.value,
                    to_stage=step.value, reason=decision.reason, hint=decision.hint)
            details = {"gate": decision.reason, "warnings": list(facts.warnings),
                       "fleet": [s.value for s in facts.fleet_stages]}
            prev = state.stage
            state = self.state.transition(state, step, actor=self.actor,
                                          reason=reason or decision.reason, details=details)
            done.append(TransitionResult(spec.key, prev, step, decision.reason,
                                         facts.warnings))
        return done

    def _reverse_in_sync(self, spec: MigrationSpec, state: MigrationState) -> bool:
        """A reverse verify with zero mismatches ran since the current stage began."""
        rev = self.state.latest_verify(spec.key, "reverse")
        return (rev is not None and rev.spec_hash == state.spec_hash
                and rev.started_at >= state.stage_changed_at
                and rev.mismatches + rev.unbackfilled == 0)

    def _rollback_facts(self, spec: MigrationSpec, state: MigrationState) -> GateFacts:
        return GateFacts(mode=state.mode, triggers_current=self._triggers_current(spec),
                         reverse_in_sync=self._reverse_in_sync(spec, state))

    def history(self, key: str, limit: int = 100) -> list[Any]:
        """The recorded transitions of ``key``, oldest first."""
        self.state.require()
        if self.state.find(key) is None:
            self.state.get(key)
        return self.state.history(key, limit)
