"""``python -m dualwrite``: the CLI."""

from dualwrite.cli import main

main()
