"""The outbound heartbeat against a real HTTP receiver on loopback: it follows commits, is
rate-limited, bounded in time, one at a time, logs a failing endpoint once per streak, tells
the outside monitor when health turns bad, and never shows its URL in a log line."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog

from daemon import logging as wk_logging
from daemon.config.settings import DaemonSettings
from daemon.logging import Redactor, configure
from daemon.runtime import secret_resolver
from daemon.service.heartbeat import Heartbeat, shown
from tests.peers.receivers import WebhookReceiver

TOKEN = "0f6c5b1e-3a7d-4c2b-9e8f-heartbeat-token"


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Every log line as JSON, at debug level (libraries' request lines included)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in wk_logging.NOISY_LOGGERS}
    saved = structlog.get_config()
    out = io.StringIO()
    configure("debug", "json", out)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)
    structlog.configure(**saved)
    Redactor.clear_known()


def events(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


class Daemon:
    """What the heartbeat reads from the service: committed cycles, health, settings, a clock."""

    def __init__(self, **settings: Any) -> None:
        self.daemon = DaemonSettings.model_validate(settings)
        self.cycles = 0
        self.problems: list[str] = []
        self.now = 1000.0

    def heartbeat(self, resolve: Callable[[str], str] = lambda ref: ref) -> Heartbeat:
        return Heartbeat(
            settings=lambda: self.daemon,
            cycles=lambda: self.cycles,
            problems=lambda: list(self.problems),
            resolve=resolve,
            clock=lambda: self.now,
        )


def paths(receiver: WebhookReceiver) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in receiver.requests]


async def test_pings_follow_commits_at_most_once_per_heartbeat_every(
    webhook_receiver: WebhookReceiver,
) -> None:
    url = f"http://127.0.0.1:{webhook_receiver.port}/ping/{TOKEN}"
    daemon = Daemon(heartbeat_url=url, heartbeat_every="60s")
    beat = daemon.heartbeat()
    await beat.tick()
    assert webhook_receiver.requests == []  # nothing committed yet: nothing to vouch for

    daemon.cycles = 1
    await beat.tick()
    assert paths(webhook_receiver) == [("GET", f"/ping/{TOKEN}")]

    for _step in range(59):  # a cycle a second for a minute: no second ping
        daemon.cycles += 1
        daemon.now += 1
        await beat.tick()
    assert len(webhook_receiver.requests) == 1

    daemon.now += 1  # 60 s after the first, with commits since: one more
    await beat.tick()
    assert len(webhook_receiver.requests) == 2

    daemon.now += 600  # ten minutes without a commit (a wedged store): silence
    for _ in range(10):
        await beat.tick()
    assert len(webhook_receiver.requests) == 2

    daemon.cycles += 1  # commits again
    await beat.tick()
    assert len(webhook_receiver.requests) == 3
    assert beat.sent == {"success": 3, "fail": 0}


async def test_an_unhealthy_daemon_sends_one_fail_ping_per_streak_and_no_success(
    make_webhook_receiver: Callable[[], WebhookReceiver],
) -> None:
    up, down = make_webhook_receiver(), make_webhook_receiver()
    daemon = Daemon(
        heartbeat_url=f"http://127.0.0.1:{up.port}/{TOKEN}",
        heartbeat_fail_url=f"http://127.0.0.1:{down.port}/{TOKEN}/fail",
        heartbeat_every="1s",
    )
    beat = daemon.heartbeat()
    daemon.cycles = 1
    await beat.tick()
    assert len(up.requests) == 1

    daemon.problems = ["no cycle committed for 95 s (limit 60 s); last error: disk full"]
    for _ in range(5):
        daemon.cycles += 1  # even a commit does not make an unhealthy daemon vouch for itself
        daemon.now += 2
        await beat.tick()
    assert len(up.requests) == 1
    [fail] = down.requests
    assert (fail.method, fail.path) == ("POST", f"/{TOKEN}/fail")
    assert fail.body == b"no cycle committed for 95 s (limit 60 s); last error: disk full"
    assert fail.headers["Content-Type"] == "text/plain; charset=utf-8"

    daemon.problems = []
    daemon.cycles += 1
    daemon.now += 2
    await beat.tick()
    assert len(up.requests) == 2  # healthy and committing again: pings resume

    daemon.problems = ["the scheduler is not running"]
    await beat.tick()
    assert len(down.requests) == 2  # a new streak: one more fail ping
    assert down.requests[1].body == b"the scheduler is not running"


async def test_a_failing_endpoint_is_logged_once_per_streak_without_its_url(
    webhook_receiver: WebhookReceiver, logs: io.StringIO
) -> None:
    url = f"http://127.0.0.1:{webhook_receiver.port}/ping/{TOKEN}?create=1"
    daemon = Daemon(heartbeat_url=url, heartbeat_every="1s")
    beat = daemon.heartbeat()
    webhook_receiver.fail_next(4, status=503)
    for _ in range(5):
        daemon.cycles += 1
        daemon.now += 1
        await beat.tick()
    assert len(webhook_receiver.requests) == 5
    lines = events(logs)
    warnings = [e for e in lines if e["event"].startswith("heartbeat not delivered")]
    assert len(warnings) == 1
    assert warnings[0]["reason"] == "answered HTTP 503"
    assert warnings[0]["url"] == f"http://127.0.0.1:{webhook_receiver.port}/***"
    [again] = [e for e in lines if e["event"] == "heartbeat delivered again"]
    assert again["failed_before"] == 4
    assert TOKEN not in logs.getvalue()  # httpx's own debug lines included
    assert beat.streak["success"] == 0


async def test_a_hanging_endpoint_costs_at_most_heartbeat_timeout_one_request_at_a_time(
    webhook_receiver: WebhookReceiver, logs: io.StringIO
) -> None:
    url = f"http://127.0.0.1:{webhook_receiver.port}/{TOKEN}"
    daemon = Daemon(heartbeat_url=url, heartbeat_every="1s", heartbeat_timeout="0.3s")
    beat = daemon.heartbeat()
    webhook_receiver.hang_next(100)
    daemon.cycles = 1
    started = time.monotonic()
    await beat.tick()
    assert time.monotonic() - started < 1.0
    [warning] = [e for e in events(logs) if e["event"].startswith("heartbeat not delivered")]
    assert warning["reason"] == "no answer within 0.3 s"


async def test_one_request_at_a_time_even_when_each_outlasts_heartbeat_every(
    webhook_receiver: WebhookReceiver,
) -> None:
    url = f"http://127.0.0.1:{webhook_receiver.port}/{TOKEN}"
    daemon = Daemon(heartbeat_url=url, heartbeat_every="1s", heartbeat_timeout="1.5s")
    beat = daemon.heartbeat()
    beat.clock = time.monotonic
    arrivals: list[float] = []
    handle = webhook_receiver._handle

    def record(request: Any) -> tuple[int, bool]:
        arrivals.append(time.monotonic())
        return handle(request)

    webhook_receiver._handle = record  # type: ignore[method-assign]
    webhook_receiver.hang_next(100)
    stop = asyncio.Event()
    task = asyncio.create_task(beat.run(stop))
    deadline = time.monotonic() + 5.5
    while time.monotonic() < deadline:
        daemon.cycles += 1  # commits keep coming, a second apart would allow a ping each
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, 3)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) >= 2
    assert all(gap >= 1.5 for gap in gaps), gaps  # each waited for the previous one to end


async def test_a_secret_reference_is_resolved_at_send_time_and_masked(
    webhook_receiver: WebhookReceiver, logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WK_TEST_HEARTBEAT", f"http://127.0.0.1:{webhook_receiver.port}/{TOKEN}")
    daemon = Daemon(heartbeat_url="secret:WK_TEST_HEARTBEAT")
    beat = daemon.heartbeat(resolve=secret_resolver())
    daemon.cycles = 1
    await beat.tick()
    assert paths(webhook_receiver) == [("GET", f"/{TOKEN}")]
    structlog.get_logger("t").info(
        "echo", where=f"http://127.0.0.1:{webhook_receiver.port}/{TOKEN}"
    )
    assert TOKEN not in logs.getvalue()

    monkeypatch.delenv("WK_TEST_HEARTBEAT")
    daemon.cycles, daemon.now = 2, daemon.now + 120
    await beat.tick()
    [warning] = [e for e in events(logs) if e["event"].startswith("heartbeat not delivered")]
    assert warning["url"] == "(secret reference)"
    assert "secret 'WK_TEST_HEARTBEAT' not found" in warning["reason"]


def test_shown_keeps_scheme_and_host_only() -> None:
    assert shown("https://hc-ping.com/0f6c5b1e-3a7d") == "https://hc-ping.com/***"
    assert shown("https://kuma.example:3001/api/push/AbC?status=up&msg=OK") == (
        "https://kuma.example:3001/***"
    )
    assert shown("http://[::1]:8787/ping/x") == "http://[::1]:8787/***"
    assert shown("https://hc-ping.com") == "https://hc-ping.com"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://hc-ping.com/abc", "must be an http:// or https:// URL with a host"),
        ("https:///no-host", "must be an http:// or https:// URL with a host"),
        ("https://hc-ping.com:99999/abc", "not a valid URL"),
        ("secret:", "write secret:NAME"),
    ],
)
def test_bad_heartbeat_urls_are_rejected_without_quoting_them(value: str, message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        DaemonSettings.model_validate({"heartbeat_url": value})
    text = str(caught.value).split("[type=")[0]
    assert message in text
    if "abc" in value:
        assert "abc" not in text


def test_heartbeat_every_and_timeout_are_bounded() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="heartbeat_every must be at least 1s"):
        DaemonSettings.model_validate({"heartbeat_every": "500ms"})
    with pytest.raises(ValidationError, match="at most 60s"):
        DaemonSettings.model_validate({"heartbeat_timeout": "2m"})
