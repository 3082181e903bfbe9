"""``dualwrite triggers install|uninstall|status KEY``: the mirror triggers of trigger mode."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
from rich.table import Table

from dualwrite.cli.app import Ctx, console, json_option, main, reporting
from dualwrite.triggers import InstallResult, TriggerInstaller

__all__: list[str] = []


def _print_result(r: InstallResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(r.to_dict()))
        return
    objs = f": {', '.join(r.objects)}" if r.objects else ""
    click.echo(f"{r.key}: triggers {r.action}{objs}")
    for name in r.skipped_foreign:
        click.echo(f"  left alone (not created by dualwrite): {name}")


@main.group()
def triggers() -> None:
    """Mirror triggers (trigger mode): the database keeps old and new columns in step."""


def _lock_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--retries", default=5, show_default=True, type=click.IntRange(0, 100),
                      help="Attempts after a lock timeout.")(fn)
    return click.option("--lock-timeout", default=2.0, show_default=True,
                        type=click.FloatRange(0.1),
                        help="Seconds to wait for the table lock per attempt.")(fn)


@triggers.command()
@click.argument("key")
@_lock_options
@click.option("--dry-run", is_flag=True, help="Print the DDL instead of running it.")
@json_option
@click.pass_obj
def install(obj: Ctx, key: str, lock_timeout: float, retries: int, dry_run: bool,
            as_json: bool) -> None:
    """Create or update KEY's mirror triggers (idempotent; never replaces foreign ones)."""
    with reporting(as_json):
        m = obj.migrator()
        spec = m.spec(key)
        inst = TriggerInstaller(m.db, lock_timeout=lock_timeout, retries=retries)
        if dry_run:
            ddl = inst.sql(spec)
            click.echo(json.dumps({"key": key, "sql": ddl}) if as_json
                       else ";\n\n".join(ddl) + ";")
            return
        _print_result(inst.install(spec), as_json)


@triggers.command()
@click.argument("key")
@_lock_options
@json_option
@click.pass_obj
def uninstall(obj: Ctx, key: str, lock_timeout: float, retries: int, as_json: bool) -> None:
    """Drop KEY's mirror triggers (only those dualwrite created)."""
    with reporting(as_json):
        m = obj.migrator()
        spec = m.spec(key)
        inst = TriggerInstaller(m.db, lock_timeout=lock_timeout, retries=retries)
        _print_result(inst.uninstall(spec), as_json)


@triggers.command()
@click.argument("key")
@json_option
@click.pass_obj
def status(obj: Ctx, key: str, as_json: bool) -> None:
    """installed / missing / outdated / drifted / foreign, per object, with the drift."""
    with reporting(as_json):
        m = obj.migrator()
        spec = m.spec(key)
        inst = TriggerInstaller(m.db)
        st = inst.status(spec)
        drift = inst.drift(spec) if not st.current else []
        if as_json:
            click.echo(json.dumps({**st.to_dict(), "drift": [d.to_dict() for d in drift]}))
            return
        t = Table(title=f"triggers of {key} on {st.table}: {st.state.value}")
        for col in ("object", "kind", "state", "hash (expected)", "hash (found)", "detail"):
            t.add_column(col)
        for o in st.objects:
            t.add_row(o.name, o.kind, o.state.value, o.expected_digest, o.found_digest or "-",
                      o.detail)
        out = console()
        out.print(t)
        for d in drift:
            if d.diff:
                out.print(f"\n[bold]{d.name}[/bold] ({d.kind}, {d.state.value}):")
                out.print("\n".join(d.diff), markup=False)
