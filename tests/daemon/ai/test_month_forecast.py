"""The month's forecast in `watchkeeper mcp`'s costs tool: a straight line from the month so
far, cloud calls only, unknown costs counted apart, the budget beside it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from daemon.ai.reports import month_forecast
from daemon.store.ledger import LedgerRow

NOW = datetime(2026, 4, 11, 0, 0, tzinfo=UTC)  # 10 of April's 30 days have passed


def call(day: int, cost: str | None, *, local: bool = False, outcome: str = "ok") -> LedgerRow:
    return LedgerRow(
        ts=datetime(2026, 4 if day > 0 else 3, abs(day) or 31, 12, tzinfo=UTC),
        task="rca",
        provider="ollama" if local else "anthropic",
        model="m",
        host="h",
        cost_usd=None if cost is None else Decimal(cost),
        outcome=outcome,
        local=local,
    )


def test_ten_days_of_spend_project_to_thirty() -> None:
    rows = [call(2, "1.00"), call(9, "2.00"), call(-1, "50"), call(5, "0", local=True)]
    found = month_forecast(rows, NOW, Decimal("8"))
    assert found["month"] == "2026-04" and found["days_in_month"] == 30
    assert found["days_elapsed"] == 10.0
    assert found["so_far_usd"] == 3.0  # March's call and the local one are not this month's
    assert found["projected_usd"] == 9.0
    assert found["limit_usd"] == 8.0 and found["projected_over_limit"] is True


def test_skips_are_not_spend_and_unknown_costs_make_it_a_floor() -> None:
    rows = [call(3, "1.50"), call(4, None), call(4, None, outcome="budget")]
    found = month_forecast(rows, NOW, None)
    assert found["so_far_usd"] == 1.5 and found["unknown_cost_calls"] == 1
    assert found["projected_usd"] == 4.5
    assert found["limit_usd"] is None and found["projected_over_limit"] is None
