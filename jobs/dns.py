"""The `dns` check: resolve a name with the system resolver and compare the addresses.

It uses the system resolver (getaddrinfo, on the checks' own resolver threads), so it never
bypasses /etc/hosts or the host's DNS configuration, and it never sends queries of its own.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from typing import Literal

from pydantic import Field, field_validator

from daemon.models import CheckResult, Duration, Status
from jobs._resolve import getaddrinfo
from jobs.base import CheckContext, CheckSpec

_FAMILIES = {"A": socket.AF_INET, "AAAA": socket.AF_INET6, "ANY": socket.AF_UNSPEC}


class DnsCheck(CheckSpec):
    """A name resolves (to the addresses you expect)."""

    type: Literal["dns"]
    # Not `name`: that is every check's own identifier (CheckSpec.name).
    host: str = Field(
        min_length=1, max_length=253, description="Host name to resolve, e.g. 'db.internal'."
    )
    record_type: Literal["A", "AAAA", "ANY"] = Field(
        default="A",
        description="Address family to ask for: 'A' (IPv4), 'AAAA' (IPv6) or 'ANY' (both).",
    )
    expected_addresses: list[str] | None = Field(
        default=None,
        description="Addresses that must all be among the answers; extra answers are fine.",
    )
    max_latency: Duration | None = Field(
        default=None, description="Report degraded when resolving takes longer, e.g. '200ms'."
    )

    @field_validator("expected_addresses")
    @classmethod
    def _addresses_valid(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        try:
            return [str(ipaddress.ip_address(address.strip())) for address in value]
        except ValueError as exc:
            raise ValueError(f"expected_addresses: {exc}") from exc

    async def run(self, ctx: CheckContext) -> list[CheckResult]:
        started_at = ctx.now()
        t0 = time.perf_counter()
        seconds = self.timeout.total_seconds()
        asked = f"{self.host} ({self.record_type})"
        values: dict[str, float | int | str | bool | None] = {}

        def done(status: Status, evidence: str) -> list[CheckResult]:
            latency = (time.perf_counter() - t0) * 1000
            return [
                self.result(
                    status, evidence, started_at=started_at, latency_ms=latency, values=values
                )
            ]

        try:
            async with asyncio.timeout(seconds):
                infos = await getaddrinfo(self.host, None, family=_FAMILIES[self.record_type])
        except TimeoutError:
            return done("failing", f"DNS lookup of {asked} timed out after {seconds:g} s")
        except (socket.gaierror, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
            ms = (time.perf_counter() - t0) * 1000
            return done("failing", f"DNS lookup of {asked} failed after {ms:.0f} ms: {reason}")

        ms = (time.perf_counter() - t0) * 1000
        got = _sorted_addresses({str(ipaddress.ip_address(info[4][0])) for info in infos})
        values["address_count"] = len(got)
        evidence = f"DNS lookup of {asked} returned {', '.join(got) or 'nothing'} in {ms:.0f} ms"
        if self.expected_addresses:
            missing = [a for a in _sorted_addresses(set(self.expected_addresses)) if a not in got]
            if missing:
                values["missing_count"] = len(missing)
                expected = ", ".join(_sorted_addresses(set(self.expected_addresses)))
                return done(
                    "failing", f"{evidence}; missing {', '.join(missing)}; expected {expected}"
                )
        if self.max_latency is not None:
            limit_ms = self.max_latency.total_seconds() * 1000
            if ms > limit_ms:
                return done("degraded", f"{evidence}; slower than max_latency {limit_ms:.0f} ms")
        return done("ok", evidence)


def _sorted_addresses(addresses: set[str]) -> list[str]:
    """IPv4 before IPv6, numerically, so evidence reads the same on every run."""
    parsed = [ipaddress.ip_address(a) for a in addresses]
    return [str(a) for a in sorted(parsed, key=lambda a: (a.version, int(a)))]
