"""The SQLite file under steady load stops growing once raw retention and both rollup tiers
are full, hands pages back after a retention cut, and databases made before incremental
auto-vacuum get it. (PostgreSQL: autovacuum's business, nothing to test here.)"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.models import CheckResult
from daemon.store import Store
from daemon.store import database as database_module
from daemon.store.database import INCREMENTAL, Database
from daemon.store.results import insert_results

START = datetime(2026, 11, 10, 0, 0, tzinfo=UTC)
CHECKS = 40
RETENTION, MINUTES, HOURS = timedelta(hours=2), timedelta(hours=4), timedelta(hours=6)


def hour_of_results(store: Store, hour: int) -> None:
    """60 cycles of CHECKS results, one a minute each, through the daemon's insert (one
    transaction: the test is about sizes, not commits)."""
    results = []
    for minute in range(60):
        started = START + timedelta(hours=hour, minutes=minute)
        results += [
            CheckResult.model_construct(
                check=f"check-{n:04d}",
                status="ok" if (n + minute) % 97 else "failing",
                evidence=f"GET http://10.0.0.{n % 250}/health returned 200 in 12 ms",
                started_at=started + timedelta(seconds=n % 50),
                latency_ms=12.0 + (n * minute) % 40,
                subject=None,
                values={"status_code": 200},
                labels={},
            )
            for n in range(CHECKS)
        ]
    with store.db.transaction() as conn:
        insert_results(conn, results)


def size(store: Store) -> int:
    with store.db.transaction(write=False) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    return int(pages * page)


def test_the_file_stops_growing_under_steady_load_at_retention(tmp_path: Path) -> None:
    sizes = []
    with Store.open(tmp_path) as store:
        assert store.db._conn is not None
        assert store.db._conn.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL
        for hour in range(16):
            hour_of_results(store, hour)
            store.maintain(START + timedelta(hours=hour + 1), RETENTION, MINUTES, HOURS)
            sizes.append(size(store))
        # every tier is full by hour 7 (6 h of hour buckets, +1 for the one rolling up)
        growing, steady = sizes[:4], sizes[8:]
        assert growing[-1] > 1.5 * growing[0]  # it did grow while the tiers filled
        assert max(steady) <= min(steady) * 1.05, sizes  # and then it stopped
        assert max(steady) <= sizes[7] * 1.05, sizes

        # a shorter retention: the freed pages beyond the slack go back to the file system
        done = store.maintain(
            START + timedelta(hours=16), timedelta(minutes=30), timedelta(hours=1), HOURS
        )
        assert done["pages released"] > 0
        assert size(store) < 0.8 * sizes[-1]
        with store.db.transaction(write=False) as conn:
            free = conn.execute("PRAGMA freelist_count").fetchone()[0]
            total = conn.execute("PRAGMA page_count").fetchone()[0]
        assert free <= 0.1 * total + 1


def test_a_small_database_made_without_auto_vacuum_gets_it_when_opened(tmp_path: Path) -> None:
    Database.open(tmp_path).close()
    _turn_auto_vacuum_off(tmp_path / "watchkeeper.db")
    with Store.open(tmp_path) as store:
        assert store.db._conn is not None
        assert store.db._conn.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL


def test_a_big_one_is_left_as_it_is_and_still_reuses_its_free_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Database.open(tmp_path).close()
    _turn_auto_vacuum_off(tmp_path / "watchkeeper.db")
    monkeypatch.setattr(database_module, "CONVERT_AT_OPEN_BYTES", 0)
    with Store.open(tmp_path) as store:
        assert store.db._conn is not None
        assert store.db._conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
        assert list(store.db.vacuum_steps()) == []  # nothing to release without it
        hour_of_results(store, 0)
        store.results.prune(START + timedelta(hours=1))
        before = size(store)
        hour_of_results(store, 1)
        assert size(store) == before  # the pruned hour's pages took the new hour's rows


def _turn_auto_vacuum_off(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA auto_vacuum = NONE")
        conn.execute("VACUUM")
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    finally:
        conn.close()
