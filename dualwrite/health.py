"""Health signals that hold a running backfill.

Before each batch the backfill asks :class:`HealthMonitor` whether the servers are healthy.
Each signal reads one number (replica lag, load, WAL rate, ...) and compares it with its
threshold: ``ok``, ``hold`` (wait and ask again), ``abort`` (a critical threshold: stop
cleanly after the last committed batch) or ``unavailable`` (this server does not expose it,
or the role may not read it: reported as such, never taken as healthy; it does not hold).

=====================  ==============================  =====================================
signal                 servers                         reads
=====================  ==============================  =====================================
replica_lag            PostgreSQL (from the primary);  ``pg_stat_replication.replay_lag``;
                       MySQL/MariaDB (on a replica)    ``SHOW REPLICA STATUS`` lag column
vacuum                 PostgreSQL                      ``pg_stat_progress_vacuum`` on the
                                                       table (autovacuum or VACUUM)
wal_rate               PostgreSQL                      bytes/s of ``pg_current_wal_lsn()``
lock_waits             PostgreSQL; MySQL/MariaDB       sessions waiting on the batch's locks
                                                       (MySQL: on any row lock), read inside
                                                       the batch before commit
threads_running        MySQL/MariaDB                   ``Threads_running``: max-load holds,
                                                       critical-load aborts
batch_duration         all                             the last batch against the target
=====================  ==============================  =====================================

``replica_urls`` adds servers whose own replication status is read (a MySQL primary cannot
see its replicas' lag; PostgreSQL replicas report ``replay_lag`` to the primary anyway).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from dualwrite.db import Database, Transaction
from dualwrite.dialects import Query
from dualwrite.errors import DualwriteError
from dualwrite.spec import MigrationSpec

__all__ = ["HealthMonitor", "HealthThresholds", "Reading"]


@dataclass(frozen=True)
class HealthThresholds:
    """Where each signal holds (or aborts) the backfill. ``None`` turns a signal off."""

    #: Seconds of replica lag.
    max_replica_lag: float | None = 10.0
    #: A batch slower than this many times the target duration holds the next one.
    max_batch_over_target: float | None = 4.0
    #: Hold while this many or more (auto)vacuums work on the table (PostgreSQL).
    max_vacuums: int | None = 1
    #: Bytes of WAL per second (PostgreSQL).
    max_wal_bytes_per_second: float | None = 256 * 1024 * 1024
    #: Sessions waiting on the batch's row locks (PostgreSQL).
    max_lock_waiters: int | None = 2
    #: MySQL/MariaDB ``Threads_running``: hold above (max-load), abort at (critical-load).
    max_threads_running: int | None = 50
    critical_threads_running: int | None = 500
    #: Extra servers (replicas) whose replication lag is read.
    replica_urls: tuple[str, ...] = field(default=())


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


def _judge(signal: str, value: float | None, hold: float | None, abort: float | None = None,
           detail: str = "", *, at_least: bool = False) -> Reading:
    """``hold`` when value > hold (>= with ``at_least``), ``abort`` when value >= abort."""
    if value is None:
        return Reading(signal, "unavailable", None, hold, detail or "not exposed by this server")
    if abort is not None and value >= abort:
        return Reading(signal, "abort", value, abort, detail)
    if hold is not None and (value >= hold if at_least else value > hold):
        return Reading(signal, "hold", value, hold, detail)
    return Reading(signal, "ok", value, hold, detail)


class HealthMonitor:
    """Reads the health signals of one database (and its replicas) for one backfill.

    Server signals are read at most every ``interval`` seconds; between reads the last
    readings stand. Not thread-safe: one per worker.
    """

    def __init__(self, db: Database, spec: MigrationSpec,
                 thresholds: HealthThresholds | None = None, *,
                 target_batch_seconds: float = 0.1, interval: float = 0.5) -> None:
        self.db = db
        self.d = db.dialect
        self.spec = spec
        self.thresholds = thresholds or HealthThresholds()
        self.target = target_batch_seconds
        self.interval = interval
        self._last_batch: float | None = None
        self._lock_waiters: float | None = None
        self._lock_waits_denied = False
        self._wal: tuple[float, float] | None = None
        self._wal_rate: float | None = None
        self._read_at = 0.0
        self._readings: list[Reading] = []
        self._replicas: list[Database] = []

    # -- inputs from the batch ---------------------------------------------------------------
    def record_batch(self, seconds: float) -> None:
        """The duration of the batch that just committed."""
        self._last_batch = seconds

    def sample_in_batch(self, tx: Transaction) -> None:
        """Read, inside the batch's transaction after its write, what only shows there: the
        sessions waiting on the batch's locks."""
        q = self.d.health_lock_waiters()
        if q is None or self.thresholds.max_lock_waiters is None or self._lock_waits_denied:
            return
        try:
            row = tx.fetchone(q)
        except Exception:
            # MySQL/MariaDB without the PROCESS privilege: the statement fails on its own
            # (the transaction goes on); PostgreSQL's query needs no privilege.
            if self.d.name == "postgresql":
                raise
            self._lock_waits_denied = True
            self._lock_waiters = None
            return
        self._lock_waiters = float(row[0]) if row and row[0] is not None else None

    # -- reading ------------------------------------------------------------------------------
    def _number(self, query: Query | None, db: Database | None = None) -> float | None:
        """The last value of the first row of a signal query, or ``None`` (unavailable)."""
        if query is None:
            return None
        try:
            row = (db or self.db).fetchone(query)
        except DualwriteError:
            return None
        if row is None or row[-1] is None:
            return None
        try:
            return float(row[-1])
        except (TypeError, ValueError):
            return None

    def _replica_lag(self) -> Reading:
        th = self.thresholds.max_replica_lag
        lags: list[float] = []
        seen = False
        primary = self._number(self.d.health_replica_lag())
        if primary is not None:
            seen = True
            lags.append(primary)
        if not self._replicas and self.thresholds.replica_urls:
            self._replicas = [Database.from_url(u) for u in self.thresholds.replica_urls]
        for db in [self.db, *self._replicas]:
            q = db.dialect.health_replica_status()
            if q is None:
                continue
            try:
                with db.transaction() as tx:
                    rows = tx.fetchall_named(q)
            except DualwriteError:
                continue
            for r in rows:
                col = next((c for c in db.dialect.replica_lag_columns if c in r), None)
                if col is not None and r[col] is not None:
                    seen = True
                    lags.append(float(r[col]))
                elif col is not None:
                    seen = True  # a stopped replica: lag unknown, treat as lagging
                    lags.append(float("inf"))
        if not seen:
            return Reading("replica_lag", "unavailable", None, th,
                           "no replica visible from here (pass replica URLs to watch one)")
        return _judge("replica_lag", max(lags), th, detail="seconds")

    def _wal_reading(self) -> Reading:
        th = self.thresholds.max_wal_bytes_per_second
        pos = self._number(self.d.health_wal_position())
        if pos is None:
            return _judge("wal_rate", None, th)
        now = time.monotonic()
        if self._wal is not None and now > self._wal[1]:
            self._wal_rate = (pos - self._wal[0]) / (now - self._wal[1])
        self._wal = (pos, now)
        if self._wal_rate is None:
            return Reading("wal_rate", "ok", None, th, "first sample")
        return _judge("wal_rate", self._wal_rate, th, detail="bytes/s")

    def _server_readings(self) -> list[Reading]:
        # every enabled signal is listed; where this server has none it is "unavailable"
        th = self.thresholds
        out: list[Reading] = []
        if th.max_replica_lag is not None:
            out.append(self._replica_lag())
        if th.max_vacuums is not None:
            out.append(_judge("vacuum", self._number(self.d.health_vacuum(self.spec)),
                              th.max_vacuums, detail="vacuums on the table", at_least=True))
        if th.max_wal_bytes_per_second is not None:
            out.append(self._wal_reading())
        if th.max_threads_running is not None or th.critical_threads_running is not None:
            out.append(_judge("threads_running",
                              self._number(self.d.health_threads_running()),
                              th.max_threads_running, th.critical_threads_running,
                              detail="Threads_running"))
        return out

    def read(self, *, force: bool = False) -> list[Reading]:
        """Every enabled signal (server signals re-read at most every ``interval``)."""
        th = self.thresholds
        now = time.monotonic()
        if force or now - self._read_at >= self.interval:
            self._readings = self._server_readings()
            self._read_at = now
        out = list(self._readings)
        if th.max_lock_waiters is not None and (self.d.health_lock_waiters() is None or
                                                self._lock_waits_denied):
            out.append(_judge("lock_waits", None, th.max_lock_waiters))
        elif th.max_lock_waiters is not None:
            out.append(Reading("lock_waits", "ok", None, th.max_lock_waiters, "no batch yet")
                       if self._lock_waiters is None else
                       _judge("lock_waits", self._lock_waiters, th.max_lock_waiters,
                              detail="sessions waiting on the batch's locks"))
        if th.max_batch_over_target is not None:
            out.append(Reading("batch_duration", "ok", None, None, "no batch yet")
                       if self._last_batch is None else
                       _judge("batch_duration", self._last_batch,
                              self.target * th.max_batch_over_target,
                              detail="seconds of the last batch"))
        return out

    def first_problem(self) -> Reading | None:
        """The first reading that aborts, else the first that holds, else ``None``. A slow
        batch or a lock wait holds once (the next batch is then measured afresh)."""
        readings = self.read()
        for status in ("abort", "hold"):
            for r in readings:
                if r.status == status:
                    if r.signal == "batch_duration":
                        self._last_batch = None
                    if r.signal == "lock_waits":
                        self._lock_waiters = None
                    if status == "hold":
                        self._read_at = 0.0  # re-read the servers after the hold
                    return r
        return None

    def close(self) -> None:
        """Close the replica connections."""
        for db in self._replicas:
            db.close()
        self._replicas = []
