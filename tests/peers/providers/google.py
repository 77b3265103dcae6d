"""A loopback stand-in for the Gemini API (`POST /v1beta/models/{model}:generateContent`).

It checks requests like the real service (x-goog-api-key or `?key=`, camelCase fields it
knows, roles `user`/`model`, non-empty text parts, a `responseSchema` made only of Gemini's
Schema fields with `responseMimeType: application/json`) and answers with the real JSON:
`candidates[].content.parts[]` (thought parts flagged `thought: true`), `finishReason`,
`usageMetadata` (`promptTokenCount`, `candidatesTokenCount`, `thoughtsTokenCount`,
`cachedContentTokenCount`, `totalTokenCount`), `modelVersion`, `responseId`; a blocked prompt
as `promptFeedback.blockReason` with no candidates; errors as Google RPC statuses — a wrong
key is a 400 `API_KEY_INVALID` whose DebugInfo echoes the key, as the real one does.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.peers.scripted import FakeServer, Recorded, Scripted

DEFAULT_KEY = "AIzaSyFakeTestKey-000000000000000000"
PATH = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):generateContent$")
TOP_LEVEL = {
    "contents", "systemInstruction", "generationConfig", "safetySettings", "tools",
    "toolConfig", "cachedContent",
}  # fmt: skip
CONFIG = {
    "maxOutputTokens", "temperature", "topP", "topK", "candidateCount", "stopSequences",
    "responseMimeType", "responseSchema", "responseJsonSchema", "thinkingConfig", "seed",
}  # fmt: skip
SCHEMA = {
    "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
    "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
    "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
}  # fmt: skip
TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT"}

ReplyValue = str | dict[str, Any]
"""Text, or an object sent as its JSON text."""
ReplyFn = Callable[[dict[str, Any]], ReplyValue]
ReplySpec = ReplyValue | ReplyFn | list[ReplyValue | ReplyFn]
"""A value, a function of the request JSON, or a list of those served in turn (last repeats)."""


def error_response(
    code: int,
    status: str,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Scripted:
    """A Google RPC error body, e.g. `error_response(503, "UNAVAILABLE", "The model is
    overloaded. Please try again later.")`."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return Scripted(code, {"error": error}, headers=headers or {})


def rate_limited(retry_delay_s: int = 7, *, retry_after_header: bool = False) -> Scripted:
    """429 RESOURCE_EXHAUSTED; Gemini says when to retry in a RetryInfo detail of the body."""
    details = [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_delay_s}s"}
    ]
    headers = {"retry-after": str(retry_delay_s)} if retry_after_header else {}
    message = "You exceeded your current quota, please check your plan and billing details."
    return error_response(429, "RESOURCE_EXHAUSTED", message, details=details, headers=headers)


def _key_invalid(presented: str, echo: bool) -> Scripted:
    message = "API key not valid. Please pass a valid API key."
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
         "message": message},
    ]  # fmt: skip
    if echo:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.DebugInfo",
             "detail": f"Invalid API key: {presented}"}
        )  # fmt: skip
    return error_response(400, "INVALID_ARGUMENT", message, details=details)


class FakeGemini:
    """`with FakeGemini(key=..., reply=...) as fake:` then point a provider at `fake.url`.

    `usage` is sent verbatim as `usageMetadata` (default: estimated); `thoughts` adds a thought
    part before the answer; `block_reason` blocks every prompt; `finish_reason` ends candidates
    (a blocking one, e.g. "SAFETY", sends no content); `leaked_keys` get 403 PERMISSION_DENIED.
    """

    def __init__(
        self,
        *,
        key: str = DEFAULT_KEY,
        reply: ReplySpec = "All checks look healthy.",
        usage: dict[str, Any] | None = None,
        thoughts: str | None = None,
        block_reason: str | None = None,
        finish_reason: str = "STOP",
        models: Collection[str] | None = None,
        leaked_keys: Collection[str] = (),
        echo_key: bool = True,
        tools: Callable[[dict[str, Any]], list[tuple[str, dict[str, Any]]] | None] | None = None,
    ) -> None:
        self.tools = tools
        """Request JSON → calls answered as `functionCall` parts (finishReason STOP, as
        Gemini does), or None for text; only when `tools` are in the request."""
        self.key = key
        self.replies = list(reply) if isinstance(reply, list) else [reply]
        self.usage = usage
        self.thoughts = thoughts
        self.block_reason = block_reason
        self.finish_reason = finish_reason
        self.models = models
        self.leaked_keys = set(leaked_keys)
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

    def __enter__(self) -> FakeGemini:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def handle(self, request: Recorded) -> Scripted:
        url = urlsplit(request.path)
        match = PATH.match(url.path)
        if request.method != "POST" or match is None:
            return Scripted(404, "<!DOCTYPE html><title>Error 404 (Not Found)!!1</title>")
        presented = request.headers.get("x-goog-api-key") or parse_qs(url.query).get("key", [""])[0]
        if not presented:
            message = (
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API."
            )
            return error_response(403, "PERMISSION_DENIED", message)
        if presented in self.leaked_keys:
            message = "Your API key was reported as leaked. Please use another API key."
            return error_response(403, "PERMISSION_DENIED", message)
        if presented != self.key:
            return _key_invalid(presented, self.echo_key)
        try:
            body = request.json()
        except ValueError:
            return error_response(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        problem = _problem(body)
        if problem:
            return error_response(400, "INVALID_ARGUMENT", problem)
        model = match["model"]
        if self.models is not None and model not in self.models:
            message = (
                f"models/{model} is not found for API version v1beta, or is not supported "
                "for generateContent. Call ListModels to see the list of available models."
            )
            return error_response(404, "NOT_FOUND", message)
        return Scripted(200, self._answer(model, body))

    def _answer(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        prompt = _tokens(json.dumps(body["contents"]) + json.dumps(body.get("systemInstruction")))
        answer: dict[str, Any] = {"modelVersion": model, "responseId": uuid.uuid4().hex[:22]}
        if self.block_reason:
            feedback = {"blockReason": self.block_reason, "safetyRatings": []}
            usage = self.usage or {"promptTokenCount": prompt, "totalTokenCount": prompt}
            return {"promptFeedback": feedback, "usageMetadata": usage, **answer}
        with self._lock:
            spec = self.replies[min(self.served, len(self.replies) - 1)]
            self.served += 1
        value = spec(body) if callable(spec) else spec
        text = value if isinstance(value, str) else json.dumps(value)
        parts: list[dict[str, Any]] = [{"text": text}]
        calls = self.tools(body) if self.tools is not None and body.get("tools") else None
        if calls:
            parts = [{"functionCall": {"name": n, "args": a}} for n, a in calls]
            text = json.dumps(parts)
        if self.thoughts:
            parts.insert(0, {"text": self.thoughts, "thought": True})
        candidate: dict[str, Any] = {"finishReason": self.finish_reason, "index": 0}
        if self.finish_reason not in ("SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST"):
            candidate["content"] = {"parts": parts, "role": "model"}
        thoughts = _tokens(self.thoughts) if self.thoughts else 0
        usage = self.usage or {
            "promptTokenCount": prompt,
            "candidatesTokenCount": _tokens(text),
            "totalTokenCount": prompt + _tokens(text) + thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            **({"thoughtsTokenCount": thoughts} if thoughts else {}),
        }
        return {"candidates": [candidate], "usageMetadata": usage, **answer}


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _unknown(name: str, where: str) -> str:
    return (
        f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field."
    )


def _problem(body: Any) -> str | None:
    """What the real API would reject in this body (its wording), or None."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received. Expected an object."
    extra = sorted(set(body) - TOP_LEVEL)
    if extra:
        return _unknown(extra[0], "")
    if not body.get("contents"):
        return "* GenerateContentRequest.contents: contents is not specified"
    turns = [
        *body["contents"],
        *([body["systemInstruction"]] if "systemInstruction" in body else []),
    ]
    for i, content in enumerate(body["contents"]):
        if content.get("role") not in ("user", "model"):
            return "Please use a valid role: user, model."
        responds = any("functionResponse" in p for p in content.get("parts", []))
        before = body["contents"][i - 1].get("parts", []) if i else []
        if responds and not any("functionCall" in p for p in before):
            return (
                "Please ensure that function response turn comes immediately after a function "
                "call turn."
            )
    for content in turns:
        if not content.get("parts"):
            return "* GenerateContentRequest.contents: contents.parts must not be empty."
        if any(not str(part.get("text", "x")).strip() for part in content["parts"]):
            return (
                "Unable to submit request because it has an empty text parameter. Add a value "
                "to the parameter and try again."
            )
    config = body.get("generationConfig", {})
    extra = sorted(set(config) - CONFIG)
    if extra:
        return _unknown(extra[0], "generation_config")
    temperature = config.get("temperature", 1)
    if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
        return "* GenerateContentRequest.generation_config.temperature: must be in [0.0, 2.0]"
    if "responseSchema" in config:
        if config.get("responseMimeType") != "application/json":
            return (
                "* GenerateContentRequest.generation_config.response_schema: "
                "response_mime_type must be application/json when a response schema is set"
            )
        return _schema_problem(config["responseSchema"], "generation_config.response_schema")
    return None


def _schema_problem(schema: Any, where: str) -> str | None:
    if not isinstance(schema, dict):
        return f"* GenerateContentRequest.{where}: must be an object"
    extra = sorted(set(schema) - SCHEMA)
    if extra:
        return _unknown(extra[0], where)
    kind = str(schema.get("type", "")).upper()
    if "type" in schema and kind not in TYPES:
        return f"Invalid value at '{where}.type' (google.ai.Type), \"{schema['type']}\""
    if kind == "OBJECT" and not schema.get("properties"):
        return f"* GenerateContentRequest.{where}.properties: should be non-empty for OBJECT type"
    for name, sub in schema.get("properties", {}).items():
        problem = _schema_problem(sub, f"{where}.properties[{name}].value")
        if problem:
            return problem
    children = [schema["items"]] if "items" in schema else []
    for child in [*children, *schema.get("anyOf", [])]:
        problem = _schema_problem(child, f"{where}.items")
        if problem:
            return problem
    return None
