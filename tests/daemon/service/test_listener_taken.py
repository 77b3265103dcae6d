"""A health address someone else holds stops the daemon at start-up, loudly (exit 2, the
address, "already in use"): serving nothing while that process answers /healthz would leave
every probe and self-check watching the wrong process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PY = sys.executable


@pytest.fixture
def taken() -> Iterator[int]:
    """A loopback port held by a real listening socket that is not watchkeeper's."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def _config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[daemon]
state_dir = "state"
health_listen = "127.0.0.1:{port}"

[[checks]]
name = "local-dns"
type = "dns"
host = "localhost"
interval = "1h"
"""
    )
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHKEEPER_", "NOTIFY_"))}
    return subprocess.run(
        [PY, "-m", "daemon", "run", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_the_daemon_refuses_to_start_on_a_taken_health_address(tmp_path: Path, taken: int) -> None:
    config = _config(tmp_path, taken)
    done = _run("--config", str(config))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{config}: daemon.health_listen: 127.0.0.1:{taken} is already in use" in done.stderr, (
        done.stderr
    )
    assert "Traceback" not in done.stderr


def test_run_once_refuses_a_taken_health_address_before_running_checks(
    tmp_path: Path, taken: int
) -> None:
    config = _config(tmp_path, taken)
    done = _run("--once", "--config", str(config))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"daemon.health_listen: 127.0.0.1:{taken} is already in use" in done.stderr
    assert "local-dns" not in done.stdout  # nothing ran, nothing was recorded as if healthy
    assert "Traceback" not in done.stderr


def test_a_free_health_address_is_served(tmp_path: Path) -> None:
    """The same config with the port free: `run --once` serves it and exits 0."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    done = _run("--once", "--config", str(_config(tmp_path, port)))
    assert done.returncode == 0, done.stdout + done.stderr
