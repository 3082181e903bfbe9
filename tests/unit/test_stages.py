"""Transitions and gates: every pair of stages, with good and with bad facts."""

from __future__ import annotations

import itertools

import pytest

from dualwrite.stages import (
    Decision,
    GateFacts,
    Mode,
    Stage,
    check_transition,
    clamp_stage,
    path_between,
)

ALL = list(Stage)

GOOD = GateFacts(mode=Mode.APP, new_columns_exist=True, triggers_current=True,
                 fleet_stages=(), backfill_complete=True, verify_mismatches=0,
                 reverse_in_sync=True, seconds_in_stage=10**9, confidence_window=60,
                 confirmed=True)
BAD = GateFacts(mode=Mode.APP, new_columns_exist=False, triggers_current=False,
                fleet_stages=(Stage.OFF,), backfill_complete=False, verify_mismatches=3,
                reverse_in_sync=False, seconds_in_stage=1, confidence_window=60,
                confirmed=False)


def expected_good(frm: Stage, to: Stage) -> bool:
    step = to.position - frm.position
    if step == 1:
        return True
    if step == -1:
        return frm is not Stage.CONTRACT
    return False


def expected_bad(frm: Stage, to: Stage) -> bool:
    step = to.position - frm.position
    if step == -1:
        return frm not in (Stage.CONTRACT, Stage.COMPLETE)
    return False


@pytest.mark.parametrize(("frm", "to"), list(itertools.product(ALL, ALL)))
def test_every_pair_with_good_facts(frm: Stage, to: Stage) -> None:
    d = check_transition("k", frm, to, GOOD)
    assert isinstance(d, Decision)
    assert d.allowed is expected_good(frm, to), (frm, to, d)
    assert d.reason


@pytest.mark.parametrize(("frm", "to"), list(itertools.product(ALL, ALL)))
def test_every_pair_with_bad_facts(frm: Stage, to: Stage) -> None:
    d = check_transition("k", frm, to, BAD)
    assert d.allowed is expected_bad(frm, to), (frm, to, d)
    if not d.allowed and frm is not to and frm is not Stage.CONTRACT:
        assert d.hint, (frm, to, d)


@pytest.mark.parametrize(("to", "reason", "hint"), [
    (Stage.EXPAND, "do not exist", "dualwrite expand k"),
    (Stage.DUALWRITE, "do not exist", "dualwrite expand k"),
    (Stage.SHADOW, "do not mirror writes", "dualwrite status k"),
    (Stage.LIVE, "backfill has not finished", "dualwrite backfill k"),
    (Stage.RAMPDOWN, "before shadow", "dualwrite status k"),
    (Stage.COMPLETE, "still read the old column", "dualwrite status k"),
    (Stage.CONTRACT, "still write the old column", "dualwrite status k"),
])
def test_forward_refusals_say_why_and_what_to_run(to: Stage, reason: str, hint: str) -> None:
    prev = to.previous()
    assert prev is not None
    d = check_transition("k", prev, to, BAD)
    assert not d.allowed
    assert reason in d.reason
    assert d.hint is not None and hint in d.hint


def test_live_gate_needs_verify_with_zero_mismatches() -> None:
    base = dict(GOOD.__dict__)
    for verify, ok, text in [(None, False, "no finished verify"), (2, False, "2 mismatching"),
                             (0, True, "zero mismatches")]:
        facts = GateFacts(**{**base, "verify_mismatches": verify})
        d = check_transition("k", Stage.SHADOW, Stage.LIVE, facts)
        assert d.allowed is ok
        assert text in d.reason


def test_trigger_mode_needs_current_triggers() -> None:
    facts = GateFacts(**{**GOOD.__dict__, "mode": Mode.TRIGGER, "triggers_current": None})
    d = check_transition("k", Stage.EXPAND, Stage.DUALWRITE, facts)
    assert not d.allowed and "triggers install k" in (d.hint or "")
    # the fleet does not gate shadow in trigger mode: the database mirrors
    facts = GateFacts(**{**GOOD.__dict__, "mode": Mode.TRIGGER, "fleet_stages": (Stage.OFF,)})
    assert check_transition("k", Stage.DUALWRITE, Stage.SHADOW, facts).allowed


def test_confidence_window_and_confirmation() -> None:
    early = GateFacts(**{**GOOD.__dict__, "seconds_in_stage": 30, "confidence_window": 3600})
    d = check_transition("k", Stage.RAMPDOWN, Stage.COMPLETE, early)
    assert not d.allowed and "confidence window" in d.reason and "30s of 1.0h" in d.reason
    unconfirmed = GateFacts(**{**GOOD.__dict__, "confirmed": False})
    d = check_transition("k", Stage.COMPLETE, Stage.CONTRACT, unconfirmed)
    assert not d.allowed and "--confirm k" in (d.hint or "")


def test_rollback_from_complete_in_trigger_mode_is_allowed_with_current_triggers() -> None:
    facts = GateFacts(mode=Mode.TRIGGER, triggers_current=True, reverse_in_sync=False)
    assert check_transition("k", Stage.COMPLETE, Stage.RAMPDOWN, facts).allowed
    facts = GateFacts(mode=Mode.APP, triggers_current=True, reverse_in_sync=False)
    d = check_transition("k", Stage.COMPLETE, Stage.RAMPDOWN, facts)
    assert not d.allowed and "--reverse" in (d.hint or "")


def test_fleet_gate_counts_instances_behind() -> None:
    facts = GateFacts(**{**GOOD.__dict__,
                         "fleet_stages": (Stage.DUALWRITE, Stage.EXPAND, Stage.OFF)})
    d = check_transition("k", Stage.DUALWRITE, Stage.SHADOW, facts)
    assert not d.allowed and d.reason.startswith("2 live instance(s)")


@pytest.mark.parametrize(("frm", "to"), list(itertools.product(ALL, ALL)))
def test_path_between_is_single_steps(frm: Stage, to: Stage) -> None:
    path = path_between(frm, to)
    assert len(path) == abs(to.position - frm.position)
    prev = frm
    for s in path:
        assert abs(s.position - prev.position) == 1
        prev = s
    assert prev is to


@pytest.mark.parametrize(("flag", "ceiling"), list(itertools.product(ALL, ALL)))
def test_clamp_never_exceeds_ceiling_nor_lags_more_than_one_step(flag: Stage,
                                                                 ceiling: Stage) -> None:
    served = clamp_stage(flag, ceiling)
    assert served <= ceiling
    assert ceiling.position - served.position <= 1
    if ceiling.position - flag.position in (0, 1):
        assert served is flag


def test_stage_semantics_match_the_design_table() -> None:
    table = {
        Stage.OFF: (True, False, False, False),
        Stage.EXPAND: (True, False, False, False),
        Stage.DUALWRITE: (True, True, False, False),
        Stage.SHADOW: (True, True, False, True),
        Stage.LIVE: (True, True, True, True),
        Stage.RAMPDOWN: (True, True, True, False),
        Stage.COMPLETE: (False, True, True, False),
        Stage.CONTRACT: (False, True, True, False),
    }
    for s, (wo, wn, rn, cmp) in table.items():
        assert (s.writes_old, s.writes_new, s.reads_new, s.compares) == (wo, wn, rn, cmp), s
    assert Stage.RAMPDOWN.new_authoritative and not Stage.LIVE.new_authoritative
    assert [s.is_ddl_phase for s in ALL].count(True) == 2


def test_parse_rejects_unknown_stage_listing_valid_ones() -> None:
    assert Stage.parse(" LIVE ") is Stage.LIVE
    with pytest.raises(ValueError, match="valid stages: off, expand"):
        Stage.parse("liv")
