"""Lifecycle commands: init, status, advance, rollback, history, demo."""

from __future__ import annotations

import json
from collections.abc import Callable

import click
from rich.table import Table

from dualwrite.cli.app import (
    Ctx,
    console,
    json_option,
    main,
    reporting,
    stage_type,
)
from dualwrite.config import parse_duration
from dualwrite.migrator import Migrator, StatusReport, TransitionResult
from dualwrite.stages import Stage

__all__: list[str] = []


@main.command()
@json_option
@click.pass_obj
def init(obj: Ctx, as_json: bool) -> None:
    """Create the state tables (idempotent) and register the loaded specs."""
    with reporting(as_json):
        states = obj.migrator().init()
        if as_json:
            click.echo(json.dumps({"initialized": True,
                                   "migrations": [s.to_dict() for s in states]}))
            return
        click.echo("state tables ready")
        for s in states:
            click.echo(f"  {s.key}: {s.kind} on {s.table}, stage {s.stage.value}, mode "
                       f"{s.mode.value}, spec {s.spec_hash}")


def _status_table(reports: list[StatusReport]) -> Table:
    t = Table(title="dualwrite migrations")
    for col in ("key", "table", "mode", "stage", "ceiling", "fleet"):
        t.add_column(col, no_wrap=True)
    t.add_column("next step")
    for r in reports:
        st = r.state
        nxt = "-"
        if r.spec is None:
            nxt = "spec not loaded"
        elif r.spec_matches is False:
            nxt = "spec changed since registration!"
        elif r.next_step is not None:
            mark = "ready" if r.next_step.allowed else "blocked"
            nxt = f"{mark}: {r.next_step.reason}"
            if not r.next_step.allowed and r.next_step.hint:
                nxt += f" ({r.next_step.hint})"
        fleet = ", ".join(sorted({f"{i.stage.value}x{sum(j.stage is i.stage for j in r.fleet)}"
                                  for i in r.fleet})) or "none"
        t.add_row(r.key, st.table if st else (r.spec.table if r.spec else "?"),
                  st.mode.value if st else "-", st.stage.value if st else "not registered",
                  st.ceiling.value if st else "-", fleet, nxt)
    return t


@main.command()
@click.argument("key", required=False)
@json_option
@click.pass_obj
def status(obj: Ctx, key: str | None, as_json: bool) -> None:
    """Show every migration (or KEY): stage, ceiling, fleet, and whether the next step is ready."""
    with reporting(as_json):
        reports = obj.migrator().status(key)
        if as_json:
            click.echo(json.dumps([r.to_dict() for r in reports], default=str))
        else:
            console().print(_status_table(reports))
            for r in reports:
                for w in r.warnings:
                    console().print(f"[yellow]warning[/yellow] {r.key}: {w}")


def _print_steps(steps: list[TransitionResult], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"steps": [s.to_dict() for s in steps]}))
        return
    for s in steps:
        click.echo(f"{s.key}: {s.from_stage.value} -> {s.to_stage.value} ({s.reason})")
        for w in s.warnings:
            click.echo(f"  warning: {w}", err=True)


def _transition(obj: Ctx, as_json: bool, run: Callable[[Migrator], list[TransitionResult]]
                ) -> None:
    with reporting(as_json):
        _print_steps(run(obj.migrator()), as_json)


@main.command()
@click.argument("key")
@click.option("--to", "to", callback=lambda c, p, v: stage_type(v),
              help="Target stage (walks one gated step at a time). Default: the next stage.")
@click.option("--reason", default="", help="Why, recorded in the history.")
@click.option("--confirm", metavar="KEY", help="Confirm an irreversible step by repeating KEY.")
@click.option("--confidence-window", metavar="DURATION",
              help="Override the spec's confidence window (e.g. 30m, 24h).")
@json_option
@click.pass_obj
def advance(obj: Ctx, key: str, to: Stage | None, reason: str, confirm: str | None,
            confidence_window: str | None, as_json: bool) -> None:
    """Move KEY forward one stage (or to --to), checking each gate."""
    def run(m: Migrator) -> list[TransitionResult]:
        window = parse_duration(confidence_window) if confidence_window is not None else None
        return m.advance(key, to, reason=reason, confirm=confirm, confidence_window=window)
    _transition(obj, as_json, run)


@main.command()
@click.argument("key")
@click.option("--to", "to", callback=lambda c, p, v: stage_type(v),
              help="Target stage (walks back one checked step at a time). Default: previous.")
@click.option("--reason", default="", help="Why, recorded in the history.")
@json_option
@click.pass_obj
def rollback(obj: Ctx, key: str, to: Stage | None, reason: str, as_json: bool) -> None:
    """Move KEY back one stage (or to --to) while the data behind it is in sync."""
    _transition(obj, as_json, lambda m: m.rollback(key, to, reason=reason))


@main.command()
@click.argument("key")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@json_option
@click.pass_obj
def history(obj: Ctx, key: str, limit: int, as_json: bool) -> None:
    """Every recorded transition of KEY: from, to, when, by whom, why."""
    with reporting(as_json):
        entries = obj.migrator().history(key, limit)
        if as_json:
            click.echo(json.dumps([e.to_dict() for e in entries]))
            return
        t = Table(title=f"history of {key}")
        for col in ("#", "from", "to", "at (UTC)", "by", "why"):
            t.add_column(col)
        for e in entries:
            t.add_row(str(e.id), e.from_stage, e.to_stage,
                      e.changed_at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.reason)
        console().print(t)


@main.command()
@click.option("--path", default="dualwrite-demo.db", show_default=True,
              help="The SQLite file the demo creates (replaced if it exists).")
@click.option("--rows", default=100_000, show_default=True, type=click.IntRange(100, 10_000_000),
              help="Rows in the demo table.")
@click.pass_obj
def demo(obj: Ctx, path: str, rows: int) -> None:
    """A whole migration under simulated traffic: embedded SQLite, no setup needed.

    With --database-url the same story runs on PostgreSQL or MySQL, in a table named
    dualwrite_demo_users.
    """
    from dualwrite.demo import run_demo

    with reporting(False):
        summary = run_demo(console(), path=path, database_url=obj.database_url, rows=rows)
    if not summary.ok:
        raise SystemExit(1)
