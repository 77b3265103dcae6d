"""The watchdog is fed only while the scheduler really runs its jobs."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from daemon.config.load import load_settings
from daemon.service.daemon import HEARTBEAT_S, Service
from daemon.service.sdnotify import SdNotifier


class _Scheduler:
    def __init__(self, state: int) -> None:
        self.state = state


@pytest.fixture
def service(tmp_path: Path) -> Service:
    path = tmp_path / "c.toml"
    path.write_text('[daemon]\nstate_dir = "state"\n')
    return Service(path, load_settings(path))


async def test_healthy_only_while_running_with_a_recent_heartbeat(service: Service) -> None:
    from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING

    assert not service.healthy()  # no scheduler yet
    service.scheduler = _Scheduler(STATE_RUNNING)
    service.last_beat = time.monotonic()
    assert service.healthy()
    service.last_beat = time.monotonic() - 3 * HEARTBEAT_S - 1  # the heartbeat job stalled
    assert not service.healthy()
    service.scheduler = _Scheduler(STATE_PAUSED)
    service.last_beat = time.monotonic()
    assert not service.healthy()


async def test_watchdog_pings_stop_when_the_loop_is_unhealthy(
    service: Service, tmp_path: Path
) -> None:
    import asyncio

    from apscheduler.schedulers.base import STATE_RUNNING

    path = str(tmp_path / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.setblocking(False)
    service.sd = SdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    service.scheduler = _Scheduler(STATE_RUNNING)
    service.last_beat = time.monotonic()
    task = asyncio.create_task(service._watchdog())
    await asyncio.sleep(0.2)  # the watchdog's own 50 ms cadence, under our control
    healthy = _drain(listener)
    service.last_beat = time.monotonic() - 60
    _drain(listener)
    await asyncio.sleep(0.2)
    stalled = _drain(listener)
    service.stop_event.set()
    await task
    listener.close()
    assert healthy.count("WATCHDOG=1") >= 2
    assert "WATCHDOG=1" not in stalled


def _drain(sock: socket.socket) -> str:
    seen = []
    while True:
        try:
            seen.append(sock.recv(4096).decode())
        except BlockingIOError:
            return "\n".join(seen)


def test_no_committed_cycle_for_too_long_is_unhealthy_and_says_why(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from apscheduler.schedulers.base import STATE_RUNNING

    path = tmp_path / "c.toml"
    path.write_text(
        '[daemon]\nstate_dir = "state"\nstall_after = "30s"\n'
        '[[checks]]\nname = "db"\ntype = "tcp"\nhost = "127.0.0.1"\nport = 5432\n'
    )
    service = Service(path, load_settings(path))
    service.scheduler = _Scheduler(STATE_RUNNING)
    service.last_beat = time.monotonic()
    pipeline = SimpleNamespace(
        last_commit=time.monotonic(),
        last_error=None,
        cycles=3,
        last_cycle_at=None,
        open_incidents=0,
    )
    service.rt = SimpleNamespace(pipeline=pipeline, settings=service.initial)  # type: ignore[assignment]
    assert service.problems() == []
    pipeline.last_commit = time.monotonic() - 45
    pipeline.last_error = "state database /x/watchkeeper.db: database or disk is full"
    (problem,) = service.problems()
    assert problem.startswith("no cycle committed for 45 s (limit 30 s); last error: ")
    assert problem.endswith("database or disk is full")
    report = service.health()
    assert report.healthy is False and report.detail["reason"] == problem


def test_the_stall_limit_follows_the_shortest_schedule(tmp_path: Path) -> None:
    from daemon.service.daemon import stall_limit

    path = tmp_path / "c.toml"
    checks = (
        '[[checks]]\nname = "fast"\ntype = "tcp"\nhost = "h"\nport = 1\ninterval = "30s"\n'
        'timeout = "5s"\n'
        '[[checks]]\nname = "hourly"\ntype = "tcp"\nhost = "h"\nport = 1\ncron = "0 * * * *"\n'
    )
    path.write_text('[daemon]\nstate_dir = "state"\n' + checks)
    assert stall_limit(load_settings(path)) == 3 * (30 + 5 + 2)
    path.write_text('[daemon]\nstate_dir = "state"\n')
    assert stall_limit(load_settings(path)) is None  # nothing to commit: not a stall
    path.write_text('[daemon]\nstate_dir = "state"\nstall_after = "2m"\n' + checks)
    assert stall_limit(load_settings(path)) == 120
