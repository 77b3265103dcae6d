"""Anthropic's Messages API (`POST /v1/messages`) over plain httpx; structured output is a
forced tool call. The key goes into the `x-api-key` header and nowhere else.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, ValidationError

from daemon.llm.base import Provider, ProviderInfo
from daemon.llm.types import ModelRequest, Reply, Usage

API_VERSION = "2023-06-01"
EMPTY_TURN = "(empty reply)"
"""Stands in for an empty assistant turn: Anthropic rejects empty text content."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class TextBlock(_Wire):
    type: Literal["text"]
    text: str


class ToolUseBlock(_Wire):
    type: Literal["tool_use"]
    name: str
    input: dict[str, Any]


class OtherBlock(_Wire):
    """thinking, redacted_thinking, server tool results, …: not part of the answer."""

    type: str


def _block_kind(block: Any) -> str:
    kind = block.get("type") if isinstance(block, dict) else getattr(block, "type", None)
    return kind if kind in ("text", "tool_use") else "other"


ContentBlock = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ToolUseBlock, Tag("tool_use")]
    | Annotated[OtherBlock, Tag("other")],
    Discriminator(_block_kind),
]


class AnthropicUsage(_Wire):
    input_tokens: int
    """Only the uncached part of the input."""
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None

    def to_usage(self) -> Usage:
        written = self.cache_creation_input_tokens or 0
        read = self.cache_read_input_tokens or 0
        return Usage(
            input_tokens=self.input_tokens + written + read,
            output_tokens=self.output_tokens,
            cached_input_tokens=read,
            cache_write_tokens=written,
        )


class MessageResponse(_Wire):
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[ContentBlock]
    stop_reason: str | None = None
    usage: AnthropicUsage


class _ErrorInner(_Wire):
    type: str
    message: str


class ErrorResponse(_Wire):
    type: Literal["error"]
    error: _ErrorInner


class AnthropicProvider(Provider):
    info = ProviderInfo(
        api="anthropic",
        default_base_url="https://api.anthropic.com",
        key_env=("ANTHROPIC_API_KEY",),
        priced=True,
        test_model="claude-haiku-4-5",
    )

    def endpoint(self, model: str) -> str:
        return "/v1/messages"

    def headers(self) -> dict[str, str]:
        key = self.require_key()
        return {"x-api-key": key, "anthropic-version": API_VERSION}

    def body(self, model: str, request: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_output_tokens,
            "messages": [
                {"role": m.role, "content": m.content or EMPTY_TURN} for m in request.messages
            ],
        }
        if request.system:
            body["system"] = request.system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        schema = request.schema()
        if schema is not None:
            tool = {
                "name": request.output_name,
                "description": request.output_description,
                "input_schema": schema,
            }
            body["tools"] = [tool]
            body["tool_choice"] = {"type": "tool", "name": request.output_name}
        return body

    def parse(self, payload: Any) -> Reply:
        message = MessageResponse.model_validate(payload)
        tool_call = next((b for b in message.content if isinstance(b, ToolUseBlock)), None)
        if tool_call is not None:
            # The forced tool's input *is* the structured result; base validates the JSON text.
            text = json.dumps(tool_call.input)
        else:
            text = "".join(b.text for b in message.content if isinstance(b, TextBlock))
        return Reply(
            text=text,
            usage=message.usage.to_usage(),
            model=message.model,
            finish_reason=message.stop_reason,
        )

    def error_detail(self, payload: Any) -> str | None:
        try:
            error = ErrorResponse.model_validate(payload).error
        except ValidationError:
            return None
        return f"{error.type}: {error.message}"
