"""The runbook: a step-by-step plan for one migration, generated from the live database.

Durations come from measured facts: the row count and size from the catalog, and a backfill
rate measured on a sample of the table without changing it -- the forward ``UPDATE`` of a
few batches runs inside a transaction that is rolled back. Before expand (no new column
yet) the sample writes the old column onto itself instead, a stand-in for the same row
writes; the plan says which it used. Re-run ``dualwrite plan`` after expand for the
measured rate.

Structure (what operators expect): pre-migration checklist (the preflight results),
the steps with estimated durations, application changes per stage, rollback at every
step, monitoring queries with alert thresholds, post-migration cleanup.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dualwrite.db import Database
from dualwrite.ddl import DdlPlan, LockPolicy, plan_contract, plan_expand
from dualwrite.errors import DualwriteError
from dualwrite.migrator import Migrator
from dualwrite.preflight import PreflightReport, TableStats, human_bytes, preflight, table_stats
from dualwrite.schema import inspect_table
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Stage
from dualwrite.state import StateStore, utcnow

__all__ = ["ALERTS", "Alert", "BackfillRate", "Runbook", "RunbookStep", "build_runbook",
           "measure_backfill_rate"]

DEFAULT_BATCH = 1000
DEFAULT_SAMPLE_BATCHES = 30


@dataclass(frozen=True)
class Alert:
    """A monitoring threshold: what to watch, when to act, and what to do."""

    metric: str
    threshold: str
    action: str


#: Alert thresholds of the runbook (the backfill pauses itself past the first two).
ALERTS: tuple[Alert, ...] = (
    Alert("replication lag", "> 10 s", "pause the backfill (dualwrite backfill pauses itself); "
          "resume when replicas catch up"),
    Alert("lock waits on the table", "> lock timeout (2 s)", "pause the backfill; find the "
          "blocking session (dualwrite preflight KEY)"),
    Alert("backfill batch p95", "> 1 s", "lower --batch-size or add --sleep between batches"),
    Alert("shadow mismatches", "> 0", "stay in shadow; inspect dualwrite_verify sample keys; "
          "roll back if the transform is wrong"),
    Alert("application error rate / p99 latency", "> baseline + 10 %",
          "roll back one stage: dualwrite rollback KEY"),
)


class _Rollback(Exception):
    """Raised inside a transaction to roll it back on purpose."""


@dataclass(frozen=True)
class BackfillRate:
    """Rows per second of the forward UPDATE (and of a transforming read) on a sample."""

    rows: int
    seconds: float
    read_seconds: float
    batch_size: int
    #: ``forward`` (the real UPDATE, rolled back) or ``proxy`` (old = old, before expand).
    method: str
    #: What a commit costs (median of a few probe commits on the fleet state table);
    #: ``None`` when not probed.
    commit_seconds: float | None = None

    @property
    def rows_per_second(self) -> float:
        """The write rate of the sample (0 when the sample is empty)."""
        return self.rows / self.seconds if self.seconds > 0 and self.rows else 0.0

    @property
    def read_rows_per_second(self) -> float:
        """The read-and-transform rate of the sample."""
        return self.rows / self.read_seconds if self.read_seconds > 0 and self.rows else 0.0

    def backfill_seconds(self, rows: int) -> float | None:
        """Estimated time to backfill ``rows`` rows in committed batches."""
        if rows == 0:
            return 0.0
        if not self.rows_per_second:
            return None
        batches = -(-rows // self.batch_size)
        return rows / self.rows_per_second + batches * (self.commit_seconds or 0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"rows": self.rows, "seconds": round(self.seconds, 4),
                "commit_seconds": self.commit_seconds,
                "read_seconds": round(self.read_seconds, 4), "batch_size": self.batch_size,
                "method": self.method, "rows_per_second": round(self.rows_per_second, 1),
                "read_rows_per_second": round(self.read_rows_per_second, 1)}


def measure_backfill_rate(db: Database, spec: MigrationSpec, key: Sequence[str], *,
                          batch_size: int = DEFAULT_BATCH,
                          batches: int = DEFAULT_SAMPLE_BATCHES,
                          commit_probe: bool = True) -> BackfillRate:
    """Time ``batches`` backfill batches of ``batch_size`` rows on the first keys of the
    table -- the backfill's own batch UPDATE -- each in a transaction that is rolled back:
    the table does not change.

    With ``commit_probe`` the cost of a batch's commit is timed too, on as many probe rows
    written to and deleted from the fleet state table (not the migrated table)."""
    d = db.dialect
    info = inspect_table(db, spec.table, spec.schema)
    forward = info is not None and all(c in info.columns for c in spec.new_columns) and all(
        spec.forward_template(d.name, c) for c in spec.new_columns)
    keys = db.fetchall(d.key_sample(spec, key, batch_size * batches))
    # Batches ``lo < key <= hi`` as the backfill walks them.
    ends = [keys[min(i + batch_size, len(keys)) - 1] for i in range(0, len(keys), batch_size)]
    ranges = list(zip([None, *ends[:-1]], ends, strict=True))
    write = read = 0.0
    for lo, hi in ranges:
        # One transaction per batch, rolled back at once: row locks are held for one batch
        # only, as in the real backfill.
        try:
            with db.transaction() as tx:
                t0 = time.perf_counter()
                tx.fetchall(d.read_range(spec, key, lo, hi))
                t1 = time.perf_counter()
                tx.execute(d.backfill_update(spec, key, "forward", lo, hi) if forward
                           else d.proxy_update_range(spec, key, lo, hi))
                write += time.perf_counter() - t1
                read += t1 - t0
                raise _Rollback
        except _Rollback:
            pass
    return BackfillRate(rows=len(keys), seconds=write, read_seconds=read,
                        batch_size=batch_size, method="forward" if forward else "proxy",
                        commit_seconds=_commit_cost(db, spec.key, min(batch_size, 1000))
                        if commit_probe else None)


def _commit_cost(db: Database, key: str, rows: int, probes: int = 5) -> float | None:
    """Median time of the COMMIT of a real write as large as a batch that leaves nothing
    behind: ``rows`` probe rows inserted into and deleted from the fleet state table in one
    transaction (``None`` before ``dualwrite init``). Rows rewritten with their own values
    would not do: the servers skip unchanged rows."""
    d = db.dialect
    if not StateStore(db).is_initialized():
        return None
    times = []
    now = utcnow()
    for _ in range(probes):
        tag = f"dualwrite-plan-probe-{uuid.uuid4().hex[:12]}"
        with db.transaction() as tx:
            for i in range(rows):
                tx.execute(d.upsert_fleet(f"{tag}-{i}", key, "plan", os.getpid(), "probe",
                                          "off", now))
            for i in range(rows):
                tx.execute(d.delete_fleet(f"{tag}-{i}"))
            t0 = time.perf_counter()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@dataclass
class RunbookStep:
    """One step of the runbook."""

    title: str
    command: str
    seconds: float | None
    duration_basis: str
    app_change: str
    rollback: str
    sql: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"title": self.title, "command": self.command,
                "estimated_seconds": None if self.seconds is None else round(self.seconds, 2),
                "duration_basis": self.duration_basis, "app_change": self.app_change,
                "rollback": self.rollback, "sql": list(self.sql)}


@dataclass
class Runbook:
    """The whole plan for one migration."""

    key: str
    table: str
    dialect: str
    stage: str
    stats: TableStats
    rate: BackfillRate | None
    preflight: PreflightReport
    steps: list[RunbookStep]
    app_changes: list[dict[str, str]]
    monitoring: list[dict[str, Any]]
    alerts: tuple[Alert, ...]
    cleanup: list[str]
    notes: list[str]

    def step(self, title: str) -> RunbookStep:
        """The step whose title starts with ``title``."""
        return next(s for s in self.steps if s.title.startswith(title))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"key": self.key, "table": self.table, "dialect": self.dialect,
                "stage": self.stage, "stats": self.stats.to_dict(),
                "backfill_rate": self.rate.to_dict() if self.rate else None,
                "checklist": self.preflight.to_dict(),
                "steps": [s.to_dict() for s in self.steps],
                "app_changes": self.app_changes, "monitoring": self.monitoring,
                "alerts": [vars(a) for a in self.alerts], "cleanup": self.cleanup,
                "notes": self.notes}

    def to_markdown(self) -> str:
        """The runbook as a Markdown document."""
        out = [f"# Runbook: {self.key}", "",
               f"Table `{self.table}` on {self.dialect}: {self.stats.rows} rows "
               f"({'exact count' if self.stats.rows_exact else 'catalog estimate'}), "
               f"{human_bytes(self.stats.total_bytes)} with indexes. "
               f"Current stage: **{self.stage}**.", ""]
        if self.rate is not None:
            basis = ("the forward UPDATE" if self.rate.method == "forward"
                     else "a stand-in UPDATE (old = old; the new column does not exist yet)")
            out += [f"Backfill rate measured on {self.rate.rows} rows in batches of "
                    f"{self.rate.batch_size} with {basis}, rolled back: "
                    f"**{self.rate.rows_per_second:,.0f} rows/s** (reads "
                    f"{self.rate.read_rows_per_second:,.0f} rows/s).", ""]
        out += ["## 1. Pre-migration checklist", ""]
        for c in self.preflight.checks:
            box = "x" if c.status.value == "pass" else " "
            line = f"- [{box}] **{c.name}** ({c.status.value}): {c.detail}"
            if c.fix and c.status.value != "pass":
                line += f" -- fix: {c.fix}"
            out.append(line)
        out += ["", "## 2. Steps", "",
                "| # | step | command | estimated duration | rollback |",
                "|---|---|---|---|---|"]
        for i, s in enumerate(self.steps, 1):
            out.append(f"| {i} | {s.title} | `{s.command}` | {_human_seconds(s.seconds)} "
                       f"({s.duration_basis}) | {s.rollback} |")
        total = sum(s.seconds or 0 for s in self.steps)
        out += ["", f"Total estimated: {_human_seconds(total)} (confidence windows included).",
                ""]
        for i, s in enumerate(self.steps, 1):
            if s.sql:
                out += [f"Step {i} ({s.title}) runs:", "", "```sql",
                        *[q + ";" for q in s.sql], "```", ""]
        out += ["## 3. Application changes per stage", "",
                "| stage | writes | reads return | what to deploy |", "|---|---|---|---|"]
        for a in self.app_changes:
            out.append(f"| {a['stage']} | {a['writes']} | {a['reads']} | {a['deploy']} |")
        out += ["", "## 4. Rollback", "",
                "Every step above names its rollback. One stage back is always "
                f"`dualwrite rollback {self.key}` until `complete`; from `complete` it needs a "
                "reverse backfill and verify; `contract` is irreversible.", "",
                "## 5. Monitoring", ""]
        for mq in self.monitoring:
            out += [f"- **{mq['what']}** (alert {mq['alert']}):", "", "  ```sql",
                    f"  {mq['sql']}", "  ```"]
            if mq["params"]:
                out.append(f"  parameters: {mq['params']}")
        out += ["", "| metric | alert threshold | action |", "|---|---|---|"]
        out += [f"| {a.metric} | {a.threshold} | {a.action} |" for a in self.alerts]
        out += ["", "## 6. Post-migration cleanup", ""]
        out += [f"- [ ] {c}" for c in self.cleanup]
        if self.notes:
            out += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(out) + "\n"


def _human_seconds(s: float | None) -> str:
    if s is None:
        return "unknown"
    if s < 1:
        return "< 1 s"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _ddl_seconds(plan: DdlPlan, rows: int, rate: BackfillRate | None) -> tuple[float | None, str]:
    """Time of a DDL phase: scans (index builds, VALIDATE) from the measured read rate,
    metadata-only statements as instant."""
    scans = sum(1 for s in plan.pending if s.name.startswith(("create ", "validate ", "set not")))
    if not scans:
        return 0.0, "metadata-only statements"
    if rate is None or not rate.read_rows_per_second:
        return None, "no sample to measure"
    # CREATE INDEX CONCURRENTLY scans the table twice and sorts.
    per_scan = rows / rate.read_rows_per_second
    return scans * 2 * per_scan, f"{scans} table scan(s) at the measured read rate"


def _app_changes(key: str) -> list[dict[str, str]]:
    def row(stage: Stage, deploy: str) -> dict[str, str]:
        writes = ("old and new" if stage.writes_old and stage.writes_new else
                  "old" if stage.writes_old else "new")
        reads = ("COALESCE(new, f(old))" if stage.app_stage is Stage.LIVE else
                 "new" if stage.reads_new else "old")
        return {"stage": stage.value, "writes": writes, "reads": reads, "deploy": deploy}
    return [
        row(Stage.OFF, "nothing yet"),
        row(Stage.EXPAND, "nothing: the new column exists but is not used"),
        row(Stage.DUALWRITE, "the adapters (Django app / SQLAlchemy events) with the spec, "
            "or mode = trigger; every instance must report in the fleet"),
        row(Stage.SHADOW, "no deploy: the stage flag switches the comparator on"),
        row(Stage.LIVE, "no deploy: reads move to the new column (flag; can be a percentage)"),
        row(Stage.RAMPDOWN, "no deploy: the new column is authoritative"),
        row(Stage.COMPLETE, "no deploy: the old column is no longer written"),
        row(Stage.CONTRACT, f"remove the old column from models and the spec "
            f"({key}) before contract drops it"),
    ]


def build_runbook(migrator: Migrator, key: str, *, batch_size: int = DEFAULT_BATCH,
                  sample_batches: int = DEFAULT_SAMPLE_BATCHES, commit_probe: bool = True,
                  policy: LockPolicy | None = None) -> Runbook:
    """The runbook of ``key`` from the live database. Changes nothing."""
    db = migrator.db
    d = db.dialect
    spec = migrator.spec(key)
    policy = policy or LockPolicy()
    checks = preflight(migrator, key)
    notes: list[str] = []
    info = inspect_table(db, spec.table, spec.schema)
    stats = table_stats(db, spec) if info is not None else TableStats(0, True, 0, None)
    rate: BackfillRate | None = None
    if info is not None and info.key is not None and all(c in info.columns
                                                         for c in spec.old_columns):
        rate = measure_backfill_rate(db, spec, info.key, batch_size=batch_size,
                                     batches=sample_batches, commit_probe=commit_probe)
        if rate.method == "proxy":
            notes.append("the backfill rate is a stand-in (old = old) measured before the new "
                         f"column exists: run `dualwrite plan {key}` again after expand"
                         + (" -- MySQL/MariaDB skip unchanged rows, so it is optimistic"
                            if d.name == "mysql" else ""))
        if d.name == "postgresql":
            notes.append("PostgreSQL: a committed backfill slows down as the table fills with "
                         "row versions and autovacuum runs alongside, which a rolled-back "
                         "sample cannot show; the estimate tends to be low (0.5-0.9x in our "
                         "benchmark): plan for up to twice it")
    else:
        notes.append("the table is not usable yet (see the checklist): no duration estimates")
    state = migrator.state.find(key) if migrator.state.is_initialized() else None
    stage = state.stage if state else Stage.OFF
    rows = stats.rows
    wait_bound = policy.lock_timeout * (policy.retries + 1)

    steps: list[RunbookStep] = [
        RunbookStep("preflight", f"dualwrite preflight {key}", 1.0, "catalog reads",
                    "nothing to roll back (reads only)", "none"),
        RunbookStep("register", "dualwrite init", 1.0, "state tables",
                    "nothing to roll back (state tables only)", "none"),
    ]
    expand_plan: DdlPlan | None = None
    contract_plan: DdlPlan | None = None
    try:
        expand_plan = plan_expand(db, spec)
    except DualwriteError as exc:
        notes.append(f"expand cannot be planned: {exc.message}")
    if expand_plan is not None:
        secs, basis = _ddl_seconds(expand_plan, rows, rate)
        notes.extend(expand_plan.notes)
        steps.append(RunbookStep(
            "expand", f"dualwrite expand {key}", secs,
            f"{basis}; each lock wait at most {policy.lock_timeout:g} s x "
            f"{policy.retries + 1} attempts ({wait_bound:g} s)",
            "none (the new column is not used yet)",
            f"dualwrite expand {key} --rollback",
            [q for s in expand_plan.pending for q in s.sql_text()]))
    backfill_s = rate.backfill_seconds(rows) if rate else None
    verify_s = (0.0 if rows == 0 else rows / rate.read_rows_per_second
                if rate and rate.read_rows_per_second else None)
    basis = (f"{rows} rows at {rate.rows_per_second:,.0f} rows/s ({rate.method} sample)"
             if rate and rate.rows_per_second else "no sample")
    if rate is not None and rate.commit_seconds is not None:
        basis += f" + {-(-rows // batch_size)} commits at {rate.commit_seconds * 1000:.1f} ms"
    elif rate is not None:
        notes.append("commit cost not measured (the migration is not registered): run "
                     "`dualwrite init`, then plan again")
    window = spec.confidence_window
    steps += [
        RunbookStep("dual write", f"dualwrite advance {key} --to dualwrite", 30.0,
                    "deploy + fleet heartbeats (10 s)", "deploy the adapters; writes reach "
                    "both columns", f"dualwrite rollback {key}"),
        RunbookStep("backfill", f"dualwrite backfill {key}", backfill_s, basis,
                    "none (reads stay on old)", "none needed: the new column is not read yet; "
                    "stop it any time, it resumes"),
        RunbookStep("verify", f"dualwrite verify {key}", verify_s,
                    f"{rows} rows at the measured read rate", "none",
                    "none (reads only)"),
        RunbookStep("shadow", f"dualwrite advance {key} --to shadow", 60.0,
                    "flag cache + observation", "reads compared (old served)",
                    f"dualwrite rollback {key}"),
        RunbookStep("live", f"dualwrite advance {key} --to live", 60.0,
                    "flag cache + observation", "reads from the new column",
                    f"dualwrite rollback {key}"),
        RunbookStep("rampdown", f"dualwrite advance {key} --to rampdown", window,
                    "the confidence window in rampdown", "new column authoritative",
                    f"dualwrite rollback {key}"),
        RunbookStep("complete", f"dualwrite advance {key} --to complete", window,
                    "the confidence window in complete", "old column no longer written",
                    f"dualwrite backfill {key} --reverse && dualwrite verify {key} --reverse "
                    f"&& dualwrite rollback {key}"),
    ]
    if expand_plan is not None:
        try:
            contract_plan = plan_contract(db, spec)
        except DualwriteError:
            contract_plan = None
    if contract_plan is not None:
        secs, cbasis = _ddl_seconds(contract_plan, rows, rate)
        notes.extend(n for n in contract_plan.notes if n not in notes)
        sql = [q for s in contract_plan.pending for q in s.sql_text()]
    else:
        secs, cbasis, sql = None, "planned after expand (needs the new column)", []
    steps.append(RunbookStep(
        "contract", f"dualwrite contract {key} --confirm {key}", secs, cbasis,
        "remove the old column from the models first",
        "irreversible once the old column is dropped; the constraint steps before it undo "
        f"with: dualwrite contract {key} --rollback", sql))

    monitoring = [
        {"what": "unbackfilled rows", "alert": "not falling during the backfill",
         "sql": d.unbackfilled_count(spec)[0], "params": list(d.unbackfilled_count(spec)[1])},
        *([{"what": "sessions waiting for a lock on the table",
             "alert": "any, for > lock timeout",
             "sql": d.lock_waits(spec.table, spec.schema)[0],
             "params": list(d.lock_waits(spec.table, spec.schema)[1])},
           {"what": "replication", "alert": "lag > 10 s", "sql": d.replication_status()[0],
            "params": []}] if d.shows_sessions else []),
        {"what": "backfill progress and verify results", "alert": "verify mismatches > 0",
         "sql": d.select_backfill_parts(key, "forward")[0],
         "params": list(d.select_backfill_parts(key, "forward")[1])},
    ]
    cleanup = [
        f"remove the spec {key!r} and the adapter configuration from the application",
        "trigger mode: check the mirror triggers are gone (contract drops them)",
        "PostgreSQL: VACUUM (ANALYZE) the table to reclaim the backfill's dead rows"
        if d.name == "postgresql" else "refresh the table statistics (ANALYZE)",
        "keep the dualwrite_history rows as the audit trail; drop the state tables only when "
        "no migration is running",
        "remove the dashboards and alerts of this migration",
    ]
    return Runbook(key=key, table=spec.table, dialect=d.name, stage=stage.value, stats=stats,
                   rate=rate, preflight=checks, steps=steps, app_changes=_app_changes(key),
                   monitoring=monitoring, alerts=ALERTS, cleanup=cleanup, notes=notes)
