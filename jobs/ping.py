"""The `ping` check: ICMP echo requests to a host, judged on loss and average round-trip time.

Unprivileged where the OS allows it (Linux `net.ipv4.ping_group_range`, macOS), raw sockets
where the process may; otherwise an `error` that says what to change. Names are resolved on
the checks' own resolver threads, and the whole run stays within the check's timeout.
"""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import timedelta
from typing import Literal, Self

from pydantic import Field, model_validator

from daemon.models import CheckResult, Duration, Status
from jobs._icmp import EchoOutcome, IcmpUnavailable, echo
from jobs._resolve import getaddrinfo
from jobs.base import CheckContext, CheckSpec

_FAMILIES = {"any": socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}
_MARGIN_S = 0.05
"""The run ends this long before the check's timeout, so it reports instead of being cut."""


class PingCheck(CheckSpec):
    """A host answers ICMP echo requests, without (much) loss and fast enough."""

    type: Literal["ping"]
    host: str = Field(min_length=1, description="Host name or IP address to ping.")
    count: int = Field(default=3, ge=1, le=100, description="Echo requests sent per run.")
    packet_interval: Duration = Field(
        default=timedelta(seconds=0.5),
        description="Time between two echo requests of one run, e.g. '200ms' (at least 10ms).",
    )
    max_loss_pct: float = Field(
        default=50.0,
        ge=0,
        le=100,
        description="Failing when more of the requests than this percentage go unanswered; "
        "some loss within it is degraded, and no reply at all is always failing.",
    )
    max_rtt: Duration | None = Field(
        default=None,
        description="Degraded when the average round-trip time of the replies is above this, "
        "e.g. '100ms' (the average, so one slow reply alone does not degrade).",
    )
    ip_version: Literal["any", "ipv4", "ipv6"] = Field(
        default="any",
        description="Which address of the host to ping: the first the resolver gives (any), "
        "or its first IPv4 or IPv6 address.",
    )

    @model_validator(mode="after")
    def _fits_in_timeout(self) -> Self:
        if self.packet_interval.total_seconds() < 0.01:
            raise ValueError("packet_interval must be at least 10ms")
        sending = (self.count - 1) * self.packet_interval.total_seconds()
        if sending >= self.timeout.total_seconds():
            raise ValueError(
                f"{self.count} requests {self.packet_interval.total_seconds():g} s apart take "
                f"{sending:g} s, not less than timeout {self.timeout.total_seconds():g} s: "
                "lower count or packet_interval, or raise timeout"
            )
        return self

    async def run(self, ctx: CheckContext) -> list[CheckResult]:
        started_at = ctx.now()
        deadline = time.monotonic() + self.timeout.total_seconds() - _MARGIN_S
        values: dict[str, float | int | str | bool | None] = {}

        def done(status: Status, evidence: str, latency: float | None = None) -> list[CheckResult]:
            return [
                self.result(
                    status, evidence, started_at=started_at, latency_ms=latency, values=values
                )
            ]

        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                infos = await getaddrinfo(
                    self.host, None, family=_FAMILIES[self.ip_version], kind=socket.SOCK_DGRAM
                )
        except TimeoutError:
            return done("failing", f"ping {self.host}: name lookup timed out")
        except (socket.gaierror, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
            return done("failing", f"ping {self.host}: cannot resolve the name: {reason}")
        family, _, _, _, sockaddr = infos[0]
        address = str(sockaddr[0])
        shown = self.host if address == self.host else f"{self.host} ({address})"
        values["address"] = address
        try:
            outcome = await echo(
                (address, 0, *sockaddr[2:]),
                family,
                count=self.count,
                interval_s=self.packet_interval.total_seconds(),
                deadline=deadline,
            )
        except IcmpUnavailable as exc:
            return done("error", f"ping {shown}: {exc}")
        status, evidence = judge(outcome, self.count, self.max_loss_pct, self.max_rtt)
        values.update(figures(outcome, self.count))
        avg = values["rtt_avg_ms"]
        return done(status, f"ping {shown}: {evidence}", avg if isinstance(avg, float) else None)


def figures(outcome: EchoOutcome, count: int) -> dict[str, float | int | str | bool | None]:
    """The result's values: requests planned vs answered, loss and round-trip times."""
    rtts = outcome.rtts_ms
    return {
        "sent": outcome.sent,
        "received": outcome.received,
        "loss_pct": round(loss_pct(outcome, count), 1),
        "rtt_avg_ms": round(sum(rtts) / len(rtts), 3) if rtts else None,
        "rtt_max_ms": round(max(rtts), 3) if rtts else None,
        "rtt_min_ms": round(min(rtts), 3) if rtts else None,
        "socket": outcome.kind,
    }


def loss_pct(outcome: EchoOutcome, count: int) -> float:
    """Unanswered requests out of the `count` planned: one that could not be sent is lost."""
    return 100.0 * (count - outcome.received) / count


def judge(
    outcome: EchoOutcome, count: int, max_loss_pct: float, max_rtt: timedelta | None
) -> tuple[Status, str]:
    """The status and the evidence sentence (after "ping HOST: ") of one run."""
    loss = loss_pct(outcome, count)
    evidence = f"{outcome.received}/{count} replies, {loss:.0f}% loss"
    if outcome.rtts_ms:
        avg = sum(outcome.rtts_ms) / len(outcome.rtts_ms)
        evidence += f", rtt avg {_ms(avg)} max {_ms(max(outcome.rtts_ms))}"
    if outcome.send_errors:
        errors = sorted(set(outcome.send_errors))
        evidence += f"; {len(outcome.send_errors)} could not be sent: {', '.join(errors)}"
    if not outcome.rtts_ms:
        return "failing", evidence + "; no reply"
    if loss > max_loss_pct:
        return "failing", evidence + f"; more loss than max_loss_pct {max_loss_pct:g}%"
    if loss > 0:
        return "degraded", evidence + f"; some loss (within max_loss_pct {max_loss_pct:g}%)"
    if max_rtt is not None and avg > (limit := max_rtt.total_seconds() * 1000):
        return "degraded", evidence + f"; average rtt above max_rtt {_ms(limit)}"
    return "ok", evidence


def _ms(value: float) -> str:
    if value < 10:
        return f"{value:.2f} ms"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
