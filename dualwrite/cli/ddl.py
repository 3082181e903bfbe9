"""DDL commands: expand and contract (each step printed before it runs), preflight, plan."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from dualwrite.cli.app import EXIT_REFUSED, Ctx, json_option, main, reporting
from dualwrite.config import parse_duration
from dualwrite.ddl import DdlEvent, DdlPlan, LockPolicy, OnlineDdl, StepOutcome
from dualwrite.plan import build_runbook
from dualwrite.preflight import preflight as run_preflight

__all__: list[str] = []


def _print_event(e: DdlEvent) -> None:
    if e.kind == "skip":
        click.echo(f"= {e.step.name}: already done, skipped")
        return
    if e.kind == "done":
        click.echo(f"  ok ({e.message})")
        return
    if e.kind in ("retry", "fallback"):
        click.echo(f"  ! {e.message}")
        for sql in e.sql:
            click.echo(f"    {sql};")
        return
    mark = {"planned": "would run", "start": "running", "rollback": "rolling back"}[e.kind]
    click.echo(f"> {mark}: {e.step.description}")
    for sql in e.sql:
        click.echo(f"    {sql};")
    if e.kind != "rollback":
        undo = "; ".join(e.step.rollback_text()) or (e.step.note or "nothing to undo")
        click.echo(f"    rollback: {undo}")
        if e.step.note and e.step.rollback_text():
            click.echo(f"    note: {e.step.note}")


def ddl_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--dry-run, --force, --lock-timeout, --retries, --json."""
    options: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.option("--dry-run", is_flag=True, help="Print the steps; change nothing."),
        click.option("--force", is_flag=True,
                     help="Allow steps that rebuild or lock the table (MySQL/MariaDB)."),
        click.option("--lock-timeout", default="2s", show_default=True, metavar="DURATION",
                     help="How long one DDL statement may wait for its lock."),
        click.option("--retries", default=5, show_default=True, type=click.IntRange(0, 1000),
                     help="Retries of a statement that timed out on its lock (with backoff)."),
        json_option,
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


def _ddl(obj: Ctx, as_json: bool, force: bool, lock_timeout: str, retries: int) -> OnlineDdl:
    policy = LockPolicy(lock_timeout=parse_duration(lock_timeout), retries=retries)
    return OnlineDdl(obj.migrator(), policy=policy, force=force,
                     on_event=None if as_json else _print_event)


def _report(plan: DdlPlan, outcomes: list[StepOutcome], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({**plan.to_dict(), "outcomes": [o.to_dict() for o in outcomes]}))
        return
    for note in plan.notes:
        click.echo(f"note: {note}")
    applied = sum(o.status in ("applied", "rolled back") for o in outcomes)
    click.echo(f"{plan.phase} {plan.key}: {applied} step(s) run, "
               f"{sum(o.status == 'skipped' for o in outcomes)} already done, "
               f"{sum(o.status == 'planned' for o in outcomes)} planned")


@main.command()
@click.argument("key")
@click.option("--rollback", "undo", is_flag=True,
              help="Undo expand: drop the copied indexes and the new column(s).")
@ddl_options
@click.pass_obj
def expand(obj: Ctx, key: str, undo: bool, dry_run: bool, force: bool, lock_timeout: str,
           retries: int, as_json: bool) -> None:
    """Add KEY's new column(s) NULL and copy the old column's indexes online."""
    with reporting(as_json):
        ddl = _ddl(obj, as_json, force, lock_timeout, retries)
        if undo:
            _report(*ddl.rollback_expand(key, dry_run=dry_run), as_json)
        else:
            _report(*ddl.expand(key, dry_run=dry_run), as_json)


@main.command()
@click.argument("key")
@click.option("--confirm", metavar="KEY", help="Confirm the irreversible drop by repeating KEY.")
@click.option("--confidence-window", metavar="DURATION",
              help="Override the spec's confidence window (e.g. 30m, 24h).")
@click.option("--rollback", "undo", is_flag=True,
              help="Undo the constraint steps (while the old column still exists).")
@ddl_options
@click.pass_obj
def contract(obj: Ctx, key: str, confirm: str | None, confidence_window: str | None,
             undo: bool, dry_run: bool, force: bool, lock_timeout: str, retries: int,
             as_json: bool) -> None:
    """Enforce constraints on KEY's new column online, then drop the old column."""
    with reporting(as_json):
        ddl = _ddl(obj, as_json, force, lock_timeout, retries)
        if undo:
            _report(*ddl.rollback_contract(key, dry_run=dry_run), as_json)
            return
        window = parse_duration(confidence_window) if confidence_window is not None else None
        _report(*ddl.contract(key, confirm=confirm, confidence_window=window,
                              dry_run=dry_run), as_json)


_MARK = {"pass": "pass", "warn": "WARN", "fail": "FAIL"}


@main.command()
@click.argument("key")
@click.option("--long-transaction", default="60s", show_default=True, metavar="DURATION",
              help="Report transactions open longer than this.")
@json_option
@click.pass_obj
def preflight(obj: Ctx, key: str, long_transaction: str, as_json: bool) -> None:
    """Check KEY before migrating: pass / warn / fail per check, with the fix.

    Exits 3 when a check fails.
    """
    with reporting(as_json):
        report = run_preflight(obj.migrator(), key,
                               long_transaction=parse_duration(long_transaction))
        if as_json:
            click.echo(json.dumps(report.to_dict(), default=str))
        else:
            click.echo(f"preflight {key} ({report.dialect}, table {report.table})")
            for c in report.checks:
                click.echo(f"  {_MARK[c.status.value]:4}  {c.name}: {c.detail}")
                if c.fix and c.status.value != "pass":
                    click.echo(f"        fix: {c.fix}")
            failed = sum(c.status.value == "fail" for c in report.checks)
            warned = sum(c.status.value == "warn" for c in report.checks)
            click.echo(f"{failed} failed, {warned} warning(s)")
        if not report.ok:
            sys.exit(EXIT_REFUSED)


@main.command()
@click.argument("key")
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown",
              show_default=True)
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Backfill batch size to measure the rate with.")
@click.option("--sample-batches", default=30, show_default=True, type=click.IntRange(1, 1000),
              help="Batches in the rolled-back sample.")
@click.option("--no-commit-probe", is_flag=True,
              help="Do not time commits (a probe row written to and deleted from the fleet "
                   "state table).")
@click.pass_obj
def plan(obj: Ctx, key: str, fmt: str, batch_size: int, sample_batches: int,
         no_commit_probe: bool) -> None:
    """Print KEY's runbook from the live database: checklist, steps with measured durations,
    app changes, rollback, monitoring, cleanup. Changes nothing."""
    with reporting(fmt == "json"):
        book = build_runbook(obj.migrator(), key, batch_size=batch_size,
                             sample_batches=sample_batches, commit_probe=not no_commit_probe)
        click.echo(json.dumps(book.to_dict(), default=str) if fmt == "json"
                   else book.to_markdown(), nl=fmt == "json")
