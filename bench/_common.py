"""What every benchmark shares: the machine record, medians, the table + JSON output, an
isolated environment, and loopback HTTP servers in a child process.

Nothing here reaches past 127.0.0.1, reads a real key or keyring, or outlives its benchmark:
the server process exits when its parent closes its stdin, or after `max_seconds` anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

PROVIDER_KEY_VARS = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "COHERE_API_KEY",
    "CO_API_KEY",
    "CREDENTIALS_DIRECTORY",
    "WATCHKEEPER_CONFIG",
)
NULL_KEYRING = "keyring.backends.null.Keyring"


def machine() -> dict[str, Any]:
    """Where the figures came from: ratios travel between machines, absolute times do not."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def isolated_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a benchmark's subprocess: no provider keys, no real keyring, no
    proxies (all traffic is loopback), the repository importable."""
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_KEY_VARS}
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(proxy, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHON_KEYRING_BACKEND"] = NULL_KEYRING
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def isolate_this_process() -> None:
    """The same isolation for the benchmark's own process (call before importing daemon)."""
    for name in PROVIDER_KEY_VARS:
        os.environ.pop(name, None)
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(proxy, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    os.environ["PYTHON_KEYRING_BACKEND"] = NULL_KEYRING


def quiet_logs() -> None:
    """The daemon's own logging setup, at warning level and on stderr: the table and the JSON
    line own stdout."""
    from daemon.logging import configure

    configure("warning", "console", stream=sys.stderr)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", action="store_true", help="print only the JSON object")
    return p


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Plain columns: first left-aligned, the rest right-aligned."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    out = []
    for n, line in enumerate(cells):
        parts = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(parts).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def emit(text: str, data: dict[str, Any], json_only: bool) -> None:
    """The human table, then the JSON object as the last line (or the JSON alone)."""
    if not json_only:
        print(text, flush=True)
        print(flush=True)
    print(json.dumps(data, sort_keys=False, default=str), flush=True)


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "MISSED")


# -- loopback HTTP servers in a child process ----------------------------------------------------

_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: keep-alive\r\n\r\nok"
)


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """200 "ok" to every request on a keep-alive connection; a bare TCP connect that closes
    (the `tcp` check) is fine too."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:].strip() or 0)
            if length:
                await reader.readexactly(length)
            writer.write(_RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    except asyncio.CancelledError:
        pass  # shutting down with the connection still open: end quietly
    finally:
        writer.close()


async def _serve(count: int, max_seconds: float) -> None:
    servers = [
        await asyncio.start_server(_handle, "127.0.0.1", 0, backlog=4096) for _ in range(count)
    ]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    print(json.dumps({"ports": ports}), flush=True)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def watch_parent() -> None:
        sys.stdin.read()  # EOF: the parent closed our stdin or died
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=watch_parent, daemon=True).start()
    with suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout=max_seconds)
    for server in servers:
        server.close()


@contextmanager
def loopback_http(ports: int = 4, max_seconds: float = 900) -> Iterator[list[int]]:
    """Start `ports` loopback HTTP servers in a child process (so serving does not compete
    with the measured event loop); yield their ports; stop them on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench._common", "serve", str(ports), str(max_seconds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
        env=isolated_env(),
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the loopback HTTP server did not start")
        yield [int(p) for p in json.loads(line)["ports"]]
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        asyncio.run(_serve(int(sys.argv[2]), float(sys.argv[3])))
    else:
        sys.exit("usage: python -m bench._common serve PORTS MAX_SECONDS")
