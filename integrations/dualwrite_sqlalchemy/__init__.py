"""dualwrite for SQLAlchemy 2.x: mirror every write, route every read, compare in shadow.

::

    import dualwrite_sqlalchemy

    handle = dualwrite_sqlalchemy.install(SessionLocal, migrations=SPECS)
    with dualwrite_sqlalchemy.evaluation_context("user-42"):
        ...                       # sessions used here read the stage for this user
    handle.uninstall()

See ``docs/sqlalchemy.md``.
"""

from dualwrite_sqlalchemy.context import (
    current_evaluation_context,
    evaluation_context,
    reset_evaluation_context,
    set_evaluation_context,
)
from dualwrite_sqlalchemy.install import Installation, install

__all__ = [
    "Installation",
    "current_evaluation_context",
    "evaluation_context",
    "install",
    "reset_evaluation_context",
    "set_evaluation_context",
]
