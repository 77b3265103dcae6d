"""Rollups: the same uptime from minute and hour buckets as from the raw rows they replace,
incremental and idempotent rolling up, retention per tier, and history beyond raw retention.
On both backends (conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import pytest

from daemon.models import CheckResult, Status
from daemon.store import Store
from daemon.store.database import store_io
from daemon.store.rollups import HOUR, LATE, MINUTE, Bucket, summarize
from daemon.util.time import db_ts
from daemon.util.uptime import RunCounts, Target, bounds, build, windows
from tests.daemon.store.conftest import OpenStore
from tests.daemon.store.history import runs, write

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
DAY = 1440
RETENTION = timedelta(days=2)
MINUTES = timedelta(days=5)
HOURS = timedelta(days=400)
WINDOWS = "24h,7d,10d,month"
"""24 h is raw only; 7 d is 2 days raw, 3 days of minute buckets and 2 of hour buckets; 10 d
and the month (9.5 days) reach further into the hour buckets."""


@pytest.fixture
def store(tmp_path: Path, open_store: OpenStore) -> Iterator[Store]:
    with open_store(tmp_path / "state") as opened:
        yield opened


def seeded() -> list[list[CheckResult]]:
    """12 days of three checks: outages on both sides of every tier boundary, errors and
    degraded runs, a 5-minute check, and one reporting several results a run."""
    steady: list[Status] = ["ok"] * (12 * DAY)
    for back in [
        *range(100, 200),
        *range(5 * DAY - 30, 5 * DAY + 30),
        *range(2 * DAY - 5, 2 * DAY + 5),
    ]:
        steady[-back] = "failing"
    for back in range(9 * DAY, 9 * DAY + 70):
        steady[-back] = "error"
    for back in range(3 * DAY, 3 * DAY + 200):
        steady[-back] = "degraded"
    ok: list[Status | None] = ["ok"]
    failing: list[Status | None] = ["failing"]
    slow = (ok * 200 + failing * 20 + [None] * 60) * 12
    several: list[list[Status]] = [["ok", "ok"], ["ok", "failing"], ["error", "ok"]] * (4 * 288)
    return [
        runs("steady", NOW, steady),
        runs("slow", NOW, slow, every=timedelta(minutes=5)),
        runs("several", NOW, several, every=timedelta(minutes=5)),
    ]


TARGETS = [
    Target("steady", 60, slo=99.9),
    Target("slow", 300),
    Target("several", 300, single_result=False),
]


def uptime(store: Store) -> list[list[tuple[RunCounts, float | None]]]:
    wanted = windows(WINDOWS, NOW)
    counts = store.results.run_counts(bounds(wanted, NOW), NOW, exact=["several"])
    report = build(
        TARGETS, wanted, counts, now=NOW, stored_since=store.results.oldest(), retention=None
    )
    return [[(f.runs, f.availability) for f in c.figures] for c in report.checks]


def maintain(store: Store, now: datetime = NOW) -> dict[str, int]:
    return store.maintain(now, RETENTION, MINUTES, HOURS)


def test_uptime_from_rollups_equals_uptime_from_the_raw_rows(store: Store) -> None:
    write(store, *seeded())
    raw = uptime(store)
    oldest = store.results.oldest()
    done = maintain(store)
    assert done["results pruned"] > 0 and done["buckets pruned"] > 0
    with store.db.transaction(write=False) as conn:
        first_raw = conn.execute("SELECT MIN(started_at) FROM check_results").fetchone()[0]
        minutes = conn.execute(
            "SELECT MIN(start_s) FROM check_rollups WHERE size_s = 60"
        ).fetchone()[0]
    assert first_raw == db_ts(NOW - RETENTION)  # pruned at a whole hour, 2 days back
    assert minutes == int((NOW - MINUTES).timestamp())  # minute buckets kept 5 days
    assert uptime(store) == raw  # every window, every check: the same runs, the same figure
    assert store.results.oldest() == oldest == NOW - timedelta(days=12)  # now in hour buckets
    steady_7d = raw[0][1][0]
    assert steady_7d.failing == 100 + 60 + 10  # outages across both tier boundaries
    assert steady_7d.degraded == 200


def test_a_window_half_in_raw_rows_half_in_rollups_counts_each_run_once(store: Store) -> None:
    failing: list[Status] = ["failing"]
    statuses = failing * (3 * DAY) + ["ok"] * (3 * DAY)
    write(store, runs("half", NOW, statuses))
    maintain(store)
    counts = store.results.run_counts([NOW - timedelta(days=6)], NOW)
    assert counts["half"] == [RunCounts(ok=3 * DAY, failing=3 * DAY)]
    with store.db.transaction(write=False) as conn:  # the first 3 days: only rollups left
        assert conn.execute("SELECT COUNT(*) FROM check_results").fetchone()[0] == 2 * DAY


def test_rolling_up_is_incremental_and_a_rerun_after_a_crash_writes_the_same_rows(
    store: Store,
) -> None:
    write(store, *seeded())
    steps = store.rollups.steps(NOW - timedelta(days=3))
    list(islice(steps, 7))  # killed part-way: some buckets written, the marks not all moved
    steps.close()
    store.rollups.run(NOW)
    crashed = _all_buckets(store)
    with store.db.transaction() as conn:
        conn.execute("DELETE FROM check_rollups")
        conn.execute("DELETE FROM rollup_marks")
    store.rollups.run(NOW)
    assert _all_buckets(store) == crashed
    assert store.rollups.run(NOW) == 0  # nothing new closed: nothing written
    later = NOW + timedelta(minutes=10)
    write(store, runs("steady", later, ["ok"] * 10))
    store.rollups.run(later + LATE)
    new = {row[:3] for row in _all_buckets(store)} - {row[:3] for row in crashed}
    at = int((NOW - LATE).timestamp())  # what closed since: 11:45 to 12:10, and the hour 11:00
    assert new == {("steady", MINUTE, at + 60 * m) for m in range(25)} | {
        ("several", MINUTE, at + 300 * m) for m in range(3)
    } | {("steady", HOUR, at - 45 * 60), ("several", HOUR, at - 45 * 60)}
    marks = store.rollups.marks()
    assert marks[MINUTE] == int(later.timestamp())
    assert marks[HOUR] == int(NOW.timestamp())  # 12:00-13:00 is not over yet


def test_raw_results_are_kept_until_rolled_up(store: Store) -> None:
    write(store, runs("recent", NOW, ["ok"] * 120))
    store.maintain(NOW, timedelta(minutes=1), MINUTES, HOURS)
    with store.db.transaction(write=False) as conn:
        left = conn.execute("SELECT COUNT(*) FROM check_results").fetchone()[0]
    # rolled up to 11:45 (LATE): the hour from 11:00 is not pruned, only 10:00-11:00 is
    assert left == 60
    assert store.rollups.marks()[MINUTE] == int((NOW - LATE).timestamp())


def test_history_beyond_raw_retention_reads_the_buckets(store: Store) -> None:
    write(store, *seeded())
    maintain(store)
    since = NOW - timedelta(days=7)
    rolled = store.rollups.history("steady", since, NOW)
    sizes = {b.size_s for b in rolled}
    assert sizes == {MINUTE, HOUR}
    assert rolled[0].start == since and rolled[-1].start == NOW - RETENTION - timedelta(minutes=1)
    runs_ = sum((b.runs.total for b in rolled), 0)
    assert runs_ + len(store.results.runs("steady", since, NOW)) == 7 * DAY


def test_buckets_count_runs_by_worst_status_and_exact_latency_percentiles() -> None:
    start = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
    rows: list[tuple[str, str, str, float | None]] = [
        ("c", db_ts(start + timedelta(seconds=s)), "ok", float(s + 1)) for s in range(100)
    ]
    rows += [
        ("c", db_ts(start), "failing", None),
        ("c", db_ts(start + timedelta(hours=1)), "ok", 5.0),
    ]
    minute = summarize(rows, MINUTE)
    first = minute[0]
    assert first.start == start and first.results == 61 and first.latency_n == 60
    assert first.runs == RunCounts(ok=59, failing=1)  # the run at :00 had a failing result
    assert (first.p50_ms, first.p95_ms, first.p99_ms, first.max_ms) == (30.0, 57.0, 60.0, 60.0)
    hour = summarize(rows, HOUR)
    assert [b.start for b in hour] == [start, start + timedelta(hours=1)]
    assert hour[0].runs == RunCounts(ok=99, failing=1) and hour[0].p99_ms == 99.0
    assert hour[1] == Bucket(
        "c", HOUR, int(hour[1].start_s), 1, RunCounts(ok=1), 1, 5.0, 5.0, 5.0, 5.0
    )


def _all_buckets(store: Store) -> list[tuple[object, ...]]:
    with store.db.transaction(write=False) as conn:
        return [
            tuple(row)
            for row in conn.execute(
                "SELECT * FROM check_rollups ORDER BY check_name, size_s, start_s"
            ).fetchall()
        ]


def test_cycles_commit_between_maintenance_steps(store: Store) -> None:
    """As the daemon runs it (`Daemon._prune`): each step is its own call on the store's
    thread, so a cycle's commit queued meanwhile goes in after at most one step."""
    write(store, *seeded())

    async def both() -> list[str]:
        order: list[str] = []
        steps = store.maintenance(NOW, RETENTION, MINUTES, HOURS)

        async def maintain() -> None:
            while await store_io(next, steps, None) is not None:
                order.append("step")

        async def cycles() -> None:
            for n in range(5):
                await store_io(write, store, runs("live", NOW + timedelta(minutes=n + 1), ["ok"]))
                order.append("commit")

        await asyncio.gather(maintain(), cycles())
        return order

    order = asyncio.run(both())
    last_step = len(order) - 1 - order[::-1].index("step")
    assert order.count("commit") == 5 and order.count("step") > 5
    assert order.index("commit") < order.index("step") + 2  # the first commit waited one step
    last_commit = len(order) - 1 - order[::-1].index("commit")
    assert last_commit < last_step  # every commit went in while maintenance was under way
