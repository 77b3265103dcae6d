"""The daemon's own health endpoint: `GET /healthz` for load balancers, probes and self-checks.

A deliberately tiny HTTP/1.1 responder on asyncio streams; a slow, huge or garbled request
must never hold it, crash it or reach the probe. Connections that have not sent a request yet
are the cheap ones to hoard, so they are bounded: a request head must arrive within
`read_timeout`, one client holds at most `per_client` of them, and when the listener is full
the oldest idle connection makes room for the newcomer (a probe sends its request at once, so
it is never the oldest idle one).
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 8192
READ_TIMEOUT_S = 2.0
"""A whole request head must arrive within this; probes send theirs at once."""
MAX_CONNECTIONS = 64
PER_CLIENT = 16
"""Idle (no request yet) connections one address may hold; its oldest gives way."""
_LINGER_S = 1.0
_LINGER_BYTES = 64 * 1024

_REQUEST_LINE = re.compile(r"^([A-Z]{1,16}) (\S{1,2048}) HTTP/1\.[01]$")
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class HealthReport:
    """What the probe says: healthy or not, plus details for the JSON body."""

    healthy: bool
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Response:
    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


async def serve_health(
    host: str,
    port: int,
    probe: Callable[[], HealthReport],
    *,
    read_timeout: float = READ_TIMEOUT_S,
    max_request_bytes: int = MAX_REQUEST_BYTES,
    max_connections: int = MAX_CONNECTIONS,
    per_client: int = PER_CLIENT,
    pings: Pings | None = None,
) -> asyncio.Server:
    """Start serving; the caller owns the returned server (`close()` + `await wait_closed()`)."""
    pool = _Connections(max_connections, per_client)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = pool.admit(writer)
        if conn is None:  # full of connections already answering: refuse, rather than queue
            writer.close()
            return
        try:
            try:
                await _handle(reader, writer, probe, read_timeout, conn, pings)
            except Exception:  # a bug here must not kill the server or spam asyncio's handler
                log.exception("health endpoint: unexpected error")
            writer.close()
            await writer.wait_closed()
        except OSError:
            pass  # the client reset the connection while we closed it
        except asyncio.CancelledError:
            # Shutdown with a client mid-request. Ending quietly is deliberate: nothing awaits
            # this task, and Python 3.11 would log a cancelled handler as an unhandled error.
            writer.transport.abort()
        finally:
            pool.leave(conn)

    return await asyncio.start_server(handle, host, port, limit=max_request_bytes)


def listen_problem(listen: str, exc: OSError) -> str:
    """Why the endpoint cannot listen on `listen`, for `daemon.health_listen: …`. The daemon
    refuses to start rather than run without it: if another process holds the address, every
    probe and self-check of /healthz would be watching that process instead."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{listen} is already in use by another process, whose /healthz would answer for "
            "this daemon: stop that process, or choose another address (or unset it)"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{listen} is not an address of this machine: choose one it has, e.g. 127.0.0.1"
    if exc.errno == errno.EACCES:
        return f"cannot listen on {listen}: permission denied (ports below 1024 need privileges)"
    return f"cannot listen on {listen}: {exc.strerror or exc}"


@dataclass(eq=False)
class _Connection:
    client: str
    writer: asyncio.StreamWriter
    idle: bool = True
    """No complete request yet."""


class _Connections:
    """The open connections, oldest first; idle ones give way to newcomers."""

    def __init__(self, limit: int, per_client: int) -> None:
        self.limit = limit
        self.per_client = per_client
        self.open: list[_Connection] = []

    def admit(self, writer: asyncio.StreamWriter) -> _Connection | None:
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "local"
        mine = [c for c in self.open if c.idle and c.client == client]
        if len(mine) >= self.per_client:
            self._evict(mine[0])
        if len(self.open) >= self.limit:
            idle = [c for c in self.open if c.idle]
            if not idle:
                return None
            self._evict(idle[0])
        conn = _Connection(client, writer)
        self.open.append(conn)
        return conn

    def leave(self, conn: _Connection) -> None:
        if conn in self.open:
            self.open.remove(conn)

    def _evict(self, conn: _Connection) -> None:
        self.open.remove(conn)
        conn.writer.transport.abort()  # its handler sees the connection reset and ends


async def _handle(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    probe: Callable[[], HealthReport],
    read_timeout: float,
    conn: _Connection,
    pings: Pings | None = None,
) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), read_timeout)
    except TimeoutError:
        await _send(writer, reader, _error(408, "request not received in time"), linger=True)
        return
    except asyncio.LimitOverrunError:
        await _send(writer, reader, _error(431, "request too large"), linger=True)
        return
    except (asyncio.IncompleteReadError, ConnectionError):
        return  # the client went away (or was evicted) before finishing its request
    conn.idle = False
    if pings is not None and (ping := _ping_request(head)) is not None:
        response = await _ping(reader, writer, head, ping, pings, read_timeout)
        await _send(writer, reader, response, linger=response.status == 413)
        return
    response, head_only = _route(head, probe)
    await _send(writer, reader, response, linger=False, head_only=head_only)


Pings = Callable[[str, str, bytes, str], Awaitable[bool]]
"""(token, suffix, body, client address) → whether the token named a heartbeat check."""


def _ping_request(head: bytes) -> tuple[str, str, str] | None:
    """(method, token, suffix) of a well-formed `GET|POST /ping/…` request, else None."""
    from daemon.service.pings import parse_ping_path

    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    match = _REQUEST_LINE.match(line)
    if match is None or match.group(1) not in ("GET", "POST"):
        return None
    parsed = parse_ping_path(match.group(2).split("?", 1)[0])
    return None if parsed is None else (match.group(1), *parsed)


async def _ping(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    head: bytes,
    request: tuple[str, str, str],
    pings: Pings,
    read_timeout: float,
) -> _Response:
    """Read the body (a job's message, at most MAX_BODY_BYTES), hand it on. A known and an
    unknown token differ only in the answer's status — like any unknown path."""
    from daemon.service.pings import MAX_BODY_BYTES

    method, token, suffix = request
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return _error(400, "bad Content-Length")
    if length < 0:
        return _error(400, "bad Content-Length")
    if length > MAX_BODY_BYTES:
        return _error(413, f"a ping's body is at most {MAX_BODY_BYTES} bytes")
    body = b""
    if method == "POST" and length:
        try:
            body = await asyncio.wait_for(reader.readexactly(length), read_timeout)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return _error(408, "request body not received in time")
    peer = writer.get_extra_info("peername")
    client = str(peer[0]) if isinstance(peer, tuple) and peer else "local"
    if await pings(token, suffix, body, client):
        return _Response(200, {"status": "ok"})
    return _error(404, "not found; try GET /healthz")


def _route(head: bytes, probe: Callable[[], HealthReport]) -> tuple[_Response, bool]:
    """Pick the response for a complete request head; True means HEAD (no body)."""
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    match = _REQUEST_LINE.match(line)
    if match is None:
        return _error(400, "malformed request line"), False
    method, target = match.groups()
    path = target.split("?", 1)[0]
    if path != "/healthz":
        return _error(404, "not found; try GET /healthz"), method == "HEAD"
    if method not in ("GET", "HEAD"):
        return (
            _Response(405, {"error": "use GET or HEAD"}, (("Allow", "GET, HEAD"),)),
            False,
        )
    return _probe(probe), method == "HEAD"


def _probe(probe: Callable[[], HealthReport]) -> _Response:
    try:
        report = probe()
    except Exception as exc:
        log.exception("health probe raised")
        return _Response(503, {"status": "error", "error": f"probe raised {type(exc).__name__}"})
    body = {**report.detail, "status": "ok" if report.healthy else "failing"}
    return _Response(200 if report.healthy else 503, body)


def _error(status: int, message: str) -> _Response:
    return _Response(status, {"error": message})


async def _send(
    writer: asyncio.StreamWriter,
    reader: asyncio.StreamReader,
    response: _Response,
    *,
    linger: bool,
    head_only: bool = False,
) -> None:
    body = (json.dumps(response.body, default=_json_default, sort_keys=True) + "\n").encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("Connection", "close"),
        *response.headers,
    ]
    status_line = f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}"
    lines = [status_line, *(f"{k}: {v}" for k, v in headers), "", ""]
    writer.write("\r\n".join(lines).encode("latin-1") + (b"" if head_only else body))
    try:
        await asyncio.wait_for(writer.drain(), READ_TIMEOUT_S)
        if linger and writer.can_write_eof():
            # Closing with unread input makes the kernel send RST, which can destroy the
            # response before the client reads it: half-close, then discard what is left.
            writer.write_eof()
            await asyncio.wait_for(_discard(reader), _LINGER_S)
    except (TimeoutError, ConnectionError):
        pass


async def _discard(reader: asyncio.StreamReader) -> None:
    seen = 0
    while seen < _LINGER_BYTES:
        chunk = await reader.read(4096)
        if not chunk:
            return
        seen += len(chunk)


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
