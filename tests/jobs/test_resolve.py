"""The checks' own resolver: IP addresses are never looked up, lookups are bounded by the
check's timeout, and a pool full of lookups that never return leaves everything else alone."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from jobs._resolve import RESOLVER_THREADS, getaddrinfo, open_connection


@pytest.fixture
def black_hole(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """getaddrinfo never answers a name ending in .blackhole.test (released at teardown)."""
    real = socket.getaddrinfo
    asked: list[str] = []
    release = threading.Event()

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".blackhole.test"):
            asked.append(host)
            release.wait(60)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    yield asked
    release.set()


async def test_an_ip_address_is_answered_without_a_lookup_even_when_every_thread_is_stuck(
    black_hole: list[str],
) -> None:
    stuck = [
        asyncio.ensure_future(getaddrinfo(f"db-{n}.blackhole.test", 5432))
        for n in range(RESOLVER_THREADS + 4)
    ]
    await asyncio.sleep(0.2)
    async with asyncio.timeout(1):
        infos = await getaddrinfo("127.0.0.1", 5432)
    assert infos[0][4] == ("127.0.0.1", 5432)
    assert len(black_hole) == RESOLVER_THREADS  # the others wait for a thread
    for task in stuck:
        task.cancel()


async def test_a_lookup_is_bounded_by_the_callers_timeout(black_hole: list[str]) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await getaddrinfo("api.blackhole.test", 443)
    # the loop's default executor is untouched: other blocking work still runs at once
    async with asyncio.timeout(1):
        assert await asyncio.to_thread(lambda: "free") == "free"


async def test_a_refused_connection_fails_as_asyncio_does() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        await open_connection("127.0.0.1", port)
