"""Operator control of a running backfill: pause, resume, cancel, retune.

Controls are written to the run row in the state table; every worker of the run, in any
process or pod, re-reads it about once a second (between batches and while sleeping). Each
change is recorded in ``dualwrite_history`` (the migration's stage does not change: the
entry's from and to stages are both the current one, its details say what was done).

* ``pause``: workers finish their current batch and hold (their leases stay renewed, the
  part shows ``held`` by ``paused``);
* ``resume``: they go on;
* ``cancel``: they stop after their current batch and give their parts back; the checkpoint
  stays, and ``dualwrite backfill KEY`` later resumes from it;
* ``set``: new ``batch_size`` (fixed; ``0`` returns to the adaptive size), ``sleep`` and
  ``max_rows_per_second`` (``0`` removes the cap) for the next batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dualwrite.backfill_state import BackfillRun, BackfillStore
from dualwrite.db import Database
from dualwrite.errors import BackfillError
from dualwrite.state import StateStore, utcnow

__all__ = ["BackfillControl", "ControlResult"]

@dataclass(frozen=True)
class ControlResult:
    """The run after a control was applied."""

    action: str
    run: BackfillRun
    previous_state: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"action": self.action, "previous_state": self.previous_state,
                **self.run.to_dict()}


class BackfillControl:
    """Controls for one migration's backfill in one direction."""

    def __init__(self, db: Database, key: str, direction: str = "forward", *,
                 actor: str = "unknown") -> None:
        self.db = db
        self.key = key
        self.direction = direction
        self.actor = actor
        self.store = BackfillStore(db, key, direction)
        self.state = StateStore(db)

    def _run(self) -> BackfillRun:
        self.state.require()
        mig = self.state.get(self.key)
        run = self.store.run()
        if run is None:
            raise BackfillError(f"migration {self.key!r} has no {self.direction} backfill to "
                                f"control (stage {mig.stage.value})", key=self.key,
                                direction=self.direction,
                                hint=f"start one: dualwrite backfill {self.key}")
        return run

    def _apply(self, action: str, state: str | None, settings: dict[str, Any] | None,
               reason: str) -> ControlResult:
        run = self._run()
        if run.state == "done":
            raise BackfillError(f"the {self.direction} backfill of {self.key!r} has finished",
                                key=self.key, direction=self.direction,
                                hint=f"to run it again: dualwrite backfill {self.key} --restart")
        if state is not None and action == "resume" and run.state == "cancelled":
            raise BackfillError(f"the {self.direction} backfill of {self.key!r} was cancelled: "
                                "its workers have stopped", key=self.key,
                                direction=self.direction,
                                hint=f"start it again (it resumes from its checkpoint): "
                                     f"dualwrite backfill {self.key}")
        merged = dict(run.settings)
        merged.update(settings or {})
        d = self.db.dialect
        now = utcnow()
        mig = self.state.get(self.key)
        details = {"backfill": action, "direction": self.direction,
                   "state": {"from": run.state, "to": state or run.state}}
        if settings:
            details["settings"] = {"from": {k: run.settings.get(k) for k in settings},
                                   "to": settings}
        with self.db.transaction() as tx:
            tx.execute(d.update_backfill_run(self.key, self.direction, state or run.state,
                                             json.dumps(merged), now))
            tx.execute(d.insert_history(self.key, mig.stage.value, mig.stage.value, now,
                                        self.actor, reason or f"backfill {action}",
                                        json.dumps(details)))
        new = self.store.run()
        assert new is not None
        return ControlResult(action, new, run.state)

    def pause(self, reason: str = "") -> ControlResult:
        """Hold every worker after its current batch."""
        return self._apply("pause", "paused", None, reason)

    def resume(self, reason: str = "") -> ControlResult:
        """Let paused workers go on."""
        return self._apply("resume", "running", None, reason)

    def cancel(self, reason: str = "") -> ControlResult:
        """Stop every worker after its current batch; the checkpoint stays."""
        return self._apply("cancel", "cancelled", None, reason)

    def set(self, *, batch_size: int | None = None, sleep: float | None = None,
            max_rows_per_second: float | None = None, reason: str = "") -> ControlResult:
        """Retune the running workers (``None``: unchanged; ``batch_size=0``: adaptive again;
        ``max_rows_per_second=0``: no cap)."""
        changes: dict[str, Any] = {}
        problems = []
        if batch_size is not None:
            if batch_size < 0:
                problems.append("batch size must be >= 0 (0: adaptive)")
            changes["batch_size"] = batch_size or None
        if sleep is not None:
            if sleep < 0:
                problems.append("sleep must be >= 0")
            changes["sleep"] = sleep
        if max_rows_per_second is not None:
            if max_rows_per_second < 0:
                problems.append("max rows per second must be >= 0 (0: no cap)")
            changes["max_rows_per_second"] = max_rows_per_second or None
        if not changes:
            problems.append("nothing to set")
        if problems:
            raise BackfillError(f"backfill {self.key!r}: " + "; ".join(problems), key=self.key,
                                direction=self.direction,
                                hint="give --batch-size, --sleep and/or --max-rows-per-second")
        return self._apply("set", None, changes, reason)
