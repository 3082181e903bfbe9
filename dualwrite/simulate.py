"""Simulated application traffic on one migration, checked against acknowledged writes.

Used by ``dualwrite demo`` and by the lifecycle tests: the proof that a migration lost
nothing is that every value an application read equals the value it last wrote.

* **App writers** behave like an instance with a dualwrite adapter: at the stage served for
  each operation they write the logical value on the authoritative side (old up to ``live``,
  new from ``rampdown``) and :func:`dualwrite.mirror.mirror_values` adds the other side.
* **Legacy writers** behave like an instance that knows only the old column (raw SQL, an old
  pod in a rolling deploy): they write old only. They stay correct only when the database
  mirrors (trigger mode) or while reads still go to the old column.
* **Readers** read the stage's view (old columns, or ``COALESCE(new, f(old))`` once reads go
  to new) of a row no writer is writing at that moment, and compare it with the last
  acknowledged write of that row.

Every thread owns a shard of the keys (``key % threads``) for its writes, so "last
acknowledged write" is well defined; a per-shard lock orders a reader against the writer.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dualwrite.db import Database
from dualwrite.errors import DatabaseError
from dualwrite.mirror import mirror_values
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Stage

__all__ = ["OrmClient", "Traffic", "TrafficReport"]

#: Returns the old-side values of the ``n``-th write to row ``key``.
ValueFactory = Callable[[int, int], dict[str, Any]]


class OrmClient(Protocol):
    """An application written with an ORM and a dualwrite adapter (SQLAlchemy, Django):
    how one of its threads writes a row and reads it back."""

    def ready(self) -> bool:
        """Whether this application is deployed yet (its models may map a new column that
        only exists after expand); its writers wait until then."""

    def write(self, key: int, values: Mapping[str, Any], insert: bool) -> None:
        """Set the old-side ``values`` of row ``key`` (a new row if ``insert``) and commit."""

    def read(self, key: int) -> dict[str, Any]:
        """The old-side values of row ``key`` as the application's attributes show them."""

    # Optional: ``thread_done()``, called by each ORM writer thread as it ends (an ORM whose
    # connections belong to a thread, Django's, closes that thread's connections there).


@dataclass
class TrafficReport:
    """What a :class:`Traffic` run did and found."""

    writes: int = 0
    inserts: int = 0
    reads: int = 0
    #: Operations that raised (message per failure).
    errors: list[str] = field(default_factory=list)
    #: Reads whose value differed from the last acknowledged write (a lost or stale write).
    stale_reads: list[str] = field(default_factory=list)
    #: Operations per stage served.
    by_stage: Counter[str] = field(default_factory=Counter)
    #: Operations retried once after a database error (a dropped connection, say), as an
    #: application with a connection pool would.
    retries: int = 0

    @property
    def operations(self) -> int:
        """Writes, inserts and reads."""
        return self.writes + self.inserts + self.reads

    @property
    def clean(self) -> bool:
        """No error and no stale read."""
        return not self.errors and not self.stale_reads


class Traffic:
    """Writer and reader threads of a simulated application on ``spec``'s table.

    ``stage`` returns the stage to serve for the next operation (e.g. a
    :class:`dualwrite.flags.StageResolver` bound to the key). ``keys`` are the existing row
    keys to update; inserts take keys above ``max(keys)``. ``values(key, n)`` gives the
    old-side values of the ``n``-th write (default: a string per old column). ``pace`` is
    the pause between one thread's operations, in seconds.
    """

    def __init__(self, db: Database, spec: MigrationSpec, stage: Callable[[], Stage], *,
                 keys: range, key_column: str = "id", app_writers: int = 2,
                 legacy_writers: int = 0, readers: int = 1, insert_every: int = 5,
                 values: ValueFactory | None = None, pace: float = 0.0,
                 seed: int = 7, orm: OrmClient | None = None, orm_writers: int = 0) -> None:
        self.db, self.spec, self.stage = db, spec, stage
        self.keys, self.key_column = keys, key_column
        self.values: ValueFactory = values or (
            lambda key, n: {c: f"{c} {key}.{n}" for c in spec.old_columns})
        self.insert_every, self.pace, self.seed = insert_every, pace, seed
        self.report = TrafficReport()
        if orm_writers and orm is None:
            raise ValueError("orm_writers needs an orm client")
        self.orm = orm
        self._kinds = ["app"] * app_writers + ["legacy"] * legacy_writers + ["orm"] * orm_writers
        self._shards = max(1, len(self._kinds))
        self._locks = [threading.Lock() for _ in range(self._shards)]
        #: key -> old-side values of the last acknowledged write (or of the initial row).
        self._truth: dict[int, dict[str, Any]] = {}
        self._truth_lock = threading.Lock()
        #: Keys written during the run: checked once more by :meth:`stop`.
        self._written: set[int] = set()
        self._report_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._readers = readers
        self._next_insert = [max(keys, default=0) + 1 + i for i in range(self._shards)]

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Traffic:
        """Load the current values of ``keys`` as the ground truth and start the threads."""
        d = self.db.dialect
        old = [d.quote(c) for c in self.spec.old_columns]
        for key in self.keys:
            row = self.db.fetchone(d.select_row(self.spec, self.key_column, key, old))
            if row is not None:
                self._truth[key] = dict(zip(self.spec.old_columns, row, strict=True))
        for shard, kind in enumerate(self._kinds):
            self._spawn(f"dualwrite-sim-{kind}-{shard}", self._write_loop, shard, kind)
        for i in range(self._readers):
            self._spawn(f"dualwrite-sim-reader-{i}", self._read_loop, i)
        return self

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def stop(self) -> TrafficReport:
        """Stop every thread, then check every row written during the run once more."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        self._threads = []
        for key in sorted(self._written):
            self._check(key, self.stage(), final=True)
        return self.report

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- operations ----------------------------------------------------------------------
    def _record(self, kind: str, stage: Stage, message: str | None = None) -> None:
        with self._report_lock:
            self.report.by_stage[stage.value] += 1
            if kind == "write":
                self.report.writes += 1
            elif kind == "insert":
                self.report.inserts += 1
            elif kind == "read":
                self.report.reads += 1
            elif kind == "error":
                self.report.errors.append(message or "")
            elif kind == "stale":
                self.report.stale_reads.append(message or "")

    def _retrying(self, run: Callable[[], Any],
                  already_done: Callable[[], bool] | None = None) -> Any:
        try:
            return run()
        except DatabaseError:
            with self._report_lock:
                self.report.retries += 1
            # A connection lost after COMMIT left the server but before its answer came
            # back: the write may have happened. ``already_done`` tells (an insert's row).
            if already_done is not None and already_done():
                return None
            return run()

    def _exists(self, key: int) -> bool:
        d = self.db.dialect
        query = d.select_row(self.spec, self.key_column, key, [d.quote(self.key_column)])
        return self.db.fetchone(query) is not None

    def _columns_to_write(self, kind: str, stage: Stage, old_values: Mapping[str, Any],
                          current: Mapping[str, Any] | None) -> dict[str, Any]:
        if kind == "legacy":
            return dict(old_values)
        if stage.app_stage.new_authoritative:
            written = self.spec.apply_forward(old_values)
        else:
            written = dict(old_values)
        return {**written, **mirror_values(self.spec, stage, written, current)}

    def _write_loop(self, shard: int, kind: str) -> None:
        try:
            self._write_until_stopped(shard, kind)
        finally:
            done = getattr(self.orm, "thread_done", None) if kind == "orm" else None
            if done is not None:
                done()

    def _write_until_stopped(self, shard: int, kind: str) -> None:
        rng = random.Random(self.seed + shard)
        mine = [k for k in self.keys if k % self._shards == shard] or list(self.keys)
        n = 0
        while not self._stop.is_set():
            if kind == "orm" and self.orm is not None and not self.orm.ready():
                time.sleep(0.01)
                continue
            n += 1
            stage = self.stage()
            insert = self.insert_every > 0 and n % self.insert_every == 0
            key = self._next_insert[shard] if insert else rng.choice(mine)
            old_values = self.values(key, n)
            if kind == "orm":
                if not self._orm_write(key, old_values, insert, stage):
                    continue
                if insert:
                    self._next_insert[shard] += self._shards
                    mine.append(key)
                self._record("insert" if insert else "write", stage)
                if self.pace:
                    time.sleep(self.pace)
                continue
            cols = self._columns_to_write(kind, stage, old_values, None)
            d = self.db.dialect
            with self._locks[key % self._shards]:
                query = (d.insert_row(self.spec, [self.key_column, *cols], [key, *cols.values()])
                         if insert else
                         d.update_row(self.spec, self.key_column, key, list(cols),
                                      list(cols.values())))
                try:
                    self._retrying(functools.partial(self.db.execute, query),
                                   functools.partial(self._exists, key) if insert else None)
                    if insert:
                        self._next_insert[shard] += self._shards
                except Exception as exc:  # noqa: BLE001 -- counted, the run goes on
                    self._record("error", stage, f"{kind} write of {key} at {stage}: {exc}")
                    continue
                with self._truth_lock:
                    self._truth[key] = old_values
                    self._written.add(key)
                if insert:
                    mine.append(key)
            self._record("insert" if insert else "write", stage)
            if self.pace:
                time.sleep(self.pace)

    def _orm_write(self, key: int, old_values: dict[str, Any], insert: bool,
                   stage: Stage) -> bool:
        """Write through the ORM, then read the row back through it (read-your-writes)."""
        assert self.orm is not None
        with self._locks[key % self._shards]:
            try:
                self.orm.write(key, old_values, insert)
            except Exception as exc:  # noqa: BLE001 -- counted, the run goes on
                self._record("error", stage, f"orm write of {key} at {stage}: {exc}")
                return False
            with self._truth_lock:
                self._truth[key] = old_values
                self._written.add(key)
            try:
                found = self.orm.read(key)
            except Exception as exc:  # noqa: BLE001 -- counted
                self._record("error", stage, f"orm read of {key} at {stage}: {exc}")
                return True
        self._record("read", stage)
        if found != old_values:
            self._record("stale", stage, f"row {key} through the ORM at {stage}: read "
                                         f"{found!r}, wrote {old_values!r}")
        return True

    def _read_loop(self, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        while not self._stop.is_set():
            with self._truth_lock:
                pool = self._written if self._written and rng.random() < 0.5 else None
                key = rng.choice(list(pool)) if pool and len(pool) < 50_000 else \
                    rng.choice(self.keys)
            stage = self.stage()
            with self._locks[key % self._shards]:
                self._check(key, stage)
            if self.pace:
                time.sleep(self.pace)

    def read(self, key: int, stage: Stage) -> dict[str, Any]:
        """What an application at ``stage`` reads for row ``key``, as old-side values when
        reads go to old and as new-side values when they go to new."""
        d, spec = self.db.dialect, self.spec
        if stage.app_stage.reads_new:
            cols = list(spec.new_columns)
            exprs = [d.read_new_expr(spec, c) for c in cols]
        else:
            cols = list(spec.old_columns)
            exprs = [d.quote(c) for c in cols]
        query = d.select_row(spec, self.key_column, key, exprs)
        row = self._retrying(lambda: self.db.fetchone(query))
        if row is None:
            raise LookupError(f"row {key} is gone")
        return dict(zip(cols, row, strict=True))

    def _check(self, key: int, stage: Stage, *, final: bool = False) -> None:
        with self._truth_lock:
            truth = self._truth.get(key)
        if truth is None:
            return
        expected = (self.spec.apply_forward(truth) if stage.app_stage.reads_new
                    else dict(truth))
        try:
            found = self.read(key, stage)
        except Exception as exc:  # noqa: BLE001 -- counted
            self._record("error", stage, f"read of {key} at {stage}: {exc}")
            return
        if not final:
            self._record("read", stage)
        if found != expected:
            self._record("stale", stage, f"row {key} at {stage}: read {found!r}, "
                                         f"last acknowledged {expected!r}")
