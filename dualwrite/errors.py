"""The dualwrite error hierarchy.

Every error raised on purpose by dualwrite is a :class:`DualwriteError`. Each carries
structured fields (the migration key, table, column, stages, ...) and a ``hint``: the
command or change that fixes it. ``exit_code`` is what the CLI exits with:

* ``1`` -- an error (bad spec, database unreachable, state missing, ...)
* ``3`` -- a transition refused by a gate (nothing was changed)

Hierarchy::

    DualwriteError
    ├── ConfigurationError        bad URL, missing driver, unreadable spec file
    ├── DatabaseError             the database failed or could not be reached
    │   ├── TriggerError          mirror triggers could not be installed / used
    │   │   └── ForeignTriggerError   a same-name object dualwrite did not create
    │   └── DdlLockTimeout        a DDL step kept timing out on its table lock
    ├── SpecError                 a spec is invalid (on its own or against the live schema)
    │   ├── UnknownTableError
    │   ├── UnknownColumnError
    │   ├── IncompatibleTypesError
    │   ├── NoUsableKeyError
    │   └── TransformMismatchError
    ├── StateError
    │   ├── StateNotInitializedError
    │   ├── MigrationNotFoundError
    │   └── SpecChangedError
    ├── TransitionRefused         exit code 3
    │   └── ConcurrentTransitionError
    ├── OnlineDdlRefused          exit code 3: the DDL step would rebuild or lock the table
    └── BackfillError             a backfill cannot start or had to stop
        ├── BackfillTransformError  the transform failed on some rows (keys reported)
        └── BackfillAborted         a critical health signal stopped it (exit code 4)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BackfillAborted",
    "BackfillError",
    "BackfillTransformError",
    "ConcurrentTransitionError",
    "ConfigurationError",
    "DatabaseError",
    "DdlLockTimeout",
    "DualwriteError",
    "ForeignTriggerError",
    "IncompatibleTypesError",
    "MigrationNotFoundError",
    "NoUsableKeyError",
    "OnlineDdlRefused",
    "SpecChangedError",
    "SpecError",
    "StateError",
    "StateNotInitializedError",
    "TransformMismatchError",
    "TriggerError",
    "TransitionRefused",
    "UnknownColumnError",
    "UnknownTableError",
]


class DualwriteError(Exception):
    """Base class of every dualwrite error.

    ``message`` says what is wrong, ``hint`` what to do about it. Subclasses add fields.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  fix: {self.hint}"
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """The error as a JSON-ready mapping (used by ``--json`` output)."""
        fields = {k: v for k, v in vars(self).items() if k not in {"message", "hint", "args"}}
        return {
            "error": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            **{k: (str(v) if not isinstance(v, (int, float, str, bool, type(None), list)) else v)
               for k, v in fields.items()},
        }


class ConfigurationError(DualwriteError):
    """The configuration is unusable: a bad database URL, a missing driver, a bad spec file."""


class DatabaseError(DualwriteError):
    """The database failed or could not be reached. ``cause`` is the driver's error."""

    def __init__(self, message: str, *, hint: str | None = None,
                 cause: BaseException | None = None) -> None:
        super().__init__(message, hint=hint)
        self.cause = cause


class SpecError(DualwriteError):
    """A migration spec is invalid, on its own or against the live schema."""

    def __init__(self, message: str, *, key: str | None = None, table: str | None = None,
                 column: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.key = key
        self.table = table
        self.column = column


class UnknownTableError(SpecError):
    """The spec's table does not exist in the database."""


class UnknownColumnError(SpecError):
    """A column named by the spec does not exist in the table."""


class IncompatibleTypesError(SpecError):
    """The existing new column's type does not fit the spec."""

    def __init__(self, message: str, *, key: str | None = None, table: str | None = None,
                 column: str | None = None, expected: str | None = None,
                 actual: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, key=key, table=table, column=column, hint=hint)
        self.expected = expected
        self.actual = actual


class NoUsableKeyError(SpecError):
    """The table has no primary key or NOT NULL unique key to walk in batches."""


class TransformMismatchError(SpecError):
    """The SQL and Python forms of a transform give different results on real rows."""

    def __init__(self, message: str, *, key: str | None = None, table: str | None = None,
                 column: str | None = None, samples: list[Any] | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, key=key, table=table, column=column, hint=hint)
        self.samples = samples or []


class StateError(DualwriteError):
    """The migration state is missing or inconsistent with the specs."""


class StateNotInitializedError(StateError):
    """The dualwrite state tables do not exist in this database."""


class MigrationNotFoundError(StateError):
    """No migration with this key is registered (in the specs or in the state tables)."""

    def __init__(self, message: str, *, key: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.key = key


class SpecChangedError(StateError):
    """The spec changed since the migration started (its hash differs from the recorded one)."""

    def __init__(self, message: str, *, key: str, recorded_hash: str, current_hash: str,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.key = key
        self.recorded_hash = recorded_hash
        self.current_hash = current_hash


class TransitionRefused(DualwriteError):
    """A stage transition was refused by its gate. Nothing was changed."""

    exit_code = 3

    def __init__(self, message: str, *, key: str, from_stage: str, to_stage: str,
                 reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.key = key
        self.from_stage = from_stage
        self.to_stage = to_stage
        self.reason = reason


class ConcurrentTransitionError(TransitionRefused):
    """Another process changed the migration's stage first (compare-and-set lost)."""


class BackfillError(DualwriteError):
    """A backfill or verify cannot start, or had to stop. Its checkpoint is kept."""

    def __init__(self, message: str, *, key: str, direction: str = "forward",
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.key = key
        self.direction = direction


class BackfillTransformError(BackfillError):
    """The transform failed on some rows. ``keys`` are their primary keys; the batch that
    held them was not applied (``--on-error stop``)."""

    def __init__(self, message: str, *, key: str, direction: str = "forward",
                 keys: list[Any] | None = None, error: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, key=key, direction=direction, hint=hint)
        self.keys = keys or []
        self.error = error


class BackfillAborted(BackfillError):
    """A health signal crossed its critical threshold: the backfill stopped cleanly after its
    last committed batch."""

    exit_code = 4

    def __init__(self, message: str, *, key: str, direction: str = "forward",
                 signal: str, value: float | None = None, hint: str | None = None) -> None:
        super().__init__(message, key=key, direction=direction, hint=hint)
        self.signal = signal
        self.value = value

class TriggerError(DatabaseError):
    """Mirror triggers could not be installed, replaced or dropped, or their SQL transform
    fails on the table's data. ``objects`` names the triggers/functions concerned."""

    def __init__(self, message: str, *, key: str, table: str | None = None,
                 objects: list[str] | None = None, hint: str | None = None,
                 cause: BaseException | None = None) -> None:
        super().__init__(message, hint=hint, cause=cause)
        self.key = key
        self.table = table
        self.objects = objects or []


class ForeignTriggerError(TriggerError):
    """An object with the name of a dualwrite trigger or function exists but dualwrite did
    not create it (no marker). dualwrite never replaces or drops it."""


class DdlLockTimeout(DatabaseError):
    """A DDL step gave up: every attempt timed out waiting for its table lock.

    Nothing of that step was applied; steps before it stay done (rerunning resumes).
    """

    def __init__(self, message: str, *, key: str, table: str, step: str, attempts: int,
                 lock_timeout: float, hint: str | None = None,
                 cause: BaseException | None = None) -> None:
        super().__init__(message, hint=hint, cause=cause)
        self.key = key
        self.table = table
        self.step = step
        self.attempts = attempts
        self.lock_timeout = lock_timeout


class OnlineDdlRefused(DualwriteError):
    """A DDL step cannot run online here (it would rebuild or lock the table); refused
    unless forced. Nothing of that step was applied."""

    exit_code = 3

    def __init__(self, message: str, *, key: str, table: str, step: str, reason: str,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.key = key
        self.table = table
        self.step = step
        self.reason = reason
