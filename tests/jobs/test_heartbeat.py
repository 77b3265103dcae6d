"""The heartbeat check's verdict on the newest pings, and the ping path's grammar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.models import Ping, PingKind
from daemon.service.pings import parse_ping_path
from jobs.heartbeat import HeartbeatCheck, judge

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)


def ping(
    ago: timedelta, kind: PingKind = "success", code: int | None = None, msg: str = ""
) -> Ping:
    return Ping("backup", NOW - ago, kind, code, msg, "cli root")


@pytest.mark.parametrize(
    ("pings", "status", "evidence"),
    [
        ([], "ok", "no ping yet: waiting for the first one (expected every 1d, grace 1h)"),
        (
            [ping(2 * HOUR, msg="42 GB")],
            "ok",
            "last ping 2h ago (expected every 1d, grace 1h): 42 GB",
        ),
        ([ping(DAY + 30 * timedelta(minutes=1))], "ok", "last ping 1d ago (expected"),
        (
            [ping(DAY + 2 * HOUR, msg="42 GB")],
            "failing",
            "last ping 1d 2h ago; expected every 1d, grace 1h: 42 GB",
        ),
        (
            [ping(HOUR / 2, "fail", msg="disk full"), ping(HOUR)],
            "failing",
            "the job reported a failure 30m ago: disk full",
        ),
        ([ping(HOUR / 2, "fail", 3)], "failing", "the job reported a failure 30m ago (exit 3)"),
        ([ping(HOUR / 2, "start")], "ok", "running since 30m ago"),
        (
            [ping(2 * HOUR, "start"), ping(DAY)],
            "failing",
            "the job started 2h ago and never finished (expected every 1d, grace 1h)",
        ),
    ],
)
def test_the_verdict_follows_the_newest_ping(pings: list[Ping], status: str, evidence: str) -> None:
    got_status, got_evidence = judge(pings, NOW, DAY, HOUR)
    assert got_status == status
    assert got_evidence.startswith(evidence), got_evidence


@pytest.mark.parametrize(
    ("path", "parsed"),
    [
        ("/ping/abc", ("abc", "")),
        ("/ping/abc/start", ("abc", "start")),
        ("/ping/abc/fail", ("abc", "fail")),
        ("/ping/abc/0", ("abc", "0")),
        ("/ping/abc/137", ("abc", "137")),
        ("/ping/", None),
        ("/ping/abc/stop", None),
        ("/ping/abc/1234", None),
        ("/healthz", None),
    ],
)
def test_the_ping_path(path: str, parsed: tuple[str, str] | None) -> None:
    assert parse_ping_path(path) == parsed


def test_a_literal_token_is_refused() -> None:
    with pytest.raises(ValueError, match="must be secret:NAME"):
        HeartbeatCheck.model_validate(
            {"name": "b", "type": "heartbeat", "period": "1d", "token": "hunter2hunter2"}
        )
