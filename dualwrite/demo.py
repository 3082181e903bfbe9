"""``dualwrite demo``: a rename walked through its stages on an embedded SQLite file."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dualwrite.db import Database
from dualwrite.errors import TransitionRefused
from dualwrite.fleet import FleetMember
from dualwrite.migrator import Migrator
from dualwrite.spec import RenameColumn
from dualwrite.stages import Stage

__all__ = ["DEMO_SPEC", "run_demo"]

DEMO_SPEC = RenameColumn(key="users-display-name", table="users", old="full_name",
                         new="display_name", confidence_window=0)
DEMO_ROWS = 1000


def _setup(db: Database) -> None:
    with db.transaction() as tx:
        tx.execute(("CREATE TABLE users (id INTEGER PRIMARY KEY, full_name TEXT)", ()))
        for i in range(DEMO_ROWS):
            tx.execute((f"INSERT INTO users (id, full_name) VALUES ({db.dialect.p}, "
                        f"{db.dialect.p})", (i + 1, f"User {i + 1}")))


def run_demo(path: str, console: Console) -> None:
    """Create ``path`` afresh and walk the demo migration, printing each step."""
    if os.path.exists(path):
        os.remove(path)
    db = Database.from_url("sqlite:///" + str(Path(path).resolve()))
    _setup(db)
    m = Migrator(db, [DEMO_SPEC], actor="demo")
    key = DEMO_SPEC.key
    member = FleetMember(db, instance_id="demo-app-1")

    def step(title: str, explain: str) -> None:
        console.print(f"\n[bold]{title}[/bold]  [dim]{explain}[/dim]")

    def try_advance(to: Stage | None = None) -> None:
        try:
            for s in m.advance(key, to):
                console.print(f"  [green]ok[/green] {s.from_stage.value} -> {s.to_stage.value}: "
                              f"{s.reason}")
        except TransitionRefused as exc:
            console.print(f"  [red]refused[/red] {exc.from_stage} -> {exc.to_stage}: {exc.reason}")
            if exc.hint:
                console.print(f"  [yellow]fix[/yellow]: {exc.hint}")

    console.print(f"[bold]dualwrite demo[/bold]: rename users.full_name -> display_name on "
                  f"{path} ({DEMO_ROWS} rows)")
    step("1. init", "state tables are created and the spec is validated and registered at 'off'")
    for st in m.init():
        console.print(f"  registered {st.key} (spec {st.spec_hash}) at {st.stage.value}")
    step("2. advance to expand", "the gate needs the new column, which does not exist yet")
    try_advance()
    step("3. add the column", "expand adds display_name as a NULL column, no rewrite")
    db.execute(db.dialect.add_column(DEMO_SPEC, "display_name", "TEXT"))
    try_advance()
    step("4. advance to dualwrite", "every write now reaches both columns")
    try_advance()
    step("5. an application instance reports in", "the fleet table shows it mirrors writes")
    member.observe(key, Stage.DUALWRITE)
    member.beat()
    console.print(f"  instance {member.instance_id} observes dualwrite")
    step("6. advance to shadow", "reads stay on the old column; the new one is compared")
    try_advance()
    member.observe(key, Stage.SHADOW)
    member.beat()
    step("7. advance to live", "the gate needs a finished backfill and a clean verify")
    try_advance()
    step("8. roll back one step", "shadow -> dualwrite is always safe: both columns are written")
    for s in m.rollback(key):
        console.print(f"  [green]ok[/green] {s.from_stage.value} -> {s.to_stage.value}")
    step("9. history", "every transition, who made it and why")
    t = Table()
    for col in ("from", "to", "by", "why"):
        t.add_column(col)
    for e in m.history(key):
        t.add_row(e.from_stage, e.to_stage, e.actor, e.reason)
    console.print(t)
    member.stop()
    db.close()
    console.print("\nnext: read the README's stage table and operational guide")
