"""The ledger in a real SQLite store: rows, budgets (also under threads and a second process),
budget notices and routing overrides."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from daemon.store import Store
from daemon.store.ledger import (
    BudgetDenied,
    BudgetLimits,
    Ledger,
    LedgerRow,
    Reservation,
    Spending,
    check_budget,
)
from tests import ROOT
from tests.daemon.store.conftest import OpenStore

NOW = datetime(2026, 11, 27, 14, 2, tzinfo=UTC)
D = Decimal


@pytest.fixture
def store(tmp_path: Path, open_store: OpenStore) -> Iterator[Store]:
    with open_store(tmp_path / "state") as opened:
        yield opened


@pytest.fixture
def ledger(store: Store) -> Ledger:
    return store.ledger


def row(**kw: Any) -> LedgerRow:
    values: dict[str, Any] = {
        "ts": NOW,
        "task": "rca",
        "provider": "anthropic",
        "model": "claude-opus-4-6",
        "host": "api.anthropic.com",
        "cost_usd": D("0.0236"),
        "outcome": "ok",
    }
    values.update(kw)
    return LedgerRow(**values)


def granted(result: Reservation | BudgetDenied) -> Reservation:
    assert isinstance(result, Reservation), getattr(result, "reason", result)
    return result


def denied(result: Reservation | BudgetDenied) -> BudgetDenied:
    assert isinstance(result, BudgetDenied), result
    return result


# -- rows -------------------------------------------------------------------------------------


def test_round_trip_keeps_every_field_and_exact_decimals(ledger: Ledger) -> None:
    original = row(
        incident_id=42,
        sweep_id="sec-2026-11-27",
        input_tokens=2_310,
        output_tokens=480,
        cached_input_tokens=1_000,
        reasoning_tokens=200,
        cost_usd=D("0.000000062500000000000001"),
        latency_ms=812.25,
        request_bytes=9_431,
        key_source="systemd-credential",
        detail="HTTP 529 overloaded, retried",
    )
    assert ledger.record(original) > 0
    [back] = ledger.calls(NOW - timedelta(hours=1))
    assert back == original
    assert back.ts.tzinfo is not None


def test_unknown_cost_stays_null_and_local_zero_stays_zero(ledger: Ledger, store: Store) -> None:
    ledger.record(row(cost_usd=None, provider="corp", model="x"))
    ledger.record(row(cost_usd=D(0), provider="ollama", model="gemma4:27b", local=True))
    unknown, local = ledger.calls(NOW - timedelta(hours=1))
    assert unknown.cost_usd is None
    assert local.cost_usd == 0 and local.local is True
    with store.db.transaction(write=False) as conn:
        stored = [r[0] for r in conn.execute("SELECT cost_usd FROM ledger ORDER BY id")]
    assert stored == [None, "0"]


def test_calls_window_and_order(ledger: Ledger) -> None:
    for minutes in (30, -90, 0, 60):
        ledger.record(row(ts=NOW + timedelta(minutes=minutes), detail=str(minutes)))
    got = ledger.calls(NOW - timedelta(hours=1), NOW + timedelta(minutes=60))
    assert [r.detail for r in got] == ["0", "30"]


def test_spent_sums_known_costs_per_provider(ledger: Ledger) -> None:
    ledger.record(row(cost_usd=D("0.10")))
    ledger.record(row(cost_usd=D("0.02"), provider="openai"))
    ledger.record(row(cost_usd=None))
    ledger.record(row(cost_usd=D("5"), ts=NOW - timedelta(days=2)))
    since = NOW - timedelta(days=1)
    assert ledger.spent(since) == D("0.12")
    assert ledger.spent(since, provider="openai") == D("0.02")
    assert ledger.spent(since, provider="cohere") == 0


# -- budgets ----------------------------------------------------------------------------------


def test_budget_denies_at_the_daily_limit(ledger: Ledger) -> None:
    ledger.record(row(cost_usd=D("4.98")))
    limits = BudgetLimits(daily_usd=D(5), monthly_usd=None, providers={})
    granted(ledger.reserve("anthropic", D("0.02"), limits, NOW))  # reaches $5.00 exactly
    result = denied(ledger.reserve("openai", D("0.12"), limits, NOW))
    assert (result.scope, result.limit, result.spent, result.reserved) == (
        "daily",
        D(5),
        D("4.98"),
        D("0.02"),
    )
    assert result.reason == (
        "daily AI budget $5.00 reached: $4.98 spent and $0.02 held by calls in flight, "
        "this call could cost up to $0.12"
    )


def test_yesterdays_spending_counts_for_the_month_not_the_day(ledger: Ledger) -> None:
    ledger.record(row(cost_usd=D("9.50"), ts=NOW - timedelta(days=1)))
    ledger.record(row(cost_usd=D("100"), ts=datetime(2026, 10, 31, 23, 59, tzinfo=UTC)))
    limits = BudgetLimits(daily_usd=D(1), monthly_usd=D(10), providers={})
    granted(ledger.reserve("anthropic", D("0.50"), limits, NOW))
    result = denied(ledger.reserve("anthropic", D("0.25"), limits, NOW))
    assert (result.scope, result.spent, result.reserved) == ("monthly", D("9.50"), D("0.50"))
    assert result.reason.startswith("monthly AI budget $10.00 reached: $9.50 spent")


def test_provider_limits_apply_to_that_provider_only(ledger: Ledger) -> None:
    ledger.record(row(cost_usd=D("0.90"), provider="openai"))
    ledger.record(row(cost_usd=D("3"), provider="openai", ts=NOW - timedelta(days=3)))
    limits = BudgetLimits(
        daily_usd=None,
        monthly_usd=None,
        providers={"openai": (D(1), None), "anthropic": (None, D(2))},
    )
    day = denied(ledger.reserve("openai", D("0.20"), limits, NOW))
    assert (day.scope, day.provider, day.spent) == ("provider daily", "openai", D("0.90"))
    assert day.reason.startswith("daily AI budget for openai $1.00 reached: $0.90 spent")
    granted(ledger.reserve("cohere", D(50), limits, NOW))  # no cap for cohere
    granted(ledger.reserve("anthropic", D("1.5"), limits, NOW))
    month = denied(ledger.reserve("anthropic", D("0.6"), limits, NOW))
    assert (month.scope, month.provider, month.reserved) == (
        "provider monthly",
        "anthropic",
        D("1.5"),
    )


def test_unknown_costs_do_not_count_but_zero_limit_denies_any_cost(ledger: Ledger) -> None:
    ledger.record(row(cost_usd=None))
    limits = BudgetLimits(daily_usd=D(0), monthly_usd=None, providers={})
    granted(ledger.reserve("anthropic", D(0), limits, NOW))
    assert denied(ledger.reserve("anthropic", D("0.0001"), limits, NOW)).scope == "daily"


def test_settle_swaps_the_reservation_for_the_real_cost(ledger: Ledger, store: Store) -> None:
    limits = BudgetLimits(daily_usd=D(1), monthly_usd=None, providers={})
    held = granted(ledger.reserve("anthropic", D("0.80"), limits, NOW))
    denied(ledger.reserve("anthropic", D("0.30"), limits, NOW))
    row_id = ledger.settle(held, row(cost_usd=D("0.05")))
    assert row_id > 0 and ledger.spent(NOW - timedelta(hours=1)) == D("0.05")
    granted(ledger.reserve("anthropic", D("0.30"), limits, NOW))


def test_release_gives_the_budget_back(ledger: Ledger) -> None:
    limits = BudgetLimits(daily_usd=D(1), monthly_usd=None, providers={})
    held = granted(ledger.reserve("anthropic", D("0.80"), limits, NOW))
    ledger.release(held)
    granted(ledger.reserve("anthropic", D("0.80"), limits, NOW))


def test_expired_reservation_is_ignored_and_cleaned_up(ledger: Ledger, store: Store) -> None:
    limits = BudgetLimits(daily_usd=D(1), monthly_usd=None, providers={})
    stale = granted(ledger.reserve("anthropic", D("0.90"), limits, NOW, ttl=timedelta(minutes=15)))
    assert stale.expires_at == NOW + timedelta(minutes=15)
    denied(ledger.reserve("anthropic", D("0.20"), limits, NOW + timedelta(minutes=14)))
    later = NOW + timedelta(minutes=16)  # the caller crashed: its hold has lapsed
    fresh = granted(ledger.reserve("anthropic", D("0.20"), limits, later))
    with store.db.transaction(write=False) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM budget_reservations")]
    assert ids == [fresh.id]


def test_negative_estimate_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="negative"):
        ledger.reserve("anthropic", D(-1), BudgetLimits(D(1), None, {}), NOW)


def test_check_budget_is_pure() -> None:
    limits = BudgetLimits(daily_usd=D(2), monthly_usd=D(3), providers={"openai": (D(1), None)})
    total = Spending(day=D("1.5"), month=D("2.5"), reserved=D(0))
    assert check_budget(limits, "openai", D("0.5"), total, Spending()) is None
    over = check_budget(limits, "openai", D("0.6"), total, Spending())
    assert over is not None and over.scope == "daily"


_RESERVER = """
import json, sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from daemon.store.ledger import BudgetLimits, Reservation
from daemon.store import Store

store = Store.open(Path(sys.argv[1]), sys.argv[5] or None)
ledger = store.ledger
limits = BudgetLimits(daily_usd=Decimal(sys.argv[2]), monthly_usd=None, providers={})
now = datetime.fromisoformat(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
estimate = Decimal(sys.argv[4])
ids = []
while isinstance(got := ledger.reserve("anthropic", estimate, limits, now), Reservation):
    ids.append(got.id)
print(json.dumps(ids), flush=True)
"""


async def test_budget_holds_under_threads_and_a_second_process(
    ledger: Ledger, store: Store
) -> None:
    # $0.30 spent leaves $0.70: room for exactly 35 reservations. The other process reserves
    # until it is denied while 20 threads here try once each, so both sides meet at the limit.
    limit, estimate = D("1.00"), D("0.02")
    ledger.record(row(cost_usd=D("0.30")))
    limits = BudgetLimits(daily_usd=limit, monthly_usd=None, providers={})
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _RESERVER,
            str(store.path.parent),
            str(limit),
            NOW.isoformat(),
            str(estimate),
            getattr(store.db, "url", ""),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.stdin.write("go\n")
        proc.stdin.flush()
        results = await asyncio.gather(
            *(
                asyncio.to_thread(ledger.reserve, "anthropic", estimate, limits, NOW)
                for _ in range(20)
            )
        )
        theirs = json.loads(proc.stdout.readline())
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    ours = [r for r in results if isinstance(r, Reservation)]
    assert len(ours) + len(theirs) == 35
    assert len({r.id for r in ours} | set(theirs)) == 35
    with store.db.transaction(write=False) as conn:
        held = [D(r[0]) for r in conn.execute("SELECT amount_usd FROM budget_reservations")]
    assert len(held) == 35
    assert ledger.spent(NOW - timedelta(hours=1)) + sum(held) <= limit


# -- notices and routes survive restarts ------------------------------------------------------


def test_budget_notice_is_claimed_once_per_key_across_reopen(
    tmp_path: Path, open_store: OpenStore
) -> None:
    with open_store(tmp_path) as store:
        ledger = store.ledger
        assert ledger.claim_budget_notice("daily:2026-11-27") is True
        assert ledger.claim_budget_notice("daily:2026-11-27") is False
    with open_store(tmp_path) as store:
        ledger = store.ledger
        assert ledger.claim_budget_notice("daily:2026-11-27") is False
        assert ledger.claim_budget_notice("daily:2026-11-28") is True
        assert ledger.claim_budget_notice("monthly:2026-11") is True


def test_routing_overrides_persist_across_reopen(tmp_path: Path, open_store: OpenStore) -> None:
    with open_store(tmp_path) as store:
        routes = store.routes
        assert routes.all() == {}
        routes.set("rca", ["openai/gpt-5.4", "ollama/gemma4:27b"])
        routes.set("triage", ["ollama/gemma4:27b"])
        routes.set("rca", ["anthropic/claude-opus-4-6"])
    with open_store(tmp_path) as store:
        routes = store.routes
        assert routes.all() == {
            "rca": ["anthropic/claude-opus-4-6"],
            "triage": ["ollama/gemma4:27b"],
        }
        assert routes.reset("rca") is True
        assert routes.reset("rca") is False
    with open_store(tmp_path) as store:
        assert store.routes.all() == {"triage": ["ollama/gemma4:27b"]}


def test_set_route_rejects_empty_or_malformed_refs(tmp_path: Path, open_store: OpenStore) -> None:
    with open_store(tmp_path) as store:
        with pytest.raises(ValueError, match="at least one model"):
            store.routes.set("rca", [])
        with pytest.raises(ValueError, match="not a model reference"):
            store.routes.set("rca", ["gpt-5.4"])
        assert store.routes.all() == {}


def test_a_version_1_database_gains_the_ledger_tables(tmp_path: Path) -> None:
    from daemon.store.database import DB_NAME
    from daemon.store.schema import _MIGRATIONS

    tmp_path.mkdir(exist_ok=True)
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.executescript(_MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with Store.open(tmp_path) as store:
        ledger = store.ledger
        ledger.record(row())
        assert [r.cost_usd for r in ledger.calls(NOW - timedelta(hours=1))] == [D("0.0236")]


def test_a_call_of_unknown_cost_keeps_counting_at_its_reservation(ledger: Ledger) -> None:
    limits = BudgetLimits(daily_usd=D("0.10"))
    held = ledger.reserve("anthropic", D("0.06"), limits, NOW)
    assert isinstance(held, Reservation)
    ledger.settle(held, row(cost_usd=None, outcome="timeout"))
    (recorded,) = ledger.calls(NOW - timedelta(hours=1))
    assert recorded.cost_usd is None and recorded.reserved_usd == D("0.06")
    assert ledger.spent(NOW - timedelta(hours=1)) == D("0.06")
    denied = ledger.reserve("anthropic", D("0.05"), limits, NOW)
    assert isinstance(denied, BudgetDenied) and denied.spent == D("0.06")
