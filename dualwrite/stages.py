"""Stages, modes, transitions and gates -- pure functions, no database.

The lifecycle is one ordered sequence. ``expand`` and ``contract`` are DDL phases: the
application behaves in ``expand`` as in ``off`` and in ``contract`` as in ``complete``.

``check_transition`` decides whether moving one migration from a stage to another is
allowed, given the :class:`GateFacts` observed in the database. It never raises; it returns
a :class:`Decision` with the reason and the command that fixes a refusal.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "Decision",
    "GateFacts",
    "Mode",
    "Stage",
    "check_transition",
    "clamp_stage",
    "path_between",
]


class Stage(enum.StrEnum):
    """Where one migration is. Ordered; compare with ``<``/``>``."""

    OFF = "off"
    EXPAND = "expand"
    DUALWRITE = "dualwrite"
    SHADOW = "shadow"
    LIVE = "live"
    RAMPDOWN = "rampdown"
    COMPLETE = "complete"
    CONTRACT = "contract"

    @property
    def position(self) -> int:
        """Position in the lifecycle (``off`` is 0)."""
        return _ORDER.index(self)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Stage):
            return NotImplemented
        return self.position < other.position

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Stage):
            return NotImplemented
        return self.position <= other.position

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Stage):
            return NotImplemented
        return self.position > other.position

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Stage):
            return NotImplemented
        return self.position >= other.position

    @classmethod
    def parse(cls, value: str) -> Stage:
        """The stage named ``value`` (case-insensitive); ``ValueError`` names the valid ones."""
        try:
            return cls(value.strip().lower())
        except ValueError:
            valid = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown stage {value!r}; valid stages: {valid}") from None

    @property
    def is_ddl_phase(self) -> bool:
        """True for ``expand`` and ``contract``."""
        return self in (Stage.EXPAND, Stage.CONTRACT)

    @property
    def app_stage(self) -> Stage:
        """How the application behaves: ``expand`` as ``off``, ``contract`` as ``complete``."""
        if self is Stage.EXPAND:
            return Stage.OFF
        if self is Stage.CONTRACT:
            return Stage.COMPLETE
        return self

    @property
    def writes_old(self) -> bool:
        """Whether the application writes the old column(s)."""
        return self.app_stage is not Stage.COMPLETE

    @property
    def writes_new(self) -> bool:
        """Whether the application writes the new column(s)."""
        return self.app_stage is not Stage.OFF

    @property
    def reads_new(self) -> bool:
        """Whether reads return the new column (``live``: with a fallback to f(old))."""
        return self.app_stage >= Stage.LIVE

    @property
    def new_authoritative(self) -> bool:
        """From ``rampdown`` on the new column is authoritative (old = g(new))."""
        return self.app_stage >= Stage.RAMPDOWN

    @property
    def compares(self) -> bool:
        """Whether the shadow comparator runs (``shadow`` and ``live``)."""
        return self.app_stage in (Stage.SHADOW, Stage.LIVE)

    def next(self) -> Stage | None:
        """The following stage, or ``None`` after ``contract``."""
        i = self.position + 1
        return _ORDER[i] if i < len(_ORDER) else None

    def previous(self) -> Stage | None:
        """The preceding stage, or ``None`` before ``off``."""
        i = self.position - 1
        return _ORDER[i] if i >= 0 else None


_ORDER: tuple[Stage, ...] = tuple(Stage)


class Mode(enum.StrEnum):
    """Who mirrors writes: the ORM adapters (``app``) or database triggers (``trigger``)."""

    APP = "app"
    TRIGGER = "trigger"


@dataclass(frozen=True)
class GateFacts:
    """What the database says, gathered before a transition is checked.

    ``None`` means "not known" and fails any gate that needs the fact.
    """

    mode: Mode = Mode.APP
    new_columns_exist: bool | None = None
    triggers_current: bool | None = None
    #: Stages observed by every live fleet instance (one entry per instance).
    fleet_stages: tuple[Stage, ...] = ()
    backfill_complete: bool | None = None
    #: Mismatches + unbackfilled rows of the latest finished forward verify, if any.
    verify_mismatches: int | None = None
    #: A reverse verify with zero mismatches since the migration entered ``complete``.
    reverse_in_sync: bool | None = None
    #: Seconds spent in the current stage, and the confidence window required.
    seconds_in_stage: float | None = None
    confidence_window: float = 24 * 3600.0
    confirmed: bool = False
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Decision:
    """The answer of a gate: allowed or not, why, and what to run to fix a refusal."""

    allowed: bool
    reason: str
    hint: str | None = None


def _fleet_below(facts: GateFacts, minimum: Stage) -> list[Stage]:
    return [s for s in facts.fleet_stages if s.app_stage < minimum.app_stage]


def _human_window(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds / 60:.0f}m"
    return f"{seconds:.0f}s"


def _settled(key: str, f: GateFacts, current: Stage, what: str) -> Decision | None:
    """The refusal, if any, of a step out of ``current`` that needs every live instance at
    ``current`` or later and the confidence window spent in ``current``."""
    behind = _fleet_below(f, current)
    if behind:
        return Decision(False, f"{len(behind)} live instance(s) {what}",
                        f"wait for them to reach {current.value}: dualwrite status {key}")
    if f.seconds_in_stage is None or f.seconds_in_stage < f.confidence_window:
        spent = _human_window(f.seconds_in_stage or 0.0)
        return Decision(False, f"the confidence window has not passed ({spent} of "
                        f"{_human_window(f.confidence_window)} in {current.value})",
                        "wait, or shorten the window with --confidence-window if you are sure")
    return None


def _check_forward(key: str, to: Stage, f: GateFacts) -> Decision:
    if to is Stage.EXPAND:
        if not f.new_columns_exist:
            return Decision(False, "the new column(s) do not exist yet",
                            f"add them first: dualwrite expand {key} (or your own migration)")
        return Decision(True, "the new column(s) exist")
    if to is Stage.DUALWRITE:
        if not f.new_columns_exist:
            return Decision(False, "the new column(s) do not exist",
                            f"run: dualwrite expand {key}")
        if f.mode is Mode.TRIGGER and not f.triggers_current:
            return Decision(False, "trigger mode needs the mirror triggers installed and current",
                            f"run: dualwrite triggers install {key}")
        return Decision(True, "the new column(s) exist")
    if to is Stage.SHADOW:
        if f.mode is Mode.TRIGGER and not f.triggers_current:
            return Decision(False, "the mirror triggers are missing or outdated",
                            f"run: dualwrite triggers install {key}")
        if f.mode is Mode.APP:
            behind = _fleet_below(f, Stage.DUALWRITE)
            if behind:
                return Decision(False, f"{len(behind)} live instance(s) do not mirror writes yet "
                                f"(they observe {', '.join(sorted({s.value for s in behind}))})",
                                f"wait for them to pick up the stage, then check: dualwrite status {key}")
        return Decision(True, "every live instance mirrors writes")
    if to is Stage.LIVE:
        if not f.backfill_complete:
            return Decision(False, "the backfill has not finished",
                            f"run: dualwrite backfill {key}")
        if f.verify_mismatches is None:
            return Decision(False, "no finished verify since the backfill",
                            f"run: dualwrite verify {key}")
        if f.verify_mismatches:
            return Decision(False, f"the last verify found {f.verify_mismatches} mismatching or "
                            "unbackfilled row(s)", f"run: dualwrite verify {key} --fix")
        return Decision(True, "backfill finished and verify found zero mismatches")
    if to is Stage.RAMPDOWN:
        behind = _fleet_below(f, Stage.SHADOW)
        if behind:
            return Decision(False, f"{len(behind)} live instance(s) still observe a stage "
                            "before shadow", f"wait for them, then check: dualwrite status {key}")
        return Decision(True, "reads are on the new column")
    if to is Stage.COMPLETE:
        refusal = _settled(key, f, Stage.RAMPDOWN, "still read the old column")
        return refusal or Decision(True, "the confidence window has passed")
    # CONTRACT
    refusal = _settled(key, f, Stage.COMPLETE, "still write the old column")
    if refusal:
        return refusal
    if not f.confirmed:
        return Decision(False, "contract is irreversible: it drops the old column",
                        f"confirm with: dualwrite advance {key} --to contract --confirm {key}")
    return Decision(True, "confirmed; the old column is no longer read or written")


def _check_backward(key: str, frm: Stage, f: GateFacts) -> Decision:
    if frm is Stage.CONTRACT:
        return Decision(False, "contract is irreversible: the old column is gone",
                        "restore from backup, or start a new migration the other way")
    if frm is Stage.COMPLETE:
        if f.mode is Mode.TRIGGER and f.triggers_current:
            return Decision(True, "the mirror triggers kept the old column in sync")
        if not f.reverse_in_sync:
            return Decision(False, "the old column has not been written since complete",
                            f"run: dualwrite backfill {key} --reverse && "
                            f"dualwrite verify {key} --reverse")
        return Decision(True, "a reverse verify found the old column in sync")
    return Decision(True, "both columns are still written; the step back is safe")


def check_transition(key: str, frm: Stage, to: Stage, facts: GateFacts) -> Decision:
    """Whether migration ``key`` may move from ``frm`` to ``to`` (one step), given ``facts``."""
    if frm is to:
        return Decision(False, f"already at {to.value}", None)
    step = to.position - frm.position
    if step > 1:
        nxt = frm.next()
        assert nxt is not None
        return Decision(False, f"forward moves go one step at a time ({frm.value} -> "
                        f"{nxt.value} comes first)", f"run: dualwrite advance {key}")
    if step < -1:
        prev = frm.previous()
        assert prev is not None
        return Decision(False, f"rollbacks go one step at a time ({frm.value} -> "
                        f"{prev.value} comes first)",
                        f"run: dualwrite rollback {key} --to {to.value} (walks step by step)")
    if step == 1:
        return _check_forward(key, to, facts)
    return _check_backward(key, frm, facts)


def path_between(frm: Stage, to: Stage) -> list[Stage]:
    """The single steps from ``frm`` to ``to`` (exclusive of ``frm``), in order."""
    if to.position >= frm.position:
        return list(_ORDER[frm.position + 1: to.position + 1])
    return list(reversed(_ORDER[to.position: frm.position]))


def clamp_stage(flag: Stage, ceiling: Stage) -> Stage:
    """The stage an instance may serve when the flag says ``flag`` and the ceiling is ``ceiling``.

    A flag can never push past the ceiling, nor hold an instance more than one step behind
    it (the step a rollback would return to): anything lower could stop writing a column
    that the ceiling's stage relies on.
    """
    if flag > ceiling:
        return ceiling
    floor = ceiling.previous() or ceiling
    if flag < floor:
        return floor
    return flag
