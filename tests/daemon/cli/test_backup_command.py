"""`watchkeeper backup PATH` against a running daemon process: a copy with its results, 0600,
never over a file; a dated name inside a directory; one line and exit 2 when nothing to copy."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PY = sys.executable


def env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WATCHKEEPER_", "NOTIFY_SOCKET", "WATCHDOG_", "STATE_DIRECTORY"))
    }


def wk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "daemon", *args], capture_output=True, text=True, timeout=60, env=env()
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        """
[daemon]
state_dir = "state"
jitter = "0s"

[[checks]]
name = "local-dns"
type = "dns"
host = "localhost"
interval = "1s"
"""
    )
    return path


def _results(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM check_results").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


@pytest.fixture
def running(config: Path) -> Iterator[Path]:
    """`watchkeeper run` recording a result every second; yields its database."""
    proc = subprocess.Popen(
        [PY, "-m", "daemon", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env(),
    )
    db = config.parent / "state" / "watchkeeper.db"
    deadline = time.monotonic() + 30
    while not (db.exists() and _results(db) >= 2):
        assert proc.poll() is None, "the daemon exited"
        assert time.monotonic() < deadline, "no results recorded"
        time.sleep(0.1)
    yield db
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_backup_while_the_daemon_runs(running: Path, config: Path, tmp_path: Path) -> None:
    copy = tmp_path / "wk.db"
    done = wk("backup", str(copy), "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert f"backed up {running} to {copy} (" in done.stdout
    assert "integrity ok" in done.stdout
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert _results(copy) >= 2

    again = wk("backup", str(copy), "--config", str(config))
    assert again.returncode == 2
    assert again.stderr.strip() == f"{copy}: already exists; not overwritten (choose a new name)"


def test_a_directory_gets_a_dated_copy(running: Path, config: Path, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    assert wk("backup", str(folder), "--config", str(config)).returncode == 0
    (made,) = folder.iterdir()
    assert made.name.startswith("watchkeeper-") and made.name.endswith("Z.db")


def test_nothing_to_back_up_is_a_config_problem(config: Path, tmp_path: Path) -> None:
    done = wk("backup", str(tmp_path / "wk.db"), "--config", str(config))
    assert done.returncode == 2
    assert done.stderr.startswith(f"{config}: daemon.state_dir: no state database ")
    assert not (tmp_path / "wk.db").exists()
    assert not (tmp_path / "state").exists()  # looking did not create it
