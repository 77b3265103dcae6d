"""`watchkeeper run` as a real process: systemd notify, reload, stop, locking, kill -9."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli import run_cli
from tests.peers.loopback import free_port
from tests.peers.receivers import ReceivedRequest, WebhookReceiver

PY = sys.executable
DEADLINE_S = 20.0


@pytest.fixture
def receiver(webhook_receiver: WebhookReceiver) -> WebhookReceiver:
    """The JSON webhook the daemon notifies (tests/peers/receivers.py); `hang_next` holds a
    request open, unanswered, until `release()`."""
    return webhook_receiver


def acked(receiver: WebhookReceiver) -> list[str]:
    """Titles of the messages the receiver acknowledged (answered 2xx), in order."""
    return [m["title"] for m in receiver.messages]


def held(requests: list[ReceivedRequest]) -> bool:
    """Whether one of `requests` was held open (never answered)."""
    return any(r.status == 0 for r in requests)


def write_config(tmp_path: Path, receiver_port: int, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[daemon]
state_dir = "state"
jitter = "0s"
drain_timeout = "3s"

[delivery]
retry_initial = "1s"
retry_max = "2s"
timeout = "5s"

[[notify]]
name = "hook"
url = "json://127.0.0.1:{receiver_port}/hook"

[[checks]]
name = "dead-port"
type = "tcp"
host = "127.0.0.1"
port = {free_port()}
interval = "1s"
timeout = "2s"
failure_threshold = 1
{extra}
""",
        encoding="utf-8",
    )
    return path


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_"))}
    base.pop("WATCHKEEPER_CONFIG", None)
    base.update(extra)
    return base


def wait_for(predicate: object, what: str, timeout: float = DEADLINE_S) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class NotifySocket:
    def __init__(self, tmp_path: Path) -> None:
        self.path = str(tmp_path / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(DEADLINE_S)
        self.seen: list[str] = []

    def expect(self, wanted: str) -> str:
        """Read datagrams until one contains `wanted` (each datagram may hold several lines)."""
        end = time.monotonic() + DEADLINE_S
        while time.monotonic() < end:
            data = self.sock.recv(4096).decode()
            self.seen.append(data)
            if wanted in data.splitlines():
                return data
        raise AssertionError(f"no {wanted} in {self.seen}")

    def close(self) -> None:
        self.sock.close()


def outbox(config: Path) -> dict[str, int]:
    """The outbox counts `watchkeeper status --json` reports (run in process: tests.cli)."""
    done = run_cli("status", "--json", "--config", str(config), env=env())
    assert done.returncode == 0, done.stderr
    counts: dict[str, int] = json.loads(done.stdout)["outbox"]
    return {k: v for k, v in counts.items() if v}


def start(config: Path, **extra_env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PY, "-m", "daemon", "run", "--config", str(config)],
        env=env(**extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=DEADLINE_S)
    return proc.returncode, out


def test_systemd_notify_sequence_reload_and_stop(tmp_path: Path, receiver: WebhookReceiver) -> None:
    config = write_config(tmp_path, receiver.port)
    notify = NotifySocket(tmp_path)
    proc = start(config, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="1000000")
    try:
        notify.expect("READY=1")
        status = notify.expect("WATCHDOG=1")
        assert status
        assert any(
            line.startswith("STATUS=1 checks") for d in notify.seen for line in d.splitlines()
        )

        # a valid reload: RELOADING=1 with MONOTONIC_USEC, then READY=1
        proc.send_signal(signal.SIGHUP)
        reloading = notify.expect("RELOADING=1")
        assert "MONOTONIC_USEC=" in reloading
        notify.expect("READY=1")

        # a broken config is rejected and the old one keeps running
        config.write_text(config.read_text() + "\nbogus_key = 1\n")
        proc.send_signal(signal.SIGHUP)
        notify.expect("RELOADING=1")
        notify.expect("READY=1")
        notify.expect("WATCHDOG=1")
        assert proc.poll() is None

        proc.send_signal(signal.SIGTERM)
        notify.expect("STOPPING=1")
        code, out = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()
    assert code == 0
    assert "reload rejected" in out and "bogus_key: unknown key" in out
    assert "keeping the running configuration" in out
    assert "Traceback" not in out


def test_second_instance_on_the_same_state_dir_refuses(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    config = write_config(tmp_path, receiver.port)
    notify = NotifySocket(tmp_path)
    first = start(config, NOTIFY_SOCKET=notify.path)
    try:
        notify.expect("READY=1")
        second = subprocess.run(
            [PY, "-m", "daemon", "run", "--config", str(config)],
            env=env(),
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
        )
        assert second.returncode == 1
        assert f"pid {first.pid}" in second.stderr
        assert "already using" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        code, _ = stop(first)
        notify.close()
    assert code == 0


def test_sigterm_drains_a_running_check_then_exits_zero(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    marker = tmp_path / "started"
    slow = f"""
[[checks]]
name = "slow"
type = "command"
command = ["{PY}", "-c", "import pathlib, time; pathlib.Path('{marker}').touch(); time.sleep(1.5)"]
interval = "1s"
timeout = "10s"
"""
    config = write_config(tmp_path, receiver.port, slow)
    notify = NotifySocket(tmp_path)
    proc = start(config, NOTIFY_SOCKET=notify.path)
    try:
        notify.expect("READY=1")
        wait_for(marker.exists, "the slow check to start")
        proc.send_signal(signal.SIGTERM)
        notify.expect("STOPPING=1")
        code, out = stop(proc)
    finally:
        notify.close()
    assert code == 0
    assert "draining running checks" in out
    assert "cancelled checks" not in out
    assert "watchkeeper stopped" in out


def test_run_once_notifies_once_per_incident_and_once_on_resolve(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    config = write_config(tmp_path, receiver.port)

    def once() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PY, "-m", "daemon", "run", "--once", "--config", str(config)],
            env=env(),
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
        )

    first = once()
    assert first.returncode == 0, first.stderr
    assert "dead-port" in first.stdout and "FAILING" in first.stdout
    assert "incident #1 opened" in first.stdout
    assert acked(receiver) == ["[HIGH] dead-port failing — incident #1"]

    second = once()
    assert second.returncode == 0
    assert acked(receiver) == ["[HIGH] dead-port failing — incident #1"]

    text = config.read_text()
    config.write_text(text[: text.index("[[checks]]")])  # the check is removed
    third = once()
    assert third.returncode == 0, third.stderr
    titles = acked(receiver)
    assert len(titles) == 2
    assert titles[1].startswith("[RESOLVED] dead-port")


def test_kill_9_during_delivery_loses_nothing_and_repeats_nothing(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    flag = tmp_path / "healthy"
    flag.write_text("ok")
    second_check = f"""
[[checks]]
name = "flag-file"
type = "command"
command = ["cat", "{flag}"]
interval = "1s"
timeout = "2s"
failure_threshold = 1
"""
    config = write_config(tmp_path, receiver.port, second_check)
    proc = start(config)
    try:
        wait_for(lambda: len(acked(receiver)) == 1, "the first incident's message")
        assert acked(receiver) == ["[HIGH] dead-port failing — incident #1"]

        receiver.hang_next(1)
        flag.unlink()  # the second check starts failing: its message will hang
        assert receiver.wait_until(held, DEADLINE_S)
        proc.kill()  # kill -9 while the delivery is in flight
        proc.wait(DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    receiver.release()

    restarted = start(config)
    try:
        wait_for(lambda: len(acked(receiver)) == 2, "the interrupted message after restart")
        wait_for(lambda: outbox(config) == {"delivered": 2}, "the outbox to settle")
    finally:
        code, out = stop(restarted)
    assert code == 0, out
    assert acked(receiver) == [
        "[HIGH] dead-port failing — incident #1",
        "[HIGH] flag-file failing — incident #2",
    ]
    assert [r.json()["title"] for r in receiver.requests if held([r])] == [
        "[HIGH] flag-file failing — incident #2"
    ]
    db = sqlite3.connect(tmp_path / "state" / "watchkeeper.db")
    try:
        opened = db.execute("SELECT count(*) FROM incidents").fetchone()[0]
    finally:
        db.close()
    assert opened == 2
