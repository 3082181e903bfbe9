"""What a read returns, per stage: the pure rule ORM adapters apply to reads.

Whichever of the two sides the application reads, it gets the value the stage defines
(DESIGN.md): before ``live`` reads come from the old column (a read of a new column is
f(old)); in ``live`` a new column reads ``COALESCE(new, f(old))`` and the old one
``COALESCE(g(new), old)``; from ``rampdown`` the new column is read as stored and the old
one as g(new).

:func:`read_form` names the expression an adapter builds in SQL for one column;
:func:`read_values` computes the same values in Python from a loaded row.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from dualwrite.spec import MigrationSpec
from dualwrite.stages import Stage

__all__ = ["ReadForm", "read_form", "read_values"]


class ReadForm(enum.Enum):
    """How one column is read at one stage."""

    #: the column as stored
    RAW = "raw"
    #: f(old) -- a new column before ``live``
    FORWARD = "forward"
    #: COALESCE(new, f(old)) -- a new column in ``live``
    NEW_OR_FORWARD = "new_or_forward"
    #: COALESCE(g(new), old) -- the old column in ``live`` and ``rampdown``
    BACKWARD_OR_OLD = "backward_or_old"
    #: g(new) -- the old column in ``complete`` (it is no longer written)
    BACKWARD = "backward"


def read_form(spec: MigrationSpec, stage: Stage, column: str) -> ReadForm:
    """The form in which ``column`` (old or new) of ``spec`` is read at ``stage``."""
    app = stage.app_stage
    is_new = column in spec.new_columns
    if app is Stage.OFF or (not is_new and column not in spec.old_columns):
        return ReadForm.RAW
    if app in (Stage.DUALWRITE, Stage.SHADOW):
        return ReadForm.FORWARD if is_new else ReadForm.RAW
    if app is Stage.LIVE:
        return ReadForm.NEW_OR_FORWARD if is_new else ReadForm.BACKWARD_OR_OLD
    if is_new:
        return ReadForm.RAW
    return ReadForm.BACKWARD_OR_OLD if app is Stage.RAMPDOWN else ReadForm.BACKWARD


_FORMS: dict[tuple[int, Stage], tuple[MigrationSpec, tuple[tuple[str, ReadForm], ...]]] = {}


def _forms(spec: MigrationSpec, stage: Stage) -> tuple[tuple[str, ReadForm], ...]:
    """The non-RAW read forms of ``spec``'s columns at ``stage`` (memoised per spec object)."""
    hit = _FORMS.get((id(spec), stage))
    if hit is not None and hit[0] is spec:
        return hit[1]
    forms = tuple((c, f) for c in (*spec.new_columns, *spec.old_columns)
                  if (f := read_form(spec, stage, c)) is not ReadForm.RAW)
    if len(_FORMS) > 4096:
        _FORMS.clear()
    _FORMS[(id(spec), stage)] = (spec, forms)
    return forms


def read_values(spec: MigrationSpec, stage: Stage, row: Mapping[str, Any]) -> dict[str, Any]:
    """The stage values of the migrated columns present in ``row`` (raw values as loaded).

    Only columns whose value differs from the raw one by rule are returned; a column whose
    inputs are not all in ``row`` (deferred, not selected) is left out.
    """
    out: dict[str, Any] = {}
    forward: dict[str, Any] | None = None
    backward: dict[str, Any] | None = None
    for column, form in _forms(spec, stage):
        if column not in row:
            continue
        if form is ReadForm.NEW_OR_FORWARD and row[column] is not None:
            continue
        if form in (ReadForm.FORWARD, ReadForm.NEW_OR_FORWARD):
            if forward is None:
                if not all(c in row for c in spec.old_columns):
                    continue
                forward = spec.apply_forward(row)
            out[column] = forward[column]
        else:
            if backward is None:
                if not all(c in row for c in spec.new_columns):
                    continue
                # g of the new columns as this stage reads them (a split may be partly NULL)
                backward = spec.apply_backward({**row, **out})
            value = backward[column]
            out[column] = row[column] if value is None and form is \
                ReadForm.BACKWARD_OR_OLD else value
    return {c: v for c, v in out.items() if v is not row[c] and v != row[c]}
