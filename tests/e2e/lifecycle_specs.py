"""The migrations of the lifecycle test, importable by the backfill subprocess
(``--spec tests.e2e.lifecycle_specs:RENAME``)."""

from __future__ import annotations

from typing import Any

from dualwrite.db import Database
from dualwrite.spec import ChangeColumnType, MigrationSpec, RenameColumn, SplitColumn
from dualwrite.stages import Mode

TABLE = "lc_users"

_CONCAT = {"postgresql": "{first_name} || ' ' || {last_name}",
           "sqlite": "{first_name} || ' ' || {last_name}",
           "mysql": "CONCAT({first_name}, ' ', {last_name})"}
_FIRST = {"postgresql": "split_part({old}, ' ', 1)",
          "mysql": "SUBSTRING_INDEX({old}, ' ', 1)",
          "sqlite": "substr({old}, 1, instr({old}, ' ') - 1)"}
_LAST = {"postgresql": "substr({old}, strpos({old}, ' ') + 1)",
         "mysql": "SUBSTRING({old}, LOCATE(' ', {old}) + 1)",
         "sqlite": "substr({old}, instr({old}, ' ') + 1)"}
_TEXT = {"postgresql": "TEXT", "mysql": "VARCHAR(200)", "sqlite": "TEXT"}


def _specs(mode: Mode) -> dict[str, MigrationSpec]:
    suffix = "" if mode is Mode.APP else "-trg"
    return {
        "rename": RenameColumn(key=f"lc-rename{suffix}", table=TABLE, old="full_name",
                               new="display_name", mode=mode, confidence_window=0),
        "change_type": ChangeColumnType(
            key=f"lc-type{suffix}", table=TABLE, old="score", new="score_n",
            new_type={"postgresql": "BIGINT", "mysql": "BIGINT", "sqlite": "INTEGER"},
            forward_sql={"postgresql": "CAST({old} AS BIGINT)",
                         "mysql": "CAST({old} AS SIGNED)",
                         "sqlite": "CAST({old} AS INTEGER)"},
            backward_sql={"postgresql": "CAST({new} AS TEXT)", "mysql": "CAST({new} AS CHAR)",
                          "sqlite": "CAST({new} AS TEXT)"},
            forward=int, backward=str, mode=mode, confidence_window=0),
        "split": SplitColumn(
            key=f"lc-split{suffix}", table=TABLE, old="full_name",
            new=["first_name", "last_name"],
            new_types={"first_name": _TEXT, "last_name": _TEXT},
            forward_sql={"first_name": _FIRST, "last_name": _LAST}, backward_sql=_CONCAT,
            forward=lambda v: tuple(v.split(" ", 1)), backward=lambda a, b: f"{a} {b}",
            mode=mode, confidence_window=0),
    }


APP = _specs(Mode.APP)
TRIGGER = _specs(Mode.TRIGGER)
RENAME, CHANGE_TYPE, SPLIT = APP["rename"], APP["change_type"], APP["split"]
RENAME_TRG, CHANGE_TYPE_TRG, SPLIT_TRG = (TRIGGER["rename"], TRIGGER["change_type"],
                                          TRIGGER["split"])
#: Spec key -> the attribute name above (for --spec in the subprocess).
NAMES = {RENAME.key: "RENAME", CHANGE_TYPE.key: "CHANGE_TYPE", SPLIT.key: "SPLIT",
         RENAME_TRG.key: "RENAME_TRG", CHANGE_TYPE_TRG.key: "CHANGE_TYPE_TRG",
         SPLIT_TRG.key: "SPLIT_TRG"}


def _name_values(key: int, n: int) -> dict[str, Any]:
    return {"full_name": f"First{n} Last{key}"}


def _score_values(key: int, n: int) -> dict[str, Any]:
    return {"score": str(key * 1000 + n)}


#: Spec key -> the old-side values of the n-th write of row ``key``.
VALUES = {s.key: (_score_values if s.kind == "change_type" else _name_values)
          for s in (*APP.values(), *TRIGGER.values())}


def spec(kind: str, mode: Mode) -> MigrationSpec:
    """The spec of ``kind`` in ``mode``."""
    return (APP if mode is Mode.APP else TRIGGER)[kind]


def create_table(db: Database, rows: int = 400) -> None:
    """lc_users(id, full_name, score) with ``rows`` rows."""
    d = db.dialect
    db.execute(d.create_table(TABLE, [("id", d.t_int), ("full_name", _TEXT[d.name]),
                                      ("score", _TEXT[d.name])], "id"))
    spec = RENAME
    with db.transaction() as tx:
        for start in range(1, rows + 1, 200):
            ids = range(start, min(start + 200, rows + 1))
            values = [v for i in ids for v in (i, f"User {i}", str(i * 1000))]
            tx.execute(d.insert_rows(spec, ["id", "full_name", "score"], len(ids), values))
