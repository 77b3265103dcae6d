"""`/healthz` (the probe's contract) and `/ping/<token>[/start|/fail|/<code>]` (heartbeats).

The contract of /healthz: JSON, `Connection: close`, 200 `{"status": "ok", …}` while healthy,
503 `{"status": "failing", "reason": …}` when not (or `"error"` when the probe itself broke),
GET and HEAD only (405 with `Allow: GET, HEAD`), query strings ignored. An unknown ping token
is answered exactly like an unknown path, so the listener is no oracle for guessing tokens.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

log = logging.getLogger(__name__)

Pings = Callable[[str, str, bytes, str], Awaitable[bool]]
"""(token, suffix, body, client address) → whether the token named a heartbeat check."""
NOT_FOUND = "not found; try GET /healthz"
MAX_BODY_BYTES = 10 * 1024
"""A ping's body (the job's message) is at most this; longer ones get 413."""
_SUFFIX = re.compile(r"^(start|fail|\d{1,3})?$")


def parse_ping_path(path: str) -> tuple[str, str] | None:
    """`/ping/TOKEN[/SUFFIX]` → (token, suffix); None for anything else."""
    if not path.startswith("/ping/"):
        return None
    token, _, suffix = path.removeprefix("/ping/").partition("/")
    if not token or not _SUFFIX.match(suffix):
        return None
    return token, suffix


@dataclass(frozen=True)
class HealthReport:
    """What the probe says: healthy or not, plus details for the JSON body."""

    healthy: bool
    detail: dict[str, Any] = field(default_factory=dict)


def json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def json_response(
    status: int, body: Any, headers: dict[str, str] | None = None, *, close: bool = False
) -> Response:
    from starlette.responses import Response

    content = json.dumps(body, default=json_default, sort_keys=True) + "\n"
    extra = {"Cache-Control": "no-store", **(headers or {})}
    if close:
        extra["Connection"] = "close"
    return Response(content, status, extra, media_type="application/json")


def not_found() -> Response:
    return json_response(404, {"error": NOT_FOUND})


def healthz_endpoint(probe: Callable[[], HealthReport]) -> Callable[[Request], Awaitable[Response]]:
    async def healthz(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return json_response(405, {"error": "use GET or HEAD"}, {"Allow": "GET, HEAD"})
        try:
            report = probe()
        except Exception as exc:
            log.exception("health probe raised")
            body = {"status": "error", "error": f"probe raised {type(exc).__name__}"}
            return json_response(503, body, close=True)
        body = {**report.detail, "status": "ok" if report.healthy else "failing"}
        return json_response(200 if report.healthy else 503, body, close=True)

    return healthz


def ping_endpoint(pings: Pings, read_timeout: float) -> Callable[[Request], Awaitable[Response]]:
    """Read the body (a job's message, at most MAX_BODY_BYTES), hand it on."""

    async def ping(request: Request) -> Response:
        parsed = parse_ping_path(request.url.path)
        if parsed is None or request.method not in ("GET", "POST"):
            return not_found()
        token, suffix = parsed
        try:
            length = int(request.headers.get("content-length", "0"))
        except ValueError:
            return json_response(400, {"error": "bad Content-Length"})
        if length < 0:
            return json_response(400, {"error": "bad Content-Length"})
        if length > MAX_BODY_BYTES:
            return json_response(413, {"error": f"a ping's body is at most {MAX_BODY_BYTES} bytes"})
        body = b""
        if request.method == "POST" and length:
            try:
                body = await asyncio.wait_for(request.body(), read_timeout)
            except TimeoutError:
                return json_response(408, {"error": "request body not received in time"})
        client = request.client.host if request.client else "local"
        if await pings(token, suffix, body[:MAX_BODY_BYTES], client):
            return json_response(200, {"status": "ok"})
        return not_found()

    return ping
