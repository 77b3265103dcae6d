"""Google's Gemini API (`POST /v1beta/models/{model}:generateContent`) over plain httpx, with
JSON Schema rewritten to Gemini's OpenAPI subset. The key goes into `x-goog-api-key` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from daemon.llm.base import Provider, ProviderInfo
from daemon.llm.types import ModelRequest, Reply, ToolCall, Usage

EMPTY_TURN = "(empty reply)"
"""Stands in for an empty turn: Gemini rejects an empty text part."""

BLOCKED_FINISH = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE"}
)
"""finishReason values meaning the answer was withheld, not completed."""

# -- responseSchema: Gemini's subset of OpenAPI 3.0 ------------------------------------------

_TYPES = {"string", "number", "integer", "boolean", "array", "object"}
_FORMATS = {
    "STRING": {"enum", "date-time"},
    "NUMBER": {"float", "double"},
    "INTEGER": {"int32", "int64"},
}
_COPIED = ("minItems", "maxItems", "minimum", "maximum")

Node = Mapping[str, Any]


def gemini_schema(schema: Node) -> dict[str, Any]:
    """A JSON Schema (as pydantic writes it) rewritten as a Gemini `responseSchema`: `$ref`s
    inlined, `anyOf` with null turned into `nullable`, unsupported keywords dropped."""
    defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    return _convert(schema, defs, ())


def _convert(node: Node, defs: Node, seen: tuple[str, ...]) -> dict[str, Any]:
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        if name in seen:
            raise ValueError(f"recursive schema ({name}) cannot be a Gemini responseSchema")
        if name not in defs:
            raise ValueError(f"unresolved $ref {node['$ref']!r}")
        target = _convert(defs[name], defs, (*seen, name))
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return {**target, **_convert(rest, defs, seen)} if rest else target
    if "allOf" in node:
        merged: dict[str, Any] = {}
        for part in node["allOf"]:
            merged |= _convert(part, defs, seen)
        rest = {k: v for k, v in node.items() if k != "allOf"}
        return {**merged, **_convert(rest, defs, seen)}
    variants = node.get("anyOf") or node.get("oneOf")
    kind = node.get("type")
    if isinstance(kind, list):  # {"type": ["string", "null"]}
        variants = [{**node, "type": t} for t in kind]
    if variants:
        return _union(node, variants, defs, seen)
    return _plain(node, defs, seen)


def _union(node: Node, variants: list[Any], defs: Node, seen: tuple[str, ...]) -> dict[str, Any]:
    others = [v for v in variants if v.get("type") != "null"]
    converted = [_convert(v, defs, seen) for v in others]
    out: dict[str, Any] = converted[0] if len(converted) == 1 else {"anyOf": converted}
    if len(others) < len(variants):
        out["nullable"] = True
    if "description" in node:
        out["description"] = node["description"]
    return out


def _plain(node: Node, defs: Node, seen: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kind = node.get("type")
    enum = [node["const"]] if "const" in node else node.get("enum")
    if enum is not None and all(isinstance(v, str) for v in enum):
        kind = kind or "string"
    else:
        enum = None  # Gemini enums are strings only; the reply is still validated after.
    if kind == "null":
        return {"nullable": True}
    if kind in _TYPES:
        out["type"] = kind.upper()
    if "format" in node and node["format"] in _FORMATS.get(out.get("type", ""), ()):
        out["format"] = node["format"]
    if "description" in node:
        out["description"] = node["description"]
    if enum is not None:
        out["enum"] = enum
    if "properties" in node:
        properties = node["properties"]
        out["properties"] = {k: _convert(v, defs, seen) for k, v in properties.items()}
        out["propertyOrdering"] = list(properties)
    if node.get("required"):
        out["required"] = list(node["required"])
    if "items" in node and isinstance(node["items"], Mapping):
        out["items"] = _convert(node["items"], defs, seen)
    out.update({k: node[k] for k in _COPIED if k in node})
    return out


# -- the response JSON -----------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, alias_generator=to_camel)


class FunctionCall(_Wire):
    name: str
    args: dict[str, Any] = {}
    id: str | None = None


class Part(_Wire):
    text: str | None = None
    thought: bool = False
    function_call: FunctionCall | None = None


class Content(_Wire):
    parts: list[Part] = []
    role: str | None = None


class Candidate(_Wire):
    content: Content | None = None
    finish_reason: str | None = None


class PromptFeedback(_Wire):
    block_reason: str | None = None


class UsageMetadata(_Wire):
    prompt_token_count: int = 0
    """Includes cached_content_token_count."""
    candidates_token_count: int = 0
    thoughts_token_count: int = 0
    """Billed as output, not part of candidates_token_count."""
    cached_content_token_count: int = 0

    def to_usage(self) -> Usage:
        return Usage(
            input_tokens=self.prompt_token_count,
            output_tokens=self.candidates_token_count + self.thoughts_token_count,
            cached_input_tokens=self.cached_content_token_count,
            reasoning_tokens=self.thoughts_token_count,
        )


class GenerateContentResponse(_Wire):
    candidates: list[Candidate] = []
    prompt_feedback: PromptFeedback | None = None
    usage_metadata: UsageMetadata
    model_version: str | None = None


class _ErrorDetail(_Wire):
    reason: str | None = None
    retry_delay: str | None = None
    """google.rpc.RetryInfo, e.g. "37s"."""


class _Status(_Wire):
    code: int
    message: str
    status: str | None = None
    details: list[_ErrorDetail] = []


class ErrorResponse(_Wire):
    error: _Status


class GoogleProvider(Provider):
    native_tools = True
    info = ProviderInfo(
        api="google",
        default_base_url="https://generativelanguage.googleapis.com",
        key_env=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        priced=True,
        test_model="gemini-3.1-flash-lite-preview",
    )

    def endpoint(self, model: str) -> str:
        return f"/v1beta/models/{quote(model.removeprefix('models/'), safe='-._~')}:generateContent"

    def headers(self) -> dict[str, str]:
        key = self.require_key()
        return {"x-goog-api-key": key}

    def body(self, model: str, request: ModelRequest) -> dict[str, Any]:
        config: dict[str, Any] = {"maxOutputTokens": request.max_output_tokens}
        if request.temperature is not None:
            config["temperature"] = request.temperature
        schema = request.schema()
        if schema is not None and request.structured_mode != "prompt":
            config["responseMimeType"] = "application/json"
            if request.structured_mode == "schema":
                config["responseSchema"] = gemini_schema(schema)
        body: dict[str, Any] = {"contents": _contents(request), "generationConfig": config}
        if request.tools and request.tool_mode == "native":
            body["tools"] = [
                {
                    "functionDeclarations": [
                        {
                            "name": t.name,
                            "description": t.description,
                            "parameters": gemini_schema(t.parameters),
                        }
                        for t in request.tools
                    ]
                }
            ]
        system = request.instructed_system()
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        return body

    def parse(self, payload: Any) -> Reply:
        response = GenerateContentResponse.model_validate(payload)
        if not response.candidates:
            feedback = response.prompt_feedback
            if feedback is not None and feedback.block_reason:
                raise ValueError(f"Gemini blocked the prompt (blockReason {feedback.block_reason})")
            raise ValueError("Gemini returned no candidates")
        candidate = response.candidates[0]
        if candidate.finish_reason in BLOCKED_FINISH:
            raise ValueError(f"Gemini withheld the answer (finishReason {candidate.finish_reason})")
        parts = candidate.content.parts if candidate.content else []
        calls = tuple(
            ToolCall(p.function_call.id or f"call_{i}", p.function_call.name, p.function_call.args)
            for i, p in enumerate(parts)
            if p.function_call is not None
        )
        return Reply(
            tool_calls=calls,
            text="".join(p.text for p in parts if p.text and not p.thought),
            usage=response.usage_metadata.to_usage(),
            model=response.model_version,
            finish_reason=candidate.finish_reason,
        )

    def is_auth_error(self, status: int, payload: Any) -> bool:
        if status in (401, 403):
            return True
        error = _error(payload)
        return error is not None and any(d.reason == "API_KEY_INVALID" for d in error.details)

    def retry_after_body(self, payload: Any) -> float | None:
        error = _error(payload)
        for detail in error.details if error else []:
            if detail.retry_delay:
                try:
                    return float(detail.retry_delay.removesuffix("s"))
                except ValueError:
                    return None
        return None

    def error_detail(self, payload: Any) -> str | None:
        try:
            error = ErrorResponse.model_validate(payload).error
        except ValidationError:
            return None
        if any(d.reason == "API_KEY_INVALID" for d in error.details):
            # Gemini answers a bad key with 400, not 401: say plainly that it is the key.
            return (
                f"key for {self.name} rejected (API_KEY_INVALID): {error.message}; "
                f"check it with `watchkeeper keys test {self.name}`"
            )
        return f"{error.status or error.code}: {error.message}"


def _error(payload: Any) -> _Status | None:
    try:
        return ErrorResponse.model_validate(payload).error
    except ValidationError:
        return None


def _contents(request: ModelRequest) -> list[dict[str, Any]]:
    """`contents`: a model turn's calls as `functionCall` parts, and the results of
    consecutive tool turns as `functionResponse` parts of one user turn, right after it (the
    API refuses a function response turn that does not follow its call turn)."""
    contents: list[dict[str, Any]] = []
    for m in request.messages:
        if m.role == "tool":
            part = {
                "functionResponse": {
                    "name": m.tool_name or "",
                    "response": {"content": m.content},
                }
            }
            last = contents[-1] if contents else None
            if last and last["role"] == "user" and "functionResponse" in last["parts"][0]:
                last["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
        elif m.tool_calls:
            parts: list[dict[str, Any]] = [{"text": m.content}] if m.content.strip() else []
            parts += [{"functionCall": {"name": c.name, "args": c.arguments}} for c in m.tool_calls]
            contents.append({"role": "model", "parts": parts})
        else:
            contents.append(
                {
                    "role": "model" if m.role == "assistant" else "user",
                    "parts": [{"text": m.content or EMPTY_TURN}],
                }
            )
    return contents
