"""The ASGI app: which paths exist on the listener, and who may see them.

`/healthz` and `/ping/…` are always there. With a console (`[web] enabled`) the pages, the
JSON API, `/metrics`, `/status` and MCP join them, behind `daemon.web.auth` when the listener
is not loopback-only. Anything else is the same 404 an unknown ping token gets.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from daemon.web.health import (
    HealthReport,
    Pings,
    healthz_endpoint,
    not_found,
    ping_endpoint,
)

ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]
"""/healthz answers every method itself: 405 with `Allow: GET, HEAD` for the others."""

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from daemon.web.console import Console


def build_app(
    probe: Callable[[], HealthReport],
    *,
    pings: Pings | None = None,
    read_timeout: float = 2.0,
    console: Console | None = None,
) -> Starlette:
    from starlette.applications import Starlette
    from starlette.routing import BaseRoute, Route

    routes: list[BaseRoute] = [Route("/healthz", healthz_endpoint(probe), methods=ANY_METHOD)]
    if pings is not None:
        routes.append(
            Route("/ping/{rest:path}", ping_endpoint(pings, read_timeout), methods=["GET", "POST"])
        )
    middleware: list[Any] = []
    if console is not None:
        routes += console.routes()
        middleware += console.middleware()

    async def missing(request: Request, exc: Exception) -> Response:
        return not_found()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if console is not None:
                await console.aclose()

    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={404: missing, 405: missing},
        lifespan=lifespan,
    )
