"""Loopback peers for the check types: a scripted HTTP(S) server, TLS certificates, ports."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import trustme

from jobs.base import CheckContext, CheckSpec

JSON_DOC = {
    "status": "ok",
    "ready": True,
    "checks": {"db": {"status": "up", "latency": 3}},
    "items": [{"name": "alpha"}, {"name": "beta"}],
}
BIG_BODY = b"x" * 100_000 + b"END"


@pytest.fixture
async def ctx() -> AsyncIterator[CheckContext]:
    async with httpx.AsyncClient() as client:
        yield CheckContext(http=client)


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
            _respond(writer, 200, b"all good\n")
        elif path.startswith("/status/"):
            code = int(path.removeprefix("/status/"))
            _respond(writer, code, b"" if code == 204 else b"database unavailable\n")
        elif path == "/slow":
            await asyncio.sleep(0.1)  # the peer under test is slow on purpose
            _respond(writer, 200, b"finally\n")
        elif path == "/hang":
            await self.release.wait()
        elif path == "/garbage":
            writer.write(b"this is not http at all\r\n\r\n")
        elif path == "/reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        elif path == "/redirect":
            _respond(writer, 302, b"", {"Location": "/ok"})
        elif path.startswith("/redirect-to?"):
            _respond(writer, 302, b"", {"Location": path.partition("?")[2]})
        elif path == "/loop":
            _respond(writer, 302, b"", {"Location": "/loop"})
        elif path == "/json":
            _respond(
                writer, 200, json.dumps(JSON_DOC).encode(), {"Content-Type": "application/json"}
            )
        elif path == "/html":
            _respond(writer, 200, b"<html>\n  <body>maintenance</body>\n</html>\n")
        elif path == "/big":
            _respond(writer, 200, BIG_BODY)
        elif path == "/echo":
            _respond(writer, 200, method.encode() + b" " + body)
        else:
            _respond(writer, 404, b"no such path\n")
        await writer.drain()


def _respond(
    writer: asyncio.StreamWriter, status: int, body: bytes, headers: dict[str, str] | None = None
) -> None:
    lines = [f"HTTP/1.1 {status} Status {status}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if status != 204:
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)


StartServer = Callable[..., Awaitable[int]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Start an asyncio server on 127.0.0.1 (optionally TLS); returns its port. Stopped after."""
    servers: list[asyncio.Server] = []
    peers: list[HttpPeer] = []

    async def start(
        handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
        ssl_context: ssl.SSLContext | None = None,
    ) -> int:
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_context)
        servers.append(server)
        owner = getattr(handler, "__self__", None)
        if isinstance(owner, HttpPeer):
            peers.append(owner)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield start
    for peer in peers:
        peer.release.set()
        await asyncio.gather(*peer.tasks, return_exceptions=True)
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def http_peer(start_server: StartServer) -> HttpPeer:
    peer = HttpPeer()
    peer.port = await start_server(peer.handle)
    return peer


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def issue(
    ca: trustme.CA, *names: str, days: float = 90, common_name: str | None = None
) -> trustme.LeafCert:
    """A leaf for `names` expiring `days` from now (negative: already expired)."""
    now = datetime.now(UTC)
    not_after = now + timedelta(days=days, hours=1)
    not_before = min(now, not_after) - timedelta(days=30)
    return ca.issue_cert(
        *names,
        common_name=common_name or names[0],
        not_before=not_before,
        not_after=not_after,
    )


def server_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that was just bound and released: connecting to it is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    yield port


def assert_options_described(cls: type[CheckSpec]) -> None:
    """Every option a check type adds has a description (it feeds editor completion)."""
    properties = cls.model_json_schema()["properties"]
    own = set(cls.model_fields) - set(CheckSpec.model_fields)
    assert own
    undescribed = sorted(name for name in own if not properties[name].get("description"))
    assert undescribed == []
