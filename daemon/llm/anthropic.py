"""Anthropic's Messages API (`POST /v1/messages`) over plain httpx; structured output is a
forced tool call. The key goes into the `x-api-key` header and nowhere else.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, ValidationError

from daemon.llm.base import Provider, ProviderInfo
from daemon.llm.types import ModelRequest, Reply, ToolCall, Usage

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
    id: str = ""


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

    structured_modes = ("schema", "prompt")  # no JSON mode: a forced tool, or instructions
    native_tools = True

    def endpoint(self, model: str) -> str:
        return "/v1/messages"

    def headers(self) -> dict[str, str]:
        key = self.require_key()
        return {"x-api-key": key, "anthropic-version": API_VERSION}

    def body(self, model: str, request: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_output_tokens,
            "messages": _messages(request),
        }
        system = request.instructed_system()
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        tools: list[dict[str, Any]] = []
        if request.tools and request.tool_mode == "native":
            tools = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
            body["tools"] = tools
        schema = request.schema()
        if schema is not None and request.structured_mode == "schema":
            tool = {
                "name": request.output_name,
                "description": request.output_description,
                "input_schema": schema,
            }
            body["tools"] = [*tools, tool]
            body["tool_choice"] = {"type": "tool", "name": request.output_name}
        return body

    def parse(self, payload: Any) -> Reply:
        message = MessageResponse.model_validate(payload)
        uses = [b for b in message.content if isinstance(b, ToolUseBlock)]
        text = "".join(b.text for b in message.content if isinstance(b, TextBlock))
        if uses and not text:
            # A forced tool's input *is* the structured result; base validates the JSON text.
            text = json.dumps(uses[0].input)
        return Reply(
            tool_calls=tuple(
                ToolCall(b.id or f"toolu_{i}", b.name, b.input) for i, b in enumerate(uses)
            ),
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


def _messages(request: ModelRequest) -> list[dict[str, Any]]:
    """Messages API turns: an assistant's tool calls as `tool_use` blocks, and the results of
    consecutive tool turns together in one user turn of `tool_result` blocks (the API wants
    every result of a turn's calls in the next user message)."""
    turns: list[dict[str, Any]] = []
    for m in request.messages:
        if m.role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": m.tool_call_id or "",
                "content": m.content,
            }
            last = turns[-1] if turns else None
            if last and last["role"] == "user" and isinstance(last["content"], list):
                last["content"].append(block)
            else:
                turns.append({"role": "user", "content": [block]})
        elif m.tool_calls:
            blocks: list[dict[str, Any]] = (
                [{"type": "text", "text": m.content}] if m.content else []
            )
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                for c in m.tool_calls
            ]
            turns.append({"role": "assistant", "content": blocks})
        else:
            turns.append({"role": m.role, "content": m.content or EMPTY_TURN})
    return turns
