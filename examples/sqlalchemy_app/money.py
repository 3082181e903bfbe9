"""The Python forms of the migration's transforms, named in ``dualwrite.toml``.

``amount`` holds dollars as text (``"12.34"``), ``amount_cents`` an integer number of
cents (``1234``). The SQL forms of the same transforms are in ``dualwrite.toml``;
dualwrite checks that both agree on real rows before anything changes.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["from_cents", "is_amount", "to_cents"]

_AMOUNT = re.compile(r"^\d{1,9}\.\d{2}$")


def is_amount(text: str) -> bool:
    """Whether ``text`` is an amount the shop accepts: dollars with two decimals."""
    return bool(_AMOUNT.match(text))


def to_cents(amount: str) -> int:
    """f: ``"12.34"`` -> ``1234`` (halves rounded away from zero, like SQL ``ROUND``)."""
    return int((Decimal(amount) * 100).to_integral_value(rounding=ROUND_HALF_UP))


def from_cents(cents: int) -> str:
    """g: ``1234`` -> ``"12.34"``."""
    return f"{Decimal(cents).scaleb(-2):f}"
