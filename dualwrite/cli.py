"""The ``dualwrite`` command: parse, call the core, report. No logic of its own.

Exit codes: 0 ok, 1 error, 2 usage, 3 refused by a gate (nothing changed).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from dualwrite._version import __version__
from dualwrite.config import load_specs, parse_duration
from dualwrite.db import Database
from dualwrite.errors import ConfigurationError, DualwriteError
from dualwrite.migrator import Migrator, StatusReport, TransitionResult
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Stage

__all__ = ["main", "run_embedded"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3


@dataclass
class _Ctx:
    database_url: str | None
    spec_sources: tuple[str, ...]
    actor: str | None
    #: Set by an embedding host (the Django management command): use this database and
    #: these specs instead of --database-url / --spec.
    database: Database | None = None
    specs: tuple[MigrationSpec, ...] | None = None

    def migrator(self) -> Migrator:
        specs = list(self.specs) if self.specs is not None else load_specs(self.spec_sources)
        if self.database is not None:
            return Migrator(self.database, specs, actor=self.actor)
        if not self.database_url:
            raise ConfigurationError("no database given",
                                     hint="pass --database-url or set DUALWRITE_DATABASE_URL")
        return Migrator(Database.from_url(self.database_url), specs, actor=self.actor)


def _stage_type(value: str | None) -> Stage | None:
    if value is None:
        return None
    try:
        return Stage.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@contextmanager
def _reporting(as_json: bool) -> Iterator[None]:
    """Turn dualwrite errors into a message (or JSON) on stderr and the right exit code."""
    try:
        yield
    except DualwriteError as exc:
        if as_json:
            click.echo(json.dumps(exc.to_dict(), default=str), err=True)
        else:
            click.echo(f"error: {exc.message}", err=True)
            if exc.hint:
                click.echo(f"  fix: {exc.hint}", err=True)
        sys.exit(exc.exit_code)


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--database-url", envvar="DUALWRITE_DATABASE_URL", metavar="URL",
              help="postgresql://, mysql:// or sqlite:///file.db (env DUALWRITE_DATABASE_URL).")
@click.option("--spec", "spec_sources", multiple=True, metavar="SOURCE",
              help="pkg.module:SPECS or a .toml file; repeatable. Default: ./dualwrite.toml.")
@click.option("--actor", help="Who is acting, recorded in the history (default user@host).")
@click.version_option(__version__, prog_name="dualwrite")
@click.pass_context
def main(ctx: click.Context, database_url: str | None, spec_sources: tuple[str, ...],
         actor: str | None) -> None:
    """Zero-downtime column migrations: expand, dual write, backfill, shadow, live, contract."""
    host = ctx.obj if isinstance(ctx.obj, _Ctx) else None
    ctx.obj = _Ctx(database_url, spec_sources, actor)
    if host is not None:  # embedded: the host's database and specs win
        ctx.obj.database, ctx.obj.specs = host.database, host.specs
        ctx.obj.actor = actor or host.actor


def run_embedded(args: list[str], database: Database, specs: list[MigrationSpec], *,
                 actor: str | None = None) -> int:
    """Run the CLI with ``args`` on an existing database and specs; the exit code.

    Used by hosts such as the Django management command, so that every command, option and
    exit code is the same as ``dualwrite`` on the command line.
    """
    try:
        main.main(args=args, obj=_Ctx(None, (), actor, database, tuple(specs)),
                  prog_name="dualwrite", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return 0


@main.command()
@_json_option
@click.pass_obj
def init(obj: _Ctx, as_json: bool) -> None:
    """Create the state tables (idempotent) and register the loaded specs."""
    with _reporting(as_json):
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
@_json_option
@click.pass_obj
def status(obj: _Ctx, key: str | None, as_json: bool) -> None:
    """Show every migration (or KEY): stage, ceiling, fleet, and whether the next step is ready."""
    with _reporting(as_json):
        reports = obj.migrator().status(key)
        if as_json:
            click.echo(json.dumps([r.to_dict() for r in reports], default=str))
        else:
            _console().print(_status_table(reports))


def _print_steps(steps: list[TransitionResult], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"steps": [s.to_dict() for s in steps]}))
        return
    for s in steps:
        click.echo(f"{s.key}: {s.from_stage.value} -> {s.to_stage.value} ({s.reason})")


def _transition(obj: _Ctx, as_json: bool, run: Callable[[Migrator], list[TransitionResult]]
                ) -> None:
    with _reporting(as_json):
        _print_steps(run(obj.migrator()), as_json)


@main.command()
@click.argument("key")
@click.option("--to", "to", callback=lambda c, p, v: _stage_type(v),
              help="Target stage (walks one gated step at a time). Default: the next stage.")
@click.option("--reason", default="", help="Why, recorded in the history.")
@click.option("--confirm", metavar="KEY", help="Confirm an irreversible step by repeating KEY.")
@click.option("--confidence-window", metavar="DURATION",
              help="Override the spec's confidence window (e.g. 30m, 24h).")
@_json_option
@click.pass_obj
def advance(obj: _Ctx, key: str, to: Stage | None, reason: str, confirm: str | None,
            confidence_window: str | None, as_json: bool) -> None:
    """Move KEY forward one stage (or to --to), checking each gate."""
    def run(m: Migrator) -> list[TransitionResult]:
        window = parse_duration(confidence_window) if confidence_window is not None else None
        return m.advance(key, to, reason=reason, confirm=confirm, confidence_window=window)
    _transition(obj, as_json, run)


@main.command()
@click.argument("key")
@click.option("--to", "to", callback=lambda c, p, v: _stage_type(v),
              help="Target stage (walks back one checked step at a time). Default: previous.")
@click.option("--reason", default="", help="Why, recorded in the history.")
@_json_option
@click.pass_obj
def rollback(obj: _Ctx, key: str, to: Stage | None, reason: str, as_json: bool) -> None:
    """Move KEY back one stage (or to --to) while the data behind it is in sync."""
    _transition(obj, as_json, lambda m: m.rollback(key, to, reason=reason))


@main.command()
@click.argument("key")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@_json_option
@click.pass_obj
def history(obj: _Ctx, key: str, limit: int, as_json: bool) -> None:
    """Every recorded transition of KEY: from, to, when, by whom, why."""
    with _reporting(as_json):
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
        _console().print(t)


@main.command()
@click.option("--path", default="dualwrite-demo.db", show_default=True,
              help="The SQLite file the demo creates (replaced if it exists).")
def demo(path: str) -> None:
    """Walk a rename through its stages on an embedded SQLite file: no setup needed."""
    from dualwrite.demo import run_demo

    with _reporting(False):
        run_demo(path, _console())


if __name__ == "__main__":  # pragma: no cover
    main()
