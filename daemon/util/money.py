"""US dollars as watchkeeper prints them: exact for small costs, `unknown` for None."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def format_usd(value: Decimal | None) -> str:
    """`$0.00` only for an exact zero; up to 4 decimals below $1 (`$0.0236`, `$0.12`), 2 from
    $1 (`$1.84`); `<$0.0001` for a tiny non-zero cost; `unknown` for None."""
    if value is None:
        return "unknown"
    if value == 0:
        return "$0.00"
    sign, amount = ("-", -value) if value < 0 else ("", value)
    fine = amount.quantize(Decimal("0.0001"), ROUND_HALF_UP)
    if fine == 0:
        return f"{sign}<$0.0001"
    if fine < 1:
        text = f"{fine:f}".rstrip("0")
        whole, _, decimals = text.partition(".")
        return f"{sign}${whole}.{decimals.ljust(2, '0')}"
    return f"{sign}${amount.quantize(Decimal('0.01'), ROUND_HALF_UP):,.2f}"
