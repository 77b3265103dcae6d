"""A loopback stand-in for Cohere's Chat API v2 (`POST /v2/chat`).

It checks requests like the real service (`Authorization: Bearer`, required `model` and
`messages`, roles system/user/assistant/tool, non-empty content, `response_format` of type
`text` or `json_object` with an object `json_schema`) and answers with the real JSON: `id`,
`finish_reason` (`COMPLETE`, `MAX_TOKENS`, …), `message.content[]` items (`text`, and
`thinking` for reasoning models) and `usage` with `billed_units` and the larger processed
`tokens`; errors as `{"id": ..., "message": ...}`. One deliberate difference: a rejected key
is echoed in the error message, so tests can prove the client scrubs it.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Collection
from typing import Any

from tests.peers.scripted import FakeServer, Recorded, Scripted

DEFAULT_KEY = "co-fake-test-key-0000000000000000000000"
TEMPLATE_TOKENS = 200
"""Cohere processes (but does not bill) the chat template around the messages."""

ReplyValue = str | dict[str, Any]
"""Text, or an object sent as its JSON text."""
ReplyFn = Callable[[dict[str, Any]], ReplyValue]
ReplySpec = ReplyValue | ReplyFn | list[ReplyValue | ReplyFn]
"""A value, a function of the request JSON, or a list of those served in turn (last repeats)."""


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Scripted:
    """An error as Cohere sends one, e.g. `error_response(429, "You are using a Trial key…")`."""
    return Scripted(status, {"id": str(uuid.uuid4()), "message": message}, headers=headers or {})


def rate_limited(retry_after: float | None = None) -> Scripted:
    message = (
        "You are using a Trial key, which is limited to 20 API calls / minute. You can "
        "continue to use the Trial key for free or upgrade to a Production key."
    )
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    return error_response(429, message, headers)


class FakeCohere:
    """`with FakeCohere(key=..., reply=...) as fake:` then point a provider at `fake.url`.

    `usage` is sent verbatim as the response's `usage` object (default: billed units estimated
    from text length, processed `tokens` larger by the template); `thinking` adds a thinking
    content item before the text; `finish_reason` is what every answer reports.
    """

    def __init__(
        self,
        *,
        key: str = DEFAULT_KEY,
        reply: ReplySpec = "All checks look healthy.",
        usage: dict[str, Any] | None = None,
        thinking: str | None = None,
        finish_reason: str = "COMPLETE",
        models: Collection[str] | None = None,
        echo_key: bool = True,
        tools: Callable[[dict[str, Any]], list[tuple[str, dict[str, Any]]] | None] | None = None,
    ) -> None:
        self.tools = tools
        """Request JSON → calls answered as `message.tool_calls` (arguments a JSON string)
        with a `tool_plan` and finish_reason TOOL_CALL, or None for text."""
        self.key = key
        self.replies = list(reply) if isinstance(reply, list) else [reply]
        self.usage = usage
        self.thinking = thinking
        self.finish_reason = finish_reason
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

    def __enter__(self) -> FakeCohere:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def handle(self, request: Recorded) -> Scripted:
        if request.method != "POST" or request.path.split("?")[0] != "/v2/chat":
            return error_response(404, f"route not found: {request.path}")
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return error_response(401, "no api key supplied")
        if presented != self.key:
            shown = f" ({presented})" if self.echo_key else ""
            return error_response(401, f"invalid api token{shown}")
        try:
            body = request.json()
        except ValueError:
            return error_response(400, "invalid request: body must be valid JSON")
        problem = _problem(body)
        if problem:
            return error_response(400, f"invalid request: {problem}")
        if self.models is not None and body["model"] not in self.models:
            message = f"model '{body['model']}' not found, make sure the correct model ID was used"
            return error_response(404, message)
        return Scripted(200, self._answer(body), headers={"x-debug-trace-id": uuid.uuid4().hex})

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            spec = self.replies[min(self.served, len(self.replies) - 1)]
            self.served += 1
        value = spec(body) if callable(spec) else spec
        text = value if isinstance(value, str) else json.dumps(value)
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if self.thinking:
            content.insert(0, {"type": "thinking", "thinking": self.thinking})
        billed_in, billed_out = _tokens(json.dumps(body["messages"])), _tokens(text)
        usage = self.usage or {
            "billed_units": {"input_tokens": billed_in, "output_tokens": billed_out},
            "tokens": {"input_tokens": billed_in + TEMPLATE_TOKENS, "output_tokens": billed_out},
        }
        calls = self.tools(body) if self.tools is not None and body.get("tools") else None
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message = {
                "role": "assistant",
                "tool_plan": "I will look this up.",
                "tool_calls": [
                    {
                        "id": f"{n}_{uuid.uuid4().hex[:12]}",
                        "type": "function",
                        "function": {"name": n, "arguments": json.dumps(a)},
                    }
                    for n, a in calls
                ],
            }
        return {
            "id": str(uuid.uuid4()),
            "message": message,
            "finish_reason": "TOOL_CALL" if calls else self.finish_reason,
            "usage": usage,
        }


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _problem(body: Any) -> str | None:
    """What the real API would reject in this body, or None."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model must be specified"
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return "messages must contain at least one message"
    asked: set[str] = set()
    for i, message in enumerate(body["messages"]):
        role = message.get("role")
        if role not in ("system", "user", "assistant", "tool"):
            return f"messages[{i}]: role must be one of system, user, assistant, tool"
        content = message.get("content")
        calls = message.get("tool_calls") or []
        asked |= {c.get("id") for c in calls}
        if role == "tool" and message.get("tool_call_id") not in asked:
            return f"messages[{i}]: tool_call_id {message.get('tool_call_id')!r} not found"
        empty = not content or (isinstance(content, str) and not content.strip())
        if role != "tool" and empty and not calls:
            return f"messages[{i}]: message must be at least 1 token long"
    max_tokens = body.get("max_tokens", 1)
    if not isinstance(max_tokens, int) or max_tokens < 1:
        return "max_tokens must be a positive integer"
    temperature = body.get("temperature", 0.3)
    if not isinstance(temperature, int | float) or temperature < 0:
        return "temperature must be a non-negative number"
    if body.get("stream"):
        return "this fake only answers stream=false"
    response_format = body.get("response_format")
    if response_format is not None:
        if response_format.get("type") not in ("text", "json_object"):
            return "response_format.type must be one of text, json_object"
        schema = response_format.get("json_schema")
        if schema is not None and (not isinstance(schema, dict) or schema.get("type") != "object"):
            return "response_format.json_schema must be a JSON schema of type object"
    return None
