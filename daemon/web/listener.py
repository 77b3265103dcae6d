"""The listener: uvicorn's HTTP/1.1 server in the daemon's own event loop, hardened at the door.

uvicorn parses HTTP and runs the ASGI app; what it leaves open for a daemon that must keep
answering its probes is the time before a request exists. A connection that sends nothing, or
half a request head, holds a slot for as long as it likes. So each connection's protocol
(uvicorn's h11 one, subclassed) keeps the request head to itself until it is complete:

- the head must arrive within `read_timeout` of the connection (or of its first byte on a
  kept-alive connection), else 408;
- it may be at most `max_request_bytes`, else 431; its request line must be
  `METHOD target HTTP/1.x` in upper-case letters, else 400 — before h11 or the app see it;
- connections without a complete head are "idle": one client address holds at most
  `per_client` of them and the listener `max_connections` in all; the oldest idle one gives
  way to a newcomer (a probe sends its request at once, so it is never the oldest idle one).

The daemon owns the signals (SIGTERM drains, SIGHUP reloads): uvicorn's own handling is
switched off, and the socket is bound here so that a taken address is an `OSError` the daemon
turns into exit 2, not uvicorn's `sys.exit(1)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp

MAX_REQUEST_BYTES = 8192
READ_TIMEOUT_S = 2.0
"""A whole request head must arrive within this; probes send theirs at once."""
MAX_CONNECTIONS = 64
PER_CLIENT = 16
"""Idle (no request yet) connections one address may hold; its oldest gives way."""
KEEP_ALIVE_S = 5.0
"""How long a kept-alive connection may wait for its next request (uvicorn's timer)."""
LINGER_S = 1.0
_REQUEST_LINE = re.compile(rb"^[A-Z]{1,16} \S{1,2048} HTTP/1\.[01]$")
_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
}


@dataclass(eq=False)
class Slot:
    """One connection as the door sees it."""

    client: str
    transport: asyncio.Transport
    idle: bool = True
    """No complete request head yet."""


@dataclass
class Door:
    """The open connections, oldest first; idle ones give way to newcomers."""

    read_timeout: float = READ_TIMEOUT_S
    max_request_bytes: int = MAX_REQUEST_BYTES
    limit: int = MAX_CONNECTIONS
    per_client: int = PER_CLIENT
    open: list[Slot] = field(default_factory=list)

    def admit(self, transport: asyncio.Transport) -> Slot | None:
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else "local"
        mine = [s for s in self.open if s.idle and s.client == client]
        if len(mine) >= self.per_client:
            self._evict(mine[0])
        if len(self.open) >= self.limit:
            idle = [s for s in self.open if s.idle]
            if not idle:
                return None
            self._evict(idle[0])
        slot = Slot(client, transport)
        self.open.append(slot)
        return slot

    def leave(self, slot: Slot | None) -> None:
        if slot is not None and slot in self.open:
            self.open.remove(slot)

    def _evict(self, slot: Slot) -> None:
        self.open.remove(slot)
        slot.transport.abort()


def error_bytes(status: int, message: str) -> bytes:
    """A complete `Connection: close` JSON error response, written by the door itself."""
    body = (json.dumps({"error": message}, sort_keys=True) + "\n").encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def guarded_protocol(door: Door) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol class with `door` in front of it (see the module docstring)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Guarded(H11Protocol):
        _slot: Slot | None = None
        _head = b""
        _timer: asyncio.TimerHandle | None = None
        _refused = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._slot = door.admit(transport)
            if self._slot is None:  # full of connections already answering: refuse
                self._refused = True
                transport.abort()
                return
            self._arm()

        def _arm(self) -> None:
            self._timer = self.loop.call_later(door.read_timeout, self._late)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _late(self) -> None:
            self._timer = None
            if self._slot is not None and self._slot.idle:
                self._refuse(408, "request not received in time")

        def _refuse(self, status: int, message: str) -> None:
            """Answer and close without reading further. Closing with unread input makes the
            kernel send RST, which can destroy the answer before the client reads it:
            half-close, ignore what still arrives, close after LINGER_S."""
            if self.transport.is_closing():
                self._refused = True
                door.leave(self._slot)
                return
            self.transport.write(error_bytes(status, message))
            self._linger()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if self._slot is None or not self._slot.idle:
                super().data_received(data)
                return
            if not self._head and self._timer is None:
                self._arm()  # the first byte of a kept-alive connection's next request
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if (end < 0 and len(self._head) > door.max_request_bytes) or (
                end > door.max_request_bytes
            ):
                self._refuse(431, "request too large")
                return
            if end < 0:
                return
            if not _REQUEST_LINE.match(self._head.split(b"\r\n", 1)[0]):
                self._refuse(400, "malformed request line")
                return
            self._disarm()
            self._slot.idle = False
            head, self._head = self._head, b""
            super().data_received(head)

        def send_400_response(self, msg: str) -> None:
            self._refuse(400, "malformed request")

        def on_response_complete(self) -> None:
            import h11

            super().on_response_complete()
            if self._refused or self.transport.is_closing():
                return
            if self.conn.their_state is h11.SEND_BODY:
                # Answered without reading the whole body (a 413): end the connection rather
                # than read the rest, and let the answer arrive before the close.
                self._linger()
                return
            if self._slot is not None:
                self._slot.idle = True  # kept alive: waiting for its next request

        def _linger(self) -> None:
            self._refused = True
            self._disarm()
            door.leave(self._slot)
            self._unset_keepalive_if_required()
            if self.transport.can_write_eof():
                self.transport.write_eof()
                self.loop.call_later(LINGER_S, self.transport.close)
            else:
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            door.leave(self._slot)
            super().connection_lost(exc)

    return Guarded


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; OSError (EADDRINUSE, …) for the caller to explain."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Listener:
    """A running uvicorn server; `close()` then `await wait_closed()` (like asyncio.Server)."""

    def __init__(self, server: Any, task: asyncio.Task[None], sock: socket.socket) -> None:
        self.server = server
        self.task = task
        self.sockets = [sock]

    @property
    def port(self) -> int:
        port: int = self.sockets[0].getsockname()[1]
        return port

    def close(self) -> None:
        self.server.should_exit = True

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.sockets[0].close()


async def serve_app(app: ASGIApp, host: str, port: int, door: Door | None = None) -> Listener:
    """Serve `app` on host:port in this event loop; OSError when the address cannot be had."""
    import uvicorn

    door = door or Door()
    sock = bind(host, port)
    config = uvicorn.Config(
        app,
        http=guarded_protocol(door),
        lifespan="on",  # the app's own: it stops the MCP session manager
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_keep_alive=int(KEEP_ALIVE_S),
        timeout_graceful_shutdown=2,
        h11_max_incomplete_event_size=max(door.max_request_bytes * 2, 16 * 1024),
        ws="none",
    )
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    server = _server_class()(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # startup failed: raise its error here
            raise OSError(f"the listener on {host}:{port} stopped while starting")
        await asyncio.sleep(0.01)
    return Listener(server, task, sock)


def _server_class() -> type[Any]:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn without its signal handlers: the daemon's SIGTERM drains checks first."""

        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield

    return Server
