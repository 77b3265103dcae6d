"""The pure part of uptime: windows, periods, percentages, budgets and burn rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.util.uptime import (
    Figures,
    RunCounts,
    Target,
    combine,
    percent,
    period_s,
    window,
    windows,
)

NOW = datetime(2026, 11, 10, 12, 30, tzinfo=UTC)


def test_windows_are_rolling_or_the_calendar_month() -> None:
    got = windows("24h, 7d,30d,month,24h", NOW)
    assert [w.name for w in got] == ["24h", "7d", "30d", "month"]
    assert got[0].since == NOW - timedelta(hours=24)
    assert got[2].seconds == 30 * 86400
    assert got[3].since == datetime(2026, 11, 1, tzinfo=UTC)
    assert got[3].until == NOW
    for bad in ("1w", "0d", "month2", "", "24"):
        with pytest.raises(ValueError, match=r"use e\.g\. 24h"):
            windows(bad, NOW) if bad else window(bad, NOW)


def test_percent_never_rounds_up_to_a_hundred() -> None:
    assert percent(100.0) == "100%"
    assert percent(99.99999) == "99.999%"
    assert percent(97.91666) == "97.916%"
    assert percent(50.0) == "50.000%"
    assert percent(None) == "—"


def test_a_period_is_the_interval_or_the_mean_gap_of_a_cron_schedule() -> None:
    assert period_s(timedelta(seconds=30), None) == 30
    assert period_s(None, None) == 60
    assert period_s(None, "*/5 * * * *") == 300
    # 9 runs a weekday, none at weekends: 45 runs a week, one per 604,800 / 45 s on average
    assert period_s(None, "0 9-17 * * 1-5") == pytest.approx(604_800 / 45)


def test_budget_left_spent_and_overspent() -> None:
    w = window("30d", NOW)
    fine = Figures.of(w, RunCounts(ok=43_190, failing=10), 60)
    assert fine.budget(99.9).remaining_pct == pytest.approx(100 * (2592 - 600) / 2592)
    over = Figures.of(w, RunCounts(ok=43_100, failing=100), 60)
    budget = over.budget(99.9)
    assert budget.remaining_s == pytest.approx(2592 - 6000)
    assert budget.remaining_pct == pytest.approx(100 * (2592 - 6000) / 2592)  # negative
    empty = Figures.of(w, RunCounts(error=5), 60)
    assert empty.availability is None
    assert empty.budget(99.9).remaining_pct is None
    assert empty.burn_rate(99.9) is None


def test_burn_rate_is_the_error_rate_over_the_allowed_one() -> None:
    hour = window("1h", NOW)
    assert Figures.of(hour, RunCounts(ok=60), 60).burn_rate(99.9) == 0.0
    # 14.4 = the SRE workbook's page threshold: 2 % of a 30-day budget in one hour
    burning = Figures.of(hour, RunCounts(ok=1000 - 144, failing=144), 3.6)
    assert burning.burn_rate(99) == pytest.approx(14.4)


def test_combining_pools_time_and_counts_checks() -> None:
    day = window("24h", NOW)
    fast = Figures.of(day, RunCounts(ok=1440), 60)
    slow = Figures.of(day, RunCounts(ok=144, failing=144), 300)  # half the day measured
    both = combine(day, [fast, slow])
    assert both.checks == 2
    assert both.runs == RunCounts(ok=1584, failing=144)
    assert both.availability == pytest.approx(100 * (86_400 + 43_200) / (86_400 + 86_400))
    assert both.coverage == pytest.approx((86_400 + 86_400) / (2 * 86_400))


def test_a_target_knows_which_types_store_one_result_per_run() -> None:
    from jobs.prometheus import PrometheusCheck
    from jobs.tcp import TcpCheck

    tcp = TcpCheck.model_validate(
        {"name": "db", "type": "tcp", "host": "h", "port": 5432, "slo": 99.95, "tags": ["prod"]}
    )
    assert Target.of(tcp) == Target("db", 60.0, 99.95, ("prod",), single_result=True)
    prom = PrometheusCheck.model_validate(
        {
            "name": "err",
            "type": "prometheus",
            "url": "http://127.0.0.1:9090",
            "query": "up",
            "op": "<",
            "threshold": 1,
            "cron": "*/10 * * * *",
        }
    )
    assert Target.of(prom) == Target("err", 600.0, None, (), single_result=False)
