"""What a write must also set, per stage: the pure rule both ORM adapters apply.

``mirror_values(spec, stage, values)`` takes the column values one write sets and returns
the extra (or corrected) column values the stage requires, computed with the spec's Python
transforms. The adapters only translate ORM events into this call and back.

Rules (DESIGN.md):

* ``off``/``expand``: nothing is mirrored.
* ``dualwrite`` to ``live``: old is authoritative. A write of old sets new = f(old); a write
  of only new sets old = g(new); a write of both keeps old and recomputes new = f(old).
* ``rampdown``: new is authoritative. A write of new sets old = g(new); a write of only old
  (an instance still behind) sets new = f(old); a write of both recomputes old = g(new).
* ``complete``/``contract``: only new is written; a write of only old sets new = f(old).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from dualwrite.errors import SpecError
from dualwrite.spec import MigrationSpec
from dualwrite.stages import Stage

__all__ = ["mirror_direction", "mirror_values"]


def _complete(spec: MigrationSpec, columns: tuple[str, ...], values: Mapping[str, Any],
              current: Mapping[str, Any] | None, side: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in columns:
        if c in values:
            out[c] = values[c]
        elif current is not None and c in current:
            out[c] = current[c]
        else:
            raise SpecError(f"migration {spec.key!r}: a write sets only part of the {side} "
                            f"columns ({', '.join(sorted(set(columns) & set(values)))}) and the "
                            f"value of {c!r} is not loaded", key=spec.key, table=spec.table,
                            column=c, hint="load the object before a partial write, or write "
                                           "every column of the split")
    return out


def mirror_values(spec: MigrationSpec, stage: Stage, values: Mapping[str, Any],
                  current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The column values to add to a write of ``values`` at ``stage``.

    ``current`` holds the row's loaded values, used when a write sets only some of several
    columns on one side (a split). Returns an empty dict when nothing is to be mirrored.
    """
    direction = mirror_direction(spec, stage, values)
    if direction is None:
        return {}
    if direction == "backward":
        return spec.apply_backward(_complete(spec, spec.new_columns, values, current, "new"))
    return spec.apply_forward(_complete(spec, spec.old_columns, values, current, "old"))


def mirror_direction(spec: MigrationSpec, stage: Stage, columns: Collection[str]) -> str | None:
    """Which transform a write setting ``columns`` needs at ``stage``: ``"forward"`` (set the
    new columns from the old), ``"backward"`` (the old from the new) or ``None``.

    The rule of :func:`mirror_values`, for adapters that mirror SQL expressions rather than
    Python values (the transform is then applied in SQL).
    """
    sets_old = any(c in columns for c in spec.old_columns)
    sets_new = any(c in columns for c in spec.new_columns)
    app = stage.app_stage
    if app is Stage.OFF or not (sets_old or sets_new):
        return None
    if app is Stage.COMPLETE:
        return "forward" if sets_old and not sets_new else None
    if sets_new and (app.new_authoritative or not sets_old):
        return "backward"
    return "forward"
