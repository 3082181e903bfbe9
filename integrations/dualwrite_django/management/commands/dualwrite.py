"""``manage.py dualwrite <command> ...``: the ``dualwrite`` CLI on a Django database.

Every command, option and exit code is the CLI's (``dualwrite --help``), run through
:func:`dualwrite.cli.run_embedded` with the specs of ``settings.DUALWRITE`` and the state
tables in the database ``--database ALIAS`` (default ``default``)::

    python manage.py dualwrite status
    python manage.py dualwrite --database orders advance orders-cents --to shadow
    python manage.py dualwrite rollback users-display-name --reason "p99 up"

Exit codes: 0 ok, 1 error, 2 usage, 3 refused by a gate.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, ClassVar

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dualwrite.cli import run_embedded
from dualwrite_django.bridge import database_for
from dualwrite_django.conf import load_settings

__all__ = ["Command", "split_database"]


def split_database(args: list[str]) -> tuple[str, list[str]]:
    """``(alias, rest)`` from ``args`` holding an optional ``--database ALIAS``."""
    alias, rest, i = "default", [], 0
    while i < len(args):
        a = args[i]
        if a == "--database" and i + 1 < len(args):
            alias, i = args[i + 1], i + 2
            continue
        if a.startswith("--database="):
            alias = a.split("=", 1)[1]
        else:
            rest.append(a)
        i += 1
    return alias, rest


class Command(BaseCommand):
    help = ("The dualwrite CLI (status, advance, rollback, history, init, ...) on this "
            "project's database and settings.DUALWRITE specs. --database ALIAS picks the "
            "database (default: default). Same options and exit codes as `dualwrite`.")
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default="default",
                            help="the Django database alias holding the migrated tables")
        parser.add_argument("args", nargs=argparse.REMAINDER,
                            help="a dualwrite command and its options")

    def run(self, args: list[str], alias: str = "default") -> int:
        """Run the CLI with ``args`` (``--database ALIAS`` among them or given); its exit
        code."""
        from django.conf import settings

        alias, rest = split_database(["--database", alias, *args])
        specs = list(load_settings(getattr(settings, "DUALWRITE", None)).specs)
        db = database_for(alias)
        try:
            return run_embedded(rest, db, specs)
        finally:
            db.close()

    def run_from_argv(self, argv: list[str]) -> None:
        # Bypass argparse: the CLI parses its own options (and prints its own errors).
        sys.exit(self.run(argv[2:]))

    def handle(self, *args: Any, **options: Any) -> None:
        code = self.run(list(args), options.get("database") or "default")
        if code:
            raise CommandError(f"dualwrite exited with {code}", returncode=code)
