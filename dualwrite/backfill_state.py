"""Backfill state: the run row, its parts (key ranges with checkpoints and leases), controls.

A run is one backfill of one migration in one direction (``forward``: new = f(old);
``reverse``: old = g(new)). Its key range is fixed when it starts and split into parts; a
worker takes a part through a lease (compare-and-set on ``lease_owner``), walks it in
batches and records its cursor in the same transaction as each batch. A lease that is not
renewed expires and another worker takes the part over from its checkpoint.

The run row carries the operator's controls (``running``/``paused``/``cancelled`` and the
settings ``batch_size``, ``sleep``, ``max_rows_per_second``), which workers re-read about
once a second.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dualwrite.db import Database, Transaction
from dualwrite.errors import BackfillError, DatabaseError
from dualwrite.state import utcnow

__all__ = ["RUN_STATES", "BackfillPart", "BackfillRun", "BackfillStore", "decode_key",
           "encode_key"]

#: Control states of a run.
RUN_STATES = ("running", "paused", "cancelled", "done")
SETTING_NAMES = ("batch_size", "sleep", "max_rows_per_second")


def encode_key(values: Sequence[Any] | None) -> str | None:
    """A key tuple as JSON text (bytes as base64, other non-JSON values as their text)."""
    if values is None:
        return None
    out: list[Any] = []
    for v in values:
        if isinstance(v, (bytes, bytearray, memoryview)):
            out.append({"b64": base64.b64encode(bytes(v)).decode()})
        elif v is None or isinstance(v, (int, float, str)):
            out.append(v)
        else:
            out.append(str(v))  # uuid, datetime, decimal: the server parses the text back
    return json.dumps(out)


def decode_key(text: str | None) -> tuple[Any, ...] | None:
    """The key tuple :func:`encode_key` wrote."""
    if text is None:
        return None
    return tuple(base64.b64decode(v["b64"]) if isinstance(v, dict) else v
                 for v in json.loads(text))


@dataclass(frozen=True)
class BackfillRun:
    """The run row: fixed key range, part count, control state and settings."""

    key: str
    direction: str
    spec_hash: str
    key_columns: tuple[str, ...]
    range_lo: tuple[Any, ...] | None
    range_hi: tuple[Any, ...] | None
    parts: int
    rows_estimate: int
    state: str
    settings: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"key": self.key, "direction": self.direction, "spec_hash": self.spec_hash,
                "key_columns": list(self.key_columns), "range_lo": self.range_lo,
                "range_hi": self.range_hi, "parts": self.parts,
                "rows_estimate": self.rows_estimate, "state": self.state,
                "settings": self.settings, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat()}


@dataclass(frozen=True)
class BackfillPart:
    """One part of a run: ``lo < key <= hi``, walked up to ``cursor``."""

    part: int
    spec_hash: str
    lo: tuple[Any, ...] | None
    hi: tuple[Any, ...] | None
    cursor: tuple[Any, ...] | None
    rows_done: int
    status: str
    lease_owner: str | None
    lease_expires_at: datetime | None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    rows_failed: int = 0
    rows_written: int = 0
    failed_keys: list[Any] = field(default_factory=list)
    batch_size: int | None = None
    hold_signal: str | None = None
    hold_since: datetime | None = None
    held_ms: int = 0

    @property
    def finished(self) -> bool:
        """Whether nothing is left to do in this part."""
        return self.status == "done"

    def lease_expired(self, now: datetime) -> bool:
        """Whether a lease exists and has expired (its worker is presumed dead)."""
        return (self.lease_owner is not None and self.lease_expires_at is not None
                and self.lease_expires_at < now)

    def claimable(self, owner: str, now: datetime) -> bool:
        """Whether ``owner`` may take this part now."""
        return (self.status in ("pending", "running") and
                (self.lease_owner in (None, owner) or self.lease_expired(now)))

    def health(self, now: datetime) -> str:
        """``done``, ``running``, ``held`` (by a signal or a pause), ``dead`` (lease
        expired), ``waiting`` (no worker) or the stored status."""
        if self.status == "done":
            return "done"
        if self.lease_expired(now):
            return "dead"
        if self.lease_owner is not None:
            return "held" if self.hold_signal else "running"
        return "waiting" if self.status in ("pending", "running") else self.status

    def to_dict(self, now: datetime | None = None) -> dict[str, Any]:
        """JSON-ready form (``health`` as of ``now``)."""
        now = now or utcnow()
        return {"part": self.part, "lo": self.lo, "hi": self.hi, "cursor": self.cursor,
                "rows_done": self.rows_done, "rows_written": self.rows_written,
                "rows_failed": self.rows_failed, "failed_keys": self.failed_keys,
                "status": self.status, "health": self.health(now),
                "lease_owner": self.lease_owner,
                "lease_expires_at": self.lease_expires_at.isoformat()
                if self.lease_expires_at else None,
                "batch_size": self.batch_size, "hold_signal": self.hold_signal,
                "hold_since": self.hold_since.isoformat() if self.hold_since else None,
                "held_seconds": self.held_ms / 1000.0,
                "finished_at": self.finished_at.isoformat() if self.finished_at else None}


class BackfillStore:
    """Reads and writes one migration's backfill rows in one direction."""

    def __init__(self, db: Database, key: str, direction: str) -> None:
        if direction not in ("forward", "reverse"):
            raise BackfillError(f"unknown backfill direction {direction!r}", key=key,
                                hint="use forward or reverse")
        self.db = db
        self.d = db.dialect
        self.key = key
        self.direction = direction

    # -- reads ----------------------------------------------------------------------------
    def run(self, tx: Transaction | None = None) -> BackfillRun | None:
        """The run row, or ``None``."""
        q = self.d.select_backfill_run(self.key, self.direction)
        r = tx.fetchone(q) if tx else self.db.fetchone(q)
        if r is None:
            return None
        t = self.d.from_db_time
        return BackfillRun(key=r[0], direction=r[1], spec_hash=r[2],
                           key_columns=tuple(json.loads(r[3])), range_lo=decode_key(r[4]),
                           range_hi=decode_key(r[5]), parts=int(r[6]),
                           rows_estimate=int(r[7]), state=str(r[8]),
                           settings=json.loads(r[9]), version=int(r[10]),
                           created_at=t(r[11]) or utcnow(), updated_at=t(r[12]) or utcnow())

    def parts(self) -> list[BackfillPart]:
        """Every part, by number."""
        t = self.d.from_db_time
        out = []
        for r in self.db.fetchall(self.d.select_backfill_part_rows(self.key, self.direction)):
            out.append(BackfillPart(
                part=int(r[0]), spec_hash=r[1], lo=decode_key(r[2]), hi=decode_key(r[3]),
                cursor=decode_key(r[4]), rows_done=int(r[5]), status=str(r[6]),
                lease_owner=r[7], lease_expires_at=t(r[8]), started_at=t(r[9]) or utcnow(),
                updated_at=t(r[10]) or utcnow(), finished_at=t(r[11]),
                rows_failed=int(r[12] or 0), rows_written=int(r[13] or 0),
                failed_keys=json.loads(r[14]) if r[14] else [],
                batch_size=int(r[15]) if r[15] is not None else None, hold_signal=r[16],
                hold_since=t(r[17]), held_ms=int(r[18] or 0)))
        return out

    # -- creation -------------------------------------------------------------------------
    def create(self, spec_hash: str, key_columns: Sequence[str],
               lo: Sequence[Any] | None, hi: Sequence[Any] | None,
               bounds: Sequence[Sequence[Any]], rows_estimate: int, settings: dict[str, Any],
               *, replace: bool = False) -> bool:
        """Create the run and its parts ``(None, b1], (b1, b2], ..., (bn, hi]`` in one
        transaction. False if another process created it first."""
        now = utcnow()
        t = self.d.to_db_time(now)
        edges: list[Sequence[Any] | None] = [None, *bounds, hi] if hi is not None else []
        state = "running" if hi is not None else "done"
        try:
            with self.db.transaction() as tx:
                if replace:
                    for q in self.d.delete_backfill(self.key, self.direction):
                        tx.execute(q)
                tx.execute(self.d.insert_backfill_run(
                    (self.key, self.direction, spec_hash, json.dumps(list(key_columns)),
                     encode_key(lo), encode_key(hi), max(len(edges) - 1, 0), rows_estimate,
                     state, json.dumps(settings), 1, t, t)))
                for i in range(len(edges) - 1):
                    tx.execute(self.d.insert_backfill_part(
                        self.key, self.direction, i, spec_hash, encode_key(edges[i]),
                        encode_key(edges[i + 1]), now))
        except DatabaseError:
            if self.run() is None:
                raise
            return False
        return True

    # -- controls -------------------------------------------------------------------------
    def set_control(self, state: str | None = None,
                    settings: dict[str, Any] | None = None) -> BackfillRun:
        """Change the run's control state and/or merge ``settings`` (``None`` values clear)."""
        run = self.run()
        if run is None:
            raise BackfillError(f"migration {self.key!r} has no {self.direction} backfill",
                                key=self.key, direction=self.direction,
                                hint=f"start one: dualwrite backfill {self.key}")
        merged = dict(run.settings)
        for k, v in (settings or {}).items():
            merged[k] = v
        self.db.execute(self.d.update_backfill_run(self.key, self.direction,
                                                   state or run.state,
                                                   json.dumps(merged), utcnow()))
        new = self.run()
        assert new is not None
        return new

    # -- leases and checkpoints -----------------------------------------------------------
    def claim(self, part: int, owner: str, lease_seconds: float) -> bool:
        """Take ``part`` if its lease is free, expired or ours."""
        now = utcnow()
        return self.db.execute(self.d.claim_backfill_part(
            self.key, self.direction, part, owner, now,
            now + timedelta(seconds=lease_seconds))) == 1

    def checkpoint(self, tx: Transaction, part: int, owner: str,
                   cursor: Sequence[Any] | None, rows: int, written: int, failed_keys: list[Any],
                   batch_size: int, done: bool, lease_seconds: float,
                   previous_failed: list[Any]) -> bool:
        """Record a batch inside its transaction. False if the lease was lost."""
        now = utcnow()
        keys = json.dumps((previous_failed + failed_keys)[:100], default=str) \
            if failed_keys else None
        return tx.execute(self.d.checkpoint_backfill_part(
            self.key, self.direction, part, owner, encode_key(cursor), rows, written,
            len(failed_keys), keys, batch_size, "done" if done else "running", now,
            now + timedelta(seconds=lease_seconds))) == 1

    def renew(self, part: int, owner: str, lease_seconds: float, hold_signal: str | None,
              hold_since: datetime | None, held_ms: int) -> bool:
        """Extend the lease while holding; False if it was lost."""
        now = utcnow()
        return self.db.execute(self.d.renew_backfill_lease(
            self.key, self.direction, part, owner, now, now + timedelta(seconds=lease_seconds),
            hold_signal, hold_since, held_ms)) == 1

    def release(self, part: int, owner: str, status: str = "running") -> None:
        """Give the part back."""
        self.db.execute(self.d.release_backfill_part(self.key, self.direction, part, owner,
                                                     status, utcnow()))
