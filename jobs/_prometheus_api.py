"""HTTP plumbing shared by the `prometheus` and `alertmanager` checks: auth, TLS, one API call.

Secrets are resolved only into request headers: no header value and no resolved secret ever
reaches an evidence string, an exception message or a quoted response body.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from dataclasses import dataclass
from typing import Self

import httpx
from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from daemon.util.net import masked_url

# Shared with the `http` check so transport failures read the same everywhere.
from daemon.util.text import clip, one_line
from jobs._net_errors import explain_http_error as explain_transport_error
from jobs._tls import ssl_context
from jobs.base import BasicAuth, CheckContext, CheckSpec, http_url

MAX_BODY_BYTES = 16 * 1024 * 1024
QUOTE_CHARS = 200
_HINTS = {
    401: " (the credentials were refused: check bearer_token or basic_auth)",
    403: " (the credentials lack permission, or org_id is wrong)",
    404: " (is url the API base, e.g. http://prometheus:9090 with no /api path?)",
}


class ApiCheckSpec(CheckSpec):
    """The connection options of a check that calls one JSON HTTP API."""

    url: str = Field(
        description="Base URL of the API, http:// or https://, with any path prefix "
        "(e.g. 'http://mimir:8080/prometheus'); never credentials."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra request headers. Values may be 'secret:NAME' references; header "
        "values never appear in evidence.",
    )
    bearer_token: str | None = Field(
        default=None,
        description="Sent as 'Authorization: Bearer …'. Write it as a 'secret:NAME' reference.",
    )
    basic_auth: BasicAuth | None = Field(
        default=None,
        description="HTTP basic auth as {username, password}; either may be 'secret:NAME'.",
    )
    org_id: str | None = Field(
        default=None,
        description="Tenant sent as the X-Scope-OrgID header (Mimir, Cortex, Loki multi-tenancy).",
    )
    verify_tls: bool = Field(
        default=True, description="Verify the server certificate and hostname for https."
    )
    ca_file: str | None = Field(
        default=None,
        description="PEM file of CA certificates to trust instead of the system store.",
    )

    @field_validator("url")
    @classmethod
    def _url_valid(cls, value: str) -> str:
        url = http_url(value)
        if url.query or url.fragment:
            raise ValueError(
                f"url must be the API base without '?' or '#', got {masked_url(value)}"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _auth_consistent(self) -> Self:
        if self.bearer_token is not None and self.basic_auth is not None:
            raise ValueError("set bearer_token or basic_auth, not both")
        explicit = {name.lower() for name in self.headers}
        if "authorization" in explicit and (self.bearer_token or self.basic_auth):
            raise ValueError("headers.Authorization conflicts with bearer_token/basic_auth")
        if self.ca_file is not None and not self.verify_tls:
            raise ValueError("ca_file has no effect when verify_tls = false; remove one")
        return self

    async def call_api(
        self,
        ctx: CheckContext,
        path: str,
        params: list[tuple[str, str]],
        *,
        post_form: bool = False,
    ) -> ApiReply:
        """One request to `url + path`; raises `ApiUnavailable` when no answer came back."""
        method = "POST" if post_form else "GET"
        request = f"{method} {self.url}{path}"
        try:
            headers, secrets = self._resolved_headers(ctx)
        except _SecretError as exc:
            raise ApiUnavailable(f"{request} not sent: {exc}") from exc
        try:
            own = await self._own_client()
        except (OSError, ssl.SSLError) as exc:
            message = f"{request} not sent: cannot load ca_file {self.ca_file}: {exc}"
            raise ApiUnavailable(message) from exc
        seconds = self.timeout.total_seconds()
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(seconds):
                status, body, location = await _fetch(
                    own or ctx.http, method, self.url + path, params, headers, seconds
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ApiUnavailable(f"{request} timed out after {seconds:g} s") from exc
        except httpx.HTTPError as exc:
            ms = (time.perf_counter() - t0) * 1000
            reason = explain_transport_error(exc)
            raise ApiUnavailable(f"{request} failed after {ms:.0f} ms: {reason}") from exc
        finally:
            if own is not None:
                await own.aclose()
        elapsed = (time.perf_counter() - t0) * 1000
        return ApiReply(request, status, body, location, elapsed, secrets)

    def _resolved_headers(self, ctx: CheckContext) -> tuple[dict[str, str], tuple[str, ...]]:
        """The headers to send, and every secret among them (to mask in quoted bodies)."""
        secrets: list[str] = []

        def resolve(what: str, value: str, *, secret: bool = False) -> str:
            resolved = value
            if value.startswith("secret:"):
                try:
                    resolved = ctx.resolve_secret(value)
                except Exception as exc:
                    raise _SecretError(f"cannot resolve {what} ({value}): {exc}") from exc
            if secret or resolved != value:
                secrets.append(resolved)
            return resolved

        headers = {name: resolve(f"header {name}", v) for name, v in self.headers.items()}
        if self.bearer_token is not None:
            token = resolve("bearer_token", self.bearer_token, secret=True)
            headers["Authorization"] = f"Bearer {token}"
        if self.basic_auth is not None:
            user = resolve("basic_auth.username", self.basic_auth.username)
            password = resolve("basic_auth.password", self.basic_auth.password, secret=True)
            pair = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
            secrets.append(pair)
        if self.org_id is not None:
            headers["X-Scope-OrgID"] = resolve("org_id", self.org_id)
        return headers, tuple(s for s in secrets if len(s) >= 4)

    async def _own_client(self) -> httpx.AsyncClient | None:
        """A client of our own only when TLS settings differ from the shared one's."""
        if self.verify_tls and self.ca_file is None:
            return None
        return httpx.AsyncClient(
            verify=await ssl_context(verify=self.verify_tls, ca_file=self.ca_file)
        )


async def _fetch(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    params: list[tuple[str, str]],
    headers: dict[str, str],
    seconds: float,
) -> tuple[int, bytes, str | None]:
    """Status, body (at most MAX_BODY_BYTES + 1 bytes) and Location of one exchange."""
    headers = {"Accept": "application/json", **headers}
    query: httpx.QueryParams | None = httpx.QueryParams(tuple(params))
    content = None
    if method == "POST":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        query, content = None, str(httpx.QueryParams(tuple(params))).encode()
    async with client.stream(
        method,
        url,
        params=query,
        content=content,
        headers=headers,
        timeout=seconds,
        follow_redirects=False,
    ) as response:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                break
    return response.status_code, bytes(body), response.headers.get("location")


@dataclass(frozen=True)
class ApiReply:
    request: str
    """`GET http://host:9090/api/v1/query`: what was asked, without parameters or headers."""
    status_code: int
    body: bytes
    location: str | None
    elapsed_ms: float
    secrets: tuple[str, ...]

    @property
    def too_large(self) -> bool:
        return len(self.body) > MAX_BODY_BYTES

    def json(self) -> object:
        """The decoded body; raises ValueError when it is not JSON."""
        return json.loads(self.body)

    def quote(self) -> str:
        """A short, one-line quote of the body with any secret we sent masked."""
        text = self.scrub(one_line(self.body[: QUOTE_CHARS * 4].decode("utf-8", "replace")))
        return json.dumps(clip(text, QUOTE_CHARS), ensure_ascii=False) if text else "(empty)"

    def scrub(self, text: str) -> str:
        """`text` from the server with any secret we sent (an echoed header) masked."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def describe_unexpected(self) -> str:
        """Why a reply that is not the API's JSON cannot be judged, for an `error` result."""
        if self.too_large:
            return f"{self.request} returned more than {MAX_BODY_BYTES // 2**20} MiB; narrow it"
        moved = f" (Location: {self.location})" if self.location else ""
        hint = _HINTS.get(self.status_code, "")
        return f"{self.request} returned {self.status_code}{moved}{hint}; body: {self.quote()}"

    def describe_invalid(self, exc: ValidationError, expected: str) -> str:
        """Why a body that does not validate as `expected` cannot be judged."""
        if self.status_code != 200 or self.too_large:
            return self.describe_unexpected()
        try:
            self.json()
        except ValueError:
            return f"{self.request} returned 200 but not JSON; body: {self.quote()}"
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        return (
            f"{self.request} returned JSON that is not {expected} "
            f"({where}: {problem['msg']}); body: {self.quote()}"
        )


class ApiUnavailable(Exception):
    """No answer from the API (not sent, timed out, refused); the message is the evidence."""


class _SecretError(Exception):
    pass


def format_labels(labels: dict[str, str], *, skip: frozenset[str] = frozenset()) -> str:
    """`{instance="web-1:9100",job="node"}` quoted the way Prometheus prints label values."""
    pairs = (
        f'{name}="{_escape(value)}"'
        for name, value in sorted(labels.items())
        if name not in skip and name != "__name__"
    )
    return "{" + ",".join(pairs) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
