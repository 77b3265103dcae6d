"""What every provider shares: the HTTP round trip, retries, the deadline, structured output.

A provider module supplies only its endpoint, auth headers, request body and reply parsing.
The key is used in exactly one place — the headers — and is scrubbed from anything that could
be shown (error bodies, messages).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from daemon.llm.types import (
    STRUCTURED_MODES,
    MissingKeyError,
    ModelRequest,
    ModelResponse,
    ProviderAuthError,
    ProviderError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderTimeout,
    ProviderUnavailable,
    Reply,
    StructuredMode,
    StructuredOutputError,
    Usage,
)
from daemon.logging import redact
from daemon.util.text import first_line

EXCERPT_CHARS = 300
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0


@dataclass(frozen=True)
class ProviderInfo:
    """The facts a provider declares once, on its class; config, keys, pricing, the CLI and
    the tests derive everything else from them (`daemon.llm.provider_info`)."""

    api: str
    """The registry name, also the name of the built-in provider speaking this API."""
    default_base_url: str
    key_env: tuple[str, ...] = ()
    """Conventional environment variables of the key, first wins; empty: no key needed."""
    local: bool = False
    """Runs on the user's own hardware: priced at $0 and sent unredacted prompts."""
    priced: bool = False
    """genai-prices knows this API's models (under the API's name as provider id)."""
    test_model: str | None = None
    """The cheapest current model, for `watchkeeper keys test`."""


@dataclass(frozen=True)
class ProviderOptions:
    """The resolved `[providers.NAME]` settings a provider instance runs with."""

    name: str
    base_url: str
    local: bool = False
    timeout_s: float = 60.0
    """Per-call deadline, covering every retry."""
    max_retries: int = 3
    keep_alive: str | None = None
    num_ctx: int | None = None


class Provider(ABC):
    """One provider API. Subclasses implement the four wire-format hooks below."""

    info: ClassVar[ProviderInfo]

    def __init__(
        self,
        options: ProviderOptions,
        key: str | None,
        client: httpx.AsyncClient,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.options = options
        self.name = options.name
        self._key = key
        self._client = client
        self._sleep = sleep

    # -- the wire format: one module per provider implements these ---------------------------

    @abstractmethod
    def endpoint(self, model: str) -> str:
        """The URL path after base_url, e.g. `/v1/messages`."""

    @abstractmethod
    def headers(self) -> dict[str, str]:
        """Auth and version headers. The only place the key is used."""

    @abstractmethod
    def body(self, model: str, request: ModelRequest) -> dict[str, Any]:
        """The JSON request body, structured-output settings included."""

    @abstractmethod
    def parse(self, payload: Any) -> Reply:
        """Validate a 2xx JSON payload (pydantic models of the provider's JSON) into a Reply.
        Raise ValueError or ValidationError for anything unexpected."""

    def error_detail(self, payload: Any) -> str | None:
        """The provider's own error message from an error body, if it has a known shape."""
        return None

    def is_auth_error(self, status: int, payload: Any) -> bool:
        """Was the key rejected? (Gemini says so with a 400.) Never retried."""
        return status in (401, 403)

    def retry_after_body(self, payload: Any) -> float | None:
        """A retry delay given in the error body rather than a header (Gemini's RetryInfo)."""
        return None

    def require_key(self) -> str:
        """The key, for `headers()`; a clear MissingKeyError when there is none."""
        if not self._key:
            hint = missing_key_hint(self.name, self.key_env())
            raise MissingKeyError(self.name, hint, outcome="missing_key")
        return self._key

    def key_env(self) -> tuple[str, ...]:
        """Where this provider's key is looked up in the environment: the API's conventional
        variables for a built-in provider, `NAME_API_KEY` for a declared one."""
        if self.name == self.info.api and self.info.key_env:
            return self.info.key_env
        return (f"{self.name.upper().replace('-', '_')}_API_KEY",)

    async def probe(self, model: str) -> tuple[bool | None, str]:
        """Is `model` usable there? (True/False/None = unknown, a short reason). Cloud
        providers are not called just to list models; Ollama checks what is pulled."""
        return None, "not probed"

    # -- the public coroutine ------------------------------------------------------------------

    @property
    def host(self) -> str:
        return urlsplit(self.options.base_url).hostname or self.options.base_url

    def url(self, model: str) -> str:
        return self.options.base_url.rstrip("/") + self.endpoint(model)

    structured_modes: ClassVar[tuple[StructuredMode, ...]] = STRUCTURED_MODES
    """The structured modes this API has, strongest first (Anthropic has no JSON mode)."""
    native_tools: ClassVar[bool] = False
    """Whether this module speaks the API's native tool calling."""

    def refusal(self, error: ProviderError, request: ModelRequest) -> str | None:
        """Which feature a failed call refused ("structured" or "tools"), or None.

        A clear refusal is an HTTP 400, 422, 500 or 501 whose error text names the feature's
        parameter (llama.cpp answers an unsupported `response_format` with a 500, Ollama a
        model without tools with a 400 "does not support tools"). Auth, 404, 429 and a 5xx
        that does not name a parameter are outages, not refusals: they never step down."""
        if not isinstance(error, ProviderHTTPError) or isinstance(error, ProviderAuthError):
            return None
        if error.status not in REFUSAL_STATUSES:
            return None
        text = error.body_excerpt
        thinking = request.think is not None and request.think_mode == "native"
        if thinking and _THINK_WORDS.search(text):
            return "think"
        if request.tools and request.tool_mode == "native" and _TOOL_WORDS.search(text):
            return "tools"
        if request.output is not None and _STRUCTURED_WORDS.search(text):
            return "structured"
        return None

    def step_down(self, request: ModelRequest, feature: str) -> ModelRequest | None:
        """The same request one mode weaker in `feature`, or None when none is left."""
        if feature == "think":
            return replace(request, think_mode="none") if request.think_mode == "native" else None
        if feature == "tools":
            return replace(request, tool_mode="none") if request.tool_mode == "native" else None
        modes = self.structured_modes
        index = modes.index(request.structured_mode) if request.structured_mode in modes else 0
        if index + 1 >= len(modes):
            return None
        return replace(request, structured_mode=modes[index + 1])

    def effective(self, request: ModelRequest) -> ModelRequest:
        """`request` as this API can take it: a mode it lacks becomes the next weaker one, and
        tools go only where the module speaks them."""
        if request.structured_mode not in self.structured_modes:
            weaker = STRUCTURED_MODES[STRUCTURED_MODES.index(request.structured_mode) :]
            mode: StructuredMode = next((m for m in weaker if m in self.structured_modes), "prompt")
            request = replace(request, structured_mode=mode)
        if request.tools and not self.native_tools:
            request = replace(request, tool_mode="none")
        return request

    async def complete(self, model: str, request: ModelRequest) -> ModelResponse:
        """One logical call: HTTP retries within the deadline, stepping down a structured or
        tool mode the server clearly refuses, then (for structured output) at most one
        correction round with the validation error."""
        tally = _Tally(time.monotonic(), time.monotonic() + self.options.timeout_s)
        current = self.effective(request)
        while True:
            try:
                return await self._complete(model, current, tally)
            except ProviderError as exc:
                feature = self.refusal(exc, current)
                weaker = None if feature is None else self.step_down(current, feature)
                if feature is None or weaker is None:
                    exc.refused = tuple(tally.refused)
                    raise
                mode = {"tools": current.tool_mode, "think": current.think_mode}.get(
                    feature, current.structured_mode
                )
                tally.attempts, tally.sent = exc.attempts, exc.request_bytes
                tally.refused.append(f"{feature}:{mode}")
                current = weaker

    async def _complete(self, model: str, request: ModelRequest, tally: _Tally) -> ModelResponse:
        current = request
        for correction in (False, True):
            reply, tries, size = await self._send(
                model, current, tally.deadline, tally.usage, tally.attempts, tally.sent
            )
            tally.add(reply.usage, tries, size)
            if reply.tool_calls:
                # Calls count only when tools were offered; a forced structured-output tool
                # (Anthropic) is the answer, not a call. An undeclared name is kept: the
                # caller's allow-list refuses it visibly.
                offered = bool(request.tools) and request.tool_mode == "native"
                kept = [c for c in reply.tool_calls if offered and c.name != request.output_name]
                # Anthropic's module reads a lone tool_use's input as the reply text (for a
                # forced output tool); for a real call that text is the call, not prose.
                echoed = kept and reply.text == json.dumps(kept[0].arguments)
                reply = replace(reply, tool_calls=tuple(kept), text="" if echoed else reply.text)
            if request.output is None or reply.tool_calls:
                return self._response(model, reply, request, tally, None)
            try:
                data = parse_structured(reply.text, request)
            except ValueError as exc:
                if correction or request.corrections < 1:
                    raise StructuredOutputError(
                        self.name,
                        f"reply from {model} did not match the schema"
                        + (" after a correction" if correction else "")
                        + ": "
                        f"{first_line(str(exc))}",
                        outcome="invalid_output",
                        usage=tally.usage,
                        host=self.host,
                        request_bytes=tally.sent,
                        attempts=tally.attempts,
                    ) from None
                current = request.with_correction(reply.text, str(exc))
                continue
            return self._response(model, reply, request, tally, data)
        raise AssertionError("unreachable")  # pragma: no cover

    def _response(
        self,
        model: str,
        reply: Reply,
        request: ModelRequest,
        tally: _Tally,
        data: dict[str, Any] | None,
    ) -> ModelResponse:
        return ModelResponse(
            text=reply.text,
            usage=tally.usage,
            provider=self.name,
            model=model,
            host=self.host,
            latency_ms=round((time.monotonic() - tally.started) * 1000, 1),
            request_bytes=tally.sent,
            attempts=tally.attempts,
            data=data,
            finish_reason=reply.finish_reason,
            served_model=reply.model,
            tool_calls=reply.tool_calls,
            structured_mode=None if request.output is None else request.structured_mode,
            tool_mode=request.tool_mode if request.tools else None,
            think_mode=None if request.think is None else request.think_mode,
            thinking=reply.thinking,
            refused=tuple(tally.refused),
        )

    async def _send(
        self,
        model: str,
        request: ModelRequest,
        deadline: float,
        spent: Usage,
        attempts_before: int,
        sent_before: int,
    ) -> tuple[Reply, int, int]:
        """POST until a reply, a final error, or the deadline. Returns (reply, tries, bytes)."""
        content = json.dumps(self.body(model, request)).encode()
        url = self.url(model)
        tries = 0
        sent = sent_before
        while True:
            tries += 1
            error = await self._attempt(url, content, deadline)
            if isinstance(error, Reply):
                return error, tries, sent - sent_before + len(content)
            if error.transmitted:
                sent += len(content)
            error.usage = spent
            error.host = self.host
            error.request_bytes = sent
            error.attempts = attempts_before + tries
            retryable = isinstance(error, ProviderTimeout | ProviderUnavailable) or (
                isinstance(error, ProviderHTTPError)
                and error.retryable
                and self.refusal(error, request) is None
            )
            if not retryable or tries > self.options.max_retries:
                raise error
            delay = _retry_delay(error, tries)
            if time.monotonic() + delay >= deadline:
                raise error
            await self._sleep(delay)

    async def _attempt(self, url: str, content: bytes, deadline: float) -> Reply | ProviderError:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return ProviderTimeout(
                self.name,
                f"no answer within {self.options.timeout_s:g} s",
                outcome="timeout",
                transmitted=False,
            )
        headers = {"content-type": "application/json", **self.headers()}
        try:
            response = await fetch_capped(
                self._client, "POST", url, content=content, headers=headers, timeout=remaining
            )
        except ReplyTooLarge:
            return ProviderResponseError(
                self.name,
                f"{self.host} answered with more than {MAX_REPLY_BYTES // MIB} MiB: "
                "not read further",
                outcome="bad_response",
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing left the machine: no destination received the prompt, nothing to bill.
            return ProviderUnavailable(
                self.name,
                f"cannot reach {self.host}: {self.scrub(type(exc).__name__ + ' ' + str(exc))}",
                outcome="unreachable",
                transmitted=False,
            )
        except httpx.TimeoutException:
            return ProviderTimeout(
                self.name, f"no answer within {self.options.timeout_s:g} s", outcome="timeout"
            )
        except httpx.TransportError as exc:
            # The request went out and the connection broke: the provider may have billed it.
            return ProviderUnavailable(
                self.name,
                f"connection to {self.host} broke: "
                f"{self.scrub(type(exc).__name__ + ' ' + str(exc))}",
                outcome="error",
            )
        if response.status_code >= 400:
            return self._http_error(response)
        try:
            payload = response.json()
        except ValueError:
            return ProviderResponseError(
                self.name,
                f"{self.host} answered {response.status_code} with non-JSON: "
                f"{self.excerpt(response.text)!r}",
                outcome="bad_response",
            )
        try:
            return self.parse(payload)
        except (ValueError, ValidationError, KeyError, TypeError) as exc:
            return ProviderResponseError(
                self.name,
                f"unexpected response shape from {self.host}: {first_line(str(exc))}",
                outcome="bad_response",
            )

    def _http_error(self, response: httpx.Response) -> ProviderHTTPError:
        status = response.status_code
        try:
            payload: Any = response.json()
        except ValueError:
            payload = None
        detail = self.error_detail(payload) if payload is not None else None
        excerpt = self.excerpt(detail or response.text)
        retry_after = parse_retry_after(response.headers)
        if retry_after is None and payload is not None:
            retry_after = self.retry_after_body(payload)
        if self.is_auth_error(status, payload):
            return ProviderAuthError(
                self.name,
                f"key for {self.name} rejected by {self.host} (HTTP {status}): {excerpt}; "
                f"check it with `watchkeeper keys test {self.name}`",
                outcome="auth",
                status=status,
                body_excerpt=excerpt,
            )
        outcome = "rate_limited" if status == 429 else "http_error"
        return ProviderHTTPError(
            self.name,
            f"{self.host} answered HTTP {status}: {excerpt}",
            outcome=outcome,
            status=status,
            body_excerpt=excerpt,
            retry_after=retry_after,
        )

    def scrub(self, text: str) -> str:
        """Remove the key (and anything credential-shaped) from text that may be shown."""
        if self._key:
            text = text.replace(self._key, "***")
        return redact(text)

    def excerpt(self, text: str) -> str:
        """One scrubbed line; an HTML page (a proxy's 502) is reduced to its title or text."""
        if "<html" in text[:500].lower() or "<!doctype" in text[:500].lower():
            title = _TITLE.search(text)
            text = title.group(1) if title else _TAG.sub(" ", text)
        flat = " ".join(text.split())
        return self.scrub(flat[:EXCERPT_CHARS] + ("…" if len(flat) > EXCERPT_CHARS else ""))


@dataclass
class _Tally:
    """What one logical call has spent so far, across retries, step-downs and corrections."""

    started: float
    deadline: float
    usage: Usage = field(default_factory=Usage)
    attempts: int = 0
    sent: int = 0
    refused: list[str] = field(default_factory=list)

    def add(self, usage: Usage, tries: int, size: int) -> None:
        self.usage, self.attempts, self.sent = (
            self.usage + usage,
            self.attempts + tries,
            self.sent + size,
        )


REFUSAL_STATUSES = frozenset({400, 422, 500, 501})
_STRUCTURED_WORDS = re.compile(
    r"response_format|json_schema|json_object|schema|responseMimeType|\bformat\b|guided|"
    r"grammar|structured",
    re.IGNORECASE,
)
_TOOL_WORDS = re.compile(
    r"\btools\b|tool.choice|tool.calling|function.calling|\btool use\b", re.IGNORECASE
)
"""Names of the tools *parameter* or feature; not "tool_calls" or a message's role 'tool',
which an error about a malformed history mentions (that is a bug to see, not a refusal)."""
_THINK_WORDS = re.compile(r"does not support thinking|\bthink\b", re.IGNORECASE)
"""Ollama's 400 for `think` sent to a model without thinking: `"NAME" does not support
thinking` (older: `registry.ollama.ai/library/NAME does not support thinking`)."""

MIB = 1024 * 1024
MAX_REPLY_BYTES = 4 * MIB
"""A provider's reply is read up to this much, decompressed: a structured answer is a few
kilobytes; anything near this is a broken or hostile endpoint, not an answer."""


class ReplyTooLarge(Exception):
    """The reply went past MAX_REPLY_BYTES; nothing more of it was read."""


async def fetch_capped(
    client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """A request whose reply body is streamed and read only up to MAX_REPLY_BYTES (after
    decompression); returns the response with that body in memory, or raises ReplyTooLarge."""
    async with client.stream(method, url, **kwargs) as streamed:
        body = bytearray()
        async for chunk in streamed.aiter_bytes():
            body += chunk
            if len(body) > MAX_REPLY_BYTES:
                raise ReplyTooLarge
    kept = [
        (name, value)
        for name, value in streamed.headers.multi_items()
        if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        streamed.status_code, headers=kept, content=bytes(body), request=streamed.request
    )


def missing_key_hint(provider: str, names: tuple[str, ...]) -> str:
    """What to do when `provider` has no key; `names` are the variables it is looked up in."""
    return (
        f"no key for {provider}: run `watchkeeper keys set {provider}`, add "
        f"`LoadCredential={provider}_api_key:/path` to the unit, or set {' or '.join(names)}"
    )


def _retry_delay(error: ProviderError, tries: int) -> float:
    if isinstance(error, ProviderHTTPError) and error.retry_after is not None:
        return max(error.retry_after, 0.0)
    return float(min(BACKOFF_BASE_S * 2 ** (tries - 1), BACKOFF_MAX_S))


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """`retry-after-ms`, or `Retry-After` as seconds or an HTTP date."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def chat_messages(request: ModelRequest, *, ollama: bool = False) -> list[dict[str, Any]]:
    """The OpenAI-style message list (system first, with the schema spelled out when the mode
    needs it) that Ollama and OpenAI both take. Tool turns use their `tool_calls` / `tool`
    shapes; OpenAI sends arguments as a JSON string and refuses unknown message keys, Ollama
    takes arguments as an object and matches a result by `tool_name`."""
    system = request.instructed_system()
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for m in request.messages:
        if m.role == "tool":
            result = {"role": "tool", "content": m.content}
            result |= {"tool_name": m.tool_name or ""} if ollama else {}
            result |= {"tool_call_id": m.tool_call_id or ""} if not ollama else {}
            messages.append(result)
        elif m.tool_calls:
            messages.append(
                {
                    "role": "assistant",
                    "content": m.content,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {
                                "name": call.name,
                                "arguments": call.arguments
                                if ollama
                                else json.dumps(call.arguments),
                            },
                        }
                        for call in m.tool_calls
                    ],
                }
            )
        else:
            messages.append({"role": m.role, "content": m.content})
    return messages


def function_tools(request: ModelRequest) -> list[dict[str, Any]]:
    """The tools in the `{"type": "function", "function": {…}}` shape (OpenAI, Ollama)."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in request.tools
    ]


def tool_arguments(raw: Any) -> dict[str, Any]:
    """A model's tool arguments as a dict: a JSON string (OpenAI) or an object (Ollama).
    Anything else becomes `{}`; the tool then reports what is missing."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw or "{}")
        except ValueError:
            return {}
    return raw if isinstance(raw, dict) else {}


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def parse_structured(text: str, request: ModelRequest) -> dict[str, Any]:
    """The JSON object in a reply, validated against the request's output model."""
    assert request.output is not None
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    if not body.startswith("{"):
        start, end = body.find("{"), body.rfind("}")
        if start == -1 or end <= start:
            raise ValueError("the reply contains no JSON object")
        body = body[start : end + 1]
    try:
        validated = request.output.model_validate_json(body)
    except ValidationError as exc:
        raise ValueError(str(exc)) from None
    data: dict[str, Any] = validated.model_dump(mode="json")
    return data
