"""Migration operations: expand (reversible) and contract (gated, irreversible)."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections, migrations, models
from django.db.migrations.state import ProjectState
from django.test import override_settings
from dualwrite_django.bridge import database_for
from dualwrite_django.operations import AddNewColumn, DropOldColumn

from dualwrite.errors import TransitionRefused
from dualwrite.migrator import Migrator
from dualwrite.spec import RenameColumn
from dualwrite.stages import Stage
from tests.django.helpers import migrator, set_stage
from tests.helpers import record_backfill_and_verify


def columns(alias: str, table: str) -> set[str]:
    conn = connections[alias]
    with conn.cursor() as cur:
        return {c.name for c in conn.introspection.get_table_description(cur, table)}


def test_expand_is_recorded_and_reversible(alias: str) -> None:
    try:
        call_command("migrate", "shop", "0001", database=alias, verbosity=0)
        assert "display_name" not in columns(alias, "shop_customer")
        assert "price_cents" not in columns(alias, "shop_order")
        call_command("migrate", "shop", database=alias, verbosity=0)
        assert "display_name" in columns(alias, "shop_customer")
        m = migrator(alias)
        assert m.state.get("customer-name").stage is Stage.EXPAND
        assert m.state.get("order-cents").stage is Stage.EXPAND
        # once the application writes the new column, the expand cannot be undone
        set_stage(alias, "customer-name", Stage.DUALWRITE)
        with pytest.raises(TransitionRefused) as info:
            call_command("migrate", "shop", "0001", database=alias, verbosity=0)
        assert "rollback customer-name --to expand" in (info.value.hint or "")
        assert "display_name" in columns(alias, "shop_customer")
        assert "price_cents" in columns(alias, "shop_order")
        assert m.state.get("customer-name").stage is Stage.DUALWRITE
        # back at expand it can, and the stage goes back to off
        set_stage(alias, "customer-name", Stage.EXPAND)
        call_command("migrate", "shop", "0001", database=alias, verbosity=0)
        assert m.state.get("customer-name").stage is Stage.OFF
        assert "display_name" not in columns(alias, "shop_customer")
    finally:
        call_command("migrate", "shop", database=alias, verbosity=0)


def test_expand_operation_deconstructs() -> None:
    op = AddNewColumn("customer", "nick", models.CharField(max_length=5, null=True), key="k")
    name, _, kwargs = op.deconstruct()
    assert name == "AddNewColumn" and kwargs["key"] == "k" and kwargs["name"] == "nick"
    assert DropOldColumn("customer", "x", key="k").deconstruct()[2] == {
        "model_name": "customer", "name": "x", "key": "k"}


GADGET = RenameColumn(key="gadget-label", table="shop_gadget", old="code", new="label")


def _run(alias: str, op: Any, state: ProjectState, backwards: bool = False) -> ProjectState:
    new = state.clone()
    op.state_forwards("shop", new)
    with connections[alias].schema_editor() as editor:
        if backwards:
            op.database_backwards("shop", editor, new, state)
        else:
            op.database_forwards("shop", editor, state, new)
    return new


def test_contract_is_gated_and_irreversible(alias: str) -> None:
    create = migrations.CreateModel("Gadget", [
        ("id", models.BigAutoField(primary_key=True)),
        ("code", models.CharField(max_length=20)),
        ("label", models.CharField(max_length=20, null=True))],
        options={"db_table": "shop_gadget"})
    dualwrite = {**settings.DUALWRITE, "MIGRATIONS": [GADGET]}
    with override_settings(DUALWRITE=dualwrite):
        state = _run(alias, create, ProjectState())
        try:
            drop = DropOldColumn("gadget", "code", key="gadget-label")
            with pytest.raises(TransitionRefused):  # not registered: off
                _run(alias, drop, state)
            db = database_for(alias)
            m = Migrator(db, [GADGET])
            for step in (Stage.EXPAND, Stage.DUALWRITE, Stage.SHADOW, Stage.LIVE,
                         Stage.RAMPDOWN, Stage.COMPLETE):
                if step is Stage.LIVE:
                    record_backfill_and_verify(db, "gadget-label",
                                               m.state.get("gadget-label").spec_hash)
                m.advance("gadget-label", step, confidence_window=0)
            with pytest.raises(TransitionRefused) as info:  # the confidence window
                _run(alias, drop, state)
            assert "confidence window" in info.value.message
            assert "code" in columns(alias, "shop_gadget")
            assert m.state.get("gadget-label").stage is Stage.COMPLETE
            aged = m.state.get("gadget-label").stage_changed_at.replace(year=2000)
            p = db.dialect.p  # test-only SQL: age the stage past the confidence window
            db.execute((f"UPDATE dualwrite_migrations SET stage_changed_at = {p} "
                        f"WHERE migration_key = {p}", (db.dialect.to_db_time(aged),
                                                       "gadget-label")))
            after = _run(alias, drop, state)
            assert columns(alias, "shop_gadget") == {"id", "label"}
            assert m.state.get("gadget-label").stage is Stage.CONTRACT
            with pytest.raises(TransitionRefused):
                _run(alias, drop, state, backwards=True)
            db.close()
            state = after
        finally:
            _run(alias, migrations.DeleteModel("Gadget"), state)


TRIGGER_SPEC = {"key": "customer-name", "table": "shop_customer", "old": "full_name",
                "new": "display_name", "mode": "trigger"}


def test_trigger_operations(alias: str) -> None:
    from dualwrite_django.operations import InstallTriggers, RemoveTriggers

    from dualwrite.triggers import TriggerInstaller
    from tests.django.helpers import raw_execute, raw_rows

    with override_settings(DUALWRITE={**settings.DUALWRITE, "MIGRATIONS": [TRIGGER_SPEC]}):
        from dualwrite_django.conf import load_settings

        [spec] = load_settings(settings.DUALWRITE).specs
        db = database_for(alias)
        m = Migrator(db, [spec], actor="tests")
        m.init()  # re-registered at off, in trigger mode
        installer = TriggerInstaller(db)
        state = ProjectState()
        try:
            _run(alias, InstallTriggers("customer-name"), state)
            assert installer.status(spec).current
            m.advance("customer-name", Stage.DUALWRITE)  # the trigger gate passes
            raw_execute(alias, "INSERT INTO shop_customer (email, full_name, active, deleted) "
                        "VALUES ('raw', 'Raw SQL', %s, %s)", (True, False))
            assert raw_rows(alias, "shop_customer", "full_name, display_name") == [
                ("Raw SQL", "Raw SQL")]
            with pytest.raises(TransitionRefused) as info:
                _run(alias, RemoveTriggers("customer-name"), state)
            assert "rollback customer-name --to expand" in (info.value.hint or "")
            assert installer.status(spec).current
            with pytest.raises(TransitionRefused):  # reversing the install: same refusal
                _run(alias, InstallTriggers("customer-name"), state, backwards=True)
            m.rollback("customer-name", Stage.EXPAND)
            _run(alias, RemoveTriggers("customer-name"), state)
            assert installer.status(spec).state.value == "missing"
            _run(alias, RemoveTriggers("customer-name"), state, backwards=True)
            assert installer.status(spec).current
            assert InstallTriggers("customer-name").deconstruct() == (
                "InstallTriggers", [], {"key": "customer-name"})
        finally:
            installer.uninstall(spec)
            db.close()
