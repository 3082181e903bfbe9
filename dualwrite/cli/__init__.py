"""The ``dualwrite`` command: parse, call the core, report. No logic of its own.

Exit codes: 0 ok, 1 error, 2 usage, 3 refused by a gate (nothing changed).
Each feature's commands live in their own module here and register on :data:`main`.
"""

from dualwrite.cli import backfill as _backfill  # noqa: F401  (registers commands)
from dualwrite.cli import ddl as _ddl  # noqa: F401  (registers commands)
from dualwrite.cli import lifecycle as _lifecycle  # noqa: F401  (registers commands)
from dualwrite.cli import triggers as _triggers  # noqa: F401  (registers commands)
from dualwrite.cli import watch as _watch  # noqa: F401  (registers commands)
from dualwrite.cli.app import EXIT_ERROR, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, main, run_embedded

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "main", "run_embedded"]
