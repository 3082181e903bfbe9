"""``dualwrite demo``: a whole migration under simulated traffic, on embedded SQLite.

The story: a ``users`` table with 100k rows is renamed ``full_name`` -> ``display_name``
while an application writes, inserts and reads it. Every stage is explained in one line;
the backfill shows a progress bar; a bad write is caught by the shadow comparison and
repaired by ``verify --fix``; ``live`` is rolled back and taken again; at the end a summary
shows the operations served, the errors (0) and the rows verified. ``--database-url`` runs
the same story on PostgreSQL or MySQL (in a table named ``dualwrite_demo_users``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from dualwrite.backfill import Backfill, BackfillOptions, BackfillProgress, Verifier
from dualwrite.compare import Comparator, Mismatch
from dualwrite.db import Database
from dualwrite.ddl import OnlineDdl
from dualwrite.errors import TransitionRefused
from dualwrite.flags import StageResolver
from dualwrite.fleet import FleetMember
from dualwrite.migrator import Migrator, TransitionResult
from dualwrite.simulate import Traffic, TrafficReport
from dualwrite.spec import RenameColumn
from dualwrite.stages import Stage

__all__ = ["DEMO_SPEC", "DemoSummary", "run_demo"]

DEMO_SPEC = RenameColumn(key="users-display-name", table="users", old="full_name",
                         new="display_name", confidence_window=0)
DEMO_ROWS = 100_000


@dataclass
class DemoSummary:
    """What the demo did: the traffic's report and the final verification."""

    rows: int
    traffic: TrafficReport
    rows_verified: int
    mismatches_caught: int
    final_mismatches: int
    seconds: float

    @property
    def ok(self) -> bool:
        """Nothing broke and nothing was lost."""
        return self.traffic.clean and self.final_mismatches == 0


class _Collect:
    """A mismatch publisher that keeps what it is given (and prints it)."""

    def __init__(self, console: Console) -> None:
        self.items: list[Mismatch] = []
        self.console = console

    def publish(self, mismatch: Mismatch) -> None:
        self.items.append(mismatch)
        found, expected = next(iter(mismatch.diff.values()))
        self.console.print(f"  [red]mismatch[/red] row {mismatch.primary_key}: display_name "
                           f"is {found!r}, f(full_name) is {expected!r}")


def _setup(db: Database, spec: RenameColumn, rows: int) -> None:
    d = db.dialect
    db.execute(d.drop_table(spec.table, spec.schema))
    db.execute(d.create_table(spec.table, [("id", d.t_int), ("full_name", d.t_text)], "id",
                              spec.schema))
    chunk = 1000
    with db.transaction() as tx:
        for start in range(1, rows + 1, chunk):
            ids = range(start, min(start + chunk, rows + 1))
            values = [v for i in ids for v in (i, f"User {i}")]
            tx.execute(d.insert_rows(spec, ["id", "full_name"], len(ids), values))


def run_demo(console: Console, *, path: str = "dualwrite-demo.db",
             database_url: str | None = None, rows: int = DEMO_ROWS,
             pace: float = 0.002) -> DemoSummary:
    """Run the story, printing each step; the summary."""
    started = time.monotonic()
    if database_url is None:
        if os.path.exists(path):
            os.remove(path)
        db = Database.from_url("sqlite:///" + str(Path(path).resolve()))
        for query in db.dialect.concurrent_access():
            db.execute(query)
        spec = DEMO_SPEC
        where = path
    else:
        db = Database.from_url(database_url)
        spec = RenameColumn(key="dualwrite-demo", table="dualwrite_demo_users",
                            old="full_name", new="display_name", confidence_window=0)
        where = db.display_url
    key = spec.key

    def step(title: str, explain: str) -> None:
        console.print(f"\n[bold]{title}[/bold]  [dim]{explain}[/dim]")

    def move(action: Callable[[], list[TransitionResult]]) -> None:
        waited = False
        deadline = time.monotonic() + 15
        while True:
            try:
                for s in action():
                    console.print(f"  [green]ok[/green] {s.from_stage.value} -> "
                                  f"{s.to_stage.value}")
                return
            except TransitionRefused as exc:
                if "instance" in (exc.reason or "") and time.monotonic() < deadline:
                    if not waited:  # the gate waits for the fleet to pick the stage up
                        console.print(f"  [yellow]waiting[/yellow] {exc.reason}")
                        waited = True
                    served()
                    member.beat()
                    time.sleep(0.1)
                    continue
                console.print(f"  [red]refused[/red] {exc.from_stage} -> {exc.to_stage}: "
                              f"{exc.reason}")
                if exc.hint:
                    console.print(f"  [yellow]fix[/yellow]: {exc.hint}")
                return

    console.print(f"[bold]dualwrite demo[/bold]: rename {spec.table}.full_name -> display_name "
                  f"on {where}, {rows:,} rows, under traffic")
    _setup(db, spec, rows)
    m = Migrator(db, [spec], actor="demo")
    if m.state.is_initialized():  # a previous demo run on this database: start afresh
        m.state.forget(key)
    step("1. init", "state tables created; the spec is validated and registered at 'off'")
    m.init()
    resolver = StageResolver(db, ttl=0.1)
    member = FleetMember(db, instance_id="demo-app-1")
    member.observe(key, Stage.OFF)

    def served() -> Stage:
        stage = resolver.stage(key)
        member.observe(key, stage)
        return stage

    traffic = Traffic(db, spec, served, keys=range(1, rows + 1), app_writers=2, readers=2,
                      pace=pace).start()
    console.print("  application traffic started: 2 writer threads (updates and inserts), "
                  "2 reader threads checking every read against the last acknowledged write")
    member.beat()

    step("2. expand", "add display_name as a NULL column: no table rewrite, no long lock")
    ddl = OnlineDdl(m)
    _plan, outcomes = ddl.expand(key)
    for outcome in outcomes:
        console.print(f"  [green]{outcome.status}[/green] {outcome.step.description}")

    step("3. dualwrite", "from now on every write reaches both columns")
    move(lambda: m.advance(key, Stage.DUALWRITE))
    time.sleep(0.5)
    served()
    member.beat()  # the fleet reports dualwrite: the backfill refuses to start before that

    step("4. backfill", "copy display_name = full_name for the old rows, in short batches")
    with Progress(TextColumn("  backfill"), BarColumn(), TextColumn("{task.completed:,} rows"),
                  TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("backfill", total=None, rate="")

        def on_progress(p: BackfillProgress) -> None:
            rate = p.batch_rows / p.batch_seconds if p.batch_seconds else 0
            bar.update(task, completed=p.rows_done, total=p.rows_total or None,
                       rate=f"{rate:,.0f} rows/s")

        result = Backfill(db, spec, BackfillOptions(), progress=on_progress).run()
    console.print(f"  [green]ok[/green] {result.rows_written:,} rows written in "
                  f"{result.batches} batches, {result.seconds:.1f}s")

    step("5. shadow", "reads stay on full_name; each read row is also checked: new == f(old)")
    move(lambda: m.advance(key, Stage.SHADOW))
    d = db.dialect
    db.execute(d.update_row(spec, "id", 42, ["display_name"], ["Mallory"]))
    console.print("  a script outside the application writes display_name = 'Mallory' on "
                  "row 42 (nothing mirrors it)")
    publisher = _Collect(console)
    comparator = Comparator(spec, publisher=publisher)
    for pk in range(40, 45):
        row = db.fetchone(d.select_row(spec, "id", pk, [d.quote("full_name"),
                                                         d.quote("display_name")]))
        assert row is not None
        comparator.compare(Stage.SHADOW, pk, {"full_name": row[0], "display_name": row[1]})
    console.print("  the shadow read caught it; the read itself still returned full_name")

    step("6. advance to live", "the gate needs a clean verify")
    move(lambda: m.advance(key, Stage.LIVE))
    report = Verifier(db, spec).run()
    console.print(f"  verify: {report.rows_checked:,} rows, {report.mismatches} mismatch(es), "
                  f"{report.unbackfilled} unbackfilled")
    fixed = Verifier(db, spec, fix=True).run()
    console.print(f"  verify --fix: {fixed.fixed} row(s) repaired")
    Verifier(db, spec).run()
    move(lambda: m.advance(key, Stage.LIVE))
    console.print("  reads now come from COALESCE(display_name, full_name)")
    time.sleep(0.5)

    step("7. roll back", "live -> shadow: reads return to full_name; both columns were "
                         "written all along, so nothing is lost")
    move(lambda: m.rollback(key, Stage.SHADOW))
    time.sleep(0.3)
    Verifier(db, spec).run()
    move(lambda: m.advance(key, Stage.LIVE))
    time.sleep(0.3)

    step("8. rampdown", "display_name becomes the source of truth; full_name is still "
                        "written for instances and readers behind")
    move(lambda: m.advance(key, Stage.RAMPDOWN))
    time.sleep(0.3)
    final = Verifier(db, spec, record=False).run()
    console.print(f"  final verify: {final.rows_checked:,} rows, "
                  f"{final.mismatches + final.unbackfilled} difference(s)")
    step("9. complete", "only display_name is written now; full_name waits for contract")
    move(lambda: m.advance(key, Stage.COMPLETE, confirm=key))
    time.sleep(0.3)

    report_traffic = traffic.stop()
    member.stop()
    summary = DemoSummary(rows=rows, traffic=report_traffic, rows_verified=final.rows_checked,
                          mismatches_caught=len(publisher.items),
                          final_mismatches=final.mismatches + final.unbackfilled,
                          seconds=time.monotonic() - started)
    step("10. summary", "what the application saw during the whole migration")
    t = Table(show_header=False)
    t.add_row("operations served", f"{report_traffic.operations:,}")
    t.add_row("  writes / inserts / reads", f"{report_traffic.writes:,} / "
              f"{report_traffic.inserts:,} / {report_traffic.reads:,}")
    t.add_row("application errors", str(len(report_traffic.errors)))
    t.add_row("stale or lost reads", str(len(report_traffic.stale_reads)))
    t.add_row("shadow mismatches caught", str(summary.mismatches_caught))
    t.add_row("rows verified at the end", f"{final.rows_checked:,}")
    t.add_row("mismatches at the end", str(summary.final_mismatches))
    t.add_row("time", f"{summary.seconds:.1f}s")
    console.print(t)
    console.print("\nnext: `dualwrite contract` drops full_name; see the README's operational "
                  "guide")
    db.close()
    return summary
