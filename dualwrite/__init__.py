"""dualwrite: zero-downtime column migrations (expand, dual write, backfill, shadow, live,
contract) for live production databases."""

from dualwrite._version import __version__
from dualwrite.backfill import Backfill, BackfillOptions, Verifier
from dualwrite.backfill_control import BackfillControl
from dualwrite.db import Database
from dualwrite.errors import (
    BackfillAborted,
    BackfillError,
    BackfillTransformError,
    ConcurrentTransitionError,
    ConfigurationError,
    DatabaseError,
    DualwriteError,
    ForeignTriggerError,
    IncompatibleTypesError,
    MigrationNotFoundError,
    NoUsableKeyError,
    SpecChangedError,
    SpecError,
    StateError,
    StateNotInitializedError,
    TransformMismatchError,
    TransitionRefused,
    TriggerError,
    UnknownColumnError,
    UnknownTableError,
)
from dualwrite.flags import StageResolver, StateCache, StateTableProvider, use_state_provider
from dualwrite.migrator import Migrator
from dualwrite.spec import ChangeColumnType, MigrationSpec, RenameColumn, SplitColumn
from dualwrite.stages import Mode, Stage
from dualwrite.triggers import TriggerInstaller

__all__ = [
    "Backfill",
    "BackfillAborted",
    "BackfillControl",
    "BackfillError",
    "BackfillOptions",
    "BackfillTransformError",
    "Verifier",
    "ChangeColumnType",
    "ConcurrentTransitionError",
    "ConfigurationError",
    "Database",
    "DatabaseError",
    "DualwriteError",
    "ForeignTriggerError",
    "IncompatibleTypesError",
    "MigrationNotFoundError",
    "MigrationSpec",
    "Migrator",
    "Mode",
    "NoUsableKeyError",
    "RenameColumn",
    "SpecChangedError",
    "SpecError",
    "SplitColumn",
    "Stage",
    "StageResolver",
    "StateCache",
    "StateError",
    "StateNotInitializedError",
    "StateTableProvider",
    "TransformMismatchError",
    "TransitionRefused",
    "TriggerError",
    "TriggerInstaller",
    "UnknownColumnError",
    "UnknownTableError",
    "__version__",
    "use_state_provider",
]
