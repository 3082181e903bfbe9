"""What is going on now: one snapshot per migration, read from the state tables (and a few
server views), and its rendering for ``dualwrite watch``.

A snapshot needs no spec: everything comes from the database (stage and ceiling, backfill
progress, the latest verify, the fleet, lock waits on the table, replication lag), so the
watch and the metrics exporter run anywhere the database is reachable. Reads only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table

from dualwrite.backfill import backfill_status
from dualwrite.db import Database
from dualwrite.state import (
    DEFAULT_FLEET_TTL,
    FleetInstance,
    MigrationState,
    StateStore,
    VerifyResult,
    utcnow,
)

__all__ = ["BackfillView", "MigrationView", "Watcher", "render"]


@dataclass(frozen=True)
class BackfillView:
    """One backfill run (forward or reverse) as the state tables have it."""

    direction: str
    state: str
    rows_done: int
    rows_estimate: int
    rows_failed: int
    parts: int
    parts_done: int
    held_by: tuple[str, ...]
    #: Rows per second: between two snapshots when there are two, else over the run.
    rate: float | None
    eta_seconds: float | None

    @property
    def ratio(self) -> float:
        """Done / estimate, between 0 and 1."""
        if self.state == "done":
            return 1.0
        return min(1.0, self.rows_done / self.rows_estimate) if self.rows_estimate else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"direction": self.direction, "state": self.state, "rows_done": self.rows_done,
                "rows_estimate": self.rows_estimate, "rows_failed": self.rows_failed,
                "parts": self.parts, "parts_done": self.parts_done,
                "held_by": list(self.held_by), "progress": round(self.ratio, 4),
                "rows_per_second": None if self.rate is None else round(self.rate, 1),
                "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds)}


@dataclass
class MigrationView:
    """One migration now."""

    state: MigrationState
    seconds_in_stage: float
    backfills: list[BackfillView]
    verify: VerifyResult | None
    fleet: list[FleetInstance]
    stale_instances: int
    lock_waits: int | None
    replicas: int | None
    replication_lag: float | None
    taken_at: datetime = field(default_factory=utcnow)

    @property
    def key(self) -> str:
        """The migration key."""
        return self.state.key

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        v = self.verify
        return {**self.state.to_dict(), "seconds_in_stage": round(self.seconds_in_stage),
                "backfills": [b.to_dict() for b in self.backfills],
                "verify": None if v is None else {
                    "spec_hash": v.spec_hash, "finished_at": v.finished_at.isoformat(),
                    "rows_checked": v.rows_checked, "mismatches": v.mismatches,
                    "unbackfilled": v.unbackfilled,
                    "mismatch_rate": v.mismatches / v.rows_checked if v.rows_checked else 0.0},
                "fleet": [i.to_dict() for i in self.fleet],
                "stale_instances": self.stale_instances, "lock_waits": self.lock_waits,
                "replicas": self.replicas, "replication_lag_seconds": self.replication_lag,
                "taken_at": self.taken_at.isoformat()}


class Watcher:
    """Takes snapshots of the migrations of one database; keeps the previous one so that
    rates are measured between two refreshes."""

    def __init__(self, db: Database, *, fleet_ttl: float = DEFAULT_FLEET_TTL) -> None:
        self.db = db
        self.store = StateStore(db)
        self.fleet_ttl = fleet_ttl
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def snapshot(self, key: str | None = None) -> list[MigrationView]:
        """Every registered migration (or ``key``), now."""
        self.store.require()
        states = [self.store.get(key)] if key else self.store.all()
        replicas, lag = self._replication()
        return [self._view(s, replicas, lag) for s in states]

    def _replication(self) -> tuple[int | None, float | None]:
        d = self.db.dialect
        if not d.shows_sessions:
            return None, None
        row = self.db.fetchone(d.replication_status())
        if not row:
            return None, None
        return int(row[0] or 0), None if row[1] is None else float(row[1])

    def _view(self, st: MigrationState, replicas: int | None, lag: float | None
              ) -> MigrationView:
        now = utcnow()
        fleet = self.store.fleet(st.key)
        live = [i for i in fleet if i.alive(now, self.fleet_ttl)]
        waits: int | None = None
        if self.db.dialect.shows_sessions:
            waits = len(self.db.fetchall(self.db.dialect.lock_waits(
                st.table, st.spec.get("schema"))))
        return MigrationView(
            state=st, seconds_in_stage=(now - st.stage_changed_at).total_seconds(),
            backfills=[b for b in (self._backfill(st.key, d) for d in ("forward", "reverse"))
                       if b is not None],
            verify=self.store.latest_verify(st.key, "forward"), fleet=live,
            stale_instances=len(fleet) - len(live), lock_waits=waits, replicas=replicas,
            replication_lag=lag, taken_at=now)

    def _backfill(self, key: str, direction: str) -> BackfillView | None:
        status = backfill_status(self.db, key, direction)
        run = status.get("run")
        if run is None:
            return None
        parts = status["parts"]
        done = int(status["rows_done"])
        estimate = int(status["rows_estimate"])
        now = time.monotonic()
        rate: float | None = None
        prev = self._last.get((key, direction))
        if prev is not None and now > prev[0] and done >= prev[1]:
            rate = (done - prev[1]) / (now - prev[0])
        self._last[(key, direction)] = (now, done)
        if rate is None:
            started = datetime.fromisoformat(run["created_at"])
            updated = datetime.fromisoformat(run["updated_at"])
            span = (updated - started).total_seconds()
            rate = done / span if span > 0 and done else None
        state = str(run["state"])
        eta = (max(0, estimate - done) / rate if rate and state not in ("done", "cancelled")
               else None)
        return BackfillView(
            direction=direction, state=state, rows_done=done, rows_estimate=estimate,
            rows_failed=int(status["rows_failed"]), parts=len(parts),
            parts_done=sum(p["status"] == "done" for p in parts),
            held_by=tuple(sorted({str(p["hold_signal"]) for p in parts if p["hold_signal"]})),
            rate=rate, eta_seconds=eta)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _panel(v: MigrationView) -> Panel:
    st = v.state
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("stage", f"[bold]{st.stage.value}[/] (ceiling {st.ceiling.value}) for "
                 f"{_age(v.seconds_in_stage)}, mode {st.mode.value}")
    for b in v.backfills:
        bar = ProgressBar(total=1.0, completed=b.ratio, width=30)
        line = Table.grid(padding=(0, 1))
        line.add_row(bar, f"{b.ratio * 100:5.1f}%  {b.rows_done:,}/{b.rows_estimate:,} rows, "
                     f"{b.state}" + (f", {b.rate:,.0f} rows/s" if b.rate else "") +
                     (f", ETA {_age(b.eta_seconds)}" if b.eta_seconds is not None else "") +
                     (f", held by {', '.join(b.held_by)}" if b.held_by else "") +
                     (f", {b.rows_failed} failed" if b.rows_failed else ""))
        head.add_row(f"backfill ({b.direction})", line)
    if not v.backfills:
        head.add_row("backfill", "not started")
    if v.verify is not None:
        ver = v.verify
        bad = ver.mismatches + ver.unbackfilled
        head.add_row("verify", f"{'[green]clean[/]' if not bad else '[red]not clean[/]'}: "
                     f"{ver.rows_checked:,} checked, {ver.mismatches} mismatches, "
                     f"{ver.unbackfilled} unbackfilled "
                     f"({_age((v.taken_at - ver.finished_at).total_seconds())} ago)")
    else:
        head.add_row("verify", "none yet")
    if v.lock_waits is not None:
        head.add_row("lock waits", f"{v.lock_waits} session(s) waiting on {st.table}")
    if v.replicas is not None:
        lag = f", lag {v.replication_lag:.1f}s" if v.replication_lag is not None else ""
        head.add_row("replication", f"{v.replicas} replica(s){lag}")
    fleet = Table("instance", "host", "pid", "stage", "heartbeat", box=None, pad_edge=False)
    for i in v.fleet:
        fleet.add_row(i.instance_id, i.host, str(i.pid), i.stage.value,
                      f"{_age((v.taken_at - i.heartbeat_at).total_seconds())} ago")
    title = f"fleet: {len(v.fleet)} live" + (f", {v.stale_instances} stale"
                                              if v.stale_instances else "")
    body = Group(head, "", title, fleet) if v.fleet else Group(head, "", title)
    return Panel(body, title=f"[bold]{v.key}[/] on {st.table}", expand=True)


def render(views: Sequence[MigrationView]) -> RenderableType:
    """The watch screen for these snapshots."""
    if not views:
        return Panel("no migration is registered: run dualwrite init", title="dualwrite")
    return Group(*(_panel(v) for v in views))

