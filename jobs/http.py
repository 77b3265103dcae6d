"""The `http` check: one request, judged on status, body, JSON field, latency and certificate.

It reads at most `max_body_bytes` of the response and never puts header values (which may be
secrets) in evidence; only the status, timings and a short quote of the body.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import re
import ssl
import time
from dataclasses import dataclass
from typing import Any, Literal, Self

import httpx
from pydantic import Field, JsonValue, field_validator, model_validator

from daemon.models import CheckResult, Duration, Status
from jobs._net_errors import explain_http_error
from jobs._resolve import getaddrinfo
from jobs._tls import (
    describe_expiry,
    parse_der,
    ssl_context,
)
from jobs.base import BasicAuth, CheckContext, CheckSpec, http_url

QUOTE_CHARS = 200
MAX_REDIRECTS = 10
_STATUS_CLASS = re.compile(r"^[1-5]xx$")
_JSON_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")
Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class HttpCheck(CheckSpec):
    """An HTTP(S) endpoint answers as expected, quickly enough."""

    type: Literal["http"]
    url: str = Field(description="http:// or https:// URL to request.")
    method: Method = Field(default="GET", description="HTTP method.")
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Request headers. Values may be 'secret:NAME' references; header values "
        "never appear in evidence.",
    )
    basic_auth: BasicAuth | None = Field(
        default=None,
        description="HTTP basic auth as {username, password}; write the password as "
        "'secret:NAME'. A URL never holds credentials.",
    )
    body: str | None = Field(default=None, description="Request body, sent as UTF-8.")
    expected_status: list[int | str] = Field(
        default_factory=lambda: list[int | str]([200]),
        min_length=1,
        description="Status codes that count as ok: numbers, or classes such as '2xx'.",
    )
    max_latency: Duration | None = Field(
        default=None, description="Report degraded when the response takes longer, e.g. '1s'."
    )
    body_contains: str | None = Field(
        default=None, description="Substring that must appear in the response body."
    )
    json_path: str | None = Field(
        default=None,
        description="Dotted path into a JSON body, e.g. 'status', 'checks.db.status' or "
        "'items.0.name'. The body must be JSON and the path must exist.",
    )
    json_equals: JsonValue = Field(
        default=None, description="Value the field at json_path must equal (any JSON value)."
    )
    follow_redirects: bool = Field(
        default=True,
        description="Follow 3xx redirects (at most 10). Configured headers and basic auth go "
        "only to the url's own origin, never to another host a redirect points at; a "
        "redirect to a link-local address (cloud metadata) is refused.",
    )
    verify_tls: bool = Field(
        default=True, description="Verify the server certificate and hostname for https."
    )
    ca_file: str | None = Field(
        default=None,
        description="PEM file of CA certificates to trust instead of the system store "
        "(for private CAs).",
    )
    cert_min_days: int | None = Field(
        default=None,
        ge=0,
        description="For https: report degraded when the certificate expires in fewer days.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1, description="Read at most this many bytes of the body."
    )

    @field_validator("url")
    @classmethod
    def _url_valid(cls, value: str) -> str:
        http_url(value)
        return value

    @field_validator("method", mode="before")
    @classmethod
    def _method_upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("expected_status")
    @classmethod
    def _statuses_valid(cls, value: list[int | str]) -> list[int | str]:
        cleaned: list[int | str] = []
        for item in value:
            text = str(item).strip().lower()
            if text.isdigit() and 100 <= int(text) <= 599:
                cleaned.append(int(text))
            elif _STATUS_CLASS.match(text):
                cleaned.append(text)
            else:
                raise ValueError(f"{item!r} is not a status code (100-599) or a class like '2xx'")
        return cleaned

    @field_validator("json_path")
    @classmethod
    def _json_path_valid(cls, value: str | None) -> str | None:
        if value is not None and not _JSON_PATH.match(value):
            raise ValueError(f"json_path {value!r} must be dotted keys or indexes, e.g. 'a.0.b'")
        return value

    @model_validator(mode="after")
    def _options_consistent(self) -> Self:
        if "json_equals" in self.model_fields_set and self.json_path is None:
            raise ValueError("json_equals needs json_path to say which field to compare")
        if self.ca_file is not None and not self.verify_tls:
            raise ValueError("ca_file has no effect when verify_tls = false; remove one")
        if self.basic_auth is not None and "authorization" in {h.lower() for h in self.headers}:
            raise ValueError("headers.Authorization conflicts with basic_auth; keep one")
        return self

    async def run(self, ctx: CheckContext) -> list[CheckResult]:
        started_at = ctx.now()
        t0 = time.perf_counter()
        request = f"{self.method} {self.url}"
        values: dict[str, float | int | str | bool | None] = {}

        def done(status: Status, evidence: str, latency: float | None = None) -> list[CheckResult]:
            latency = (time.perf_counter() - t0) * 1000 if latency is None else latency
            values["latency_ms"] = round(latency, 1)
            return [
                self.result(
                    status, evidence, started_at=started_at, latency_ms=latency, values=values
                )
            ]

        try:
            headers = self._headers(ctx)
        except _SecretError as exc:
            return done("error", f"{request} not sent: {exc}")
        try:
            client = await self._own_client()
        except (OSError, ssl.SSLError) as exc:
            return done("error", f"{request} not sent: cannot load ca_file {self.ca_file}: {exc}")

        seconds = self.timeout.total_seconds()
        try:
            async with asyncio.timeout(seconds):
                reply = await self._fetch(client or ctx.http, headers, seconds)
        except (TimeoutError, httpx.TimeoutException):
            return done("failing", f"{request} timed out after {seconds:g} s")
        except httpx.TooManyRedirects:
            ms = (time.perf_counter() - t0) * 1000
            return done("failing", f"{request} failed after {ms:.0f} ms: too many redirects")
        except httpx.HTTPError as exc:
            ms = (time.perf_counter() - t0) * 1000
            why = explain_http_error(exc)
            return done("failing", f"{request} failed after {ms:.0f} ms: {why}")
        finally:
            if client is not None:
                await client.aclose()

        values.update(status_code=reply.status_code, body_bytes=len(reply.body))
        status, evidence = self._judge(reply, request, ctx, values)
        return done(status, evidence, reply.elapsed_ms)

    def _headers(self, ctx: CheckContext) -> dict[str, str]:
        def resolve(key: str, value: str) -> str:
            try:
                return ctx.resolve_secret(value) if value.startswith("secret:") else value
            except Exception as exc:
                raise _SecretError(f"cannot resolve {key} ({value}): {exc}") from exc

        resolved = {name: resolve(f"header {name}", value) for name, value in self.headers.items()}
        if self.basic_auth is not None:
            user = resolve("basic_auth.username", self.basic_auth.username)
            password = resolve("basic_auth.password", self.basic_auth.password)
            pair = base64.b64encode(f"{user}:{password}".encode()).decode()
            resolved["Authorization"] = f"Basic {pair}"
        return resolved

    async def _own_client(self) -> httpx.AsyncClient | None:
        """A client of our own only when TLS settings differ from the shared one's."""
        if self.verify_tls and self.ca_file is None:
            return None
        context = await ssl_context(verify=self.verify_tls, ca_file=self.ca_file)
        return httpx.AsyncClient(verify=context)

    async def _fetch(
        self, client: httpx.AsyncClient, headers: dict[str, str], seconds: float
    ) -> _Reply:
        """The request, and the redirects it is allowed to follow (by hand: httpx would carry
        every configured header but Authorization to whatever host a redirect names)."""
        t0 = time.perf_counter()
        origin = _origin(httpx.URL(self.url))
        request = client.build_request(
            self.method,
            self.url,
            headers=headers,
            content=None if self.body is None else self.body.encode(),
            timeout=seconds,
        )
        for redirects in range(MAX_REDIRECTS + 1):
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                following = response.next_request if self.follow_redirects else None
                if following is None:
                    return await self._read(response, redirects, t0)
            finally:
                await response.aclose()
            refused = await _forbidden_target(following.url)
            if refused is not None:
                return _Reply(
                    status_code=response.status_code,
                    location=str(following.url),
                    body=b"",
                    truncated=False,
                    charset=None,
                    redirects=redirects,
                    final_url=str(response.url),
                    elapsed_ms=(time.perf_counter() - t0) * 1000,
                    der=None,
                    refused=refused,
                )
            if _origin(following.url) != origin:
                for name in [*headers, "cookie", "authorization"]:  # ours stay with our origin
                    following.headers.pop(name, None)
            request = following
        raise httpx.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects", request=request)

    async def _read(self, response: httpx.Response, redirects: int, t0: float) -> _Reply:
        der = _peer_certificate(response) if self.cert_min_days is not None else None
        body = bytearray()
        truncated = False
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > self.max_body_bytes:
                del body[self.max_body_bytes :]
                truncated = True
                break
        return _Reply(
            status_code=response.status_code,
            location=response.headers.get("location"),
            body=bytes(body),
            truncated=truncated,
            charset=response.charset_encoding,
            redirects=redirects,
            final_url=str(response.url),
            elapsed_ms=(time.perf_counter() - t0) * 1000,
            der=der,
        )

    def _judge(
        self,
        reply: _Reply,
        request: str,
        ctx: CheckContext,
        values: dict[str, float | int | str | bool | None],
    ) -> tuple[Status, str]:
        head = f"{request} returned {reply.status_code} in {reply.elapsed_ms:.0f} ms"
        if reply.refused is not None:
            return "failing", f"{head}; redirect to {reply.location} refused: {reply.refused}"
        if reply.redirects:
            s = "s" if reply.redirects > 1 else ""
            head += f" after {reply.redirects} redirect{s} to {reply.final_url}"
        if not _status_matches(reply.status_code, self.expected_status):
            expected = " or ".join(str(s) for s in self.expected_status)
            moved = f" (Location: {reply.location})" if reply.location else ""
            return "failing", f"{head}{moved}; expected {expected}{_quote_body(reply)}"
        verdict, detail = self._body_verdict(reply)
        if detail:
            head += f"; {detail}"
        if verdict != "ok":
            return verdict, head

        warnings = []
        if reply.der is not None and self.cert_min_days is not None:
            cert = parse_der(reply.der)
            days = cert.days_left(ctx.now())
            values["days_left"] = days
            if days < self.cert_min_days:
                expiry = describe_expiry(days, cert.expiry_date)
                warnings.append(f"certificate {expiry}; warn below {self.cert_min_days}")
        if self.max_latency is not None:
            limit_ms = self.max_latency.total_seconds() * 1000
            if reply.elapsed_ms > limit_ms:
                warnings.append(f"slower than max_latency {limit_ms:.0f} ms")
        if warnings:
            return "degraded", "; ".join([head, *warnings])
        return "ok", head

    def _body_verdict(self, reply: _Reply) -> tuple[Status, str]:
        """Judge `body_contains` and `json_path`; the detail names what was found."""
        text = reply.text()
        if self.body_contains is not None and self.body_contains not in text:
            where = "body does"
            if reply.truncated:
                where = f"the first {len(reply.body)} bytes of the body do"
            missing = f"{where} not contain {self.body_contains!r}"
            return "failing", f"{missing}{_quote_body(reply)}"
        if self.json_path is None:
            return "ok", ""
        if reply.truncated:
            return "failing", (
                f"body is larger than max_body_bytes ({self.max_body_bytes}); "
                f"cannot read JSON {self.json_path}"
            )
        try:
            document = json.loads(text)
        except ValueError as exc:
            return "failing", f"body is not valid JSON ({exc}){_quote_body(reply)}"
        try:
            found = _follow(document, self.json_path)
        except _PathMissing as exc:
            return "failing", f"JSON {self.json_path} not found: {exc}"
        except _PathInvalid as exc:
            return "error", f"json_path {self.json_path} cannot apply to this body: {exc}"
        shown = f"JSON {self.json_path} is {_clip(json.dumps(found, ensure_ascii=False))}"
        if "json_equals" in self.model_fields_set and not _json_equal(found, self.json_equals):
            return (
                "failing",
                f"{shown}; expected {json.dumps(self.json_equals, ensure_ascii=False)}",
            )
        return "ok", shown


@dataclass(frozen=True)
class _Reply:
    status_code: int
    location: str | None
    body: bytes
    truncated: bool
    charset: str | None
    redirects: int
    final_url: str
    elapsed_ms: float
    der: bytes | None
    refused: str | None = None
    """Why the redirect to `location` was not followed."""

    def text(self) -> str:
        try:
            return self.body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return self.body.decode("utf-8", errors="replace")


class _SecretError(Exception):
    pass


class _PathMissing(Exception):
    """The body does not have the field: the target answered wrongly."""


class _PathInvalid(Exception):
    """The path can never address this body (an index that is not a number)."""


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


_METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog"})
_METADATA_ADDRESSES = frozenset({ipaddress.ip_address("fd00:ec2::254")})  # AWS IMDS, IPv6


async def _forbidden_target(url: httpx.URL) -> str | None:
    """Why a redirect must not be followed to `url` (cloud metadata and other link-local
    addresses, where credentials live), or None."""
    host = url.host.lower().rstrip(".")
    if host in _METADATA_HOSTS:
        return "it names a cloud metadata service"
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await getaddrinfo(host, url.port)
        except (OSError, UnicodeError):
            return None  # it will fail by itself, with the resolver's own words
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for address in addresses:
        mapped = getattr(address, "ipv4_mapped", None) or address
        if mapped.is_link_local or address in _METADATA_ADDRESSES:
            return f"{address} is a link-local address (cloud metadata lives there)"
    return None


def _status_matches(code: int, expected: list[int | str]) -> bool:
    return any(
        code == item if isinstance(item, int) else str(code)[0] == item[0] for item in expected
    )


def _peer_certificate(response: httpx.Response) -> bytes | None:
    """The server's DER certificate, from the connection httpx used (None for plain http)."""
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if not isinstance(ssl_object, ssl.SSLObject):
        return None
    return ssl_object.getpeercert(binary_form=True)


def _follow(document: Any, path: str) -> Any:
    current = document
    walked: list[str] = []
    for segment in path.split("."):
        where = ".".join(walked) or "the top level"
        if isinstance(current, dict):
            if segment not in current:
                raise _PathMissing(f"no key {segment!r} in {where}")
            current = current[segment]
        elif isinstance(current, list):
            if not segment.isdigit():
                raise _PathInvalid(f"{where} is an array and {segment!r} is not an index")
            if int(segment) >= len(current):
                raise _PathMissing(f"{where} has {len(current)} items, no index {segment}")
            current = current[int(segment)]
        else:
            raise _PathMissing(f"{where} is {_clip(json.dumps(current))}, not an object or array")
        walked.append(segment)
    return current


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: `true` is not `1`, but `1` is `1.0`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _clip(text: str) -> str:
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "…"


def _quote_body(reply: _Reply) -> str:
    text = " ".join(reply.text().split())
    return f"; body: {json.dumps(_clip(text), ensure_ascii=False)}" if text else ""
