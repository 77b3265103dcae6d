"""The daily digest's uptime section, from a real store: who was below 100 % over the day
(lowest first), and each SLO's 30-day budget and 24 h burn rate, with hand-computed figures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.models import Status
from daemon.notify.digest import collect, render_digest
from daemon.store import Store
from daemon.util.uptime import Target
from tests.daemon.store.history import runs, write

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
DAY = 1440


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "state") as opened:
        outage: list[Status] = ["ok"] * (30 * DAY)
        for back in range(91, 121):  # 30 minutes down, two hours ago
            outage[-back] = "failing"
        flapping: list[Status] = ["ok", "failing"] * (DAY // 2)
        write(
            opened,
            runs("api", NOW, outage),
            runs("cache", NOW, ["ok"] * DAY),
            runs("queue", NOW, flapping),
        )
        yield opened


TARGETS = [
    Target("api", 60, slo=99.9, tags=("prod",)),
    Target("cache", 60),
    Target("queue", 60, slo=99.0),
]


def test_the_section_lists_checks_below_100_and_every_slo_budget(store: Store) -> None:
    data = collect(store, NOW, targets=TARGETS, retention=timedelta(days=30))
    body = render_digest(data).body.splitlines()
    start = next(i for i, line in enumerate(body) if line.startswith("**Uptime (24h):**"))
    assert body[start : start + 4] == [
        "**Uptime (24h):** 1 of 3 checks at 100% · below: queue 50.000% (down 12h), "
        "api 97.916% (down 30m)",
        "SLOs, budget left over 30d:",
        # 0.1 % of 30 days = 43m 12s allowed, 30m spent; burn 24h = (30/1440) / 0.001
        "- api 99.9%: 99.930%, 30.6% left (13m), burn rate 24h 20.83",
        # 1 % of the 1,440 measured minutes = 14m 24s allowed, 720m spent: 11h 45m 36s over
        "- queue 99%: 50.000%, overspent by 11h 45m (-4900.0%), burn rate 24h 50.00",
    ]
    incidents = next(i for i, line in enumerate(body) if line.startswith("**Incidents:**"))
    assert incidents == start + 5  # the section sits between checks and incidents


def test_without_an_slo_only_the_day_is_read_and_retention_is_said(store: Store) -> None:
    store.prune(NOW - timedelta(days=14))
    data = collect(store, NOW, targets=[Target("api", 60, slo=99.9)], retention=None)
    assert data.uptime is not None and [w.name for w in data.uptime.windows] == ["24h", "30d"]
    lines = render_digest(data).body.splitlines()
    assert "SLOs, budget left over 30d (stored results cover 14d):" in lines
    plain = collect(store, NOW, targets=[Target("cache", 60)])
    assert plain.uptime is not None and [w.name for w in plain.uptime.windows] == ["24h"]
    assert "**Uptime (24h):** 1 of 1 check at 100%" in render_digest(plain).body.splitlines()


def test_a_digest_without_targets_has_no_uptime_section(store: Store) -> None:
    data = collect(store, NOW)
    assert data.uptime is None
    assert "Uptime" not in render_digest(data).body
