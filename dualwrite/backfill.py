"""Backfill and verify: batched, throttled, resumable, parallel, never overwriting a fresh write.

:class:`Backfill` copies new = f(old) (or old = g(new) with ``direction="reverse"``) for
every row where they differ. It walks the table by its primary (or NOT NULL unique) key in
ranges ``lo < key <= hi`` -- never by rescanning ``WHERE new IS NULL`` -- so its cost is
linear in rows. The key range is fixed when the run starts (rows inserted later are written
by the dual writes), split into parts that workers take through leases in the state table.

Each batch is one transaction:

* SQL transforms: one ``UPDATE ... SET new = f(old) WHERE <range> AND new <> f(old)``
  (NULL-aware). The server computes f from the row as it is when it locks it, so a
  concurrent application write is never replaced by a stale value.
* Python-only transforms: the rows are read, f is computed in Python and each changed row
  is written with an optimistic guard (``AND old = <the value read>``); a row changed in
  between is left to the application's own dual write.
* The checkpoint (cursor, counts, lease) is updated in the same transaction.

Batches adapt their size toward a target duration, run under a lock timeout and a
statement timeout, and are retried with backoff on lock timeouts, deadlocks, serialization
failures and dropped connections. :class:`Verifier` compares new with f(old) chunk by chunk,
optionally fixes what differs, and records the result the ``live`` gate reads.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from dualwrite.backfill_state import BackfillPart, BackfillRun, BackfillStore
from dualwrite.db import Database, Transaction
from dualwrite.errors import (
    BackfillAborted,
    BackfillError,
    BackfillTransformError,
    DatabaseError,
    SpecChangedError,
    SpecError,
    UnknownColumnError,
)
from dualwrite.health import HealthMonitor, HealthThresholds, Reading
from dualwrite.metrics import METRICS, log_fields
from dualwrite.schema import validate_spec, values_equal
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Mode, Stage
from dualwrite.state import StateStore, utcnow

__all__ = ["Backfill", "BackfillOptions", "BackfillPlan", "BackfillProgress", "BackfillResult",
           "Verifier", "VerifyReport"]

log = logging.getLogger("dualwrite.backfill")

MAX_FAILED_KEYS = 100


@dataclass(frozen=True)
class BackfillOptions:
    """How a backfill runs. ``batch_size``/``sleep``/``max_rows_per_second`` left ``None``
    keep what the run recorded (and, for a new run, the defaults: an adaptive batch size)."""

    direction: str = "forward"
    workers: int = 1
    #: How many parts the key range is split into (default: ``workers``).
    parts: int | None = None
    #: A fixed batch size; ``None`` adapts it toward ``target_batch_seconds``.
    batch_size: int | None = None
    initial_batch_size: int = 1000
    min_batch_size: int = 50
    max_batch_size: int = 20_000
    target_batch_seconds: float = 0.1
    sleep: float | None = None
    max_rows_per_second: float | None = None
    lock_timeout: float = 2.0
    statement_timeout: float = 60.0
    max_retries: int = 8
    retry_backoff: float = 0.1
    lease_seconds: float = 30.0
    #: How often workers re-read the run's controls (pause, cancel, settings).
    control_interval: float = 1.0
    #: ``stop``: raise with the failing keys, the batch not applied; ``skip``: write every
    #: other row of the batch and record the failing keys.
    on_error: str = "stop"
    restart: bool = False
    #: Use the Python transform even when a SQL one exists.
    use_python: bool = False
    health: HealthThresholds = field(default_factory=HealthThresholds)
    #: Seconds between two health reads while held.
    hold_interval: float = 1.0

    def check(self, key: str) -> None:
        """Raise :class:`BackfillError` on a value that cannot work."""
        problems = []
        if self.direction not in ("forward", "reverse"):
            problems.append(f"direction must be forward or reverse, not {self.direction!r}")
        if self.workers < 1 or (self.parts is not None and self.parts < 1):
            problems.append("workers and parts must be at least 1")
        if self.batch_size is not None and self.batch_size < 1:
            problems.append("batch size must be at least 1")
        if self.sleep is not None and self.sleep < 0:
            problems.append("sleep must be >= 0")
        if self.max_rows_per_second is not None and self.max_rows_per_second <= 0:
            problems.append("max rows per second must be > 0")
        if self.on_error not in ("stop", "skip"):
            problems.append(f"on_error must be stop or skip, not {self.on_error!r}")
        if not 1 <= self.min_batch_size <= self.max_batch_size or self.initial_batch_size < 1:
            problems.append("need 1 <= min_batch_size <= max_batch_size and "
                            "initial_batch_size >= 1")
        if problems:
            raise BackfillError(f"backfill {key!r}: " + "; ".join(problems), key=key,
                                direction=self.direction, hint="fix the options")


@dataclass(frozen=True)
class BackfillProgress:
    """One event for a progress display: a batch committed, or a hold."""

    key: str
    direction: str
    part: int
    rows_done: int
    rows_total: int
    rows_written: int
    batch_rows: int = 0
    batch_seconds: float = 0.0
    batch_size: int = 0
    held_by: Reading | None = None


@dataclass
class BackfillPlan:
    """What a backfill would do (``--dry-run``): nothing is written."""

    key: str
    direction: str
    table: str
    key_columns: list[str]
    transform: str
    range_lo: Any
    range_hi: Any
    rows_estimate: int
    rows_to_write_estimate: int
    parts: int
    batch_sql: str
    batch_size: str
    estimated_seconds: float | None
    resumes: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass
class BackfillResult:
    """What a backfill did in this process, and where the run stands."""

    key: str
    direction: str
    finished: bool
    state: str
    rows_done: int = 0
    rows_written: int = 0
    rows_failed: int = 0
    failed_keys: list[Any] = field(default_factory=list)
    batches: int = 0
    retries: int = 0
    seconds: float = 0.0
    holds: dict[str, float] = field(default_factory=dict)
    #: Each health signal's status when the backfill started (``unavailable`` where the
    #: server does not expose it).
    signals: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class _LeaseLost(Exception):
    """Another worker took the part: stop working on it."""


class _Stop(Exception):
    """The run was cancelled (or another worker failed): stop cleanly."""


def _transform_targets(spec: MigrationSpec, direction: str) -> tuple[tuple[str, ...],
                                                                    tuple[str, ...]]:
    """(source columns, target columns) of a direction."""
    if direction == "reverse":
        return spec.new_columns, spec.old_columns
    return spec.old_columns, spec.new_columns


def _python_compute(spec: MigrationSpec, direction: str, source: dict[str, Any]
                    ) -> dict[str, Any] | None:
    """The target values from the source values; ``None``: leave the row (reverse with no
    new value)."""
    if direction == "reverse":
        if all(v is None for v in source.values()):
            return None
        return spec.apply_backward(source)
    return spec.apply_forward(source)


def _uses_sql(db: Database, spec: MigrationSpec, direction: str, force_python: bool) -> bool:
    """Whether the batch can be one SQL UPDATE (every target has a SQL transform here)."""
    if force_python:
        if not spec.has_python_transforms:
            raise SpecError(f"migration {spec.key!r} has no Python transforms", key=spec.key,
                            table=spec.table, hint="drop use_python, or give forward/backward")
        return False
    try:
        db.dialect.backfill_targets(spec, direction)
        return True
    except SpecError:
        if not spec.has_python_transforms:
            raise
        return False


def _key_of(row: Sequence[Any], n: int) -> list[Any]:
    return [str(v) if not isinstance(v, (int, float, str)) else v for v in row[:n]]


class _Walker:
    """Key-range walking shared by the backfill and verify."""

    def __init__(self, db: Database, spec: MigrationSpec, key: tuple[str, ...],
                 direction: str, sql: bool) -> None:
        self.db = db
        self.d = db.dialect
        self.spec = spec
        self.key = key
        self.direction = direction
        self.sql = sql
        self.source, self.targets = _transform_targets(spec, direction)
        #: For a dense single integer key: (first key, rows per key value). Batches are
        #: then cut by arithmetic on the key instead of an index scan to find their end.
        self.dense: tuple[int, float] | None = None

    def use_dense_steps(self, run: BackfillRun) -> None:
        """Cut batches by key arithmetic when the run's key is one integer column whose
        values are at least half used (a unique integer key holds at most one row per
        value, so a batch never exceeds twice its size)."""
        lo, hi = run.range_lo, run.range_hi
        if len(self.key) != 1 or lo is None or hi is None or not all(
                isinstance(v[0], int) and not isinstance(v[0], bool) for v in (lo, hi)):
            return
        density = run.rows_estimate / (hi[0] - lo[0] + 1)
        if density >= 0.5:
            self.dense = (lo[0], min(density, 1.0))

    def batch_end(self, tx: Transaction, lo: Sequence[Any] | None, hi: Sequence[Any] | None,
                  size: int) -> tuple[tuple[Any, ...] | None, int | None]:
        """The key ``size`` rows after ``lo`` (or ``hi``/``None`` past the end) and, for a
        full batch, its row count (estimated from the key's density on dense keys)."""
        if self.dense is not None and hi is not None:
            first, density = self.dense
            start = int(lo[0]) if lo is not None else first - 1
            end = start + max(1, int(size / density))
            if end >= int(hi[0]):
                return tuple(hi), None
            return (end,), round((end - start) * density)
        row = tx.fetchone(self.d.backfill_key_at(self.spec, self.key, lo, hi, size - 1))
        if row is None:
            return (tuple(hi) if hi is not None else None), None
        return tuple(row), size

    def count(self, tx: Transaction, lo: Sequence[Any] | None,
              hi: Sequence[Any] | None) -> int:
        """Rows in ``lo < key <= hi``."""
        row = tx.fetchone(self.d.backfill_count(self.spec, self.key, lo, hi))
        return int(row[0]) if row else 0

    def write_sql(self, tx: Transaction, lo: Sequence[Any] | None,
                  hi: Sequence[Any] | None) -> int:
        """One UPDATE over the range; rows written."""
        return tx.execute(self.d.backfill_update(self.spec, self.key, self.direction, lo, hi))

    def write_sql_rows(self, tx: Transaction, lo: Sequence[Any] | None,
                       hi: Sequence[Any] | None) -> tuple[int, list[Any], str | None]:
        """The range row by row under savepoints: (written, failing keys, first error)."""
        n = len(self.key)
        written, failed, first = 0, [], None
        for row in tx.fetchall(self.d.backfill_rows(self.spec, self.key, (), lo, hi)):
            tx.execute(self.d.savepoint("dw_row"))
            try:
                written += tx.execute(self.d.backfill_update_row(self.spec, self.key,
                                                                 self.direction, row[:n]))
                tx.execute(self.d.release_savepoint("dw_row"))
            except Exception as exc:
                if self.d.classify_error(exc) is not None:
                    raise
                tx.execute(self.d.rollback_to_savepoint("dw_row"))
                failed.append(_key_of(row, n))
                first = first or str(exc).strip().splitlines()[0]
        return written, failed, first

    def python_rows(self, tx: Transaction, lo: Sequence[Any] | None, hi: Sequence[Any] | None
                    ) -> list[tuple[list[Any], dict[str, Any], dict[str, Any],
                                    dict[str, Any] | None, str | None]]:
        """(key, source, current target, computed target or None, error) per row."""
        n = len(self.key)
        cols = (*self.source, *self.targets)
        out = []
        for row in tx.fetchall(self.d.backfill_rows(self.spec, self.key, cols, lo, hi)):
            src = dict(zip(self.source, row[n:n + len(self.source)], strict=True))
            cur = dict(zip(self.targets, row[n + len(self.source):], strict=True))
            try:
                computed = _python_compute(self.spec, self.direction, src)
                err = None
            except Exception as exc:  # noqa: BLE001 -- a user transform may raise anything
                computed, err = None, f"{type(exc).__name__}: {exc}"
            out.append((list(row[:n]), src, cur, computed, err))
        return out

    @staticmethod
    def differs(current: dict[str, Any], computed: dict[str, Any] | None) -> bool:
        """Whether the row needs a write."""
        return computed is not None and not all(values_equal(current[c], computed[c])
                                                for c in computed)

    def write_python(self, tx: Transaction, rows: list[tuple[list[Any], dict[str, Any],
                                                               dict[str, Any],
                                                               dict[str, Any] | None,
                                                               str | None]]) -> int:
        """Guarded single-row writes of the rows that differ; rows written."""
        written = 0
        for k, src, cur, computed, err in rows:
            if err is None and computed is not None and self.differs(cur, computed):
                written += tx.execute(self.d.backfill_guarded_set(self.spec, self.key,
                                                                  computed, src, k))
        return written


class Backfill:
    """One migration's backfill in one direction. See the module docstring."""

    def __init__(self, db: Database, spec: MigrationSpec, options: BackfillOptions | None = None,
                 *, progress: Callable[[BackfillProgress], None] | None = None,
                 owner: str | None = None) -> None:
        self.db = db
        self.spec = spec
        self.options = options or BackfillOptions()
        self.options.check(spec.key)
        self.direction = self.options.direction
        self.store = BackfillStore(db, spec.key, self.direction)
        self.progress = progress
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._result = BackfillResult(spec.key, self.direction, False, "running")
        self._total = 0
        self._done_before = 0

    # -- preparation (reads only; raises before anything changes) --------------------------
    def _check(self) -> tuple[tuple[str, ...], bool]:
        spec, key, opt = self.spec, self.spec.key, self.options
        state = StateStore(self.db)
        state.require()
        mig = state.get(key)
        if mig.spec_hash != spec.spec_hash():
            raise SpecChangedError(
                f"migration {key!r}: the loaded spec ({spec.spec_hash()}) is not the one "
                f"registered ({mig.spec_hash})", key=key, recorded_hash=mig.spec_hash,
                current_hash=spec.spec_hash(),
                hint="load the spec the migration was registered with")
        forward = self.direction == "forward"
        needed = Stage.DUALWRITE if forward else Stage.RAMPDOWN
        what = "new" if forward else "old"
        if mig.stage < needed:
            raise BackfillError(
                f"migration {key!r} is at {mig.stage.value}: the application does not write "
                f"the {what} column yet, so rows changed during the backfill would go stale",
                key=key, direction=self.direction,
                hint=f"run: dualwrite advance {key} --to {needed.value}")
        if mig.mode is Mode.APP:
            # In app mode an instance serving a stage that does not write the column the
            # backfill fills would leave stale every row it changes behind the backfill.
            behind = [i for i in state.live_fleet(key)
                      if not (i.stage.writes_new if forward else i.stage.writes_old)]
            if behind:
                seen = ", ".join(sorted({i.stage.value for i in behind}))
                raise BackfillError(
                    f"migration {key!r}: {len(behind)} live application instance(s) serve "
                    f"{seen} and do not write the {what} column: rows they change during the "
                    f"backfill would go stale", key=key, direction=self.direction,
                    hint=f"wait for them to pick up the stage (dualwrite status {key}), "
                         "or stop them")
        report = validate_spec(self.db, spec, check_transforms=False)
        if report.missing_new_columns:
            col = report.missing_new_columns[0]
            raise UnknownColumnError(
                f"migration {key!r}: new column {col!r} does not exist in {spec.table!r}",
                key=key, table=spec.table, column=col, hint=f"run: dualwrite expand {key}")
        assert report.table.key is not None  # validate_spec raises NoUsableKeyError
        sql = _uses_sql(self.db, spec, self.direction, opt.use_python)
        run = self.store.run()
        if run is not None and not opt.restart:
            if run.spec_hash != spec.spec_hash():
                raise SpecChangedError(
                    f"migration {key!r}: the {self.direction} backfill began with spec "
                    f"{run.spec_hash}, the spec is now {spec.spec_hash()}", key=key,
                    recorded_hash=run.spec_hash, current_hash=spec.spec_hash(),
                    hint=f"start it over: dualwrite backfill {key} --restart")
            if run.key_columns != report.table.key:
                raise BackfillError(
                    f"migration {key!r}: the backfill walks key {list(run.key_columns)} but the "
                    f"table's key is now {list(report.table.key)}", key=key,
                    direction=self.direction,
                    hint=f"start it over: dualwrite backfill {key} --restart")
        return report.table.key, sql

    def _settings(self, run: BackfillRun | None) -> dict[str, Any]:
        base = dict(run.settings) if run else {"batch_size": None, "sleep": 0.0,
                                                "max_rows_per_second": None}
        for name in ("batch_size", "sleep", "max_rows_per_second"):
            value = getattr(self.options, name)
            if value is not None:
                base[name] = value
        return base

    def _bounds(self, walker: _Walker) -> tuple[Any, Any, list[tuple[Any, ...]], int]:
        d, spec, key = self.db.dialect, self.spec, walker.key
        lo = self.db.fetchone(d.backfill_bound(spec, key, last=False))
        hi = self.db.fetchone(d.backfill_bound(spec, key, last=True))
        est_row = self.db.fetchone(d.estimate_rows(spec))
        estimate = int(est_row[0]) if est_row and est_row[0] is not None else 0
        parts = self.options.parts or self.options.workers
        bounds: list[tuple[Any, ...]] = []
        if hi is not None and parts == 1 and estimate <= 0:  # never analyzed: count
            with self.db.transaction() as tx:
                estimate = walker.count(tx, None, hi)
        if hi is not None and parts > 1:
            with self.db.transaction() as tx:
                total = walker.count(tx, None, hi)
                estimate = total
                for i in range(1, parts):
                    row = tx.fetchone(d.backfill_key_at(spec, key, None, hi,
                                                        max(0, i * total // parts - 1)))
                    if row is not None and tuple(row) != tuple(hi) and \
                            (not bounds or bounds[-1] != tuple(row)):
                        bounds.append(tuple(row))
        return lo, hi, bounds, estimate

    def plan(self) -> BackfillPlan:
        """What :meth:`run` would do, with an estimate; writes nothing."""
        key, sql = self._check()
        walker = _Walker(self.db, self.spec, key, self.direction, sql)
        run = self.store.run()
        lo, hi, bounds, estimate = self._bounds(walker)
        settings = self._settings(run if not self.options.restart else None)
        sample = min(max(estimate, 1), 10_000)
        t0 = time.perf_counter()
        with self.db.transaction() as tx:
            end, _ = walker.batch_end(tx, None, hi, sample)
            if sql:
                row = tx.fetchone(self.db.dialect.verify_chunk(self.spec, key, self.direction,
                                                               None, end))
                scanned, differ = (int(row[0]), int(row[2])) if row else (0, 0)
            else:
                prows = walker.python_rows(tx, None, end)
                scanned = len(prows)
                differ = sum(1 for _, _, cur, comp, err in prows
                             if err is not None or walker.differs(cur, comp))
        read_s = time.perf_counter() - t0
        ratio = differ / scanned if scanned else 0.0
        # a write costs a few reads: a rough figure, stated as such
        seconds = read_s / scanned * estimate * 4 if scanned else None
        d = self.db.dialect
        sql_text = (d.backfill_update(self.spec, key, self.direction, ["<lo>"] * len(key),
                                      ["<hi>"] * len(key))[0] if sql else
                    d.backfill_guarded_set(self.spec, key, dict.fromkeys(walker.targets),
                                           dict.fromkeys(walker.source), [None] * len(key))[0])
        resumes = None
        if run is not None and not self.options.restart:
            parts = self.store.parts()
            resumes = {"state": run.state, "rows_done": sum(p.rows_done for p in parts),
                       "parts_done": sum(p.finished for p in parts), "parts": len(parts)}
        return BackfillPlan(
            key=self.spec.key, direction=self.direction, table=self.spec.table,
            key_columns=list(key), transform="sql" if sql else "python",
            range_lo=list(lo) if lo else None, range_hi=list(hi) if hi else None,
            rows_estimate=estimate, rows_to_write_estimate=round(estimate * ratio),
            parts=(len(bounds) + 1) if hi is not None else 0, batch_sql=sql_text,
            batch_size=str(settings["batch_size"] or
                           f"adaptive from {self.options.initial_batch_size} toward "
                           f"{self.options.target_batch_seconds}s batches"),
            estimated_seconds=seconds, resumes=resumes)

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> BackfillResult:
        """Backfill until every part is done (taking over expired leases), the run is
        cancelled, or an error stops it. Safe to run in several processes at once."""
        key, sql = self._check()
        walker = _Walker(self.db, self.spec, key, self.direction, sql)
        run = self.store.run()
        if run is None or self.options.restart:
            lo, hi, bounds, estimate = self._bounds(walker)
            self.store.create(self.spec.spec_hash(), key, lo, hi, bounds, estimate,
                              self._settings(None), replace=self.options.restart)
        else:
            # running it again resumes a cancelled run; a paused one stays paused
            settings = self._settings(run)
            if settings != run.settings or run.state == "cancelled":
                self.store.set_control("running" if run.state == "cancelled" else None,
                                       settings)
        run = self.store.run()
        assert run is not None
        walker.use_dense_steps(run)
        parts = self.store.parts()
        self._total = max(run.rows_estimate, sum(p.rows_done for p in parts))
        self._done_before = sum(p.rows_done for p in parts)
        t0 = time.perf_counter()
        threads = [threading.Thread(target=self._worker, args=(walker, i),
                                    name=f"dualwrite-backfill-{i}", daemon=True)
                   for i in range(self.options.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self._result.seconds = time.perf_counter() - t0
        final = self.store.run()
        parts = self.store.parts()
        self._result.finished = all(p.finished for p in parts)
        if self._result.finished and final is not None and final.state != "done":
            self.store.set_control("done")
        final = self.store.run()
        self._result.state = final.state if final else "done"
        self._result.rows_failed = sum(p.rows_failed for p in parts)
        self._result.failed_keys = [k for p in parts for k in p.failed_keys][:MAX_FAILED_KEYS]
        if self._errors:
            raise self._errors[0]
        return self._result

    def _worker(self, walker: _Walker, index: int) -> None:
        owner = f"{self.owner}/{index}"
        failures = 0
        while not self._stop.is_set():
            try:
                self._worker_loop(walker, owner)
                return
            except DatabaseError as exc:
                # a state-table read or lease call hit a lock or a dropped connection
                reason = self.db.dialect.classify_error(exc.cause or exc)
                failures += 1
                if reason is None or failures > self.options.max_retries:
                    self._fail(exc)
                    return
                time.sleep(min(5.0, self.options.retry_backoff * 2 ** failures))
            except _Stop:
                return
            except BaseException as exc:  # noqa: BLE001 -- reported by run() after the join
                self._fail(exc)
                return

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)
        self._stop.set()

    def _worker_loop(self, walker: _Walker, owner: str) -> None:
        while not self._stop.is_set():
            run = self.store.run()
            if run is None or run.state == "cancelled":
                return
            parts = self.store.parts()
            if all(p.finished for p in parts):
                return
            now = utcnow()
            mine = [p for p in parts if p.claimable(owner, now)]
            random.shuffle(mine)
            claimed = next((p for p in mine
                            if self.store.claim(p.part, owner, self.options.lease_seconds)),
                           None)
            if claimed is None:
                # every open part is leased by a live worker: wait for it to finish or die
                self._stop.wait(min(0.25, self.options.lease_seconds / 4))
                continue
            self._work(walker, claimed, owner)

    # -- one part ----------------------------------------------------------------------------
    def _controls(self, part: BackfillPart, owner: str, state: dict[str, Any]) -> None:
        """Re-read the run's controls at most every control interval; hold while paused."""
        now = time.monotonic()
        if now - state.get("read_at", 0.0) < self.options.control_interval:
            return
        while True:
            run = self.store.run()
            state["read_at"] = time.monotonic()
            if run is None or run.state == "cancelled" or self._stop.is_set():
                self.store.release(part.part, owner)
                raise _Stop
            state["settings"] = run.settings
            if run.state != "paused":
                return
            self._hold(part, owner, state, Reading("paused", "hold", None, None,
                                                   "paused by an operator"))

    def _hold(self, part: BackfillPart, owner: str, state: dict[str, Any],
              reading: Reading) -> None:
        """Wait one hold interval, renewing the lease and recording what holds the part."""
        since = state.setdefault("hold_since", utcnow())
        state["hold_signal"] = reading.signal
        waited = self.options.hold_interval
        if self.progress:
            self.progress(BackfillProgress(self.spec.key, self.direction, part.part,
                                           self._done(), self._total,
                                           self._result.rows_written, held_by=reading))
        log.info("backfill %s part %d held by %s (%s)", self.spec.key, part.part,
                 reading.signal, reading.value,
                 extra=log_fields(self.spec.key, hold_signal=reading.signal))
        time.sleep(waited)
        with self._lock:
            self._result.holds[reading.signal] = self._result.holds.get(reading.signal, 0.0) + \
                waited
        METRICS.held_seconds.labels(migration_key=self.spec.key,
                                    signal=reading.signal).inc(waited)
        if not self.store.renew(part.part, owner, self.options.lease_seconds, reading.signal,
                                since, int(waited * 1000)):
            raise _LeaseLost

    def _unhold(self, part: BackfillPart, owner: str, state: dict[str, Any]) -> None:
        if state.pop("hold_since", None) is not None:
            state.pop("hold_signal", None)
            self.store.renew(part.part, owner, self.options.lease_seconds, None, None, 0)

    def _done(self) -> int:
        return self._done_before + self._result.rows_done

    def _work(self, walker: _Walker, part: BackfillPart, owner: str) -> None:
        opt = self.options
        monitor = HealthMonitor(self.db, self.spec, opt.health,
                                target_batch_seconds=opt.target_batch_seconds)
        readings = monitor.read(force=True)
        with self._lock:
            self._result.signals = {r.signal: r.status for r in readings}
        for r in readings:
            if r.status == "unavailable":
                log.info("backfill %s: health signal %s unavailable (%s)", self.spec.key,
                         r.signal, r.detail, extra=log_fields(self.spec.key, signal=r.signal))
        state: dict[str, Any] = {}
        size = part.batch_size or min(opt.max_batch_size,
                                      max(opt.min_batch_size, opt.initial_batch_size))
        cursor = part.cursor
        failed_so_far = list(part.failed_keys)
        try:
            self._walk_part(walker, part, owner, monitor, state, size, cursor, failed_so_far)
            monitor.close()
        except _LeaseLost:
            log.warning("backfill %s part %d: lease lost to another worker", self.spec.key,
                        part.part, extra=log_fields(self.spec.key))
            monitor.close()
        except BaseException:
            monitor.close()
            # give the part back at once (its checkpoint stays) so a rerun need not wait
            # for the lease to expire
            try:
                self.store.release(part.part, owner)
            except DatabaseError:
                pass
            raise

    def _walk_part(self, walker: _Walker, part: BackfillPart, owner: str,
                   monitor: HealthMonitor, state: dict[str, Any], size: int,
                   cursor: tuple[Any, ...] | None, failed_so_far: list[Any]) -> None:
        opt = self.options
        while True:
            self._controls(part, owner, state)
            problem = monitor.first_problem()
            if problem is not None and problem.status == "abort":
                self.store.release(part.part, owner)
                raise BackfillAborted(
                    f"backfill {self.spec.key!r} stopped: {problem.signal} is "
                    f"{problem.value} (critical at {problem.threshold})",
                    key=self.spec.key, direction=self.direction, signal=problem.signal,
                    value=problem.value,
                    hint=f"when the server is healthy again: dualwrite backfill "
                         f"{self.spec.key}")
            if problem is not None:
                self._hold(part, owner, state, problem)
                continue
            self._unhold(part, owner, state)
            settings = state.get("settings", {})
            fixed = settings.get("batch_size")
            if fixed:
                size = int(fixed)
            t0 = time.perf_counter()
            outcome = self._batch(walker, part, owner, cursor, size, failed_so_far, monitor)
            elapsed = time.perf_counter() - t0
            cursor, rows, written, failed, done, size = outcome
            failed_so_far += failed
            monitor.record_batch(elapsed)
            with self._lock:
                self._result.batches += 1
                self._result.rows_done += rows
                self._result.rows_written += written
            METRICS.rows_backfilled.labels(migration_key=self.spec.key,
                                           direction=self.direction).inc(written)
            METRICS.batch_seconds.labels(migration_key=self.spec.key).observe(elapsed)
            if self.progress:
                self.progress(BackfillProgress(self.spec.key, self.direction, part.part,
                                               self._done(), self._total,
                                               self._result.rows_written, rows, elapsed,
                                               size))
            if done:
                return
            if not fixed and elapsed > 0:
                factor = min(2.0, max(0.5, opt.target_batch_seconds / elapsed))
                size = int(min(opt.max_batch_size, max(opt.min_batch_size, size * factor)))
            self._throttle(rows, elapsed, settings, part, owner, state)

    def _throttle(self, rows: int, elapsed: float, settings: dict[str, Any],
                  part: BackfillPart, owner: str, state: dict[str, Any]) -> None:
        """Sleep (``sleep``, and whatever keeps ``max_rows_per_second``), re-reading the
        controls meanwhile so that a pause, a cancel or new settings apply within about a
        second."""
        pause = float(settings.get("sleep") or 0.0)
        rate = settings.get("max_rows_per_second")
        if rate:
            per_worker = float(rate) / self.options.workers
            pause = max(pause, rows / per_worker - elapsed)
        end = time.monotonic() + pause
        renew_at = time.monotonic() + self.options.lease_seconds / 3
        while not self._stop.is_set() and time.monotonic() < end:
            time.sleep(max(0.0, min(0.2, end - time.monotonic())))
            self._controls(part, owner, state)
            if state.get("settings", settings) != settings:
                return  # retuned: the next batch uses the new settings
            if time.monotonic() > renew_at:
                if not self.store.renew(part.part, owner, self.options.lease_seconds, None,
                                        None, 0):
                    raise _LeaseLost
                renew_at = time.monotonic() + self.options.lease_seconds / 3

    def _batch(self, walker: _Walker, part: BackfillPart, owner: str,
               cursor: tuple[Any, ...] | None, size: int, failed_before: list[Any],
               monitor: HealthMonitor
               ) -> tuple[tuple[Any, ...] | None, int, int, list[Any], bool, int]:
        """One batch with retries: (new cursor, rows walked, rows written, failed keys,
        part done, batch size)."""
        opt = self.options
        attempt = 0
        while True:
            try:
                return self._batch_once(walker, part, owner, cursor, size, failed_before,
                                        monitor)
            except DatabaseError as exc:
                cause = exc.cause or exc
                reason = self.db.dialect.classify_error(cause)
                if reason is None or attempt >= opt.max_retries:
                    raise
                attempt += 1
                with self._lock:
                    self._result.retries += 1
                METRICS.retries.labels(migration_key=self.spec.key, reason=reason).inc()
                if reason == "statement_timeout":
                    size = max(opt.min_batch_size, size // 2)
                delay = min(5.0, opt.retry_backoff * 2 ** (attempt - 1)) * \
                    (0.5 + random.random())
                log.warning("backfill %s part %d: %s, retry %d in %.2fs", self.spec.key,
                            part.part, reason, attempt, delay,
                            extra=log_fields(self.spec.key, retry_reason=reason))
                time.sleep(delay)

    def _batch_once(self, walker: _Walker, part: BackfillPart, owner: str,
                    cursor: tuple[Any, ...] | None, size: int, failed_before: list[Any],
                    monitor: HealthMonitor
                    ) -> tuple[tuple[Any, ...] | None, int, int, list[Any], bool, int]:
        opt, d = self.options, self.db.dialect
        try:
            with self.db.transaction() as tx:
                for q in d.batch_settings(opt.lock_timeout, opt.statement_timeout):
                    tx.execute(q)
                end, full = walker.batch_end(tx, cursor, part.hi, size)
                rows = full if full is not None else walker.count(tx, cursor, end)
                done = full is None or (part.hi is not None and end == tuple(part.hi))
                failed: list[Any] = []
                if walker.sql:
                    written = walker.write_sql(tx, cursor, end)
                else:
                    prows = walker.python_rows(tx, cursor, end)
                    bad = [(k, err) for k, _, _, _, err in prows if err is not None]
                    if bad:
                        self._transform_failed([k for k, _ in bad], bad[0][1] or "", rows)
                        failed = [_key_of(k, len(k)) for k, _ in bad]
                    written = walker.write_python(tx, prows)
                monitor.sample_in_batch(tx)
                if not self.store.checkpoint(tx, part.part, owner, end, rows, written, failed,
                                             size, done, opt.lease_seconds, failed_before):
                    raise _LeaseLost
                return end, rows, written, failed, done, size
        except DatabaseError as exc:
            if not walker.sql or d.classify_error(exc.cause or exc) is not None:
                raise
            # a SQL transform failed on some row: find which, under savepoints
            return self._batch_rows(walker, part, owner, cursor, size, failed_before, exc)

    def _transform_failed(self, keys: list[Any], error: str, rows: int) -> None:
        if self.options.on_error == "stop" or len(keys) >= rows:
            raise BackfillTransformError(
                f"backfill {self.spec.key!r}: the {self.direction} transform failed on "
                f"{len(keys)} row(s) of {self.spec.table!r} ({error}); the batch holding them "
                "was not applied", key=self.spec.key, direction=self.direction,
                keys=[_key_of(k, len(k)) for k in keys][:MAX_FAILED_KEYS], error=error,
                hint="fix the transform or the rows, then rerun; or skip them with "
                     "--on-error skip (they stay unbackfilled and verify reports them)")

    def _batch_rows(self, walker: _Walker, part: BackfillPart, owner: str,
                    cursor: tuple[Any, ...] | None, size: int, failed_before: list[Any],
                    original: DatabaseError) -> tuple[tuple[Any, ...] | None, int, int,
                                                      list[Any], bool, int]:
        opt, d = self.options, self.db.dialect
        with self.db.transaction() as tx:
            for q in d.batch_settings(opt.lock_timeout, opt.statement_timeout):
                tx.execute(q)
            end, full = walker.batch_end(tx, cursor, part.hi, size)
            rows = full if full is not None else walker.count(tx, cursor, end)
            done = full is None or (part.hi is not None and end == tuple(part.hi))
            written, failed, first = walker.write_sql_rows(tx, cursor, end)
            if not failed:  # not a row's fault after all
                raise original
            self._transform_failed(failed, first or str(original), rows)
            if not self.store.checkpoint(tx, part.part, owner, end, rows, written, failed,
                                         size, done, opt.lease_seconds, failed_before):
                raise _LeaseLost
            return end, rows, written, failed, done, size

    # -- status ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The run and its parts as the state table says now (a dead worker shows as
        ``dead``: its lease expired)."""
        return backfill_status(self.db, self.spec.key, self.direction)


def backfill_status(db: Database, key: str, direction: str = "forward") -> dict[str, Any]:
    """The run and its parts, JSON-ready; ``{"run": None}`` when none ran."""
    store = BackfillStore(db, key, direction)
    run = store.run()
    if run is None:
        return {"key": key, "direction": direction, "run": None, "parts": []}
    now = utcnow()
    parts = store.parts()
    done = sum(p.rows_done for p in parts)
    health = [p.health(now) for p in parts]
    return {"key": key, "direction": direction, "run": run.to_dict(),
            "parts_by_health": {h: health.count(h) for h in sorted(set(health))},
            "rows_done": done, "rows_written": sum(p.rows_written for p in parts),
            "rows_failed": sum(p.rows_failed for p in parts),
            "rows_estimate": max(run.rows_estimate, done),
            "parts": [p.to_dict(now) for p in parts]}


# -- verify ---------------------------------------------------------------------------------
@dataclass
class VerifyReport:
    """What a verify found (and fixed)."""

    key: str
    direction: str
    rows_checked: int = 0
    mismatches: int = 0
    unbackfilled: int = 0
    fixed: int = 0
    sample_keys: list[Any] = field(default_factory=list)
    seconds: float = 0.0
    recorded: bool = False

    @property
    def clean(self) -> bool:
        """Zero mismatches and zero unbackfilled rows."""
        return self.mismatches == 0 and self.unbackfilled == 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "clean": self.clean}


class Verifier:
    """Compare the target column(s) with the transform of the source column(s), chunk by
    chunk over the whole table: counts of mismatching and unbackfilled rows and a sample of
    their keys; ``fix`` rewrites them (the same guarded batch write as the backfill).

    The result is recorded in ``dualwrite_verify``, where the ``live`` gate (forward) and
    the rollback from ``complete`` (reverse) read it.
    """

    def __init__(self, db: Database, spec: MigrationSpec, *, direction: str = "forward",
                 fix: bool = False, chunk_size: int = 10_000, sample_size: int = 20,
                 use_python: bool = False, record: bool = True) -> None:
        if direction not in ("forward", "reverse"):
            raise BackfillError(f"unknown verify direction {direction!r}", key=spec.key,
                                hint="use forward or reverse")
        if chunk_size < 1 or sample_size < 0:
            raise BackfillError("verify needs chunk_size >= 1 and sample_size >= 0",
                                key=spec.key, direction=direction, hint="fix the options")
        self.db = db
        self.spec = spec
        self.direction = direction
        self.fix = fix
        self.chunk_size = chunk_size
        self.sample_size = sample_size
        self.use_python = use_python
        self.record = record

    def _check(self) -> tuple[tuple[str, ...], bool]:
        spec = self.spec
        state = StateStore(self.db)
        state.require()
        mig = state.get(spec.key)
        if mig.spec_hash != spec.spec_hash():
            raise SpecChangedError(
                f"migration {spec.key!r}: the loaded spec ({spec.spec_hash()}) is not the one "
                f"registered ({mig.spec_hash})", key=spec.key, recorded_hash=mig.spec_hash,
                current_hash=spec.spec_hash(),
                hint="load the spec the migration was registered with")
        report = validate_spec(self.db, spec, check_transforms=False)
        if report.missing_new_columns:
            col = report.missing_new_columns[0]
            raise UnknownColumnError(
                f"migration {spec.key!r}: new column {col!r} does not exist in {spec.table!r}",
                key=spec.key, table=spec.table, column=col,
                hint=f"run: dualwrite expand {spec.key}")
        assert report.table.key is not None
        return report.table.key, _uses_sql(self.db, spec, self.direction, self.use_python)

    def run(self) -> VerifyReport:
        """Walk the table once; record and return the result."""
        key, sql = self._check()
        walker = _Walker(self.db, self.spec, key, self.direction, sql)
        rep = VerifyReport(self.spec.key, self.direction)
        started = utcnow()
        t0 = time.perf_counter()
        lo: tuple[Any, ...] | None = None
        while True:
            with self.db.transaction() as tx:
                end, full = walker.batch_end(tx, lo, None, self.chunk_size)
            rows, unb, bad, sample = self._chunk(walker, lo, end)
            if bad and self.fix:
                with self.db.transaction() as tx:
                    if sql:
                        rep.fixed += walker.write_sql(tx, lo, end)
                    else:
                        rep.fixed += walker.write_python(tx, walker.python_rows(tx, lo, end))
                rows, unb, bad, sample = self._chunk(walker, lo, end)
            rep.rows_checked += rows
            rep.unbackfilled += unb
            rep.mismatches += bad - unb
            room = self.sample_size - len(rep.sample_keys)
            rep.sample_keys.extend(sample[:max(room, 0)])
            if full is None:
                break
            lo = end
        rep.seconds = time.perf_counter() - t0
        if self.record:
            self.db.execute(self.db.dialect.insert_verify(
                self.spec.key, self.direction, self.spec.spec_hash(), started, utcnow(),
                rep.rows_checked, rep.mismatches, rep.unbackfilled,
                json.dumps(rep.sample_keys, default=str)))
            rep.recorded = True
        return rep

    def _chunk(self, walker: _Walker, lo: tuple[Any, ...] | None,
               hi: tuple[Any, ...] | None) -> tuple[int, int, int, list[Any]]:
        """(rows, unbackfilled, differing, sample keys) of one chunk."""
        d, n = self.db.dialect, len(walker.key)
        with self.db.transaction() as tx:
            if walker.sql:
                row = tx.fetchone(d.verify_chunk(self.spec, walker.key, self.direction, lo, hi))
                rows, unb, bad = (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)
                sample: list[Any] = []
                if bad and self.sample_size:
                    sample = [_key_of(r, n) for r in tx.fetchall(d.verify_sample(
                        self.spec, walker.key, self.direction, lo, hi, self.sample_size))]
                return rows, unb, bad, sample
            prows = walker.python_rows(tx, lo, hi)
        unb = bad = 0
        sample = []
        for k, _, cur, computed, err in prows:
            if err is not None or walker.differs(cur, computed):
                bad += 1
                if all(v is None for v in cur.values()) and (
                        err is not None or any(v is not None for v in (computed or {}).values())):
                    unb += 1
                if len(sample) < self.sample_size:
                    sample.append(_key_of(k, n))
        return len(prows), unb, bad, sample
