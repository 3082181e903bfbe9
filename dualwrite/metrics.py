"""Metrics and structured log fields.

Prometheus metrics via prometheus-client when it is installed (the ``metrics`` extra); with
no client every metric is a no-op, so the library never needs it. Structured log records
carry ``migration_key``, ``migration_stage`` and, for batches, ``batch``.

Metric names (all prefixed ``dualwrite_``):

=================================  =========  ==========================================
name                               type       labels
=================================  =========  ==========================================
stage                              gauge      migration_key (stage position, off = 0)
rows_backfilled_total              counter    migration_key, direction
backfill_batch_seconds             histogram  migration_key
backfill_retries_total             counter    migration_key, reason
backfill_held_seconds_total        counter    migration_key, signal
shadow_compared_total              counter    migration_key
shadow_mismatches_total            counter    migration_key
shadow_unbackfilled_total          counter    migration_key
mirrored_writes_total              counter    migration_key, adapter
=================================  =========  ==========================================
"""

from __future__ import annotations

from typing import Any

from dualwrite.stages import Stage

__all__ = ["METRICS", "Metrics", "log_fields"]


class _Noop:
    def labels(self, *args: Any, **kwargs: Any) -> _Noop:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, value: float) -> None:
        pass


class Metrics:
    """The library's metrics, registered once in the default Prometheus registry."""

    stage: Any
    rows_backfilled: Any
    batch_seconds: Any
    retries: Any
    held_seconds: Any
    compared: Any
    mismatches: Any
    unbackfilled: Any
    mirrored_writes: Any

    def __init__(self) -> None:
        p: Any
        try:
            import prometheus_client as p
        except ImportError:  # the metrics extra is optional
            p = None
        self.enabled = p is not None
        if p is None:
            noop = _Noop()
            self.stage = self.rows_backfilled = self.batch_seconds = noop
            self.retries = self.compared = self.mismatches = self.unbackfilled = noop
            self.held_seconds = noop
            self.mirrored_writes = noop
            return
        self.stage = p.Gauge("dualwrite_stage", "Stage position served (off=0 .. contract=7)",
                             ["migration_key"])
        self.rows_backfilled = p.Counter("dualwrite_rows_backfilled_total",
                                         "Rows written by the backfill",
                                         ["migration_key", "direction"])
        self.batch_seconds = p.Histogram("dualwrite_backfill_batch_seconds",
                                         "Backfill batch duration", ["migration_key"],
                                         buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.retries = p.Counter("dualwrite_backfill_retries_total", "Backfill batch retries",
                                 ["migration_key", "reason"])
        self.held_seconds = p.Counter("dualwrite_backfill_held_seconds_total",
                                      "Seconds a backfill was held, by the signal holding it",
                                      ["migration_key", "signal"])
        self.compared = p.Counter("dualwrite_shadow_compared_total", "Rows compared in shadow",
                                  ["migration_key"])
        self.mismatches = p.Counter("dualwrite_shadow_mismatches_total",
                                    "Rows whose new value differs from f(old)", ["migration_key"])
        self.unbackfilled = p.Counter("dualwrite_shadow_unbackfilled_total",
                                      "Rows compared whose new value is still NULL",
                                      ["migration_key"])
        self.mirrored_writes = p.Counter("dualwrite_mirrored_writes_total",
                                         "Writes mirrored by an adapter",
                                         ["migration_key", "adapter"])

    def set_stage(self, key: str, stage: Stage) -> None:
        """Publish the stage an instance serves."""
        self.stage.labels(migration_key=key).set(stage.position)


#: The process-wide metrics.
METRICS = Metrics()


def log_fields(key: str, stage: Stage | None = None, **extra: Any) -> dict[str, Any]:
    """``extra=`` for a log call: the structured fields every dualwrite record carries."""
    fields: dict[str, Any] = {"migration_key": key}
    if stage is not None:
        fields["migration_stage"] = stage.value
    fields.update(extra)
    return fields
