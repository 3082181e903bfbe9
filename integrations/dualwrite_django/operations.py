"""Migration operations for the DDL phases, to put in your own migration files.

* :class:`AddNewColumn` (expand): ``AddField`` of the new, nullable column, then the
  migration is recorded at ``expand`` once the migration's transaction has committed.
  Reversible while the recorded stage is ``expand`` or ``off`` (the column is dropped and
  the stage goes back to ``off``); refused once the application writes the new column.
* :class:`DropOldColumn` (contract): ``RemoveField`` of the old column, only after the
  ``contract`` gate passed (every instance at ``complete``, confidence window spent); the
  step is recorded before the column is dropped. Irreversible, like ``contract``.
* :class:`InstallTriggers` / :class:`RemoveTriggers` (trigger mode): the mirror triggers
  of :mod:`dualwrite.triggers`, each the other's reverse. Removing them is refused while
  the recorded stage needs them (``dualwrite`` to ``rampdown``).

Each names the migration ``key`` of a spec in ``settings.DUALWRITE``; the state tables
are those of the database the migration runs on, written in the migration's own
transaction (:class:`~dualwrite_django.bridge.JoinedDatabase`): where DDL is transactional
(PostgreSQL, SQLite) the recorded step and the column change commit or roll back together.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import migrations
from django.db.migrations.operations.base import Operation

from dualwrite.errors import ConfigurationError, TransitionRefused
from dualwrite.migrator import Migrator
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Stage
from dualwrite.triggers import TriggerInstaller
from dualwrite_django.bridge import JoinedDatabase
from dualwrite_django.conf import load_settings

__all__ = ["AddNewColumn", "DropOldColumn", "InstallTriggers", "RemoveTriggers"]


def _spec(key: str) -> MigrationSpec:
    for spec in load_settings(getattr(settings, "DUALWRITE", None)).specs:
        if spec.key == key:
            return spec
    raise ConfigurationError(f"migration operation for {key!r}: no such migration in "
                             "settings.DUALWRITE['MIGRATIONS']",
                             hint="add the spec to DUALWRITE['MIGRATIONS'] or fix the key")


class _Recorded:
    """The recorded stage of one migration, in the schema editor's transaction."""

    def __init__(self, schema_editor: Any, spec: MigrationSpec) -> None:
        self.spec = spec
        self.migrator = Migrator(JoinedDatabase(schema_editor.connection), [spec],
                                 actor="django-migrate")

    def stage(self) -> Stage:
        state = self.migrator.state
        if not state.is_initialized():
            return Stage.OFF
        found = state.find(self.spec.key)
        return Stage.OFF if found is None else found.stage

    def advance(self, to: Stage, **kwargs: Any) -> None:
        self.migrator.advance(self.spec.key, to, reason="django migration", **kwargs)

    def rollback(self, to: Stage) -> None:
        self.migrator.rollback(self.spec.key, to, reason="django migration reversed")


class AddNewColumn(migrations.AddField):
    """Expand: add the new (nullable) column of migration ``key`` and record ``expand``."""

    def __init__(self, model_name: str, name: str, field: Any, key: str,
                 preserve_default: bool = True) -> None:
        self.key = key
        super().__init__(model_name, name, field, preserve_default)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        name, args, kwargs = super().deconstruct()
        kwargs["key"] = self.key
        return name, args, kwargs

    def describe(self) -> str:
        return f"Expand {self.key}: add {self.name} to {self.model_name}"

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any,
                          to_state: Any) -> None:
        rec = _Recorded(schema_editor, _spec(self.key))
        if not self.field.null:
            raise ConfigurationError(f"{self.key}: the new column {self.name!r} must be "
                                     "nullable while the migration runs",
                                     hint="declare the field with null=True")
        super().database_forwards(app_label, schema_editor, from_state, to_state)
        if rec.stage() is Stage.OFF:
            rec.advance(Stage.EXPAND)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any,
                           to_state: Any) -> None:
        rec = _Recorded(schema_editor, _spec(self.key))
        stage = rec.stage()
        if stage > Stage.EXPAND:
            raise TransitionRefused(
                f"migration {self.key!r} is at {stage.value}: the application writes "
                f"{self.name!r}, it cannot be dropped", key=self.key, from_stage=stage.value,
                to_stage=Stage.OFF.value, reason="the new column is in use",
                hint=f"first: python manage.py dualwrite rollback {self.key} --to expand")
        if stage is Stage.EXPAND:
            rec.rollback(Stage.OFF)
        super().database_backwards(app_label, schema_editor, from_state, to_state)


class DropOldColumn(migrations.RemoveField):
    """Contract: drop the old column of migration ``key`` once the contract gate passes."""

    reversible = False

    def __init__(self, model_name: str, name: str, key: str) -> None:
        self.key = key
        super().__init__(model_name, name)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        name, args, kwargs = super().deconstruct()
        kwargs["key"] = self.key
        return name, args, kwargs

    def describe(self) -> str:
        return f"Contract {self.key}: drop {self.name} from {self.model_name}"

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any,
                          to_state: Any) -> None:
        rec = _Recorded(schema_editor, _spec(self.key))
        stage = rec.stage()
        if stage < Stage.COMPLETE:
            raise TransitionRefused(
                f"migration {self.key!r} is at {stage.value}: the old column {self.name!r} "
                "is still written", key=self.key, from_stage=stage.value,
                to_stage=Stage.CONTRACT.value, reason="contract comes after complete",
                hint=f"walk the migration to complete first: dualwrite status {self.key}")
        if stage is Stage.COMPLETE:
            rec.advance(Stage.CONTRACT, confirm=self.key)  # the gate; a refusal changes nothing
        super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any,
                           to_state: Any) -> None:
        raise TransitionRefused(f"migration {self.key!r}: contract is irreversible",
                                key=self.key, from_stage="contract", to_stage="complete",
                                reason="the old column is gone",
                                hint="restore from backup, or start a new migration back")


class _Triggers(Operation):
    """Install or remove the mirror triggers of migration ``key``."""

    reduces_to_sql = False
    reversible = True
    install_forwards = True

    def __init__(self, key: str) -> None:
        self.key = key

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return self.__class__.__name__, [], {"key": self.key}

    def state_forwards(self, app_label: str, state: Any) -> None:
        """Triggers are not part of Django's model state."""

    def _apply(self, schema_editor: Any, install: bool) -> None:
        spec = _spec(self.key)
        rec = _Recorded(schema_editor, spec)
        # In the migration's transaction: a lock timeout aborts it, so no retry here.
        installer = TriggerInstaller(rec.migrator.db, retries=0)
        if install:
            installer.install(spec)
            return
        stage = rec.stage()
        if Stage.DUALWRITE <= stage <= Stage.RAMPDOWN:
            raise TransitionRefused(
                f"migration {self.key!r} is at {stage.value}: its writes are mirrored by the "
                "triggers, they cannot be removed", key=self.key, from_stage=stage.value,
                to_stage=stage.value, reason="the triggers are in use",
                hint=f"first: python manage.py dualwrite rollback {self.key} --to expand")
        installer.uninstall(spec)

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any,
                          to_state: Any) -> None:
        self._apply(schema_editor, self.install_forwards)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any,
                           to_state: Any) -> None:
        self._apply(schema_editor, not self.install_forwards)


class InstallTriggers(_Triggers):
    """Install (or bring up to date) the mirror triggers of ``key``; reverse: remove them."""

    def describe(self) -> str:
        return f"Install the dualwrite mirror triggers of {self.key}"


class RemoveTriggers(_Triggers):
    """Remove the mirror triggers of ``key``; reverse: install them."""

    install_forwards = False

    def describe(self) -> str:
        return f"Remove the dualwrite mirror triggers of {self.key}"
