"""The migrations of the shop."""

from __future__ import annotations

from dualwrite import ChangeColumnType, RenameColumn, SplitColumn


def to_cents(price: float) -> int:
    return round(price * 100)


def from_cents(cents: int) -> float:
    return cents / 100


def split_name(name: str) -> tuple[str, str]:
    first, _, last = name.partition(" ")
    return first, last


def join_name(first: str | None, last: str | None) -> str:
    return f"{first or ''} {last or ''}".strip()


_SPACE = {"postgresql": "position(' ' in {old})", "mysql": "LOCATE(' ', {old})",
          "sqlite": "instr({old}, ' ')"}


SPECS = [
    RenameColumn(key="customer-name", table="shop_customer", old="full_name",
                 new="display_name"),
    ChangeColumnType(
        key="order-cents", table="shop_order", old="price", new="price_cents",
        new_type={"postgresql": "BIGINT", "mysql": "BIGINT", "sqlite": "INTEGER"},
        forward_sql={"postgresql": "CAST(ROUND({old} * 100) AS BIGINT)",
                     "mysql": "CAST(ROUND({old} * 100) AS SIGNED)",
                     "sqlite": "CAST(ROUND({old} * 100) AS INTEGER)"},
        backward_sql="{new} / 100.0", forward=to_cents, backward=from_cents),
    SplitColumn(
        key="person-split", table="shop_person", old="name", new=["first_name", "last_name"],
        forward=split_name, backward=join_name,
        forward_sql={
            "first_name": {d: f"CASE WHEN {sp} > 0 THEN substr({{old}}, 1, {sp} - 1) "
                              "ELSE {old} END" for d, sp in _SPACE.items()},
            "last_name": {d: f"CASE WHEN {sp} > 0 THEN substr({{old}}, {sp} + 1) ELSE '' END"
                             for d, sp in _SPACE.items()}},
        backward_sql={"postgresql": "TRIM(COALESCE({first_name}, '') || ' ' || "
                                    "COALESCE({last_name}, ''))",
                      "sqlite": "TRIM(COALESCE({first_name}, '') || ' ' || "
                                "COALESCE({last_name}, ''))",
                      "mysql": "TRIM(CONCAT(COALESCE({first_name}, ''), ' ', "
                               "COALESCE({last_name}, '')))"}),
]
