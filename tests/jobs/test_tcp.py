from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from daemon.models import CheckResult
from jobs.base import CheckContext
from jobs.tcp import READ_LIMIT, TcpCheck
from tests.jobs.conftest import assert_options_described
from tests.peers.targets import StartServer


async def run_tcp(ctx: CheckContext, port: int, **options: Any) -> CheckResult:
    spec = TcpCheck.model_validate(
        {"name": "db", "type": "tcp", "host": "127.0.0.1", "port": port, **options}
    )
    results = await spec.run(ctx)
    assert len(results) == 1
    return results[0]


async def pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers each line `PING` with `+PONG`; says nothing otherwise."""
    try:
        while line := await reader.readline():
            if line.strip() == b"PING":
                writer.write(b"+PONG\r\n")
                await writer.drain()
    finally:
        writer.close()


async def banner_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
    await writer.drain()
    writer.close()


async def test_accepting_port_is_ok_with_latency(
    start_server: StartServer, ctx: CheckContext
) -> None:
    port = await start_server(pong)
    result = await run_tcp(ctx, port)
    assert result.status == "ok"
    assert result.evidence.startswith(f"TCP connect to 127.0.0.1:{port} succeeded in ")
    assert result.evidence.endswith(" ms")
    assert isinstance(result.values["connect_ms"], float)


async def test_refused_port_is_failing(closed_port: int, ctx: CheckContext) -> None:
    result = await run_tcp(ctx, closed_port)
    assert result.status == "failing"
    assert result.evidence.startswith(f"TCP connect to 127.0.0.1:{closed_port} refused after ")
    assert result.evidence.endswith(" ms")
    assert result.values["connect_ms"] is None


async def test_expected_reply_is_ok(start_server: StartServer, ctx: CheckContext) -> None:
    port = await start_server(pong)
    result = await run_tcp(ctx, port, send="PING\r\n", expect="+PONG")
    assert result.status == "ok"
    assert '; reply contained "+PONG" after ' in result.evidence


async def test_wrong_banner_then_close_is_failing_and_quotes_it(
    start_server: StartServer, ctx: CheckContext
) -> None:
    port = await start_server(banner_then_close)
    result = await run_tcp(ctx, port, expect="220 ")
    assert result.status == "failing"
    assert result.evidence.endswith(
        ' but the server closed the connection without sending "220 "; '
        'got "SSH-2.0-OpenSSH_9.6\\r\\n"'
    )


async def test_no_reply_within_timeout_is_failing(
    start_server: StartServer, ctx: CheckContext
) -> None:
    port = await start_server(pong)
    result = await run_tcp(ctx, port, send="HELLO\r\n", expect="+PONG", timeout="200ms")
    assert result.status == "failing"
    assert f"TCP connect to 127.0.0.1:{port} succeeded in " in result.evidence
    assert result.evidence.endswith(
        ' ms but no reply containing "+PONG" arrived within 0.2 s; got nothing'
    )


async def test_reply_is_read_only_up_to_the_limit(
    start_server: StartServer, ctx: CheckContext
) -> None:
    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"y" * (READ_LIMIT * 2))
        await writer.drain()
        await reader.read()
        writer.close()

    port = await start_server(chatty)
    result = await run_tcp(ctx, port, expect="OK")
    assert result.status == "failing"
    assert f' but the first {READ_LIMIT} bytes do not contain "OK"; got "yyyy' in result.evidence
    assert result.values["bytes_received"] == READ_LIMIT


async def test_reset_while_waiting_for_reply_is_failing(
    start_server: StartServer, ctx: CheckContext
) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    port = await start_server(reset)
    result = await run_tcp(ctx, port, send="PING\r\n", expect="+PONG")
    assert result.status == "failing"
    assert result.evidence.startswith(f"TCP connection to 127.0.0.1:{port} was reset after ")


async def test_slower_than_max_latency_is_degraded(
    start_server: StartServer, ctx: CheckContext
) -> None:
    port = await start_server(pong)
    result = await run_tcp(ctx, port, max_latency="0s")  # any connect takes longer than zero
    assert result.status == "degraded"
    assert result.evidence.endswith("; slower than max_latency 0 ms")


def test_schema_describes_every_option() -> None:
    assert_options_described(TcpCheck)
