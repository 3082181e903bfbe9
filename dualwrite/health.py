"""Health signals that hold a running backfill.

Before each batch the backfill asks :class:`HealthMonitor` whether the server is healthy.
Each signal reads one number from the server (replica lag, load, ...) and compares it with
its threshold: ``ok``, ``hold`` (wait and ask again), ``abort`` (a critical threshold: stop
cleanly after the last committed batch) or ``unavailable`` (this server does not expose it:
reported as such, never taken as healthy, and it does not hold the backfill).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dualwrite.db import Database
from dualwrite.dialects import Query
from dualwrite.errors import DatabaseError
from dualwrite.spec import MigrationSpec

__all__ = ["HealthMonitor", "HealthThresholds", "Reading"]


@dataclass(frozen=True)
class HealthThresholds:
    """Where each signal holds (and, for load, aborts) the backfill. ``None`` turns a
    signal off."""

    #: Seconds of replica replay lag (PostgreSQL replicas; MySQL/MariaDB where visible).
    max_replica_lag: float | None = 10.0
    #: A batch slower than this many times the target batch duration holds the next one.
    max_batch_over_target: float | None = 4.0


@dataclass(frozen=True)
class Reading:
    """One signal read once."""

    signal: str
    status: str
    value: float | None = None
    threshold: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"signal": self.signal, "status": self.status, "value": self.value,
                "threshold": self.threshold, "detail": self.detail}


def _compare(signal: str, value: float | None, hold: float | None,
             abort: float | None = None, detail: str = "") -> Reading:
    if value is None:
        return Reading(signal, "unavailable", None, hold, detail or "not exposed by this server")
    if abort is not None and value >= abort:
        return Reading(signal, "abort", value, abort, detail)
    if hold is not None and value > hold:
        return Reading(signal, "hold", value, hold, detail)
    return Reading(signal, "ok", value, hold, detail)


class HealthMonitor:
    """Reads the health signals of one database for one migration's backfill."""

    def __init__(self, db: Database, spec: MigrationSpec,
                 thresholds: HealthThresholds | None = None, *,
                 target_batch_seconds: float = 0.5) -> None:
        self.db = db
        self.d = db.dialect
        self.spec = spec
        self.thresholds = thresholds or HealthThresholds()
        self.target = target_batch_seconds
        self._last_batch: float | None = None

    def record_batch(self, seconds: float) -> None:
        """The duration of the batch that just committed."""
        self._last_batch = seconds

    def _number(self, query: Query | None) -> float | None:
        """The first value of a signal query, or ``None`` (unavailable: no query for this
        server, no permission, no row)."""
        if query is None:
            return None
        try:
            row = self.db.fetchone(query)
        except DatabaseError:
            return None
        if row is None or row[0] is None:
            return None
        return float(row[0])

    def _signals(self) -> list[tuple[str, Callable[[], Reading]]]:
        th = self.thresholds
        out: list[tuple[str, Callable[[], Reading]]] = []
        if th.max_replica_lag is not None:
            out.append(("replica_lag", lambda: _compare(
                "replica_lag", self._number(self.d.health_replica_lag()), th.max_replica_lag,
                detail="seconds")))
        if th.max_batch_over_target is not None:
            out.append(("batch_duration", lambda: _compare(
                "batch_duration", self._last_batch, self.target * (th.max_batch_over_target or 1),
                detail="seconds of the last batch") if self._last_batch is not None
                else Reading("batch_duration", "ok", None, None, "no batch yet")))
        return out

    def read(self) -> list[Reading]:
        """Every enabled signal, read now."""
        return [fn() for _, fn in self._signals()]

    def first_problem(self) -> Reading | None:
        """The first reading that aborts, else the first that holds, else ``None``."""
        readings = self.read()
        for status in ("abort", "hold"):
            for r in readings:
                if r.status == status:
                    if r.signal == "batch_duration":
                        self._last_batch = None  # one hold per slow batch
                    return r
        return None

    @staticmethod
    def sleep(seconds: float) -> None:
        """Wait between two reads while held."""
        time.sleep(seconds)
