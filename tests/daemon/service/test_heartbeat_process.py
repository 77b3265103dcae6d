"""`[daemon] heartbeat_url` on a real `watchkeeper run`: pings a loopback receiver after
committed cycles; when commits fail (the test holds the database's write lock) the pings stop
and the fail URL hears why, once; they resume when commits do; no log line shows either URL."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from tests.daemon.service.test_daemon_process import start, stop, wait_for
from tests.peers.receivers import WebhookReceiver

TOKEN = "c9a1f7d2-uptime-push-token"
FAIL_TOKEN = "5e0b2c44-fail-token"


def test_pings_follow_commits_and_stop_while_commits_fail(
    tmp_path: Path, make_webhook_receiver: Callable[[], WebhookReceiver]
) -> None:
    up, down, target = make_webhook_receiver(), make_webhook_receiver(), make_webhook_receiver()
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[daemon]
state_dir = "state"
jitter = "0s"
cycle_window = "100ms"
drain_timeout = "3s"
stall_after = "3s"
log_level = "debug"
heartbeat_url = "secret:WK_TEST_HEARTBEAT_URL"
heartbeat_fail_url = "http://127.0.0.1:{down.port}/ping/{FAIL_TOKEN}/fail"
heartbeat_every = "1s"
heartbeat_timeout = "2s"

[[checks]]
name = "receiver-port"
type = "tcp"
host = "127.0.0.1"
port = {target.port}
interval = "1s"
timeout = "2s"
""",
        encoding="utf-8",
    )
    proc = start(config, WK_TEST_HEARTBEAT_URL=f"http://127.0.0.1:{up.port}/ping/{TOKEN}")
    lock: sqlite3.Connection | None = None
    try:
        wait_for(lambda: len(up.requests) >= 2, "two heartbeats after committed cycles")
        assert {(r.method, r.path) for r in up.requests} == {("GET", f"/ping/{TOKEN}")}
        assert down.requests == []

        lock = sqlite3.connect(tmp_path / "state" / "watchkeeper.db", timeout=10)
        lock.execute("BEGIN EXCLUSIVE")  # every commit of the daemon now fails
        time.sleep(1.5)  # a cycle that committed just before the lock may still be vouched for
        pinged = len(up.requests)
        wait_for(lambda: len(down.requests) >= 1, "the fail ping once health turns bad")
        time.sleep(3)
        assert len(up.requests) == pinged  # no commit, no ping
        [fail] = down.requests
        assert (fail.method, fail.path) == ("POST", f"/ping/{FAIL_TOKEN}/fail")
        assert fail.body.startswith(b"no cycle committed for ")

        lock.rollback()
        lock.close()
        lock = None
        wait_for(lambda: len(up.requests) > pinged, "heartbeats again once commits succeed")
        assert len(down.requests) == 1  # one fail ping per unhealthy streak
        code, out = stop(proc)
    finally:
        if lock is not None:
            lock.close()
        if proc.poll() is None:
            proc.kill()
    assert code == 0
    assert 'HTTP Request: GET *** \\"HTTP/1.0 200 OK\\"' in out  # logged, and masked
    assert "HTTP Request: POST *** " in out
    assert TOKEN not in out and FAIL_TOKEN not in out
    assert "Traceback" not in out
