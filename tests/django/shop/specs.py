"""The migrations of the shop."""

from __future__ import annotations

from dualwrite import ChangeColumnType, RenameColumn


def to_cents(price: float) -> int:
    return round(price * 100)


def from_cents(cents: int) -> float:
    return cents / 100


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
]
