"""The OpenAI Chat Completions API, and every server that speaks it (LM Studio, vLLM, …).

It maps a ModelRequest to `POST {base_url}/chat/completions` and validates the reply; it must
never send the key anywhere but the Authorization header, nor send it when there is none.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ValidationError

from daemon.llm.base import (
    Provider,
    ProviderInfo,
    _Tally,
    chat_messages,
    function_tools,
    tool_arguments,
)
from daemon.llm.servers import UNKNOWN, Server, identify, json_mode_body
from daemon.llm.types import ModelRequest, ModelResponse, Reply, ToolCall, Usage

# Keywords OpenAI's strict structured outputs accept. Anything else (default, title, examples,
# minLength, discriminator, …) is dropped: pydantic still enforces it when the reply is
# validated, and the correction round reports a violation to the model.
_STRICT_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "description",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
    }
)
_STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
_DEFS_PREFIX = "#/$defs/"
# Reasoning families reject any temperature but the default ("Only the default (1) value is
# supported") and reject `max_tokens`.
_REASONING_MODEL = re.compile(r"^(?:o\d|gpt-5)")
_SCHEMA_NAME = re.compile(r"[^A-Za-z0-9_-]")


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` rewritten for OpenAI's strict mode: `$ref`s inlined, every object closed
    (`additionalProperties: false`) with all its properties required, `oneOf` as `anyOf`,
    unsupported keywords dropped. Recursive references stay as `$ref` into a kept `$defs`."""
    defs: dict[str, Any] = schema.get("$defs", {})
    recursive: set[str] = set()

    def walk(node: Any, stack: frozenset[str]) -> Any:
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            name = str(node["$ref"]).removeprefix(_DEFS_PREFIX)
            if name in stack:
                recursive.add(name)
                return {"$ref": _DEFS_PREFIX + name}
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            return walk({**defs[name], **siblings}, stack | {name})
        if len(node.get("allOf", ())) == 1:
            rest = {key: value for key, value in node.items() if key != "allOf"}
            return walk({**node["allOf"][0], **rest}, stack)
        if "oneOf" in node:
            node = {**{k: v for k, v in node.items() if k != "oneOf"}, "anyOf": node["oneOf"]}
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key not in _STRICT_KEYWORDS or (key == "format" and value not in _STRICT_FORMATS):
                continue
            if key == "properties":
                out[key] = {name: walk(sub, stack) for name, sub in value.items()}
            elif key == "anyOf":
                out[key] = [walk(sub, stack) for sub in value]
            elif key in ("items", "additionalProperties"):
                out[key] = walk(value, stack)
            else:
                out[key] = value
        if out.get("type") == "object" and out.get("additionalProperties") in (None, False):
            out["properties"] = out.get("properties", {})
            out["required"] = list(out["properties"])
            out["additionalProperties"] = False
        return out

    result: dict[str, Any] = walk(schema, frozenset())
    kept: dict[str, Any] = {}
    while pending := sorted(recursive - kept.keys()):
        for name in pending:
            kept[name] = walk(defs[name], frozenset({name}))
    if kept:
        result["$defs"] = kept
    return result


_LENGTH_KEYWORDS = frozenset({"maxLength", "minLength", "maxItems", "minItems"})


def grammar_schema(node: Any) -> Any:
    """`node` without length limits, for servers that compile the schema into a grammar
    (llama.cpp): `maxLength: 2000` becomes 2000 nested optional rules, past its parser's
    limits, and the server drops the connection. pydantic still enforces the limits when the
    reply is validated, and the correction round reports a violation."""
    if isinstance(node, list):
        return [grammar_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {k: grammar_schema(v) for k, v in node.items() if k not in _LENGTH_KEYWORDS}


def _has_open_map(node: Any) -> bool:
    """A `dict[str, X]` field: strict mode cannot express it, so the schema goes non-strict."""
    if isinstance(node, list):
        return any(_has_open_map(item) for item in node)
    if not isinstance(node, dict):
        return False
    if node.get("type") == "object" and node.get("additionalProperties") is not False:
        return True
    return any(_has_open_map(value) for value in node.values())


def _openai_host(host: str) -> bool:
    return host == "api.openai.com" or host.endswith((".openai.com", ".openai.azure.com"))


def _shape_error(exc: ValidationError) -> ValueError:
    """A one-line account of what the reply lacks (the base shows only the first line)."""
    problems = [f"{'.'.join(map(str, e['loc'])) or '(body)'}: {e['msg']}" for e in exc.errors()]
    return ValueError("; ".join(problems[:3]))


# -- the provider's JSON ---------------------------------------------------------------------


class _PromptDetails(BaseModel):
    cached_tokens: int | None = None


class _CompletionDetails(BaseModel):
    reasoning_tokens: int | None = None


class _Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    prompt_tokens_details: _PromptDetails | None = None
    completion_tokens_details: _CompletionDetails | None = None


class _Function(BaseModel):
    name: str
    arguments: Any = None


class _ToolCall(BaseModel):
    id: str | None = None
    function: _Function


class _Message(BaseModel):
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(BaseModel):
    message: _Message
    finish_reason: str | None = None


class _Completion(BaseModel):
    model: str
    choices: list[_Choice]
    usage: _Usage


class _ErrorObject(BaseModel):
    message: str
    code: str | int | None = None


class _ErrorBody(BaseModel):
    error: _ErrorObject | str


class OpenAIProvider(Provider):
    """`POST {base_url}/chat/completions`; base_url includes `/v1`, as OpenAI-compatible
    servers are configured (`http://127.0.0.1:1234/v1`)."""

    info = ProviderInfo(
        api="openai",
        default_base_url="https://api.openai.com/v1",
        key_env=("OPENAI_API_KEY",),
        priced=True,
        test_model="gpt-5.4-nano",
    )

    native_tools = True

    def endpoint(self, model: str) -> str:
        return "/chat/completions"

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._key}"} if self._key else {}

    def body(self, model: str, request: ModelRequest) -> dict[str, Any]:
        messages = chat_messages(request)
        body: dict[str, Any] = {"model": model, "messages": messages}
        # OpenAI's current name, required by its reasoning models; compatible local servers
        # (LM Studio, llama.cpp, older vLLM) may only know the older `max_tokens`.
        reasoning = _REASONING_MODEL.match(model) is not None
        modern = reasoning or _openai_host(self.host)
        body["max_completion_tokens" if modern else "max_tokens"] = request.max_output_tokens
        if request.temperature is not None and not reasoning:
            body["temperature"] = request.temperature
        schema = request.schema()
        if schema is not None and request.structured_mode == "json":
            # JSON mode, in the server's own words (`servers`): api.openai.com refuses extra
            # keys; llama.cpp takes the schema beside the type; vLLM its own parameter.
            if _openai_host(self.host):
                body["response_format"] = {"type": "json_object"}
            else:
                body |= json_mode_body(self.server, grammar_schema(schema))
        elif schema is not None and request.structured_mode == "schema":
            strict = strict_schema(schema)
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": _SCHEMA_NAME.sub("_", request.output_name)[:64] or "respond",
                    "description": request.output_description,
                    "schema": strict,
                    "strict": not _has_open_map(strict),
                },
            }
        if request.tools and request.tool_mode == "native":
            body["tools"] = function_tools(request)
            body["tool_choice"] = "auto"
        return body

    server: Server = UNKNOWN
    """The compatible server behind base_url, once JSON mode needed to know (`servers`)."""

    async def _complete(self, model: str, request: ModelRequest, tally: _Tally) -> ModelResponse:
        if request.output is not None and request.structured_mode == "json":
            if not _openai_host(self.host):
                self.server = await identify(
                    self._client, self.options.base_url, self.headers(), self.options.timeout_s
                )
            if self.server.kind == "lmstudio":  # no JSON mode: the schema in the instructions
                request = replace(request, structured_mode="prompt")
        return await super()._complete(model, request, tally)

    def parse(self, payload: Any) -> Reply:
        try:
            completion = _Completion.model_validate(payload)
        except ValidationError as exc:
            raise _shape_error(exc) from None
        if not completion.choices:
            raise ValueError("the response has no choices")
        choice = completion.choices[0]
        calls = tuple(
            ToolCall(
                call.id or f"call_{i}", call.function.name, tool_arguments(call.function.arguments)
            )
            for i, call in enumerate(choice.message.tool_calls or ())
        )
        if choice.message.content is None and not calls:
            if choice.message.refusal is not None:
                raise ValueError(f"{completion.model} refused: {choice.message.refusal}")
            raise ValueError(f"choices[0].message has no content (finish {choice.finish_reason})")
        usage = completion.usage
        prompt = usage.prompt_tokens_details or _PromptDetails()
        output = usage.completion_tokens_details or _CompletionDetails()
        return Reply(
            text=choice.message.content or "",
            usage=Usage(
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.completion_tokens,
                cached_input_tokens=prompt.cached_tokens or 0,
                reasoning_tokens=output.reasoning_tokens or 0,
            ),
            model=completion.model,
            finish_reason=choice.finish_reason,
            tool_calls=calls,
        )

    def error_detail(self, payload: Any) -> str | None:
        try:
            body = _ErrorBody.model_validate(payload)
        except ValidationError:
            return None
        if isinstance(body.error, str):  # some compatible servers: {"error": "…"}
            return body.error
        code = f" ({body.error.code})" if body.error.code else ""
        return body.error.message + code
