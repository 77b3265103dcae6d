"""The /healthz endpoint over loopback: real HTTP clients, and raw sockets for bad ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from daemon.service.health import PER_CLIENT, HealthReport, serve_health
from daemon.util.net import parse_listen

LAST_CYCLE = datetime(2026, 5, 9, 7, 35, tzinfo=UTC)


class Probe:
    def __init__(self) -> None:
        self.report = HealthReport(True, {"checks": 12, "last_cycle": LAST_CYCLE})
        self.calls = 0

    def __call__(self) -> HealthReport:
        self.calls += 1
        return self.report


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
async def base_url(probe: Probe) -> AsyncIterator[str]:
    server = await serve_health("127.0.0.1", 0, probe, read_timeout=0.3, max_request_bytes=1024)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def _raw(base_url: str, data: bytes, *, close_write: bool = False) -> bytes:
    host, port = parse_listen(base_url.removeprefix("http://"))
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    await writer.drain()
    if close_write:
        writer.write_eof()
    response = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    await writer.wait_closed()
    return response


async def test_healthy_probe_answers_200_with_json(base_url: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base_url}/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["connection"] == "close"
    assert response.http_version == "HTTP/1.1"
    assert response.json() == {
        "status": "ok",
        "checks": 12,
        "last_cycle": "2026-05-09T07:35:00+00:00",
    }


async def test_unhealthy_probe_answers_503(base_url: str, probe: Probe) -> None:
    probe.report = HealthReport(False, {"reason": "scheduler stopped"})
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base_url}/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "failing", "reason": "scheduler stopped"}


async def test_probe_that_raises_answers_503() -> None:
    def broken() -> HealthReport:
        raise RuntimeError("boom")

    server = await serve_health("127.0.0.1", 0, broken)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        server.close()
        await server.wait_closed()
    assert response.status_code == 503
    assert response.json()["status"] == "error"


async def test_query_string_is_ignored(base_url: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base_url}/healthz?verbose=1")
    assert response.status_code == 200


async def test_head_has_headers_but_no_body(base_url: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.head(f"{base_url}/healthz")
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0


@pytest.mark.parametrize("path", ["/", "/health", "/healthz/x", "/metrics"])
async def test_other_paths_answer_404(base_url: str, probe: Probe, path: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base_url}{path}")
    assert response.status_code == 404
    assert probe.calls == 0


async def test_post_answers_405(base_url: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{base_url}/healthz", content=b"x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "request_head",
    [
        b"NONSENSE\r\n\r\n",
        b"GET /healthz\r\n\r\n",
        b"GET /healthz HTTP/2.0\r\n\r\n",
        b"get /healthz HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    ],
)
async def test_malformed_request_answers_400(
    base_url: str, probe: Probe, request_head: bytes
) -> None:
    response = await _raw(base_url, request_head)
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close\r\n" in response
    assert probe.calls == 0


async def test_oversized_request_answers_431(base_url: str, probe: Probe) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base_url}/healthz", headers={"X-Big": "a" * 20_000})
    assert response.status_code == 431
    assert probe.calls == 0


async def test_slow_client_is_cut_off(base_url: str, probe: Probe) -> None:
    host, port = parse_listen(base_url.removeprefix("http://"))
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes the head
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    await writer.wait_closed()
    assert response.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert probe.calls == 0


async def test_seventy_idle_connections_do_not_lock_out_the_probe(probe: Probe) -> None:
    """Idle connections (nothing sent, or half a request) used to fill the listener until
    each timed out, and every probe meanwhile was refused. Now the oldest idle one makes
    room, and one address never holds more than `per_client` of them."""
    server = await serve_health("127.0.0.1", 0, probe, read_timeout=30)
    port = server.sockets[0].getsockname()[1]
    hoard: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for n in range(70):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if n % 2:
                writer.write(b"GET /healthz HTTP/1.1\r\n")  # half a request head
            hoard.append((reader, writer))
        async with httpx.AsyncClient() as client:
            for _ in range(3):
                response = await client.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                assert response.status_code == 200
        # The hoarder kept at most PER_CLIENT idle connections; the rest were closed on it.
        closed = 0
        for reader, _ in hoard:
            try:
                if await asyncio.wait_for(reader.read(), timeout=0.05) == b"":
                    closed += 1
            except TimeoutError:
                pass  # still open
            except ConnectionError:
                closed += 1
        assert closed >= 70 - PER_CLIENT
    finally:
        for _, writer in hoard:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_client_that_hangs_up_early_does_not_break_the_server(base_url: str) -> None:
    assert await _raw(base_url, b"GET /heal", close_write=True) == b""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{base_url}/healthz")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("value", "expected"),
    [("127.0.0.1:8787", ("127.0.0.1", 8787)), ("[::1]:9000", ("::1", 9000))],
)
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


async def test_an_unread_body_gets_one_answer_and_the_connection_ends(probe: Probe) -> None:
    """A ping whose body is too big is refused (413) without reading it; what the client goes
    on sending is not taken for a new request (no second answer), and the connection ends."""

    async def pings(token: str, suffix: str, body: bytes, client: str) -> bool:
        return True

    server = await serve_health("127.0.0.1", 0, probe, pings=pings)
    port = server.sockets[0].getsockname()[1]
    size = 8 * 1024 * 1024
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def upload() -> None:
        head = f"POST /ping/tok HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n"
        writer.write(head.encode())
        chunk = b"x" * 65536
        try:
            for _ in range(size // len(chunk)):
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass  # the server stopped listening to the rest: expected

    sending = asyncio.create_task(upload())
    received = b""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), timeout=5)
            if not chunk:
                break
            received += chunk
    except ConnectionError:
        pass
    finally:
        sending.cancel()
        writer.close()
        server.close()
        await server.wait_closed()
    assert received.startswith(b"HTTP/1.1 413 ")
    assert received.count(b"HTTP/1.1 ") == 1


def test_a_sharded_node_without_the_lease_is_a_member_not_a_standby(tmp_path: Path) -> None:
    """A sharded node runs its share of the checks while another holds the lease: /healthz and
    /metrics call it a member; "standby" is for a node that runs nothing until it takes over."""
    from types import SimpleNamespace

    from daemon.config.settings import Settings
    from daemon.service.daemon import Service

    service = Service(tmp_path / "watchkeeper.toml", Settings())
    assert service._role() is None  # one process alone: no role to tell
    service.leader = SimpleNamespace(node="web-1", active=False)
    assert service._role() == ("web-1", "standby")
    service.shard = SimpleNamespace(node="web-1")
    assert service._role() == ("web-1", "member")
    service.leader.active = True
    assert service._role() == ("web-1", "active")
    assert service.health().detail["role"] == "active"
