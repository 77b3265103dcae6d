"""The `ping` check for real: ICMP echo on loopback, and in private network namespaces where
the test shapes the network — a route that swallows packets, a token bucket that lets only two
echoes through, an unreachable network, ICMP sockets not allowed. Nothing leaves the machine:
the namespaces have no interface but their own loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from functools import cache
from typing import Any

import pytest
from pydantic import ValidationError

from daemon.models import CheckResult
from jobs._icmp import EchoOutcome, checksum, echo_request, parse_reply
from jobs.base import CheckContext
from jobs.ping import PingCheck, judge
from tests.jobs.conftest import assert_options_described

PROBE = """
import asyncio, json, sys
from jobs.base import CheckContext
from jobs.ping import PingCheck

async def main():
    import httpx
    async with httpx.AsyncClient() as client:
        spec = PingCheck.model_validate(json.loads(sys.argv[1]))
        [result] = await spec.run(CheckContext(http=client))
    print(result.model_dump_json())

asyncio.run(main())
"""


def spec(host: str, **options: Any) -> PingCheck:
    return PingCheck.model_validate({"name": "echo", "type": "ping", "host": host, **options})


async def run_ping(ctx: CheckContext, host: str, **options: Any) -> CheckResult:
    results = await spec(host, **options).run(ctx)
    assert len(results) == 1
    return results[0]


@cache
def namespaces() -> str | None:
    """Why private network namespaces cannot be made here, or None when they can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root for a private network namespace (CI runs as root)"
    if not shutil.which("unshare") or not shutil.which("ip"):
        return "needs unshare and ip (util-linux, iproute2)"
    probe = subprocess.run(
        ["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, timeout=10
    )
    return None if probe.returncode == 0 else "cannot create a network namespace here"


needs_netns = pytest.mark.skipif(
    sys.platform != "linux", reason="network namespaces are Linux only"
)


def in_namespace(setup: list[str], options: dict[str, Any], *, wrap: str = "") -> CheckResult:
    """Run one ping check in a fresh network namespace (only `lo`, brought up) after the
    shell commands of `setup`; `wrap` prefixes the Python process (e.g. dropping a capability)."""
    why = namespaces()
    if why is not None:
        pytest.skip(why)
    arguments = json.dumps({"name": "echo", "type": "ping", **options})
    script = " && ".join(["ip link set lo up", *setup])
    command = f'{script} && {wrap} "$0" -c "$1" "$2"'
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", command, sys.executable, PROBE, arguments],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert done.returncode == 0, done.stderr
    return CheckResult.model_validate_json(done.stdout.strip().splitlines()[-1])


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


# -- loopback, in this process -----------------------------------------------------------------


async def test_loopback_answers_every_request_with_loss_and_rtt(ctx: CheckContext) -> None:
    if not _icmp_allowed():
        pytest.skip("this user may not open ICMP sockets here")
    result = await run_ping(ctx, "127.0.0.1", count=3, packet_interval="50ms")
    assert result.status == "ok", result.evidence
    assert result.evidence.startswith("ping 127.0.0.1: 3/3 replies, 0% loss, rtt avg ")
    assert " ms max " in result.evidence
    values = result.values
    assert (values["sent"], values["received"], values["loss_pct"]) == (3, 3, 0.0)
    assert isinstance(values["rtt_avg_ms"], float) and isinstance(values["rtt_max_ms"], float)
    assert 0 < values["rtt_avg_ms"] <= values["rtt_max_ms"] < 1000
    assert result.latency_ms == round(values["rtt_avg_ms"], 1)


async def test_ipv6_loopback_and_a_name_show_the_address(ctx: CheckContext) -> None:
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    if not _icmp_allowed():
        pytest.skip("this user may not open ICMP sockets here")
    result = await run_ping(ctx, "::1", count=2, packet_interval="50ms")
    assert result.status == "ok", result.evidence
    assert result.evidence.startswith("ping ::1: 2/2 replies, 0% loss")
    named = await run_ping(ctx, "localhost", count=1, ip_version="ipv4")
    assert named.evidence.startswith("ping localhost (127.0.0.1): 1/1 replies")


async def test_an_average_rtt_over_max_rtt_is_degraded(ctx: CheckContext) -> None:
    if not _icmp_allowed():
        pytest.skip("this user may not open ICMP sockets here")
    result = await run_ping(ctx, "127.0.0.1", count=2, packet_interval="20ms", max_rtt="0.001ms")
    assert result.status == "degraded"
    assert result.evidence.endswith("; average rtt above max_rtt 0.00 ms")


def _icmp_allowed() -> bool:
    from jobs._icmp import IcmpUnavailable, open_socket

    try:
        sock, _ = open_socket(socket.AF_INET)
    except IcmpUnavailable:
        return False
    sock.close()
    return True


# -- name resolution ---------------------------------------------------------------------------


@pytest.fixture
def stuck_resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """getaddrinfo never answers; records the thread each lookup ran on."""
    threads: list[str] = []
    release = threading.Event()

    def lookup(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        release.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    yield threads
    release.set()


async def test_a_stuck_lookup_runs_on_the_resolver_pool_and_ends_at_the_timeout(
    ctx: CheckContext, stuck_resolver: list[str]
) -> None:
    started = time.monotonic()
    result = await run_ping(ctx, "db.internal", timeout="0.5s", count=1)
    assert time.monotonic() - started < 1.0
    assert (result.status, result.evidence) == (
        "failing",
        "ping db.internal: name lookup timed out",
    )
    assert stuck_resolver and all(name.startswith("wk-resolve") for name in stuck_resolver)


async def test_a_name_that_does_not_resolve_is_failing(
    ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lookup(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    result = await run_ping(ctx, "nowhere.internal")
    assert result.status == "failing"
    assert (
        result.evidence
        == "ping nowhere.internal: cannot resolve the name: Name or service not known"
    )


# -- private network namespaces ----------------------------------------------------------------


@needs_netns
def test_an_unprivileged_datagram_socket_is_used_where_ping_group_range_allows() -> None:
    allow = 'sysctl -qw net.ipv4.ping_group_range="0 2147483647"'
    result = in_namespace(
        [allow],
        {"host": "127.0.0.1", "count": 2, "packet_interval": "20ms"},
        wrap="setpriv --bounding-set=-net_raw",
    )
    assert result.status == "ok", result.evidence
    assert result.values["socket"] == "datagram"
    assert result.values["received"] == 2
    if has_ipv6_loopback():
        six = in_namespace(
            [allow],
            {"host": "::1", "count": 2, "packet_interval": "20ms"},
            wrap="setpriv --bounding-set=-net_raw",
        )
        assert (six.status, six.values["socket"]) == ("ok", "datagram"), six.evidence


@needs_netns
def test_not_allowed_is_an_error_that_says_what_to_change() -> None:
    deny = 'sysctl -qw net.ipv4.ping_group_range="1 0"'
    result = in_namespace([deny], {"host": "127.0.0.1"}, wrap="setpriv --bounding-set=-net_raw")
    assert result.status == "error"
    assert result.evidence == (
        "ping 127.0.0.1: ICMP sockets are not allowed for group 0 (net.ipv4.ping_group_range is "
        '"1 0"): set net.ipv4.ping_group_range = "0 2147483647" (sysctl) or grant CAP_NET_RAW '
        "(systemd: AmbientCapabilities=CAP_NET_RAW)"
    )


@needs_netns
def test_with_cap_net_raw_a_raw_socket_is_used_when_datagram_ones_are_not_allowed() -> None:
    deny = 'sysctl -qw net.ipv4.ping_group_range="1 0"'
    result = in_namespace([deny], {"host": "127.0.0.1", "count": 1})
    assert (result.status, result.values["socket"]) == ("ok", "raw"), result.evidence


@needs_netns
def test_packets_that_vanish_are_failing_and_the_run_ends_within_its_timeout() -> None:
    # 198.18.0.0/15 (benchmarking, RFC 2544) routed into this namespace's loopback: nothing
    # answers and nothing is forwarded, so every request is silently lost.
    started = time.monotonic()
    result = in_namespace(
        ["ip route add 198.18.0.0/24 dev lo"],
        {"host": "198.18.0.2", "count": 3, "packet_interval": "100ms", "timeout": "1s"},
    )
    assert time.monotonic() - started < 10
    assert result.status == "failing"
    assert result.evidence == "ping 198.18.0.2: 0/3 replies, 100% loss; no reply"
    assert result.values["sent"] == 3 and result.values["received"] == 0
    assert result.values["loss_pct"] == 100.0 and result.values["rtt_avg_ms"] is None
    assert result.latency_ms is None


@needs_netns
def test_some_loss_is_degraded_and_loss_beyond_max_loss_pct_is_failing() -> None:
    # A token bucket on loopback that holds two echoes (request + reply, 63 bytes each on
    # the wire) and refills at 12.5 bytes/s: the third request waits past the timeout.
    bucket = "tc qdisc add dev lo root tbf rate 100bit burst 300 limit 1000"
    options = {"host": "127.0.0.1", "count": 3, "packet_interval": "200ms", "timeout": "1s"}
    result = in_namespace([bucket], options)
    assert result.status == "degraded", result.evidence
    assert result.evidence.startswith("ping 127.0.0.1: 2/3 replies, 33% loss, rtt avg ")
    assert result.evidence.endswith("; some loss (within max_loss_pct 50%)")
    assert result.values["loss_pct"] == 33.3
    strict = in_namespace([bucket], {**options, "max_loss_pct": 20})
    assert strict.status == "failing"
    assert strict.evidence.endswith("; more loss than max_loss_pct 20%")


@needs_netns
def test_an_unreachable_network_is_failing_with_the_reason() -> None:
    result = in_namespace([], {"host": "198.18.0.2", "count": 2, "packet_interval": "20ms"})
    assert result.status == "failing"
    assert result.evidence == (
        "ping 198.18.0.2: 0/2 replies, 100% loss; 2 could not be sent: Network is unreachable; "
        "no reply"
    )
    assert result.values["sent"] == 0


# -- pure parts --------------------------------------------------------------------------------


def test_judge_maps_loss_and_rtt_to_a_status() -> None:
    def outcome(rtts: list[float], sent: int = 4) -> EchoOutcome:
        return EchoOutcome("raw", sent=sent, rtts_ms=rtts)

    assert judge(outcome([1.0, 2.0, 3.0, 2.0]), 4, 50, None)[0] == "ok"
    assert judge(outcome([1.0, 2.0]), 4, 50, None) == (
        "degraded",
        "2/4 replies, 50% loss, rtt avg 1.50 ms max 2.00 ms; some loss (within max_loss_pct 50%)",
    )
    assert judge(outcome([1.0]), 4, 50, None)[0] == "failing"
    assert judge(outcome([1.0, 2.0, 3.0]), 4, 0, None)[0] == "failing"
    slow = judge(outcome([150.0, 250.0, 200.0, 200.0]), 4, 50, timedelta(milliseconds=180))
    assert slow == (
        "degraded",
        "4/4 replies, 0% loss, rtt avg 200 ms max 250 ms; average rtt above max_rtt 180 ms",
    )
    assert judge(outcome([150.0, 250.0]), 2, 50, timedelta(milliseconds=250))[0] == "ok"


def test_echo_requests_carry_a_valid_checksum_and_replies_are_matched() -> None:
    packet = echo_request(socket.AF_INET, 0x1234, 7, b"payload!")
    assert checksum(packet) == 0  # a correct checksum sums to all ones
    reply = bytes([0]) + packet[1:]  # type 0: echo reply
    ip_header = bytes([0x45]) + bytes(19)
    assert parse_reply(socket.AF_INET, ip_header + reply) == (0x1234, 7, b"payload!")
    assert parse_reply(socket.AF_INET, reply) == (0x1234, 7, b"payload!")
    assert parse_reply(socket.AF_INET, packet) is None  # our own request, seen on a raw socket
    assert parse_reply(socket.AF_INET6, bytes([129]) + packet[1:]) == (0x1234, 7, b"payload!")


def test_count_and_packet_interval_must_fit_in_the_timeout() -> None:
    with pytest.raises(ValidationError, match="lower count or packet_interval, or raise timeout"):
        spec("127.0.0.1", count=10, packet_interval="1s", timeout="5s")
    with pytest.raises(ValidationError, match="at least 10ms"):
        spec("127.0.0.1", packet_interval="1ms")
    assert spec("127.0.0.1", count=5, packet_interval="1s", timeout="5s").count == 5


def test_schema_describes_every_option() -> None:
    assert_options_described(PingCheck)


def test_config_validate_loads_only_the_ping_module(tmp_path: Any) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[daemon]\nstate_dir = "state"\n\n[[checks]]\nname = "gw"\ntype = "ping"\n'
        'host = "127.0.0.1"\n',
        encoding="utf-8",
    )
    code = (
        "import sys; from daemon.cli import main\n"
        "try:\n    main(['config', 'validate', '--config', sys.argv[1]])\n"
        "except SystemExit as exit:\n    code = exit.code\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('jobs.') and m.count('.') == 1)\n"
        "print('LOADED', loaded, code)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(config)], capture_output=True, text=True, check=True
    ).stdout
    assert "ok" in out
    assert "'jobs.ping'" in out
    assert "'jobs.http'" not in out and "'jobs.kubernetes'" not in out
