"""The `tcp` check: connect to host:port, optionally send a greeting and expect a reply.

It reads back a bounded number of bytes, and never holds the connection open past `timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from daemon.models import CheckResult, Duration, Status
from jobs._resolve import open_connection
from jobs.base import CheckContext, CheckSpec

READ_LIMIT = 4096
"""How much of the reply is searched for `expect`: a banner or an answer, not a download."""


def host_port(host: str, port: int) -> str:
    """`db.internal:5432`, `[::1]:443`."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    return f"{host}:{port}"


def _quote(data: bytes, limit: int = 200) -> str:
    text = data.decode("utf-8", errors="replace")
    return json.dumps(text[:limit] + ("…" if len(text) > limit else ""), ensure_ascii=False)


class TcpCheck(CheckSpec):
    """A TCP port accepts connections (and, optionally, answers a probe)."""

    type: Literal["tcp"]
    host: str = Field(min_length=1, description="Host name or IP address to connect to.")
    port: int = Field(ge=1, le=65535, description="TCP port to connect to.")
    send: str | None = Field(
        default=None,
        description="Text to send once connected, e.g. 'PING\\r\\n'. Sent as UTF-8.",
    )
    expect: str | None = Field(
        default=None,
        description=f"Substring that must appear in the first {READ_LIMIT} bytes read back.",
    )
    max_latency: Duration | None = Field(
        default=None, description="Report degraded when connecting takes longer, e.g. '200ms'."
    )

    async def run(self, ctx: CheckContext) -> list[CheckResult]:
        started_at = ctx.now()
        probe = _Probe(time.perf_counter())
        status, evidence = await self._judge(probe)
        latency = probe.connect_ms if probe.connect_ms is not None else probe.elapsed_ms()
        values: dict[str, float | int | str | bool | None] = {
            "connect_ms": None if probe.connect_ms is None else round(probe.connect_ms, 1),
            "bytes_received": len(probe.received),
        }
        return [
            self.result(status, evidence, started_at=started_at, latency_ms=latency, values=values)
        ]

    async def _judge(self, probe: _Probe) -> tuple[Status, str]:
        target = host_port(self.host, self.port)
        seconds = self.timeout.total_seconds()
        wanted = _quote((self.expect or "").encode())
        try:
            async with asyncio.timeout(seconds):
                await self._probe(probe)
        except TimeoutError:
            if probe.connect_ms is None:
                return "failing", f"TCP connect to {target} timed out after {seconds:g} s"
            return "failing", (
                f"TCP connect to {target} succeeded in {probe.connect_ms:.0f} ms but no reply "
                f"containing {wanted} arrived within {seconds:g} s; got {probe.got()}"
            )
        except socket.gaierror as exc:
            reason = f"cannot resolve {self.host}: {exc.strerror or exc}"
            return "failing", f"TCP connect to {target} failed: {reason}"
        except ConnectionRefusedError:
            return "failing", f"TCP connect to {target} refused after {probe.elapsed_ms():.0f} ms"
        except ConnectionResetError:
            what = "connect to" if probe.connect_ms is None else "connection to"
            return "failing", f"TCP {what} {target} was reset after {probe.elapsed_ms():.0f} ms"
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return "failing", (
                f"TCP connect to {target} failed after {probe.elapsed_ms():.0f} ms: {reason}"
            )

        connect_ms = probe.connect_ms or 0.0
        evidence = f"TCP connect to {target} succeeded in {connect_ms:.0f} ms"
        if probe.outcome == "eof":
            return "failing", (
                f"{evidence} but the server closed the connection without sending {wanted}; "
                f"got {probe.got()}"
            )
        if probe.outcome == "limit":
            return "failing", (
                f"{evidence} but the first {READ_LIMIT} bytes do not contain {wanted}; "
                f"got {probe.got()}"
            )
        if probe.outcome == "found":
            evidence += f"; reply contained {wanted} after {probe.elapsed_ms():.0f} ms"
        if self.max_latency is not None:
            limit_ms = self.max_latency.total_seconds() * 1000
            if connect_ms > limit_ms:
                return "degraded", f"{evidence}; slower than max_latency {limit_ms:.0f} ms"
        return "ok", evidence

    async def _probe(self, probe: _Probe) -> None:
        """Connect, send, read; records progress in `probe` so a timeout can say how far it got."""
        reader, writer = await open_connection(self.host, self.port)
        try:
            probe.connect_ms = probe.elapsed_ms()
            if self.send:
                writer.write(self.send.encode())
                await writer.drain()
            if self.expect is not None:
                probe.outcome = await _read_until(reader, self.expect.encode(), probe.received)
        finally:
            await close_writer(writer)


@dataclass
class _Probe:
    t0: float
    connect_ms: float | None = None
    received: bytearray = field(default_factory=bytearray)
    outcome: Literal["found", "eof", "limit"] | None = None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000

    def got(self) -> str:
        return _quote(bytes(self.received)) if self.received else "nothing"


async def _read_until(
    reader: asyncio.StreamReader, needle: bytes, into: bytearray
) -> Literal["found", "eof", "limit"]:
    while len(into) < READ_LIMIT:
        chunk = await reader.read(READ_LIMIT - len(into))
        if not chunk:
            return "eof"
        into += chunk
        if needle in into:
            return "found"
    return "limit"


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close politely, but never wait on a peer that will not finish the goodbye."""
    writer.close()
    try:
        async with asyncio.timeout(1):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        writer.transport.abort()
