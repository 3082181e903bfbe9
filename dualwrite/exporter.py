"""A Prometheus exporter of the state tables: ``dualwrite metrics serve``.

Every scrape reads the state tables (through :class:`~dualwrite.watch.Watcher`) and
reports, per migration: the recorded stage and ceiling, time in stage, backfill progress,
the latest verify, fleet size per observed stage, lock waits on the table, replication lag.
It complements the in-process metrics of :mod:`dualwrite.metrics` (what one instance
serves and does) with what the database says for the whole fleet. Needs the ``metrics``
extra (prometheus-client).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from dualwrite.db import Database
from dualwrite.errors import ConfigurationError, DualwriteError
from dualwrite.state import DEFAULT_FLEET_TTL
from dualwrite.watch import Watcher

__all__ = ["StateCollector", "serve_metrics"]

log = logging.getLogger("dualwrite.exporter")


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError as exc:
        raise ConfigurationError("the metrics exporter needs prometheus-client",
                                 hint="pip install 'dualwrite[metrics]'") from exc
    return prometheus_client


class StateCollector:
    """A Prometheus collector reading the state tables of ``db`` at each scrape."""

    def __init__(self, db: Database, *, fleet_ttl: float = DEFAULT_FLEET_TTL) -> None:
        self.watcher = Watcher(db, fleet_ttl=fleet_ttl)
        self._lock = threading.Lock()

    def describe(self) -> list[Any]:
        """Nothing up front: the families are built at each scrape."""
        return []

    def collect(self) -> Iterator[Any]:
        """The metric families as the database has them now."""
        from prometheus_client.core import GaugeMetricFamily

        def gauge(name: str, doc: str, labels: list[str]) -> Any:
            return GaugeMetricFamily(f"dualwrite_{name}", doc, labels=labels)

        up = gauge("state_up", "1 if the state tables could be read at this scrape", [])
        stage = gauge("migration_stage", "Recorded stage position (off=0 .. contract=7)",
                      ["migration_key", "stage"])
        ceiling = gauge("migration_stage_ceiling", "Recorded stage ceiling position",
                        ["migration_key"])
        in_stage = gauge("migration_seconds_in_stage", "Seconds since the last transition",
                         ["migration_key"])
        done = gauge("backfill_rows_done", "Rows walked by the backfill",
                     ["migration_key", "direction"])
        total = gauge("backfill_rows_estimate", "Rows the backfill expects to walk",
                      ["migration_key", "direction"])
        progress = gauge("backfill_progress_ratio", "Backfill progress (0..1)",
                         ["migration_key", "direction"])
        failed = gauge("backfill_rows_failed", "Rows the transform failed on",
                       ["migration_key", "direction"])
        held = gauge("backfill_held", "1 while a health signal holds the backfill",
                     ["migration_key", "direction"])
        checked = gauge("verify_rows_checked", "Rows checked by the latest verify",
                        ["migration_key"])
        mismatches = gauge("verify_mismatches", "Mismatching rows in the latest verify",
                           ["migration_key"])
        unbackfilled = gauge("verify_unbackfilled", "Unbackfilled rows in the latest verify",
                             ["migration_key"])
        fleet = gauge("fleet_instances", "Live instances per observed stage",
                      ["migration_key", "stage"])
        stale = gauge("fleet_stale_instances", "Instances whose heartbeat is too old",
                      ["migration_key"])
        waits = gauge("table_lock_waits", "Sessions waiting for a lock on the table",
                      ["migration_key"])
        lag = gauge("replication_lag_seconds", "Worst replica replay lag (where visible)", [])
        try:
            with self._lock:
                views = self.watcher.snapshot()
        except DualwriteError as exc:
            log.warning("dualwrite exporter: cannot read the state tables (%s)", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for v in views:
            k = v.key
            stage.add_metric([k, v.state.stage.value], v.state.stage.position)
            ceiling.add_metric([k], v.state.ceiling.position)
            in_stage.add_metric([k], v.seconds_in_stage)
            for b in v.backfills:
                done.add_metric([k, b.direction], b.rows_done)
                total.add_metric([k, b.direction], b.rows_estimate)
                progress.add_metric([k, b.direction], b.ratio)
                failed.add_metric([k, b.direction], b.rows_failed)
                held.add_metric([k, b.direction], 1 if b.held_by else 0)
            if v.verify is not None:
                checked.add_metric([k], v.verify.rows_checked)
                mismatches.add_metric([k], v.verify.mismatches)
                unbackfilled.add_metric([k], v.verify.unbackfilled)
            counts: dict[str, int] = {}
            for i in v.fleet:
                counts[i.stage.value] = counts.get(i.stage.value, 0) + 1
            for s, n in sorted(counts.items()):
                fleet.add_metric([k, s], n)
            stale.add_metric([k], v.stale_instances)
            if v.lock_waits is not None:
                waits.add_metric([k], v.lock_waits)
        if views and views[0].replication_lag is not None:
            lag.add_metric([], views[0].replication_lag)
        yield from (up, stage, ceiling, in_stage, done, total, progress, failed, held, checked,
                    mismatches, unbackfilled, fleet, stale, waits, lag)


def serve_metrics(db: Database, port: int, addr: str = "127.0.0.1", *,
                  fleet_ttl: float = DEFAULT_FLEET_TTL) -> tuple[Any, threading.Thread]:
    """Serve ``/metrics`` for ``db``'s state tables on ``addr:port`` from a daemon thread.

    Returns the HTTP server (``server.shutdown()`` stops it; ``server.server_port`` is the
    port, useful with ``port=0``) and its thread.
    """
    p = _prometheus()
    registry = p.CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(db, fleet_ttl=fleet_ttl))
    try:
        server, thread = p.start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {addr}:{port}: {exc}",
                                 hint="pick a free port with --port") from exc
    return server, thread
