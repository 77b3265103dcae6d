"""A provider's reply is read up to a few MiB and no further: an endpoint that answers with an
endless (or endlessly decompressing) body costs a bounded read and one `bad_response`, not the
daemon's memory."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from daemon.llm.base import MAX_REPLY_BYTES, ProviderOptions
from daemon.llm.ollama import OllamaProvider
from daemon.llm.openai import OpenAIProvider
from daemon.llm.types import ModelRequest, ProviderResponseError

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Serve], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Serve) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()


async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """200, chunked, a JSON-looking body that never ends."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    try:
        writer.write(b"1\r\n{\r\n")
        while True:
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
    except (ConnectionError, OSError):
        pass


def _gzip_of_spaces(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip container
    block = b" " * (1024 * 1024)
    parts = [packer.compress(b"{")]
    parts += [packer.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, packer.compress(b"}"), packer.flush()])


BOMB = _gzip_of_spaces(64 * 1024 * 1024)
"""About 64 KiB on the wire, 64 MiB once inflated."""


async def bomb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A small gzip body that inflates to 64 MiB."""
    await reader.readuntil(b"\r\n\r\n")
    body = BOMB
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    writer.close()


@pytest.mark.parametrize("handler", [endless, bomb], ids=["endless", "gzip-bomb"])
async def test_an_oversized_reply_is_a_bad_response_after_a_bounded_read(
    serve: Callable[[Serve], Awaitable[str]], handler: Serve
) -> None:
    base = await serve(handler)
    async with httpx.AsyncClient() as client:
        options = ProviderOptions(name="lm", base_url=base + "/v1", timeout_s=30, max_retries=0)
        provider = OpenAIProvider(options, None, client)
        started = time.monotonic()
        with pytest.raises(ProviderResponseError) as caught:
            await provider.complete("m", ModelRequest.ask("hello"))
    assert caught.value.outcome == "bad_response"
    assert f"more than {MAX_REPLY_BYTES // (1024 * 1024)} MiB" in str(caught.value)
    assert time.monotonic() - started < 10  # it stopped reading; it did not wait for the end


async def test_an_oversized_model_list_makes_ollama_unusable_not_the_daemon(
    serve: Callable[[Serve], Awaitable[str]],
) -> None:
    base = await serve(endless)
    async with httpx.AsyncClient() as client:
        options = ProviderOptions(name="ollama", base_url=base, timeout_s=30, max_retries=0)
        usable, why = await OllamaProvider(options, None, client).probe("gemma4:27b")
    assert usable is False and "more than any model list holds" in why
