"""`watchkeeper run` saves its baseline windows at a clean stop and restores them at the next
start: with every stored result deleted in between (so a rebuild from results would find
nothing), the window the second run saves holds the first run's samples and its own."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest

from daemon.engine.baselines import BaselinePolicy
from daemon.engine.snapshots import unpack
from daemon.engine.window import TICKS
from tests.daemon.service.test_daemon_process import start, stop, wait_for


@pytest.fixture
def listening() -> Iterator[int]:
    """A loopback port that completes TCP handshakes (the kernel's backlog; never accepted)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(256)
        yield server.getsockname()[1]


def results(db: Path) -> list[tuple[str, str]]:
    """The stored results (none yet while the daemon creates the database)."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT status, started_at FROM check_results").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def snapshot(db: Path) -> tuple[datetime, int]:
    """What the stored snapshot of `up` covers, and how many samples its latency window holds."""
    with closing(sqlite3.connect(db)) as conn:
        [(covers, data)] = conn.execute(
            "SELECT covers, data FROM baseline_snapshots WHERE check_name = 'up'"
        ).fetchall()
    policy = BaselinePolicy()
    windows = unpack(data, policy.max_samples, policy.window.total_seconds() / TICKS)
    return datetime.fromisoformat(covers), len(windows[(None, "latency_ms")])


def test_a_clean_stop_saves_the_windows_and_the_next_start_restores_them(
    tmp_path: Path, listening: int
) -> None:
    config = tmp_path / "config.toml"
    daemon = 'state_dir = "state"\njitter = "0s"\ncycle_window = "0s"\ndrain_timeout = "3s"'
    check = f'name = "up"\ntype = "tcp"\nhost = "127.0.0.1"\nport = {listening}\ninterval = "1s"'
    config.write_text(f"[daemon]\n{daemon}\n\n[[checks]]\n{check}\n", encoding="utf-8")
    db = tmp_path / "state" / "watchkeeper.db"
    first = start(config)
    wait_for(lambda: db.exists() and len(results(db)) >= 4, "four results")
    code, out = stop(first)
    assert code == 0, out
    assert "saved baseline snapshots" in out
    stored = results(db)
    assert {status for status, _ in stored} == {"ok"}
    covers, held = snapshot(db)
    assert covers == max(datetime.fromisoformat(at) for _, at in stored)
    assert held == len(stored)

    with closing(sqlite3.connect(db)) as conn:  # a rebuild would now find no history at all
        conn.execute("DELETE FROM check_results")
        conn.commit()
    second = start(config)
    wait_for(lambda: len(results(db)) >= 3, "three more results")
    time.sleep(0.2)
    code, out = stop(second)
    assert code == 0, out
    assert "not usable" not in out
    covers_after, held_after = snapshot(db)
    assert covers_after > covers
    assert held_after == held + len(results(db))  # the first run's samples came back
