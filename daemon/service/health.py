"""The daemon's own health endpoint: `GET /healthz` for load balancers, probes and self-checks,
and the heartbeat pings (`/ping/<token>…`) on the same listener.

Served by `daemon.web` (Starlette on uvicorn, hardened at the door: see
`daemon.web.listener`); a slow, huge or garbled request must never hold it, crash it or reach
the probe. This module keeps the daemon's view of it: what to serve and why an address cannot
be had.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING

from daemon.web.health import HealthReport, Pings
from daemon.web.listener import (
    MAX_CONNECTIONS,
    MAX_REQUEST_BYTES,
    PER_CLIENT,
    READ_TIMEOUT_S,
    Door,
    Listener,
)

if TYPE_CHECKING:
    from daemon.web.console import Console

__all__ = [
    "MAX_CONNECTIONS",
    "MAX_REQUEST_BYTES",
    "PER_CLIENT",
    "READ_TIMEOUT_S",
    "HealthReport",
    "Listener",
    "Pings",
    "listen_problem",
    "serve_health",
]


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
    console: Console | None = None,
) -> Listener:
    """Start serving; the caller owns the returned listener (`close()` + `await
    wait_closed()`). With `console`, the web console's routes are served too."""
    from daemon.web.app import build_app
    from daemon.web.listener import serve_app

    app = build_app(probe, pings=pings, read_timeout=read_timeout, console=console)
    door = Door(read_timeout, max_request_bytes, max_connections, per_client)
    return await serve_app(app, host, port, door)


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
