"""The shadow-read comparator: new vs f(old) on rows the application already loaded.

It never queries: adapters hand it the values of a loaded row. Sampling decides which rows
are compared; a mismatch goes to a pluggable publisher (default: a structured log record)
and a metrics counter, and never raises into the request unless ``raise_on_mismatch``.
Unbackfilled rows (every new column NULL while old is not) are counted apart.
"""

from __future__ import annotations

import logging
import random
import threading
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


class Comparator:
    """Compares loaded rows of one migration, sampled, off no extra query."""

    def __init__(self, spec: MigrationSpec, *, sample_rate: float = 1.0,
                 publisher: MismatchPublisher | None = None, raise_on_mismatch: bool = False,
                 comparison: ColumnComparison | None = None,
                 rng: Callable[[], float] = random.random) -> None:
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
                       CompareOutcome.UNBACKFILLED: 0, CompareOutcome.SKIPPED: 0}

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1

    def compare(self, stage: Stage, primary_key: Any, row: Mapping[str, Any],
                context: Mapping[str, Any] | None = None) -> str:
        """Compare one loaded row (a mapping holding the old and new columns)."""
        if not stage.compares or (self.sample_rate < 1.0 and self._rng() >= self.sample_rate):
            self._count(CompareOutcome.SKIPPED)
            return CompareOutcome.SKIPPED
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
