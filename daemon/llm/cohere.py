"""Cohere's Chat API v2 (`POST /v2/chat`) over plain httpx; usage is taken from the billed
units, which are what Cohere charges for. The key goes into the Authorization header only.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, ValidationError

from daemon.llm.base import Provider, ProviderInfo, function_tools, tool_arguments
from daemon.llm.types import ChatMessage, ModelRequest, Reply, ToolCall, Usage

EMPTY_TURN = "(empty reply)"
"""Stands in for an empty assistant turn: Cohere rejects a message without content."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class TextContent(_Wire):
    type: Literal["text"]
    text: str


class OtherContent(_Wire):
    """`thinking` (reasoning models) and any later kinds: not part of the answer."""

    type: str


def _content_kind(item: Any) -> str:
    kind = item.get("type") if isinstance(item, dict) else getattr(item, "type", None)
    return "text" if kind == "text" else "other"


ContentItem = Annotated[
    Annotated[TextContent, Tag("text")] | Annotated[OtherContent, Tag("other")],
    Discriminator(_content_kind),
]


class _Function(_Wire):
    name: str
    arguments: Any = None


class _ToolCall(_Wire):
    id: str | None = None
    function: _Function


class AssistantMessage(_Wire):
    role: Literal["assistant"]
    content: list[ContentItem] = []
    """Absent when the model answered only with tool calls."""
    tool_plan: str | None = None
    tool_calls: list[_ToolCall] | None = None


class BilledUnits(_Wire):
    input_tokens: int
    output_tokens: int


class TokenCounts(_Wire):
    input_tokens: int | None = None
    output_tokens: int | None = None


class CohereUsage(_Wire):
    billed_units: BilledUnits
    tokens: TokenCounts | None = None
    """Processed tokens (chat template included): informative, not what is charged."""

    def to_usage(self) -> Usage:
        return Usage(
            input_tokens=self.billed_units.input_tokens,
            output_tokens=self.billed_units.output_tokens,
        )


class ChatResponse(_Wire):
    id: str
    finish_reason: str
    message: AssistantMessage
    usage: CohereUsage


class ErrorResponse(_Wire):
    message: str
    id: str | None = None


class CohereProvider(Provider):
    native_tools = True
    info = ProviderInfo(
        api="cohere",
        default_base_url="https://api.cohere.com",
        key_env=("COHERE_API_KEY", "CO_API_KEY"),
        priced=True,
        test_model="command-r7b-12-2024",
    )

    def endpoint(self, model: str) -> str:
        return "/v2/chat"

    def headers(self) -> dict[str, str]:
        key = self.require_key()
        return {"Authorization": f"Bearer {key}"}

    def body(self, model: str, request: ModelRequest) -> dict[str, Any]:
        messages: list[dict[str, str]] = []
        system = request.instructed_system()
        if system:
            messages.append({"role": "system", "content": system})
        messages += [_message(m) for m in request.messages]
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "max_tokens": request.max_output_tokens,
            "stream": False,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        schema = request.schema()
        if schema is not None and request.structured_mode == "schema":
            body["response_format"] = {"type": "json_object", "json_schema": schema}
        elif schema is not None and request.structured_mode == "json":
            body["response_format"] = {"type": "json_object"}
        if request.tools and request.tool_mode == "native":
            body["tools"] = function_tools(request)
        return body

    def parse(self, payload: Any) -> Reply:
        response = ChatResponse.model_validate(payload)
        text = "".join(c.text for c in response.message.content if isinstance(c, TextContent))
        calls = tuple(
            ToolCall(c.id or f"call_{i}", c.function.name, tool_arguments(c.function.arguments))
            for i, c in enumerate(response.message.tool_calls or ())
        )
        return Reply(
            tool_calls=calls,
            text=text,
            usage=response.usage.to_usage(),
            model=None,  # Cohere does not say which model snapshot answered.
            finish_reason=response.finish_reason,
        )

    def error_detail(self, payload: Any) -> str | None:
        try:
            return ErrorResponse.model_validate(payload).message
        except ValidationError:
            return None


def _message(m: ChatMessage) -> dict[str, Any]:
    """A v2 chat message: an assistant's calls with its `tool_plan`, a result as a `tool`
    message of one document."""
    if m.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": m.tool_call_id or "",
            "content": [{"type": "document", "document": {"data": m.content}}],
        }
    if m.tool_calls:
        return {
            "role": "assistant",
            "tool_plan": m.content or "Looking this up.",
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                }
                for c in m.tool_calls
            ],
        }
    return {"role": m.role, "content": m.content or EMPTY_TURN}
