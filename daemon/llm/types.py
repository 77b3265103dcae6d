"""One request/response/usage shape for every model provider, and the errors they raise.

Nothing here performs I/O. Error messages name the provider and what to do; they never carry
a key (providers scrub their error bodies before building one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel

Role = Literal["user", "assistant", "tool"]

StructuredMode = Literal["schema", "json", "prompt"]
"""How structured output is asked for, strongest first: the API's JSON-schema mode; its JSON
mode with the schema passed where the API takes one (and in the instructions); the schema in
the instructions only. All three are validated, with one correction round."""
STRUCTURED_MODES: tuple[StructuredMode, ...] = ("schema", "json", "prompt")

ToolMode = Literal["native", "none"]
TOOL_MODES: tuple[ToolMode, ...] = ("native", "none")

ThinkLevel = Literal["low", "medium", "high"]
THINK_LEVELS: tuple[ThinkLevel, ...] = ("low", "medium", "high")
Think = bool | ThinkLevel
"""What to ask of a thinking model (Ollama's `think`): on, off, or a level (gpt-oss)."""
ThinkMode = Literal["native", "none"]
""""native": `think` is sent as configured; "none": the model refused it, so it is not."""
THINK_MODES: tuple[ThinkMode, ...] = ("native", "none")


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may ask for: a name, what it does, a JSON Schema of arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """One call the model asked for. `arguments` is whatever the model sent: untrusted."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    """On an assistant turn: the calls it asked for."""
    tool_call_id: str | None = None
    """On a tool turn: the call this is the result of."""
    tool_name: str | None = None
    """On a tool turn: the tool's name (Gemini and Ollama match results by name)."""


@dataclass(frozen=True)
class ModelRequest:
    """What to ask. `output` asks for structured output validated against that model."""

    messages: tuple[ChatMessage, ...]
    system: str | None = None
    output: type[BaseModel] | None = None
    output_name: str = "respond"
    """Name of the schema / forced tool, where a provider needs one."""
    output_description: str = "Reply with the structured result."
    max_output_tokens: int = 1024
    temperature: float | None = 0.2
    structured_mode: StructuredMode = "schema"
    """The strongest structured mode to try; weaker ones follow on a clear refusal."""
    corrections: int = 1
    """Correction rounds allowed for an invalid structured reply (0: none — when the money
    for a second, longer request is not there)."""
    tools: tuple[ToolSpec, ...] = ()
    tool_mode: ToolMode = "native"
    """"none": the tools are not sent (the model does not support them)."""
    think: Think | None = None
    """The configured thinking for this model (None: the server's default is left alone)."""
    think_mode: ThinkMode = "native"

    @classmethod
    def ask(cls, prompt: str, **kwargs: Any) -> ModelRequest:
        return cls(messages=(ChatMessage("user", prompt),), **kwargs)

    def schema(self) -> dict[str, Any] | None:
        return None if self.output is None else self.output.model_json_schema()

    def with_correction(self, reply: str, problem: str) -> ModelRequest:
        """The same request plus the invalid reply and what was wrong with it."""
        note = (
            "Your reply did not match the required JSON schema: "
            f"{problem[:1500]}\nReply again with only a JSON object that matches the schema."
        )
        return replace(
            self,
            messages=(
                *self.messages,
                ChatMessage("assistant", reply[:4000]),
                ChatMessage("user", note),
            ),
        )

    def prompt_bytes(self) -> int:
        """The prompt's size in UTF-8 bytes: an upper bound of its tokens for the byte-level
        tokenizers cloud models use, whatever the script (a token is at least one byte).
        Tool definitions and calls count too: they are sent as JSON text."""
        texts = [self.system or "", *(m.content for m in self.messages)]
        texts += [json.dumps(c.arguments) + c.name for m in self.messages for c in m.tool_calls]
        if self.tool_mode == "native":
            texts += [json.dumps(t.parameters) + t.name + t.description for t in self.tools]
        return sum(len(text.encode("utf-8")) for text in texts)

    def instructed_system(self) -> str | None:
        """The system prompt plus, when the mode does not constrain the output by schema,
        the schema spelled out (the word JSON included: OpenAI's JSON mode requires it)."""
        schema = self.schema()
        if schema is None or self.structured_mode == "schema":
            return self.system
        note = (
            "Reply with only one JSON object (no prose, no code fence) that matches this JSON "
            f"Schema:\n{json.dumps(schema, separators=(',', ':'))}"
        )
        return f"{self.system}\n\n{note}" if self.system else note


@dataclass(frozen=True)
class Usage:
    """Token counts in one convention for all providers.

    `input_tokens` is the whole input, including cache reads and writes; `output_tokens` is the
    whole billed output, including reasoning/thinking tokens.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    """Cache reads (a part of input_tokens)."""
    cache_write_tokens: int = 0
    """Cache writes (a part of input_tokens; Anthropic's cache creation)."""
    reasoning_tokens: int = 0
    """Thinking tokens (a part of output_tokens)."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )


@dataclass(frozen=True)
class Reply:
    """What a provider module extracts from one successful HTTP response."""

    text: str
    usage: Usage
    model: str | None = None
    """The model the provider says answered (may be more specific than requested)."""
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    thinking: str | None = None
    """A thinking model's reasoning, apart from the answer: never parsed, never shown (only
    logged at debug level); its tokens are in the usage as the provider reports them."""


@dataclass(frozen=True)
class ModelResponse:
    text: str
    usage: Usage
    provider: str
    model: str
    host: str
    """Where the request went: the audit trail's destination."""
    latency_ms: float
    request_bytes: int
    attempts: int = 1
    """HTTP requests made, including retries and the structured-output correction."""
    data: dict[str, Any] | None = None
    """The validated structured output, when the request asked for one."""
    finish_reason: str | None = None
    served_model: str | None = None
    """The exact model the provider says answered (e.g. a dated snapshot)."""
    tool_calls: tuple[ToolCall, ...] = ()
    structured_mode: StructuredMode | None = None
    """The structured mode that answered (None when no structured output was asked)."""
    tool_mode: ToolMode | None = None
    """Whether tools went natively (None when the request had none)."""
    think_mode: ThinkMode | None = None
    """Whether `think` went as configured (None when none was configured)."""
    thinking: str | None = None
    """The reasoning the model returned apart from its answer (see Reply.thinking)."""
    refused: tuple[str, ...] = ()
    """Features this call found refused, e.g. ("structured:schema", "tools:native")."""


# -- errors -----------------------------------------------------------------------------------


@dataclass(eq=False)
class ProviderError(Exception):
    """A model call failed. `outcome` is what the ledger records."""

    provider: str
    message: str
    outcome: str = "error"
    usage: Usage = field(default_factory=Usage)
    """Tokens already spent before the failure (e.g. an invalid structured reply)."""
    host: str = ""
    request_bytes: int = 0
    """Bytes of requests that left this machine (a refused connection sends none)."""
    attempts: int = 0
    transmitted: bool = True
    """False when this attempt's request never left (connection refused or not made)."""
    refused: tuple[str, ...] = ()
    """Features found refused before this failure (see ModelResponse.refused)."""

    def __str__(self) -> str:
        return f"{self.provider}: {self.message}"


@dataclass(eq=False)
class ProviderHTTPError(ProviderError):
    status: int = 0
    body_excerpt: str = ""
    retry_after: float | None = None

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


@dataclass(eq=False)
class ProviderAuthError(ProviderHTTPError):
    """401/403: the key was rejected. Never retried."""


@dataclass(eq=False)
class ProviderTimeout(ProviderError):
    """No answer within the per-call deadline."""


@dataclass(eq=False)
class ProviderUnavailable(ProviderError):
    """Could not connect (refused, DNS, TLS), or the model is not available there."""


@dataclass(eq=False)
class ProviderResponseError(ProviderError):
    """The provider answered 2xx with something that is not its documented JSON."""


@dataclass(eq=False)
class StructuredOutputError(ProviderError):
    """The reply did not match the schema, even after one correction."""


@dataclass(eq=False)
class MissingKeyError(ProviderError):
    """No key for a provider that needs one."""
