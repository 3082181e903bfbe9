"""Mirror triggers (trigger mode): install, uninstall, status and drift.

In trigger mode the database itself keeps the old and new columns in step, both ways, so
writers the ORM adapters cannot see -- raw SQL, services in other languages, a psql session,
old pods during a rolling deploy -- are covered too. :class:`TriggerInstaller` manages the
triggers of one migration; the SQL comes from :mod:`dualwrite.dialects` (``# -- triggers --``).

What a trigger does, per row:

* INSERT: a missing side is filled from the other (new = f(old) or old = g(new)).
* UPDATE: the side that changed is copied to the side that did not.
* When a write sets (INSERT) or changes (UPDATE) both sides, the stage recorded in
  ``dualwrite_migrations`` decides: old wins up to ``shadow``, new wins from ``live`` on
  (:data:`NEW_WINS_FROM`). Without a recorded stage, old wins.
* ``None`` maps to ``None`` in both directions; no trigger loop, no double application.

Every object carries a marker ``/* dualwrite:KEY:HASH */`` where HASH is a digest of its
rendered SQL. :meth:`TriggerInstaller.status` compares the catalog with the rendering:

* ``installed`` -- present, marked, the text and shape match;
* ``missing`` -- absent;
* ``outdated`` -- marked by dualwrite for this key but rendered from another spec/version;
* ``drifted`` -- marked with the current hash but changed by hand (text, or disabled);
* ``foreign`` -- an object of the same name dualwrite did not create: never replaced.
"""

from __future__ import annotations

import difflib
import enum
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dualwrite.db import Database, Transaction
from dualwrite.dialects.base import TRIGGER_MARKER_RE, TriggerObject, TriggerTarget
from dualwrite.errors import DatabaseError, ForeignTriggerError, SpecError, TriggerError
from dualwrite.schema import validate_spec
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Mode, Stage
from dualwrite.state import StateStore

__all__ = [
    "NEW_WINS_FROM",
    "DriftItem",
    "InstallResult",
    "ObjectStatus",
    "TriggerInstaller",
    "TriggerState",
    "TriggerStatus",
    "classify",
]

#: From this stage on the new side is authoritative when a write changes both sides.
NEW_WINS_FROM = Stage.LIVE
#: Rows the install preflight evaluates the SQL transforms on.
PREFLIGHT_ROWS = 10_000


class TriggerState(enum.StrEnum):
    """The state of one trigger object, or of a migration's set of them."""

    INSTALLED = "installed"
    MISSING = "missing"
    OUTDATED = "outdated"
    DRIFTED = "drifted"
    FOREIGN = "foreign"


@dataclass(frozen=True)
class ObjectStatus:
    """One expected object as found in the catalog."""

    name: str
    kind: str
    state: TriggerState
    expected_digest: str
    found_digest: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "kind": self.kind, "state": self.state.value,
                "expected_hash": self.expected_digest, "found_hash": self.found_digest,
                "detail": self.detail}


@dataclass(frozen=True)
class TriggerStatus:
    """The mirror triggers of one migration, as the database has them now."""

    key: str
    table: str
    state: TriggerState
    objects: tuple[ObjectStatus, ...]

    @property
    def current(self) -> bool:
        """Every object is installed and matches the spec."""
        return self.state is TriggerState.INSTALLED

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"key": self.key, "table": self.table, "state": self.state.value,
                "current": self.current, "objects": [o.to_dict() for o in self.objects]}


@dataclass(frozen=True)
class DriftItem:
    """One object that differs from what dualwrite would install, with a unified diff."""

    name: str
    kind: str
    state: TriggerState
    diff: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "kind": self.kind, "state": self.state.value,
                "diff": list(self.diff)}


@dataclass(frozen=True)
class InstallResult:
    """What :meth:`TriggerInstaller.install` or ``uninstall`` did."""

    key: str
    action: str  # "created", "replaced", "unchanged", "dropped", "absent"
    objects: tuple[str, ...] = ()
    attempts: int = 0
    skipped_foreign: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"key": self.key, "action": self.action, "objects": list(self.objects),
                "attempts": self.attempts, "skipped_foreign": list(self.skipped_foreign)}


#: Work done under the table lock: (transaction, current statuses) -> names changed.
_Work = Callable[[Transaction, list[ObjectStatus]], tuple[str, ...]]


def _require_sql(spec: MigrationSpec) -> None:
    if not spec.has_sql_transforms:
        raise SpecError(f"migration {spec.key!r} has no SQL transforms; trigger mode needs "
                        "forward_sql and backward_sql", key=spec.key, table=spec.table,
                        hint="add forward_sql/backward_sql to the spec (the Python forms "
                             "cannot run inside the database)")


def classify(spec: MigrationSpec, objects: Sequence[TriggerObject],
             catalog: Mapping[tuple[str, str], tuple[str, str]]) -> list[ObjectStatus]:
    """The state of each expected object given the catalog: ``{(name, kind): (definition,
    shape)}`` of the objects that exist under those names (pure; no database)."""
    out = []
    for o in objects:
        found = catalog.get((o.name, o.kind))
        if found is None:
            out.append(ObjectStatus(o.name, o.kind, TriggerState.MISSING, o.digest))
            continue
        definition, shape = found
        m = TRIGGER_MARKER_RE.search(definition)
        if m is None or m.group("key") != spec.key:
            out.append(ObjectStatus(o.name, o.kind, TriggerState.FOREIGN, o.digest,
                                    detail="no dualwrite marker for this migration"))
        elif m.group("digest") != o.digest:
            out.append(ObjectStatus(o.name, o.kind, TriggerState.OUTDATED, o.digest,
                                    m.group("digest"),
                                    "rendered from another spec or dualwrite version"))
        elif definition.strip() != o.definition.strip() or shape != o.shape:
            why = "its text was changed" if definition.strip() != o.definition.strip() \
                else f"it is {shape!r}, expected {o.shape!r}"
            out.append(ObjectStatus(o.name, o.kind, TriggerState.DRIFTED, o.digest,
                                    m.group("digest"), f"changed by hand: {why}"))
        else:
            out.append(ObjectStatus(o.name, o.kind, TriggerState.INSTALLED, o.digest,
                                    o.digest))
    return out


def _overall(states: Sequence[TriggerState]) -> TriggerState:
    if TriggerState.FOREIGN in states:
        return TriggerState.FOREIGN
    if all(s is TriggerState.INSTALLED for s in states):
        return TriggerState.INSTALLED
    if all(s is TriggerState.MISSING for s in states):
        return TriggerState.MISSING
    if TriggerState.OUTDATED in states:
        return TriggerState.OUTDATED
    return TriggerState.DRIFTED  # changed by hand, or partly dropped


class TriggerInstaller:
    """Install, uninstall, inspect the mirror triggers of migrations on one database.

    ``lock_timeout`` (seconds) bounds each wait for the table lock the trigger DDL needs;
    a timed-out attempt is rolled back and retried ``retries`` times with a growing pause,
    so that a long transaction on the table delays the install instead of queueing every
    writer behind it.
    """

    def __init__(self, db: Database, *, lock_timeout: float = 2.0, retries: int = 5,
                 backoff: float = 0.5) -> None:
        self.db = db
        self.d = db.dialect
        self.lock_timeout = lock_timeout
        self.retries = retries
        self.backoff = backoff

    # -- rendering --------------------------------------------------------------------
    def target(self, spec: MigrationSpec) -> TriggerTarget:
        """Where ``spec``'s triggers go: resolved schema, state schema and table key."""
        _require_sql(spec)
        report = validate_spec(self.db, spec, check_transforms=False)
        if not report.new_columns_exist:
            raise TriggerError(
                f"migration {spec.key!r}: the new column(s) "
                f"{', '.join(report.missing_new_columns)} do not exist in {spec.table!r}",
                key=spec.key, table=spec.table,
                hint=f"add them first: dualwrite expand {spec.key} (or your own migration)")
        default = None
        q = self.d.default_schema()
        if q is not None:
            row = self.db.fetchone(q)
            default = str(row[0]) if row and row[0] is not None else None
        key = report.table.key or ()
        return TriggerTarget(schema=spec.schema or default, state_schema=default,
                             key_columns=tuple(key),
                             new_wins_stages=tuple(s.value for s in Stage if s >= NEW_WINS_FROM))

    def objects(self, spec: MigrationSpec, target: TriggerTarget | None = None
                ) -> list[TriggerObject]:
        """The objects dualwrite installs for ``spec`` (rendered, not executed)."""
        _require_sql(spec)
        return self.d.trigger_objects(spec, target or self.target(spec))

    def sql(self, spec: MigrationSpec) -> list[str]:
        """The DDL :meth:`install` would run on an empty slate (for review, Django's
        ``sqlmigrate``, ``--dry-run``)."""
        return [sql for o in self.objects(spec) for sql in o.ddl]

    # -- inspection -------------------------------------------------------------------
    def _catalog(self, tx: Transaction, spec: MigrationSpec, target: TriggerTarget,
                 objects: Sequence[TriggerObject]) -> dict[tuple[str, str], tuple[str, str]]:
        rows = tx.fetchall(self.d.trigger_catalog(spec, target, objects))
        return {(str(r[0]), str(r[1])): (str(r[2] or ""), str(r[3] or "")) for r in rows}

    def _status(self, spec: MigrationSpec, target: TriggerTarget,
                objects: Sequence[TriggerObject]) -> TriggerStatus:
        with self.db.transaction() as tx:
            found = classify(spec, objects, self._catalog(tx, spec, target, objects))
        return TriggerStatus(spec.key, spec.table, _overall([o.state for o in found]),
                             tuple(found))

    def status(self, spec: MigrationSpec) -> TriggerStatus:
        """installed / missing / outdated / drifted / foreign, per object and overall."""
        target = self.target(spec)
        return self._status(spec, target, self.objects(spec, target))

    def drift(self, spec: MigrationSpec) -> list[DriftItem]:
        """Every object that is not exactly what :meth:`install` would create, with a
        unified diff of its catalog text against the rendering (empty when current)."""
        target = self.target(spec)
        objects = self.objects(spec, target)
        with self.db.transaction() as tx:
            catalog = self._catalog(tx, spec, target, objects)
        items = []
        for o, st in zip(objects, classify(spec, objects, catalog), strict=True):
            if st.state is TriggerState.INSTALLED:
                continue
            definition, shape = catalog.get((o.name, o.kind), ("", ""))
            expected = [*o.definition.strip().splitlines(), f"-- shape: {o.shape}"]
            actual = ([*definition.strip().splitlines(), f"-- shape: {shape}"]
                      if (o.name, o.kind) in catalog else [])
            diff = difflib.unified_diff(actual, expected, f"{o.name} (database)",
                                        f"{o.name} (dualwrite)", lineterm="")
            items.append(DriftItem(o.name, o.kind, st.state, tuple(diff)))
        return items

    # -- changes ----------------------------------------------------------------------
    def _require_trigger_mode(self, spec: MigrationSpec) -> None:
        if spec.mode is not Mode.TRIGGER:
            raise TriggerError(
                f"migration {spec.key!r} is in app mode: the ORM adapters mirror its writes",
                key=spec.key, table=spec.table,
                hint='set mode = "trigger" in the spec (while the migration is at off or '
                     'expand) to let the database mirror writes')

    def _preflight(self, spec: MigrationSpec, target: TriggerTarget) -> None:
        """Evaluate the trigger's transforms on existing rows; a failure changes nothing."""
        warn = self.d.preflight_warnings()
        for direction in ("forward", "backward"):
            try:
                with self.db.transaction() as tx:
                    tx.fetchall(self.d.trigger_preflight(spec, target, direction,
                                                         PREFLIGHT_ROWS))
                    warnings = tx.fetchall(warn) if warn is not None else []
            except DatabaseError as exc:
                raise self._transform_failed(spec, direction, str(exc.cause or exc),
                                             exc.cause) from exc
            if warnings:
                raise self._transform_failed(spec, direction, str(warnings[0][-1]), None)

    @staticmethod
    def _transform_failed(spec: MigrationSpec, direction: str, why: str,
                          cause: BaseException | None) -> TriggerError:
        return TriggerError(
            f"migration {spec.key!r}: the {direction} SQL transform fails on existing rows of "
            f"{spec.table!r}: {why.strip().splitlines()[0] if why.strip() else why}",
            key=spec.key, table=spec.table, cause=cause,
            hint=f"fix the spec's {direction}_sql (or the data); nothing was installed")

    def _locked(self, spec: MigrationSpec, target: TriggerTarget, objects: list[TriggerObject],
                exclusive: bool, work: _Work) -> tuple[tuple[str, ...], int]:
        """Run ``work(tx, statuses)`` in one transaction holding the table lock, retrying a
        lock timeout. Returns its result and the number of attempts."""
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.db.transaction() as tx:
                    for q in self.d.trigger_lock(spec, target, int(self.lock_timeout * 1000),
                                                 exclusive):
                        tx.execute(q)
                    try:
                        statuses = classify(spec, objects,
                                            self._catalog(tx, spec, target, objects))
                        return work(tx, statuses), attempt
                    finally:
                        for q in self.d.trigger_unlock():
                            tx.execute(q)
            except TriggerError:
                raise  # e.g. a foreign object that appeared meanwhile: nothing was changed
            except DatabaseError as exc:
                if not self.d.is_lock_timeout(exc.cause) or attempt > self.retries:
                    if self.d.is_lock_timeout(exc.cause):
                        raise TriggerError(
                            f"migration {spec.key!r}: could not lock table {spec.table!r} "
                            f"within {self.lock_timeout:g}s in {attempt} attempt(s)",
                            key=spec.key, table=spec.table, cause=exc.cause,
                            hint="a long transaction holds the table; retry when it ends "
                                 f"(dualwrite triggers install {spec.key})") from exc
                    raise self._ddl_failed(spec, target, objects, exc) from exc
                time.sleep(self.backoff * attempt)

    def _ddl_failed(self, spec: MigrationSpec, target: TriggerTarget,
                    objects: list[TriggerObject], exc: DatabaseError) -> TriggerError:
        after = ""
        if not self.d.transactional_ddl:
            try:
                after = f"; the triggers are now {self._status(spec, target, objects).state}"
            except DatabaseError:
                after = "; their state is unknown"
        return TriggerError(f"migration {spec.key!r}: trigger DDL failed on {spec.table!r}: "
                            f"{exc.cause or exc}{after}", key=spec.key, table=spec.table,
                            cause=exc.cause,
                            hint=f"check with: dualwrite triggers status {spec.key}")

    @staticmethod
    def _refuse_foreign(spec: MigrationSpec, statuses: Sequence[ObjectStatus]) -> None:
        foreign = [s.name for s in statuses if s.state is TriggerState.FOREIGN]
        if foreign:
            raise ForeignTriggerError(
                f"migration {spec.key!r}: {', '.join(foreign)} already exist(s) on "
                f"{spec.table!r} and dualwrite did not create it; it is never replaced",
                key=spec.key, table=spec.table, objects=foreign,
                hint="rename or drop that object yourself if it is obsolete, then rerun: "
                     f"dualwrite triggers install {spec.key}")

    def install(self, spec: MigrationSpec) -> InstallResult:
        """Create or bring up to date ``spec``'s mirror triggers. Idempotent.

        Validates the spec and evaluates its SQL transforms on existing rows first; refuses
        (:class:`ForeignTriggerError`) if an object of the same name is not dualwrite's.
        On PostgreSQL and SQLite everything happens in one transaction; on MySQL/MariaDB
        each DDL commits on its own, under ``LOCK TABLES ... WRITE``.
        """
        self._require_trigger_mode(spec)
        target = self.target(spec)
        objects = self.objects(spec, target)
        before = self._status(spec, target, objects)
        self._refuse_foreign(spec, before.objects)
        if before.current:
            return InstallResult(spec.key, "unchanged")
        StateStore(self.db).init()
        self._preflight(spec, target)
        exclusive = any(s.state is not TriggerState.MISSING for s in before.objects)

        def work(tx: Transaction, statuses: list[ObjectStatus]) -> tuple[str, ...]:
            self._refuse_foreign(spec, statuses)
            done = []
            for o, st in zip(objects, statuses, strict=True):
                if st.state is TriggerState.INSTALLED:
                    continue
                if st.state is not TriggerState.MISSING and not o.replaceable:
                    for q in o.drop:
                        tx.execute(q)
                for q in o.create:
                    tx.execute(q)
                done.append(o.name)
            return tuple(done)

        names, attempts = self._locked(spec, target, objects, exclusive, work)
        action = "created" if before.state is TriggerState.MISSING else "replaced"
        return InstallResult(spec.key, action if names else "unchanged", names, attempts)

    def uninstall(self, spec: MigrationSpec) -> InstallResult:
        """Drop ``spec``'s mirror triggers (only dualwrite's own; a foreign object of the
        same name is left alone and reported). Idempotent."""
        target = self.target(spec)
        objects = self.objects(spec, target)
        before = self._status(spec, target, objects)
        foreign = tuple(s.name for s in before.objects if s.state is TriggerState.FOREIGN)
        if all(s.state in (TriggerState.MISSING, TriggerState.FOREIGN) for s in before.objects):
            return InstallResult(spec.key, "absent", skipped_foreign=foreign)

        def work(tx: Transaction, statuses: list[ObjectStatus]) -> tuple[str, ...]:
            done = []
            for o, st in reversed(list(zip(objects, statuses, strict=True))):
                if st.state in (TriggerState.MISSING, TriggerState.FOREIGN):
                    continue
                for q in o.drop:
                    tx.execute(q)
                done.append(o.name)
            return tuple(done)

        names, attempts = self._locked(spec, target, objects, True, work)
        return InstallResult(spec.key, "dropped" if names else "absent", names, attempts,
                             skipped_foreign=foreign)
