"""Who may see the console, and the headers every answer carries.

Loopback-only and no token configured: everyone who can reach 127.0.0.1 (the machine's own
users). Otherwise every path but /healthz, /status, /static and heartbeat pings needs one of:
`Authorization: Bearer <token>` (compared in constant time), the session cookie a browser gets
by opening any page once with `?token=<token>` (the cookie holds an HMAC of the token, not the
token), or `trusted_proxy_header` from one of `trusted_proxies`. The config validator already
refused a non-loopback address without either.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from daemon.web.health import json_response

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Receive, Scope, Send

    from daemon.config.web import WebSettings

OPEN_PREFIXES = ("/healthz", "/status", "/static/", "/ping/")
COOKIE = "watchkeeper_session"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def is_open(path: str) -> bool:
    return path == "/healthz" or path == "/status" or path.startswith(OPEN_PREFIXES[2:])


def session_value(token: str) -> str:
    """What the cookie holds: proof of the token, useless as the token itself."""
    return hmac.new(token.encode(), b"watchkeeper console session", hashlib.sha256).hexdigest()


class security_headers:
    """CSP without inline scripts, no sniffing, no framing, no referrer — on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [
                    (k.encode(), v.encode())
                    for k, v in SECURITY_HEADERS.items()
                    if k.encode() not in names
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


class Auth:
    """The gate; `middleware` is the ASGI class Starlette wraps around the routes."""

    def __init__(self, settings: Callable[[], WebSettings], resolve: Callable[[str], str]):
        self.settings = settings
        self.resolve = resolve
        gate = self

        class middleware:
            def __init__(self, app: ASGIApp) -> None:
                self.app = app

            async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
                if scope["type"] != "http" or is_open(scope["path"]):
                    await self.app(scope, receive, send)
                    return
                from starlette.requests import Request

                refused = gate.check(Request(scope))
                if refused is not None:
                    await refused(scope, receive, send)
                    return
                await self.app(scope, receive, send)

        self.middleware = middleware

    def _token(self) -> str | None:
        ref = self.settings().token
        if ref is None:
            return None
        try:
            return self.resolve(ref)
        except Exception:
            return None  # unresolvable: nobody gets in with a token (and we say nothing more)

    def check(self, request: Request) -> Response | None:
        """None when the request may pass, else the answer: 401, or a redirect that swaps
        `?token=` for the session cookie (so the token leaves the address bar and history)."""
        web = self.settings()
        if not web.authenticated:
            # Loopback without a token: only a request addressed to loopback is let in, so a
            # web page cannot read the console through DNS rebinding (evil.example → 127.0.0.1).
            if request.url.hostname not in LOOPBACK_NAMES:
                return json_response(421, {"error": "use http://127.0.0.1 or localhost"})
            return None
        client = request.client.host if request.client else ""
        header = web.trusted_proxy_header
        if header and request.headers.get(header) and client in web.trusted_proxies:
            return None
        token = self._token()
        if token is not None:
            given = request.headers.get("authorization", "")
            if given.lower().startswith("bearer ") and hmac.compare_digest(
                given[7:].strip().encode(), token.encode()
            ):
                return None
            cookie = request.cookies.get(COOKIE, "")
            if cookie and hmac.compare_digest(cookie.encode(), session_value(token).encode()):
                return None
            query = request.query_params.get("token")
            if query is not None and hmac.compare_digest(query.encode(), token.encode()):
                return self._enter(request, token)
        return json_response(
            401,
            {"error": "authentication required: Authorization: Bearer <token>"},
            {"WWW-Authenticate": 'Bearer realm="watchkeeper"'},
        )

    @staticmethod
    def _enter(request: Request, token: str) -> Response:
        from urllib.parse import urlencode

        from starlette.responses import RedirectResponse

        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        target = request.url.path + ("?" + urlencode(rest) if rest else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            session_value(token),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response
