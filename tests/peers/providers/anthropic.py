"""A loopback stand-in for Anthropic's Messages API (`POST /v1/messages`, version 2023-06-01).

It checks requests the way the real service does (x-api-key, anthropic-version, required
`model`/`max_tokens`/`messages`, no unknown top-level fields, non-empty text, roles, a forced
tool that exists) and answers with the real JSON: `message` objects with `id`, `type`, `role`,
`model`, `content` blocks (`text`, or `tool_use` when a tool is forced), `stop_reason` and
`usage` with the cache fields; errors as `{"type": "error", "error": {...}, "request_id"}`.
One deliberate difference: a rejected key is echoed in the error message, so tests can prove
the client scrubs it.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Collection
from typing import Any

from tests.peers.scripted import FakeServer, Recorded, Scripted

DEFAULT_KEY = "sk-ant-api03-fake-test-key"
API_VERSIONS = {"2023-06-01", "2023-01-01"}
TOP_LEVEL = {
    "model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k",
    "stop_sequences", "stream", "metadata", "tools", "tool_choice", "thinking", "service_tier",
}  # fmt: skip
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

ReplyValue = str | dict[str, Any]
"""Text, or an object: the forced tool's `input` (or JSON text when no tool is forced)."""
ReplyFn = Callable[[dict[str, Any]], ReplyValue]
ReplySpec = ReplyValue | ReplyFn | list[ReplyValue | ReplyFn]
"""A value, a function of the request JSON, or a list of those served in turn (last repeats)."""


def error_response(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> Scripted:
    """An error exactly as Anthropic sends one, e.g. `error_response(529, "overloaded_error",
    "Overloaded")`."""
    request_id = f"req_{uuid.uuid4().hex[:24]}"
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
    return Scripted(status, body, headers={"request-id": request_id, **(headers or {})})


def overloaded() -> Scripted:
    return error_response(529, "overloaded_error", "Overloaded")


def rate_limited(retry_after: float = 1) -> Scripted:
    message = (
        "This request would exceed the rate limit for your organization of 50,000 input "
        "tokens per minute. Please reduce the prompt length or the maximum tokens requested."
    )
    return error_response(429, "rate_limit_error", message, {"retry-after": f"{retry_after:g}"})


def message_body(
    content: list[dict[str, Any]],
    *,
    model: str = "claude-sonnet-4-5-20250929",
    stop_reason: str = "end_turn",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete `message` response around the given content blocks."""
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage
        or {
            "input_tokens": 10,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 5,
            "service_tier": "standard",
        },
    }


class FakeAnthropic:
    """`with FakeAnthropic(key=..., reply=...) as fake:` then point a provider at `fake.url`.

    `usage` is sent verbatim as the response's `usage` object, or computed from the request
    JSON by a function (default: estimated from text length, cache fields 0); `models`
    restricts which models exist (404 otherwise).
    """

    def __init__(
        self,
        *,
        key: str = DEFAULT_KEY,
        reply: ReplySpec = "All checks look healthy.",
        usage: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        models: Collection[str] | None = None,
        echo_key: bool = True,
        tools: Callable[[dict[str, Any]], list[tuple[str, dict[str, Any]]] | None] | None = None,
    ) -> None:
        self.tools = tools
        """Request JSON → the tool calls to answer with (`tool_use` blocks, stop_reason
        "tool_use"), or None for a text reply; only when tools are offered, none forced."""
        self.key = key
        self.replies = list(reply) if isinstance(reply, list) else [reply]
        self.usage = usage
        self.models = models
        self.echo_key = echo_key
        self.served = 0
        self._lock = threading.Lock()
        self.server = FakeServer(self.handle)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def requests(self) -> list[Recorded]:
        return self.server.requests

    def __enter__(self) -> FakeAnthropic:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def handle(self, request: Recorded) -> Scripted:
        if request.method != "POST" or request.path.split("?")[0] != "/v1/messages":
            return error_response(404, "not_found_error", "Not Found")
        presented = request.headers.get("x-api-key")
        if not presented:
            return error_response(401, "authentication_error", "x-api-key header is required")
        if presented != self.key:
            shown = f" ({presented})" if self.echo_key else ""
            return error_response(401, "authentication_error", f"invalid x-api-key{shown}")
        version = request.headers.get("anthropic-version")
        if version not in API_VERSIONS:
            why = "header is required" if version is None else f"invalid version {version}"
            return error_response(400, "invalid_request_error", f"anthropic-version: {why}")
        try:
            body = request.json()
        except ValueError:
            return error_response(
                400, "invalid_request_error", "The request body is not valid JSON"
            )
        problem = _problem(body)
        if problem:
            return error_response(400, "invalid_request_error", problem)
        if self.models is not None and body["model"] not in self.models:
            return error_response(404, "not_found_error", f"model: {body['model']}")
        return Scripted(200, self._answer(body), headers={"request-id": f"req_{uuid.uuid4().hex}"})

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            spec = self.replies[min(self.served, len(self.replies) - 1)]
            self.served += 1
        value = spec(body) if callable(spec) else spec
        choice = body.get("tool_choice") or {}
        forced = choice.get("name") if choice.get("type") == "tool" else None
        calls = self.tools(body) if self.tools and body.get("tools") and not forced else None
        if calls:
            content = [
                {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": n, "input": a}
                for n, a in calls
            ]
            stop, out_text = "tool_use", json.dumps([a for _, a in calls])
        elif isinstance(value, dict) and forced:
            block = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": forced}
            content, stop, out_text = [{**block, "input": value}], "tool_use", json.dumps(value)
        else:
            out_text = value if isinstance(value, str) else json.dumps(value)
            content, stop = [{"type": "text", "text": out_text}], "end_turn"
        prompt = json.dumps(body["messages"]) + json.dumps(body.get("system", ""))
        usage = (self.usage(body) if callable(self.usage) else self.usage) or {
            "input_tokens": _tokens(prompt),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": _tokens(out_text),
            "service_tier": "standard",
        }
        return message_body(content, model=body["model"], stop_reason=stop, usage=usage)


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _problem(body: Any) -> str | None:
    """What the real API would reject in this body (its wording), or None."""
    if not isinstance(body, dict):
        return "body: Input should be an object"
    extra = sorted(set(body) - TOP_LEVEL)
    if extra:
        return f"{extra[0]}: Extra inputs are not permitted"
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return f"{name}: Field required"
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    temperature = body.get("temperature", 0)
    if not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
        return "temperature: Input should be less than or equal to 1"
    if not isinstance(body["messages"], list) or not body["messages"]:
        return "messages: at least one message is required"
    for i, message in enumerate(body["messages"]):
        if message.get("role") not in ("user", "assistant"):
            return (
                f'messages.{i}.role: Unexpected role "{message.get("role")}". The Messages API '
                'accepts a top-level `system` parameter, not "system" as an input message role.'
            )
        content = message.get("content")
        if isinstance(content, str) and not content.strip():
            return f"messages.{i}: text content blocks must contain non-whitespace text"
        problem = _result_problem(body["messages"], i)
        if problem:
            return problem
    return _tool_problem(body)


def _result_problem(messages: list[Any], i: int) -> str | None:
    """Each `tool_result` must answer a `tool_use` of the message right before it."""
    content = messages[i].get("content")
    if not isinstance(content, list):
        return None
    previous = messages[i - 1].get("content") if i else None
    asked = {b.get("id") for b in previous or [] if isinstance(b, dict)}
    for j, block in enumerate(content):
        result = isinstance(block, dict) and block.get("type") == "tool_result"
        if result and block.get("tool_use_id") not in asked:
            return (
                f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                f"`tool_result` blocks: {block.get('tool_use_id')}. Each `tool_result` "
                "block must have a corresponding `tool_use` block in the previous message."
            )
    return None


def _tool_problem(body: dict[str, Any]) -> str | None:
    names = []
    for i, tool in enumerate(body.get("tools", [])):
        if not TOOL_NAME.match(str(tool.get("name", ""))):
            return f"tools.{i}.custom.name: String should match pattern '{TOOL_NAME.pattern}'"
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return f"tools.{i}.custom.input_schema.type: Input should be 'object'"
        names.append(tool["name"])
    choice = body.get("tool_choice")
    if choice is not None and choice.get("type") == "tool" and choice.get("name") not in names:
        return f"tool_choice: tool {choice.get('name')!r} was not found in tools"
    return None
