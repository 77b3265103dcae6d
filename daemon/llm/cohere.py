"""Cohere's Chat API v2 (`POST /v2/chat`) over plain httpx; usage is taken from the billed
units, which are what Cohere charges for. The key goes into the Authorization header only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, ValidationError

from daemon.llm.base import Provider, ProviderInfo
from daemon.llm.types import ModelRequest, Reply, Usage

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


class AssistantMessage(_Wire):
    role: Literal["assistant"]
    content: list[ContentItem] = []
    """Absent when the model answered only with tool calls."""


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
        messages += [
            {
                "role": "assistant" if m.role == "assistant" else "user",
                "content": m.content or EMPTY_TURN,
            }
            for m in request.messages
        ]
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
        return body

    def parse(self, payload: Any) -> Reply:
        response = ChatResponse.model_validate(payload)
        text = "".join(c.text for c in response.message.content if isinstance(c, TextContent))
        return Reply(
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
