"""Settings, system checks, the management command, the middleware and the fleet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import dualwrite_django
import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings
from dualwrite_django.checks import check_dualwrite
from dualwrite_django.conf import DualwriteImproperlyConfigured, load_settings
from dualwrite_django.install import install
from dualwrite_django.management.commands.dualwrite import Command
from dualwrite_django.registry import get_registry
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails
from openfeature.provider import AbstractProvider, Metadata

from dualwrite.errors import ConfigurationError, TransitionRefused
from dualwrite.migrator import Migrator
from dualwrite.spec import RenameColumn
from dualwrite.stages import Stage
from dualwrite.state import StateStore
from tests.django.helpers import migrator, raw_execute, raw_rows, set_stage
from tests.django.shop.models import Customer

NAME = "customer-name"


@pytest.fixture
def reinstall() -> Iterator[Any]:
    """Install the adapter with other settings; the test settings come back afterwards."""
    def apply(**overrides: Any) -> Any:
        return install(load_settings({**settings.DUALWRITE, **overrides}))
    yield apply
    install(load_settings(settings.DUALWRITE))


# -- settings ---------------------------------------------------------------------------
@pytest.mark.parametrize("raw, words", [
    ([], "expected a dict"),
    ({"MIGRATION": []}, "unknown option(s) MIGRATION"),
    ({"MIGRATIONS": "tests.django.shop.specs:SPECS"}, "MIGRATIONS must be a list"),
    ({"MIGRATIONS": ["tests.django.shop.specs:NOPE"]}, "has no attribute"),
    ({"MIGRATIONS": [42]}, "MIGRATIONS[0] is a int"),
    ({"MIGRATIONS": [{"key": "k", "table": "t", "old": "a", "new": "b", "kind": "nope"}]},
     "unknown kind"),
    ({"MODE": "both"}, "MODE = 'both' is not a mode"),
    ({"SAMPLE_RATE": 2}, "SAMPLE_RATE = 2 is not a number between 0.0 and 1.0"),
    ({"FLEET": "yes"}, "FLEET = 'yes' is not True or False"),
    ({"OPENFEATURE_CLIENT": 3}, "not an OpenFeature client"),
    ({"PUBLISHER": "json:dumps"}, "no publish(mismatch) method"),
    ({"MIGRATIONS": ["tests.django.shop.specs:SPECS", "tests.django.shop.specs:SPECS"]},
     "share the key"),
])
def test_bad_settings_are_clear_errors(raw: Any, words: str) -> None:
    with pytest.raises(DualwriteImproperlyConfigured) as info:
        load_settings(raw)
    assert words in info.value.message
    assert info.value.hint
    assert isinstance(info.value, ConfigurationError)


def test_bad_settings_change_nothing() -> None:
    before = get_registry()
    with override_settings(DUALWRITE={"SAMPLE_RATE": -1}), \
            pytest.raises(DualwriteImproperlyConfigured):
        apps.get_app_config("dualwrite_django").ready()
    assert get_registry() is before


def test_dict_entries_take_the_default_mode() -> None:
    parsed = load_settings({"MODE": "trigger", "MIGRATIONS": [
        {"key": "k", "table": "shop_customer", "old": "full_name", "new": "display_name"}]})
    assert parsed.specs[0].mode.value == "trigger"


# -- system checks ----------------------------------------------------------------------
def _ids(**dualwrite: Any) -> dict[str, str]:
    with override_settings(DUALWRITE=dualwrite):
        return {m.id: m.msg for m in check_dualwrite()}


def test_checks_pass_on_the_test_project() -> None:
    assert check_dualwrite() == []


def test_checks_report_what_does_not_match_the_models() -> None:
    rename = RenameColumn(key="r", table="shop_customer", old="full_name", new="nick")
    assert "not fields of shop.Customer" in _ids(MIGRATIONS=[rename])["dualwrite_django.E003"]
    gone = RenameColumn(key="g", table="nowhere", old="a", new="b")
    assert "no installed model has the table 'nowhere'" in \
        _ids(MIGRATIONS=[gone])["dualwrite_django.E002"]
    assert "not an installed model" in _ids(
        MIGRATIONS=["tests.django.shop.specs:SPECS"],
        MODELS={"customer-name": "shop.Nope"})["dualwrite_django.E002"]
    notnull = RenameColumn(key="n", table="shop_customer", old="display_name", new="email")
    assert "must be nullable" in _ids(MIGRATIONS=[notnull])["dualwrite_django.E004"]
    old_gone = RenameColumn(key="o", table="shop_customer", old="name", new="display_name")
    assert "old column(s) name" in _ids(MIGRATIONS=[old_gone])["dualwrite_django.W001"]
    trig = RenameColumn(key="t", table="shop_customer", old="full_name", new="display_name",
                        mode="trigger")
    found = _ids(MIGRATIONS=[trig])
    assert "dualwrite_django.E009" in found or found == {}
    assert "E001" in next(iter(_ids(MIGRATIONS=7)))


def test_checks_report_an_unsupported_database() -> None:
    messages = check_dualwrite(databases=["other"])
    assert [m.id for m in messages] == ["dualwrite_django.E008"]
    assert "does not support" in messages[0].msg


# -- management command -----------------------------------------------------------------
def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        Command().run_from_argv(["manage.py", "dualwrite", *argv])
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_management_command_is_the_cli(alias: str, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--database", alias]
    code, out, _ = _run(capsys, *db, "status", "--json")
    assert code == 0
    assert {r["key"]: r["stage"] for r in json.loads(out)} == {
        NAME: "off", "order-cents": "off", "person-split": "off"}
    code, out, _ = _run(capsys, *db, "advance", NAME, "--to", "dualwrite", "--reason", "go")
    assert code == 0 and "expand -> dualwrite" in out
    code, _, err = _run(capsys, *db, "advance", NAME, "--to", "live")  # no backfill yet
    assert code == 3 and "backfill" in err
    code, _, err = _run(capsys, *db, "advance", "nope")
    assert code == 1 and "nope" in err
    code, _, err = _run(capsys, *db, "advance", NAME, "--bogus")
    assert code == 2
    code, out, _ = _run(capsys, *db, "history", NAME, "--json")
    assert code == 0 and [h["to"] for h in json.loads(out)] == ["expand", "dualwrite",
                                                                     "shadow"]
    assert migrator(alias).state.get(NAME).stage is Stage.SHADOW
    call_command("dualwrite", "--database", alias, "rollback", NAME)
    assert migrator(alias).state.get(NAME).stage is Stage.DUALWRITE
    with pytest.raises(CommandError) as info:
        call_command("dualwrite", "--database", alias, "advance", NAME, "--to", "live")
    assert info.value.returncode == 3


# -- evaluation context: a per-request rollout ------------------------------------------
class BetaProvider(AbstractProvider):
    """Serves ``live`` to the targeting key ``beta``, ``shadow`` to everyone else."""

    def get_metadata(self) -> Metadata:
        return Metadata(name="beta")

    def resolve_string_details(self, flag_key: str, default_value: str,
                               evaluation_context: EvaluationContext | None = None
                               ) -> FlagResolutionDetails[str]:
        key = evaluation_context.targeting_key if evaluation_context else None
        return FlagResolutionDetails(value="live" if key == "beta" else "shadow")

    def resolve_boolean_details(self, *a: Any, **k: Any) -> FlagResolutionDetails[bool]:
        raise NotImplementedError

    resolve_integer_details = resolve_float_details = resolve_object_details = \
        resolve_boolean_details  # type: ignore[assignment]


def user_context(request: Any) -> dict[str, Any]:
    return {"targeting_key": request.headers.get("X-User"), "path": request.path}


def test_middleware_rolls_reads_out_per_request(alias: str, reinstall: Any) -> None:
    reinstall(OPENFEATURE_PROVIDER=BetaProvider(),
              CONTEXT_BUILDER="tests.django.test_app:user_context")
    set_stage(alias, NAME, Stage.LIVE)
    raw_execute(alias, "INSERT INTO shop_customer (id, email, full_name, display_name, active, "
                "deleted) VALUES (%s, %s, %s, %s, %s, %s)", (7, "x", "Old", "New", True, False))
    client = Client()
    assert client.get("/customers/7", HTTP_X_USER="beta").json()["display_name"] == "New"
    assert client.get("/customers/7", HTTP_X_USER="alice").json()["display_name"] == "Old"
    with dualwrite_django.evaluation_context({"targeting_key": "beta"}):
        assert Customer.objects.get(pk=7).full_name == "New"
        assert dualwrite_django.stage(NAME, alias) is Stage.LIVE
    with dualwrite_django.evaluation_context(EvaluationContext(targeting_key="bob")):
        assert Customer.objects.get(pk=7).full_name == "Old"


# -- fleet ------------------------------------------------------------------------------
def test_fleet_registration_feeds_the_gates(alias: str, reinstall: Any) -> None:
    registry = reinstall(FLEET=True, FLEET_INTERVAL=60.0)
    set_stage(alias, NAME, Stage.EXPAND)
    Customer.objects.create(email="f", full_name="F")  # this process observes expand
    m = Migrator(registry.runtimes(alias).db, list(registry.settings.specs))
    [me] = m.live_fleet(NAME)
    assert me.stage is Stage.EXPAND
    m.advance(NAME, Stage.DUALWRITE)
    with pytest.raises(TransitionRefused) as info:
        m.advance(NAME, Stage.SHADOW)  # we still serve expand: not every instance mirrors
    assert "do not mirror" in str(info.value)
    dualwrite_django.refresh()
    Customer.objects.filter(email="f").update(full_name="G")  # picks up dualwrite, reports it
    assert m.live_fleet(NAME)[0].stage is Stage.DUALWRITE
    m.advance(NAME, Stage.SHADOW)
    runtime = registry.runtimes(alias)
    instance = runtime.fleet.instance_id
    install(load_settings(settings.DUALWRITE))  # stops the heartbeat and deregisters
    assert all(i.instance_id != instance for i in StateStore(m.db).fleet(NAME))


# -- trigger mode and metrics -----------------------------------------------------------
def test_trigger_mode_routes_reads_but_leaves_writes_to_the_database(
        alias: str, reinstall: Any) -> None:
    reinstall(MODE="trigger", MIGRATIONS=[
        {"key": NAME, "table": "shop_customer", "old": "full_name", "new": "display_name"}])
    migrator(alias).init()  # re-registered at off, now in trigger mode
    assert migrator(alias).state.get(NAME).mode.value == "trigger"
    registry = get_registry()
    assert registry is not None
    binding = registry.binding(NAME)
    assert binding is not None and binding.mirrors is False
    # trigger mode cannot pass its gates without the installer: record live directly
    raw_execute(alias, "UPDATE dualwrite_migrations SET stage = 'live', stage_ceiling = 'live'")
    dualwrite_django.refresh()
    c = Customer.objects.create(email="t", full_name="Only old")
    assert raw_rows(alias, "shop_customer", "full_name, display_name") == [("Only old", None)]
    assert Customer.objects.get(pk=c.pk).display_name == "Only old"  # COALESCE(new, old)


def test_mirrored_writes_are_counted(alias: str) -> None:
    from prometheus_client import REGISTRY

    def count() -> float:
        return REGISTRY.get_sample_value("dualwrite_mirrored_writes_total",
                                         {"migration_key": NAME, "adapter": "django"}) or 0.0

    set_stage(alias, NAME, Stage.DUALWRITE)
    before = count()
    Customer.objects.create(email="m", full_name="M")
    Customer.objects.filter(email="m").update(full_name="N")
    assert count() - before == 2
    assert REGISTRY.get_sample_value("dualwrite_stage", {"migration_key": NAME}) == \
        Stage.DUALWRITE.position


def test_checks_warn_about_missing_triggers(alias: str) -> None:
    trig = {"key": NAME, "table": "shop_customer", "old": "full_name", "new": "display_name",
            "mode": "trigger"}
    with override_settings(DUALWRITE={**settings.DUALWRITE, "MIGRATIONS": [trig]}):
        messages = check_dualwrite(databases=[alias])
    assert [m.id for m in messages] == ["dualwrite_django.W002"]
    assert "missing" in messages[0].msg and "triggers install" in messages[0].hint
