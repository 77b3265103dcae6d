from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from daemon.models import CheckResult
from jobs.base import CheckContext
from jobs.dns import DnsCheck
from tests.jobs.conftest import assert_options_described


async def run_dns(ctx: CheckContext, host: str, **options: Any) -> CheckResult:
    spec = DnsCheck.model_validate({"name": "resolve", "type": "dns", "host": host, **options})
    results = await spec.run(ctx)
    assert len(results) == 1
    return results[0]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Replace the system resolver with a scripted answer: set `resolver[0]` to addresses, an
    exception, or a `threading.Event` to block on (released when the test ends)."""
    script: list[Any] = []
    released = threading.Event()

    def fake(*args: Any, **kwargs: Any) -> Any:
        outcome = script[0]
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, threading.Event):
            outcome.wait(30)
            released.wait(30)
        return outcome

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    yield script
    released.set()
    for item in script:
        if isinstance(item, threading.Event):
            item.set()


async def test_localhost_resolves_to_loopback(ctx: CheckContext) -> None:
    result = await run_dns(ctx, "localhost")
    assert result.status == "ok"
    assert result.evidence.startswith("DNS lookup of localhost (A) returned 127.0.0.1 in ")
    assert result.values["address_count"] == 1


async def test_expected_address_present_is_ok(ctx: CheckContext) -> None:
    result = await run_dns(ctx, "localhost", expected_addresses=["127.0.0.1"])
    assert result.status == "ok"


async def test_expected_address_missing_is_failing_with_got_and_expected(
    ctx: CheckContext,
) -> None:
    result = await run_dns(ctx, "localhost", expected_addresses=["10.0.0.7", "127.0.0.1"])
    assert result.status == "failing"
    assert result.evidence.startswith("DNS lookup of localhost (A) returned 127.0.0.1 in ")
    assert result.evidence.endswith(" ms; missing 10.0.0.7; expected 10.0.0.7, 127.0.0.1")


async def test_aaaa_asks_for_ipv6_and_normalises_addresses(ctx: CheckContext) -> None:
    result = await run_dns(ctx, "::1", record_type="AAAA", expected_addresses=["0:0:0:0:0:0:0:1"])
    assert result.status == "ok"
    assert result.evidence.startswith("DNS lookup of ::1 (AAAA) returned ::1 in ")


async def test_any_returns_both_families_ipv4_first(ctx: CheckContext, resolver: list[Any]) -> None:
    stream = socket.SOCK_STREAM
    resolver.append(
        [
            (socket.AF_INET6, stream, 6, "", ("2001:db8::5", 0, 0, 0)),
            (socket.AF_INET, stream, 6, "", ("192.0.2.5", 0)),
        ]
    )
    result = await run_dns(ctx, "db.internal", record_type="ANY")
    assert result.status == "ok"
    assert result.evidence.startswith(
        "DNS lookup of db.internal (ANY) returned 192.0.2.5, 2001:db8::5 in "
    )


async def test_unknown_name_is_failing_with_resolver_message(
    ctx: CheckContext, resolver: list[Any]
) -> None:
    resolver.append(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    result = await run_dns(ctx, "nope.internal")
    assert result.status == "failing"
    assert result.evidence.startswith("DNS lookup of nope.internal (A) failed after ")
    assert result.evidence.endswith(" ms: Name or service not known")


async def test_slow_resolver_times_out(ctx: CheckContext, resolver: list[Any]) -> None:
    resolver.append(threading.Event())  # never set
    result = await run_dns(ctx, "slow.internal", timeout="100ms")
    assert result.status == "failing"
    assert result.evidence == "DNS lookup of slow.internal (A) timed out after 0.1 s"


async def test_slower_than_max_latency_is_degraded(ctx: CheckContext) -> None:
    result = await run_dns(ctx, "localhost", max_latency="0s")
    assert result.status == "degraded"
    assert result.evidence.endswith("; slower than max_latency 0 ms")


def test_expected_addresses_must_be_ip_addresses() -> None:
    with pytest.raises(ValidationError, match="does not appear to be an IPv4 or IPv6 address"):
        DnsCheck.model_validate(
            {"name": "r", "type": "dns", "host": "x", "expected_addresses": ["db.internal"]}
        )


async def test_check_name_stays_the_check_identifier(ctx: CheckContext) -> None:
    result = await run_dns(ctx, "localhost")
    assert result.check == "resolve"


def test_schema_describes_every_option() -> None:
    assert_options_described(DnsCheck)
