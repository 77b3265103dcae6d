"""The outbox is claimed: a running daemon and commands that deliver (`digest --send`,
`investigate --notify`), started together against a slow receiver, never send a row twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.peers.loopback import refused_port
from tests.peers.receivers import WebhookReceiver

PY = sys.executable
DEADLINE_S = 60.0


def wait_for(predicate: Callable[[], object], what: str) -> None:
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def outbox(state: Path) -> dict[str, int]:
    db = sqlite3.connect(state / "watchkeeper.db")
    try:
        rows = db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
    finally:
        db.close()
    return dict(rows)


def test_a_daemon_and_delivering_commands_never_send_a_row_twice(
    tmp_path: Path, make_webhook_receiver: Callable[[], WebhookReceiver]
) -> None:
    receiver = make_webhook_receiver()
    receiver.delay_s = 0.8  # every delivery is slow: plenty of time to race for a row
    checks = "".join(
        f"""
[[checks]]
name = "down-{n}"
type = "tcp"
host = "127.0.0.1"
port = {refused_port()}
interval = "1s"
timeout = "2s"
failure_threshold = 1
"""
        for n in range(3)
    )
    config = tmp_path / "config.toml"
    config.write_text(f"""
[daemon]
state_dir = "state"
jitter = "0s"
drain_timeout = "3s"

[delivery]
timeout = "10s"

[triage]
enabled = false

[providers.ollama]
base_url = "http://127.0.0.1:{refused_port()}"

[[notify]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{receiver.port}/hook"
{checks}""")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "WATCHDOG_"))}
    daemon = subprocess.Popen(
        [PY, "-m", "daemon", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        wait_for(lambda: receiver.requests, "the daemon's first delivery")
        commands = [
            ["digest", "--send"],
            ["digest", "--send"],
            ["investigate", "1", "--notify"],
            ["investigate", "2", "--notify"],
        ]
        running = [
            subprocess.Popen(
                [PY, "-m", "daemon", *args, "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for args in commands
        ]
        for proc in running:
            _, err = proc.communicate(timeout=DEADLINE_S)
            assert "Traceback" not in err, err
        state = tmp_path / "state"
        try:
            wait_for(lambda: outbox(state) == {"delivered": 7}, "every row delivered")
        except AssertionError as exc:
            sent = [r.headers["X-Watchkeeper-Event"] for r in receiver.requests]
            raise AssertionError(f"{exc}: outbox {outbox(state)}, received {sent}") from None
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=DEADLINE_S)
    assert daemon.returncode == 0, out

    deliveries = Counter(r.headers["X-Watchkeeper-Delivery"] for r in receiver.requests)
    assert len(deliveries) == 7  # 3 incidents, 2 digests, 2 investigation follow-ups
    assert max(deliveries.values()) == 1, deliveries
    events = Counter(r.headers["X-Watchkeeper-Event"] for r in receiver.requests)
    assert events == {"opened": 3, "report": 2, "investigation": 2}
