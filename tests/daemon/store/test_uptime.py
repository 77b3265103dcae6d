"""Uptime figures from a real store against values computed by hand: steady, a 30-minute
outage, flapping, gaps longer than the interval, error and degraded runs, a check that
reports per resource, tags with different intervals, and results pruned by retention."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.models import Status
from daemon.store import Store
from daemon.util.uptime import (
    RunCounts,
    Target,
    UptimeReport,
    bounds,
    build,
    percent,
    windows,
)
from tests.daemon.store.conftest import OpenStore
from tests.daemon.store.history import runs, write

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)  # 9.5 days into November
DAY = 1440  # runs a day at 60 s


@pytest.fixture
def store(tmp_path: Path, open_store: OpenStore) -> Iterator[Store]:
    with open_store(tmp_path / "state") as opened:
        yield opened


def outage_series() -> list[Status]:
    """30 days at 60 s, failing for the 30 runs that started 120 to 91 minutes ago."""
    statuses: list[Status] = ["ok"] * (30 * DAY)
    for back in range(91, 121):
        statuses[-back] = "failing"
    return statuses


def report(store: Store, targets: list[Target], names: str = "24h,7d,30d,month") -> UptimeReport:
    wanted = windows(names, NOW)
    exact = [t.name for t in targets if not t.single_result]
    counts = store.results.run_counts(bounds(wanted, NOW), NOW, exact=exact)
    return build(
        targets,
        wanted,
        counts,
        now=NOW,
        stored_since=store.results.oldest(),
        retention=timedelta(days=14),
    )


def test_steady_outage_and_flapping_checks_match_the_hand_computed_figures(store: Store) -> None:
    flapping: list[Status] = ["ok", "failing"] * (DAY // 2)
    write(
        store,
        runs("steady", NOW, ["ok"] * (30 * DAY)),
        runs("outage", NOW, outage_series()),
        runs("flapping", NOW, flapping),
    )
    got = report(
        store,
        [Target("steady", 60), Target("outage", 60, slo=99.9), Target("flapping", 60)],
    )
    steady, outage, flaps = got.checks
    assert [f.runs.total for f in steady.figures] == [DAY, 7 * DAY, 30 * DAY, 13_680]
    assert [f.availability for f in steady.figures] == [100.0] * 4
    assert [f.coverage for f in steady.figures] == [1.0] * 4

    day, _, month30, _ = outage.figures
    assert day.runs == RunCounts(ok=DAY - 30, failing=30)
    assert day.availability == pytest.approx(100 * 1410 / 1440)  # 97.9166…
    assert percent(day.availability) == "97.916%"
    assert day.down_s == 1800
    assert month30.availability == pytest.approx(100 * 43_170 / 43_200)  # 99.9305…
    budget = month30.budget(99.9)  # 0.1 % of 30 days measured = 2,592 s; 1,800 s spent
    assert (budget.allowed_s, budget.spent_s) == (pytest.approx(2592), 1800)
    assert budget.remaining_s == pytest.approx(792)
    assert budget.remaining_pct == pytest.approx(100 * 792 / 2592)  # 30.55…
    assert outage.burn["1h"] == 0.0  # the last hour was clean
    assert outage.burn["24h"] == pytest.approx((30 / 1440) / 0.001)  # 20.83…

    assert flaps.figures[0].availability == 50.0
    assert flaps.figures[1].availability == 50.0  # 7d: the same runs, only a day of them
    assert flaps.figures[1].coverage == pytest.approx(1 / 7)
    assert flaps.burn == {}  # no SLO, no burn rate


def test_gaps_errors_and_degraded_runs_count_as_defined(store: Store) -> None:
    gappy: list[Status | None] = ["ok"] * 360 + [None] * 720 + ["ok"] * 360  # 12 h unrecorded
    mixed: list[Status] = ["error"] * 240 + ["failing"] * 60 + ["degraded"] * 100 + ["ok"] * 1040
    write(store, runs("gappy", NOW, gappy), runs("mixed", NOW, mixed))
    got = report(store, [Target("gappy", 60), Target("mixed", 60)], "24h")
    gap = got.checks[0].figures[0]
    assert (gap.availability, gap.coverage, gap.runs.total) == (100.0, 0.5, 720)
    mix = got.checks[1].figures[0]
    assert mix.runs == RunCounts(ok=1040, degraded=100, error=240, failing=60)
    assert mix.availability == 95.0  # 1,140 up of 1,200 measured; errors count neither way
    assert (mix.degraded_s, mix.error_s, mix.down_s) == (6000, 14_400, 3600)
    assert mix.coverage == pytest.approx(1200 / 1440)


def test_a_run_with_several_results_counts_once_with_its_worst_status(store: Store) -> None:
    every = timedelta(minutes=5)
    per_run: list[list[Status]] = [["ok", "ok", "ok"]] * 264
    per_run += [["ok", "failing", "failing"]] * 12 + [["error", "failing", "ok"]] * 6
    per_run += [["error", "ok", "ok"]] * 6  # could not judge part of it: unknown, not down
    write(store, runs("per-resource", NOW, per_run, every=every))
    target = Target("per-resource", 300, single_result=False)
    got = report(store, [target], "24h").checks[0].figures[0]
    assert got.runs == RunCounts(ok=264, failing=18, error=6)
    assert got.availability == pytest.approx(100 * 264 / 282)  # 93.61…
    assert got.down_s == 18 * 300


def test_a_tag_pools_its_checks_by_time_not_by_run_count(store: Store) -> None:
    slow: list[Status] = ["ok"] * 276 + ["failing"] * 12  # 1 h down at a 5 min interval
    write(
        store,
        runs("fast", NOW, ["ok"] * DAY),
        runs("slow", NOW, slow, every=timedelta(minutes=5)),
    )
    targets = [Target("fast", 60, tags=("prod",)), Target("slow", 300, tags=("prod", "db"))]
    got = report(store, targets, "24h")
    assert [t.tag for t in got.tags] == ["db", "prod"]
    prod = got.tags[1]
    assert prod.checks == ["fast", "slow"]
    # 86,400 s up of fast + 82,800 s up of slow, over 172,800 s measured (not 1,716/1,728 runs)
    assert prod.figures[0].availability == pytest.approx(100 * 169_200 / 172_800)
    assert prod.figures[0].coverage == 1.0


def test_results_pruned_by_retention_leave_the_long_windows_short(store: Store) -> None:
    write(store, runs("old", NOW, ["ok"] * (40 * DAY - 100) + ["failing"] * 100))
    store.prune(NOW - timedelta(days=14))
    got = report(store, [Target("old", 60)], "24h,30d")
    assert got.stored_since == NOW - timedelta(days=14)
    assert got.stored_span(got.windows[0]) is None  # 24h: fully stored
    assert got.stored_span(got.windows[1]) == timedelta(days=14)
    thirty = got.checks[0].figures[1]
    assert thirty.runs.total == 14 * DAY  # what was pruned counts neither way
    assert thirty.availability == pytest.approx(100 * (14 * DAY - 100) / (14 * DAY))
    assert thirty.coverage == pytest.approx(14 / 30)


def test_the_month_is_the_calendar_month_so_far_and_nothing_stored_is_no_data(
    store: Store,
) -> None:
    write(store, runs("steady", NOW, ["ok"] * (30 * DAY)))
    got = report(store, [Target("steady", 60), Target("new", 60)], "month")
    [month] = got.windows
    assert month.since == datetime(2026, 11, 1, tzinfo=UTC)
    assert got.checks[0].figures[0].runs.total == int(9.5 * DAY)
    assert got.checks[1].figures[0].availability is None
    assert percent(got.checks[1].figures[0].availability) == "—"


def test_counts_of_a_later_window_skip_the_rows_before_it(store: Store) -> None:
    """The non-ok pass starts at the first row id of the range: results written out of time
    order (a backfill) must still be counted."""
    write(store, runs("late", NOW, ["failing"] * 10))  # the newest runs written first
    write(store, runs("late", NOW - timedelta(days=20), ["ok"] * 100))  # then old ones
    counts = store.results.run_counts([NOW - timedelta(hours=1)], NOW)
    assert counts["late"] == [RunCounts(failing=10)]
    both = store.results.run_counts([NOW - timedelta(days=30), NOW - timedelta(hours=1)], NOW)
    assert both["late"] == [RunCounts(ok=100, failing=10), RunCounts(failing=10)]
