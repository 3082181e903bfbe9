"""Preflight: the pre-migration checklist as automated checks, each pass / warn / fail with
the fix. Reads only.

Checks: the spec against the live table (usable key, column types, transforms), server
version features, locks and long transactions on the table, replication, existing
triggers, table size and the space the migration needs, fleet readiness, and whether the
flag provider answers.
"""

from __future__ import annotations

import enum
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.flag_evaluation import Reason

from dualwrite.db import Database
from dualwrite.errors import DualwriteError, SpecError
from dualwrite.flags import DEFAULT_DOMAIN, StateTableProvider, flag_key
from dualwrite.migrator import Migrator
from dualwrite.schema import ValidationReport, validate_spec
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Mode
from dualwrite.state import utcnow

__all__ = ["Check", "PreflightReport", "Status", "TableStats", "human_bytes", "preflight",
           "table_stats"]

#: Transactions open longer than this are reported.
DEFAULT_LONG_TRANSACTION = 60.0
#: Replication lag above this is a warning.
REPLICATION_LAG_WARN = 10.0
_GIB = 1024 ** 3


class Status(enum.StrEnum):
    """The outcome of one check."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    """One preflight check: its outcome, what was found, and the fix."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "status": self.status.value, "detail": self.detail,
                "fix": self.fix, "data": self.data}


@dataclass
class PreflightReport:
    """Every check of one migration."""

    key: str
    table: str
    dialect: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        """No check failed (warnings allowed)."""
        return all(c.status is not Status.FAIL for c in self.checks)

    def get(self, name: str) -> Check:
        """The check called ``name``."""
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"key": self.key, "table": self.table, "dialect": self.dialect, "ok": self.ok,
                "checks": [c.to_dict() for c in self.checks]}


@dataclass(frozen=True)
class TableStats:
    """Size facts of a table, from the catalog (or an exact count where it has none)."""

    rows: int
    rows_exact: bool
    total_bytes: int
    table_bytes: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"rows": self.rows, "rows_exact": self.rows_exact,
                "total_bytes": self.total_bytes, "table_bytes": self.table_bytes}


def table_stats(db: Database, spec: MigrationSpec) -> TableStats:
    """Row count and size of ``spec``'s table: the catalog estimate, or an exact count when
    the catalog has none (a table never analysed, or SQLite)."""
    d = db.dialect
    row = db.fetchone(d.table_stats(spec.table, spec.schema)) or (None, 0, None)
    rows, exact = row[0], False
    if rows is None:
        counted = db.fetchone(d.count_rows(spec))
        rows, exact = (int(counted[0]) if counted else 0), True
    return TableStats(rows=int(rows), rows_exact=exact, total_bytes=int(row[1] or 0),
                      table_bytes=None if row[2] is None else int(row[2]))


def human_bytes(n: float) -> str:
    """``n`` bytes in B, KiB, MiB, GiB or TiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class _Checker:
    def __init__(self, migrator: Migrator, spec: MigrationSpec, *, long_transaction: float,
                 client: OpenFeatureClient | None) -> None:
        self.m = migrator
        self.db = migrator.db
        self.d = self.db.dialect
        self.spec = spec
        self.long_transaction = long_transaction
        self.client = client
        self.report: ValidationReport | None = None

    def spec_check(self) -> Check:
        try:
            self.report = validate_spec(self.db, self.spec)
        except SpecError as exc:
            return Check("spec", Status.FAIL, exc.message, exc.hint,
                         {"error": type(exc).__name__})
        transforms = ("a rename: identity transforms" if self.spec.kind == "rename" else
                      f"transforms agree on {self.report.rows_checked} sampled row(s)")
        return Check("spec", Status.PASS, f"table {self.spec.table} and columns exist; "
                     f"{transforms}")

    def key_check(self) -> Check:
        if self.report is None:
            return Check("usable key", Status.FAIL, "not checked: the spec does not validate",
                         "fix the spec first (see the spec check)")
        key = self.report.table.key or ()
        return Check("usable key", Status.PASS,
                     f"batches walk {self.spec.table} by ({', '.join(key)})",
                     data={"key": list(key)})

    def types_check(self) -> Check:
        if self.report is None:
            return Check("column types", Status.FAIL, "not checked: the spec does not validate",
                         "fix the spec first (see the spec check)")
        r = self.report
        if r.warnings:
            return Check("column types", Status.WARN, "; ".join(r.warnings),
                         "make the new column's type and nullability match the spec")
        info = r.table
        parts = [f"{c} {info.columns[c].type}" for c in self.spec.old_columns]
        if r.missing_new_columns:
            parts.append(f"new column(s) {', '.join(r.missing_new_columns)} will be added NULL "
                         f"by: dualwrite expand {self.spec.key}")
        else:
            parts += [f"{c} {info.columns[c].type} (exists)" for c in self.spec.new_columns]
        return Check("column types", Status.PASS, "; ".join(parts))

    def version_check(self) -> Check:
        row = self.db.fetchone(self.d.server_version())
        version = str(row[0]) if row else "?"
        features = self.d.version_features(version)
        missing = [f for f in features if not f[1]]
        data = {"version": version, "features": {f[0]: f[1] for f in features}}
        if missing:
            return Check("server version", Status.WARN,
                         f"{self.d.name} {version} lacks: " +
                         "; ".join(f"{f[0]} ({f[2]})" for f in missing),
                         "upgrade the server, or expect those steps to rebuild/scan (expand and "
                         "contract refuse a rebuild unless --force)", data)
        return Check("server version", Status.PASS, f"{self.d.name} {version}: " +
                     ", ".join(f[0] for f in features), data=data)

    def locks_check(self) -> Check:
        holders = self.db.fetchall(self.d.lock_holders(self.spec.table, self.spec.schema))
        waiters = self.db.fetchall(self.d.lock_waits(self.spec.table, self.spec.schema))
        longs = self.db.fetchall(self.d.long_transactions(self.long_transaction))
        data = {"holders": [_session(r) for r in holders],
                "waiters": [_session((*r[:2], None, *r[2:])) for r in waiters],
                "long_transactions": [_session(r) for r in longs]}
        old_holders = [r for r in holders if r[1] is not None and
                       float(r[1]) >= self.long_transaction]
        if waiters or old_holders or longs:
            what = []
            if old_holders:
                what.append(f"{len(old_holders)} session(s) hold a lock on {self.spec.table} in "
                            f"a transaction open for {float(old_holders[0][1]):.0f}s or more")
            if waiters:
                what.append(f"{len(waiters)} session(s) wait for a lock on {self.spec.table}")
            if longs:
                what.append(f"{len(longs)} transaction(s) open for more than "
                            f"{self.long_transaction:.0f}s")
            ids = ", ".join(str(s["session"]) for s in
                            data["holders"] + data["long_transactions"])
            return Check("locks and long transactions", Status.WARN, "; ".join(what),
                         f"expand/contract will wait and retry under their lock timeout; end or "
                         f"wait out the session(s) {ids} first ({self._kill_hint()})", data)
        note = {"postgresql": "",
                "mysql": " (metadata-lock holders are not visible: long transactions checked)",
                }.get(self.d.name, " (SQLite: one writer at a time; busy_timeout bounds waits)")
        return Check("locks and long transactions", Status.PASS,
                     f"no long transaction and no lock wait on {self.spec.table}{note}",
                     data=data)

    def _kill_hint(self) -> str:
        return {"postgresql": "SELECT pg_terminate_backend(pid)", "mysql": "KILL <id>"}.get(
            self.d.name, "finish the other connection's transaction")

    def replication_check(self) -> Check:
        row = self.db.fetchone(self.d.replication_status()) or (0, None, 0)
        replicas, lag, replica = int(row[0] or 0), row[1], bool(row[2])
        data = {"replicas": replicas, "lag_seconds": None if lag is None else float(lag),
                "this_is_a_replica": replica}
        if replica:
            return Check("replication", Status.FAIL, "this server is a replica or read-only",
                         "point --database-url at the primary", data)
        if lag is not None and float(lag) > REPLICATION_LAG_WARN:
            return Check("replication", Status.WARN, f"replay lag {float(lag):.1f}s on "
                         f"{replicas} replica(s)", "let the replicas catch up; run the backfill "
                         "with a lower rate (and it pauses itself past the lag threshold)", data)
        if replicas:
            lag_txt = f"lag {float(lag):.1f}s" if lag is not None else \
                "their lag is not visible from the primary: watch Seconds_Behind_Source"
            return Check("replication", Status.PASS, f"{replicas} replica(s); {lag_txt}",
                         data=data)
        return Check("replication", Status.PASS, "no replica connected" if self.d.name !=
                     "sqlite" else "SQLite: no replication", data=data)

    def triggers_check(self) -> Check:
        rows = self.db.fetchall(self.d.table_triggers(self.spec.table, self.spec.schema))
        ours = [str(r[0]) for r in rows if str(r[0]).startswith("dualwrite_")]
        foreign = [str(r[0]) for r in rows if not str(r[0]).startswith("dualwrite_")]
        data = {"dualwrite": ours, "other": foreign}
        if foreign:
            fix = ("check they do not write the old column: in app mode their writes bypass "
                   "the adapters (consider mode = \"trigger\")" if self.spec.mode is Mode.APP
                   else "check they do not fight the mirror triggers (same column, same event)")
            return Check("existing triggers", Status.WARN,
                         f"{len(foreign)} other trigger(s) on {self.spec.table}: "
                         f"{', '.join(foreign)}", fix, data)
        detail = f"dualwrite's own: {', '.join(ours)}" if ours else "none"
        return Check("existing triggers", Status.PASS, detail, data=data)

    def size_check(self) -> Check:
        stats = table_stats(self.db, self.spec)
        heap = stats.table_bytes or stats.total_bytes
        # PostgreSQL's backfill UPDATE writes a new version of every row (the table grows up
        # to twice until VACUUM); the copied indexes grow like the old column's; MySQL
        # updates in place (undo log) but an INPLACE rebuild needs a full copy.
        factor = 1.0 if self.d.name == "postgresql" else 0.5
        need = int(heap * factor + (stats.total_bytes - heap) * 0.5)
        data = {**stats.to_dict(), "estimated_extra_bytes": need}
        detail = (f"{stats.rows} row(s) ({'exact' if stats.rows_exact else 'estimate'}), "
                  f"{human_bytes(stats.total_bytes)} with indexes; the migration needs about "
                  f"{human_bytes(need)} more")
        free = self._free_bytes()
        if free is not None:
            data["free_bytes"] = free
            detail += f"; {human_bytes(free)} free"
            if free < need:
                return Check("table size and space", Status.FAIL, detail,
                             "free disk space first (or migrate a copy elsewhere)", data)
            return Check("table size and space", Status.PASS, detail, data=data)
        if need > _GIB:
            return Check("table size and space", Status.WARN, detail + " (the server's free "
                         "space is not visible over SQL)", "check the server's free disk "
                         "space before the backfill", data)
        return Check("table size and space", Status.PASS, detail, data=data)

    def _free_bytes(self) -> int | None:
        url = self.db.url or ""
        if self.d.name != "sqlite" or "://" not in url:
            return None
        path = Path(url.split("://", 1)[1][1:] or ".").resolve().parent
        return shutil.disk_usage(path).free if path.exists() else None

    def fleet_check(self) -> Check:
        if not self.m.state.is_initialized():
            return Check("fleet readiness", Status.WARN, "the state tables do not exist yet",
                         "run: dualwrite init")
        now = utcnow()
        every = self.m.state.fleet(self.spec.key)
        live = [i for i in every if i.alive(now, self.m.fleet_ttl)]
        stale = len(every) - len(live)
        data = {"live": [i.to_dict() for i in live], "stale": stale}
        if not live:
            return Check("fleet readiness", Status.WARN,
                         "no live application instance reports for this migration" +
                         (f" ({stale} stale)" if stale else ""),
                         "start the adapters (FleetMember) in the application so gates can "
                         "wait for every instance", data)
        stages = sorted({i.stage.value for i in live})
        return Check("fleet readiness", Status.PASS,
                     f"{len(live)} live instance(s) observing {', '.join(stages)}" +
                     (f"; {stale} stale entr(ies) ignored" if stale else ""), data=data)

    def flags_check(self) -> Check:
        name = flag_key(self.spec.key)
        client = self.client or api.get_client(DEFAULT_DOMAIN)
        provider = client.provider.get_metadata().name
        try:
            if provider == "No-op Provider":
                provider = StateTableProvider.__name__
                if not self.m.state.is_initialized():
                    return Check("flag provider", Status.WARN, "no flag provider is set and the "
                                 "state tables (served by the built-in provider) do not exist",
                                 "run: dualwrite init", {"provider": provider, "flag": name})
                details: Any = StateTableProvider(self.db).resolve_string_details(name, "", None)
            else:
                details = client.get_string_details(name, "")
        except Exception as exc:  # noqa: BLE001 -- a broken provider is the finding
            return Check("flag provider", Status.FAIL, f"{provider} failed: {exc}",
                         "check the flag provider's configuration and reachability")
        data = {"provider": provider, "flag": name, "value": details.value,
                "error": str(details.error_code) if details.error_code else None}
        if details.error_code is not None or details.reason == Reason.ERROR:
            code = str(details.error_code)
            if "FLAG_NOT_FOUND" in code:
                return Check("flag provider", Status.WARN, f"{provider} answers but has no flag "
                             f"{name}", "run: dualwrite init (the state-table provider serves "
                             "registered migrations), or define the flag in your provider",
                             data)
            return Check("flag provider", Status.FAIL, f"{provider}: {details.error_message or code}",
                         "check the flag provider's configuration and reachability", data)
        return Check("flag provider", Status.PASS, f"{provider} serves {name} = "
                     f"{details.value!r}", data=data)


def _session(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"session": row[0], "seconds": None if row[1] is None else float(row[1]),
            "state": row[2], "statement": row[3]}


def preflight(migrator: Migrator, key: str, *, long_transaction: float = DEFAULT_LONG_TRANSACTION,
              client: OpenFeatureClient | None = None) -> PreflightReport:
    """Run every check for migration ``key``. Reads only; never raises for a failed check
    (a check that cannot run fails with the reason)."""
    spec = migrator.spec(key)
    c = _Checker(migrator, spec, long_transaction=long_transaction, client=client)
    order: list[tuple[str, Callable[[], Check]]] = [
        ("spec", c.spec_check), ("usable key", c.key_check), ("column types", c.types_check),
        ("server version", c.version_check), ("locks and long transactions", c.locks_check),
        ("replication", c.replication_check), ("existing triggers", c.triggers_check),
        ("table size and space", c.size_check), ("fleet readiness", c.fleet_check),
        ("flag provider", c.flags_check)]
    checks: list[Check] = []
    table_ok = True
    for name, fn in order:
        if not table_ok and name in ("locks and long transactions", "existing triggers",
                                     "table size and space"):
            checks.append(Check(name, Status.FAIL, "not checked: the table is not usable",
                                "fix the spec first (see the spec check)"))
            continue
        try:
            checks.append(fn())
        except DualwriteError as exc:
            checks.append(Check(name, Status.FAIL, exc.message, exc.hint))
        if name == "spec" and checks[-1].status is Status.FAIL and \
                checks[-1].data.get("error") == "UnknownTableError":
            table_ok = False
    return PreflightReport(key, spec.table, migrator.db.dialect.name, checks)
