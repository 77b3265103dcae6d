"""What the checks under test probe: an asyncio HTTP/1.1 server whose paths each behave one
way (`HttpPeer`), a helper serving any asyncio stream handler on loopback (optionally TLS), and
a TCP port that accepts or refuses connections on demand (`TcpTarget`)."""

from __future__ import annotations

import asyncio
import json
import socket
import socketserver
import ssl
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from tests.peers.loopback import serve_in_thread

JSON_DOC = {
    "status": "ok",
    "ready": True,
    "checks": {"db": {"status": "up", "latency": 3}},
    "items": [{"name": "alpha"}, {"name": "beta"}],
}
BIG_BODY = b"x" * 100_000 + b"END"


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpPeer:
    """A small HTTP/1.1 server whose paths each behave one way (see `_route`)."""

    scheme: str = "http"
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at teardown: lets `/hang` requests finish (cancelling them makes asyncio log)."""

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = dict(line.split(": ", 1) for line in lines[1:] if line)
            headers = {k.lower(): v for k, v in headers.items()}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Request(method, path, headers, body))
            await self._route(method, path, body, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            self.tasks.discard(task)

    async def _route(
        self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter
    ) -> None:
        if path == "/ok":
            respond(writer, 200, b"all good\n")
        elif path.startswith("/status/"):
            code = int(path.removeprefix("/status/"))
            respond(writer, code, b"" if code == 204 else b"database unavailable\n")
        elif path == "/slow":
            await asyncio.sleep(0.1)  # the peer under test is slow on purpose
            respond(writer, 200, b"finally\n")
        elif path == "/hang":
            await self.release.wait()
        elif path == "/garbage":
            writer.write(b"this is not http at all\r\n\r\n")
        elif path == "/reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        elif path == "/redirect":
            respond(writer, 302, b"", {"Location": "/ok"})
        elif path.startswith("/redirect-to?"):
            respond(writer, 302, b"", {"Location": path.partition("?")[2]})
        elif path == "/loop":
            respond(writer, 302, b"", {"Location": "/loop"})
        elif path == "/json":
            respond(
                writer, 200, json.dumps(JSON_DOC).encode(), {"Content-Type": "application/json"}
            )
        elif path == "/html":
            respond(writer, 200, b"<html>\n  <body>maintenance</body>\n</html>\n")
        elif path == "/big":
            respond(writer, 200, BIG_BODY)
        elif path == "/echo":
            respond(writer, 200, method.encode() + b" " + body)
        else:
            respond(writer, 404, b"no such path\n")
        await writer.drain()


def respond(
    writer: asyncio.StreamWriter, status: int, body: bytes, headers: dict[str, str] | None = None
) -> None:
    """Write one HTTP/1.1 response (the connection closes after it)."""
    lines = [f"HTTP/1.1 {status} Status {status}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if status != 204:
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


StreamHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
StartServer = Callable[..., Awaitable[int]]
"""`await start(handler, ssl_context=None) -> port`: serve an asyncio stream handler."""


@asynccontextmanager
async def asyncio_servers() -> AsyncIterator[StartServer]:
    """Start asyncio servers on 127.0.0.1 (optionally TLS) in the running loop; all are
    closed at exit, after the `HttpPeer`s among the handlers let their held requests finish."""
    servers: list[asyncio.Server] = []
    peers: list[HttpPeer] = []

    async def start(handler: StreamHandler, ssl_context: ssl.SSLContext | None = None) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_context)
        servers.append(server)
        owner = getattr(handler, "__self__", None)
        if isinstance(owner, HttpPeer):
            peers.append(owner)
        port: int = server.sockets[0].getsockname()[1]
        return port

    try:
        yield start
    finally:
        for peer in peers:
            peer.release.set()
            await asyncio.gather(*peer.tasks, return_exceptions=True)
        for server in servers:
            server.close()
            await server.wait_closed()


class _Accept(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        pass  # accepted; closed at once


class _TcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class TcpTarget:
    """A loopback TCP port that accepts connections while healthy and refuses them while
    failing. While failing the port stays bound (not listening), so nothing else takes it."""

    def __init__(self, healthy: bool = False) -> None:
        self._idle: socket.socket | None = _bound(0)
        self.port: int = self._idle.getsockname()[1]
        self._server: _TcpServer | None = None
        self._stop: Callable[[], None] = lambda: None
        if healthy:
            self.set_healthy(True)

    @property
    def healthy(self) -> bool:
        return self._server is not None

    def set_healthy(self, healthy: bool) -> None:
        if healthy and self._server is None:
            if self._idle is not None:
                self._idle.close()
                self._idle = None
            deadline = time.monotonic() + 5
            while True:
                try:
                    self._server = _TcpServer(("127.0.0.1", self.port), _Accept)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            self._stop = serve_in_thread(self._server)
        elif not healthy and self._server is not None:
            self._stop()
            self._server = None
            self._idle = _bound(self.port)

    def close(self) -> None:
        self.set_healthy(False)
        if self._idle is not None:
            self._idle.close()
            self._idle = None


def _bound(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock
