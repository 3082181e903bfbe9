"""The shadow-read comparator: new vs f(old) on rows the application already loaded.

It never queries: adapters hand it the values of a loaded row. Sampling decides which rows
are compared; a mismatch goes to a pluggable publisher (default: a structured log record)
and a metrics counter, and never raises into the request unless ``raise_on_mismatch``.
Unbackfilled rows (every new column NULL while old is not) are counted apart.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dualwrite.errors import DualwriteError
from dualwrite.metrics import METRICS, log_fields
from dualwrite.normalize import ColumnComparison
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Stage

__all__ = ["CompareOutcome", "Comparator", "LogPublisher", "Mismatch", "MismatchError",
           "MismatchPublisher"]

log = logging.getLogger("dualwrite.compare")


@dataclass(frozen=True)
class Mismatch:
    """One row whose new column(s) differ from f(old)."""

    key: str
    stage: Stage
    primary_key: Any
    old: dict[str, Any]
    new: dict[str, Any]
    expected: dict[str, Any]
    #: Per new column that differs: (value found, value expected).
    diff: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


class MismatchError(DualwriteError):
    """Raised into the request only when the comparator is configured to."""

    def __init__(self, mismatch: Mismatch) -> None:
        super().__init__(f"migration {mismatch.key!r}: shadow mismatch on "
                         f"{mismatch.primary_key!r}: {mismatch.diff}",
                         hint=f"run: dualwrite verify {mismatch.key} --fix")
        self.mismatch = mismatch


class MismatchPublisher(Protocol):
    """Where mismatches go."""

    def publish(self, mismatch: Mismatch) -> None:
        """Handle one mismatch (must not raise; failures are logged and dropped)."""


class LogPublisher:
    """The default publisher: a WARNING record on ``dualwrite.compare`` with fields."""

    def publish(self, mismatch: Mismatch) -> None:
        log.warning("dualwrite shadow mismatch: %s pk=%r diff=%r", mismatch.key,
                    mismatch.primary_key, mismatch.diff,
                    extra=log_fields(mismatch.key, mismatch.stage, primary_key=mismatch.primary_key,
                                     old=mismatch.old, new=mismatch.new,
                                     expected=mismatch.expected, context=mismatch.context))


class CompareOutcome:
    """What one comparison found."""

    SKIPPED = "skipped"
    MATCH = "match"
    MISMATCH = "mismatch"
    UNBACKFILLED = "unbackfilled"
    #: Handed to the background worker (``background=True``); counted when it runs.
    QUEUED = "queued"
    #: Dropped: the background queue was full.
    DROPPED = "dropped"
    #: The comparison ran longer than ``time_limit`` (its result is still counted).
    SLOW = "slow"


class Comparator:
    """Compares loaded rows of one migration, sampled, off no extra query."""

    def __init__(self, spec: MigrationSpec, *, sample_rate: float = 1.0,
                 publisher: MismatchPublisher | None = None, raise_on_mismatch: bool = False,
                 comparison: ColumnComparison | None = None,
                 rng: Callable[[], float] = random.random, background: bool = False,
                 time_limit: float = 0.05, queue_size: int = 10_000) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError("sample_rate must be between 0 and 1")
        self.spec = spec
        self.sample_rate = sample_rate
        self.publisher: MismatchPublisher = publisher or LogPublisher()
        self.raise_on_mismatch = raise_on_mismatch
        self.comparison = comparison or ColumnComparison()
        self._rng = rng
        self._lock = threading.Lock()
        self.counts = {CompareOutcome.MATCH: 0, CompareOutcome.MISMATCH: 0,
                       CompareOutcome.UNBACKFILLED: 0, CompareOutcome.SKIPPED: 0,
                       CompareOutcome.DROPPED: 0, CompareOutcome.SLOW: 0}
        self.time_limit = time_limit
        self._queue: queue.Queue[tuple[Stage, Any, dict[str, Any], dict[str, Any]] | None] | None
        self._worker: threading.Thread | None = None
        self._queue = queue.Queue(queue_size) if background else None
        if background:
            self._worker = threading.Thread(target=self._drain, name="dualwrite-compare",
                                            daemon=True)
            self._worker.start()

    def _drain(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                started = time.perf_counter()
                try:
                    self._compare_now(*item)
                except Exception as exc:  # noqa: BLE001 -- never kill the worker
                    log.warning("dualwrite: background comparison failed: %s", exc)
                if time.perf_counter() - started > self.time_limit:
                    self._count(CompareOutcome.SLOW)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the background queue is empty (tests, shutdown). True if it emptied."""
        if self._queue is None:
            return True
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        """Stop the background worker after the queued comparisons."""
        if self._queue is not None and self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=5)
            self._worker = None

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1

    def compare(self, stage: Stage, primary_key: Any, row: Mapping[str, Any],
                context: Mapping[str, Any] | None = None) -> str:
        """Compare one loaded row (a mapping holding the old and new columns).

        In background mode only the sampling decision and a copy of the row happen on the
        caller's thread; the comparison runs on the worker (``QUEUED``/``DROPPED``).
        """
        if not stage.compares or (self.sample_rate < 1.0 and self._rng() >= self.sample_rate):
            self._count(CompareOutcome.SKIPPED)
            return CompareOutcome.SKIPPED
        spec = self.spec
        old = {c: row[c] for c in spec.old_columns}
        new = {c: row[c] for c in spec.new_columns}
        if self._queue is not None:
            try:
                self._queue.put_nowait((stage, primary_key, {**old, **new}, dict(context or {})))
            except queue.Full:
                self._count(CompareOutcome.DROPPED)
                return CompareOutcome.DROPPED
            return CompareOutcome.QUEUED
        return self._compare_now(stage, primary_key, {**old, **new}, context)

    def _compare_now(self, stage: Stage, primary_key: Any, row: Mapping[str, Any],
                     context: Mapping[str, Any] | None) -> str:
        spec = self.spec
        old = {c: row[c] for c in spec.old_columns}
        new = {c: row[c] for c in spec.new_columns}
        METRICS.compared.labels(migration_key=spec.key).inc()
        if all(v is None for v in new.values()) and any(v is not None for v in old.values()):
            METRICS.unbackfilled.labels(migration_key=spec.key).inc()
            self._count(CompareOutcome.UNBACKFILLED)
            return CompareOutcome.UNBACKFILLED
        expected = spec.apply_forward(old)
        diff = self.comparison.diff(new, expected)
        if not diff:
            self._count(CompareOutcome.MATCH)
            return CompareOutcome.MATCH
        self._count(CompareOutcome.MISMATCH)
        METRICS.mismatches.labels(migration_key=spec.key).inc()
        mismatch = Mismatch(key=spec.key, stage=stage, primary_key=primary_key, old=old, new=new,
                            expected=expected, diff=diff, context=dict(context or {}))
        try:
            self.publisher.publish(mismatch)
        except Exception as exc:  # noqa: BLE001 -- a broken publisher must not break reads
            log.warning("dualwrite: mismatch publisher failed: %s", exc)
        if self.raise_on_mismatch:
            raise MismatchError(mismatch)
        return CompareOutcome.MISMATCH
