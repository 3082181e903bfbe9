"""The click group, shared options and error reporting for every ``dualwrite`` command."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console

from dualwrite._version import __version__
from dualwrite.config import load_specs
from dualwrite.db import Database
from dualwrite.errors import ConfigurationError, DualwriteError
from dualwrite.migrator import Migrator
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Stage

__all__ = ["Ctx", "console", "json_option", "main", "reporting", "run_embedded", "stage_type"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3


@dataclass
class Ctx:
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


def stage_type(value: str | None) -> Stage | None:
    if value is None:
        return None
    try:
        return Stage.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@contextmanager
def reporting(as_json: bool) -> Iterator[None]:
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


def console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
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
    host = ctx.obj if isinstance(ctx.obj, Ctx) else None
    ctx.obj = Ctx(database_url, spec_sources, actor)
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
        main.main(args=args, obj=Ctx(None, (), actor, database, tuple(specs)),
                  prog_name="dualwrite", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return 0


