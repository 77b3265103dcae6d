"""A loopback imitation of OpenAI's Chat Completions API, for provider and pipeline tests.

It answers like api.openai.com: `POST /v1/chat/completions` returns a `chat.completion`
(`id` "chatcmpl-…", `object`, `created`, `model` — a dated snapshot when `snapshots` maps one —,
`choices[0]` with `message` {role, content, refusal, annotations}, `logprobs`, `finish_reason`,
`usage` with `prompt_tokens_details` {cached_tokens, audio_tokens} and
`completion_tokens_details` {reasoning_tokens, …}, `service_tier`, `system_fingerprint`) with
`x-request-id` / `openai-processing-ms` headers; `GET /v1/models` lists models. Errors use the
real `{"error": {"message", "type", "param", "code"}}` body: 401 for a missing or wrong Bearer
key (`invalid_api_key`), 404 `model_not_found` and "Invalid URL", 400 for an unparseable body,
a missing `model`/`messages`, a bad role, `temperature` ≠ 1 or `max_tokens` sent to a reasoning
model (o-series, gpt-5*), or a `response_format` schema that strict mode rejects.
`openai_error`, `rate_limited` and `server_error` build the bodies tests queue.

Tool calling as OpenAI does it: `tools` [{type: function, function: {name, description,
parameters}}]; a `tools` script (request JSON → calls) makes the reply's message carry
`tool_calls` [{id "call_…", type "function", function {name, arguments: a JSON *string*}}] with
`content: null` and `finish_reason: "tool_calls"`; a `tool` message must answer a preceding
assistant `tool_calls` id, and unknown message keys are refused (as api.openai.com does).
`response_format: {"type": "json_object"}` needs the word "json" in the messages.

`flavor` imitates other servers that speak this API, with their documented quirks:
- "llama.cpp": llama-cpp-python's server refuses `{"type": "json_schema"}` with HTTP 500 and
  takes `{"type": "json_object", "schema": …}` (observed against the real server here);
- "lmstudio": LM Studio takes only `json_schema` or `text` and refuses `json_object` (400);
- "vllm": vLLM refuses `tool_choice: "auto"` unless started with --enable-auto-tool-choice
  (400, its message names the flag); `enable_auto_tools=True` imitates a server started so.
  Structured output as `vllm_version` has it (docs.vllm.ai, features/structured_outputs, and
  its OpenAIBaseModel, which takes unknown fields and only logs that it ignored them):
  `response_format` json_schema constrains in every version; `guided_json` until 0.12.0
  removed it; `structured_outputs: {"json": …}` from 0.10.2; a `schema` beside
  `{"type": "json_object"}` is ignored (any JSON). `GET /version` answers `{"version": …}`.

`GET /v1/models` names the server the way each does: `owned_by` "system" (OpenAI), "vllm",
"llamacpp", "organization_owner" (LM Studio). `honoured` records, per chat completion, what
constrained the output ("json_schema", "structured_outputs", "guided_json", "json_object",
"json_object+schema" or None); `unconstrained_reply`, when set, is what the model writes
when nothing held it to the schema (None, or a bare "json_object": some JSON of its own), so a
parameter the server ignored shows.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tests.peers.scripted import FakeServer, Recorded, Scripted

DEFAULT_KEY = "sk-test-fake-openai-0000"
ReplySource = str | Sequence[str] | Callable[[dict[str, Any]], str]
"""A fixed text; texts served in turn (the last repeats); or request JSON → text."""
ToolScript = Callable[[dict[str, Any]], "list[tuple[str, dict[str, Any]]] | None"]
"""Request JSON → the tool calls to answer with (name, arguments), or None for a text reply."""
Flavor = Literal["openai", "llama.cpp", "lmstudio", "vllm"]
_OWNERS = {
    "openai": "system",
    "vllm": "vllm",
    "llama.cpp": "llamacpp",
    "lmstudio": "organization_owner",
}
_MESSAGE_KEYS = frozenset({"role", "content", "name", "tool_calls", "tool_call_id", "refusal"})

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_REASONING = re.compile(r"^(?:o\d|gpt-5)")
_SCHEMA_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_UNSUPPORTED = ("allOf", "oneOf", "not", "if", "then", "else", "patternProperties")


@dataclass(frozen=True)
class Tokens:
    """The usage to report; `cached` is part of `prompt`, `reasoning` part of `completion`."""

    prompt: int
    completion: int
    cached: int = 0
    reasoning: int = 0


def openai_error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Scripted:
    """An error as OpenAI sends it: `{"error": {"message", "type", "param", "code"}}`."""
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return Scripted(status, body, headers={"x-request-id": _request_id(), **(headers or {})})


def rate_limited(
    retry_after: str | None = "2", *, retry_after_ms: str | None = None, model: str = "gpt-5.4"
) -> Scripted:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    message = (
        f"Rate limit reached for {model} in organization org-fake on tokens per min (TPM): "
        "Limit 30000, Used 30000, Requested 1200. Please try again in 2s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more."
    )
    return openai_error(429, message, type="tokens", code="rate_limit_exceeded", headers=headers)


_SERVER_ERRORS = {
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The engine is currently overloaded, please try again later.",
}


def server_error(status: int = 500) -> Scripted:
    return openai_error(status, _SERVER_ERRORS.get(status, "Internal error"), type="server_error")


def strict_problem(schema: Any, context: tuple[str, ...] = ()) -> str | None:
    """Why OpenAI's strict mode would reject `schema` (None: it would accept it)."""
    if not isinstance(schema, dict):
        return None
    where = f"In context={context!r}"
    if found := [keyword for keyword in _UNSUPPORTED if keyword in schema]:
        return f"{where}, '{found[0]}' is not permitted."
    properties = schema.get("properties")
    if schema.get("type") == "object" and isinstance(properties, dict):
        if schema.get("additionalProperties") is not False:
            return f"{where}, 'additionalProperties' is required to be supplied and to be false."
        if missing := [key for key in properties if key not in schema.get("required", [])]:
            return (
                f"{where}, 'required' is required to be supplied and to be an array including "
                f"every key in properties. Missing '{missing[0]}'."
            )
    subs: list[tuple[tuple[str, ...], Any]] = []
    for key, value in schema.items():
        if key in ("properties", "$defs") and isinstance(value, dict):
            subs += [((*context, key, name), sub) for name, sub in value.items()]
        elif isinstance(value, list):
            subs += [((*context, key, str(i)), sub) for i, sub in enumerate(value)]
        else:
            subs.append(((*context, key), value))
    return next((problem for path, sub in subs if (problem := strict_problem(sub, path))), None)


LLAMA_CPP_JSON_SCHEMA_500 = {
    "error": {
        "message": "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', "
        "'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", "
        "'input': 'json_schema', 'ctx': {'expected': \"'text' or 'json_object'\"}}\n\n  File "
        '"/usr/lib/python3/site-packages/llama_cpp/server/app.py", line 376, in '
        "create_chat_completion\n    POST /v1/chat/completions",
        "type": "internal_server_error",
        "param": None,
        "code": None,
    }
}
"""What llama-cpp-python 0.3.36's server answers to `response_format: {"type":
"json_schema"}` (captured from the real server): a 500 carrying FastAPI's validation error."""


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def _mask(key: str) -> str:
    return key[:8] + "*" * max(len(key) - 12, 4) + key[-4:] if len(key) > 12 else "*" * len(key)


class FakeOpenAI:
    """`with FakeOpenAI(key=..., reply=...) as fake:` then point a provider at `fake.url`.

    `key=None` accepts any or no Authorization (a local OpenAI-compatible server);
    `models=None` accepts any model; `echo_key=True` puts the whole presented key in the 401
    message (as a careless proxy would) instead of OpenAI's masked form.
    """

    def __init__(
        self,
        key: str | None = DEFAULT_KEY,
        *,
        models: Iterable[str] | None = None,
        snapshots: Mapping[str, str] | None = None,
        reply: ReplySource = "OK",
        usage: Tokens | None = None,
        refusal: str | None = None,
        finish_reason: str = "stop",
        echo_key: bool = False,
        tools: ToolScript | None = None,
        flavor: Flavor = "openai",
        enable_auto_tools: bool = False,
        vllm_version: str = "0.11.0",
        unconstrained_reply: str | None = None,
    ) -> None:
        self.tools = tools
        self.vllm_version = vllm_version
        self.unconstrained_reply = unconstrained_reply
        self.honoured: list[str | None] = []
        self.flavor = flavor
        self.enable_auto_tools = enable_auto_tools
        self.key = key
        self.models = None if models is None else list(models)
        self.snapshots = dict(snapshots or {})
        self.reply = reply
        self.usage = usage
        self.refusal = refusal
        self.finish_reason = finish_reason
        self.echo_key = echo_key
        self.completions = 0
        """Chat completions answered 200 so far (indexes a sequence `reply`)."""
        self._lock = threading.Lock()
        self.server = FakeServer(self.handle)

    @property
    def url(self) -> str:
        """The base_url to configure: includes `/v1`."""
        return self.server.url + "/v1"

    @property
    def requests(self) -> list[Recorded]:
        return self.server.requests

    def bodies(self) -> list[dict[str, Any]]:
        """JSON bodies of the chat completion requests received, in order."""
        return [r.json() for r in self.requests if r.path.endswith("/chat/completions")]

    def start(self) -> FakeOpenAI:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the protocol --------------------------------------------------------------------------

    def handle(self, request: Recorded) -> Scripted:
        denied = self._auth(request)
        if denied is not None:
            return denied
        route = (request.method, request.path.partition("?")[0])
        if route == ("GET", "/v1/models"):
            names = self.models or [*self.snapshots, "gpt-5.4"]
            owner = _OWNERS[self.flavor]
            data = [
                {"id": n, "object": "model", "created": 1_767_225_600, "owned_by": owner}
                for n in names
            ]
            if self.flavor == "vllm":
                data = [d | {"root": d["id"], "parent": None, "max_model_len": 32768} for d in data]
            return Scripted(200, {"object": "list", "data": data})
        if route == ("GET", "/version") and self.flavor == "vllm":
            return Scripted(200, {"version": self.vllm_version})
        if route != ("POST", "/v1/chat/completions"):
            return openai_error(404, f"Invalid URL ({request.method} {route[1]})")
        try:
            body = json.loads(request.body)
        except ValueError:
            return openai_error(400, "We could not parse the JSON body of your request.")
        return self._invalid(body) or self._complete(body)

    def _auth(self, request: Recorded) -> Scripted | None:
        if self.key is None:
            return None
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). "
                "You can obtain an API key from https://platform.openai.com/account/api-keys.",
            )
        if presented != self.key:
            shown = presented if self.echo_key else _mask(presented)
            return openai_error(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        return None

    def _invalid(self, body: Any) -> Scripted | None:
        model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(model, str) or not model:
            return openai_error(400, "you must provide a model parameter")
        if self.models is not None and model not in self.models:
            return openai_error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return openai_error(
                400,
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        for i, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ROLES:
                supported = ", ".join(f"'{r}'" for r in ROLES)
                return openai_error(
                    400,
                    f"Invalid value: '{role}'. Supported values are: {supported}.",
                    param=f"messages[{i}].role",
                    code="invalid_value",
                )
        problem = self._invalid_tools(body, messages)
        if problem is not None:
            return problem
        if _REASONING.match(model):
            if "max_tokens" in body:
                return openai_error(
                    400,
                    "Unsupported parameter: 'max_tokens' is not supported with this model. "
                    "Use 'max_completion_tokens' instead.",
                    param="max_tokens",
                    code="unsupported_parameter",
                )
            if body.get("temperature", 1) != 1:
                return openai_error(
                    400,
                    f"Unsupported value: 'temperature' does not support {body['temperature']} "
                    "with this model. Only the default (1) value is supported.",
                    param="temperature",
                    code="unsupported_value",
                )
        return self._flavor_refusal(body) or self._invalid_format(body.get("response_format"))

    def _invalid_tools(self, body: dict[str, Any], messages: list[Any]) -> Scripted | None:
        asked: set[str] = set()
        for i, message in enumerate(messages):
            extra = sorted(set(message) - _MESSAGE_KEYS)
            if extra and self.flavor == "openai":
                return openai_error(
                    400,
                    f"Additional properties are not allowed ('{extra[0]}' was unexpected) - "
                    f"'messages.{i}'",
                    param=f"messages.[{i}]",
                )
            for call in message.get("tool_calls") or []:
                if not isinstance(call.get("function", {}).get("arguments"), str):
                    return openai_error(
                        400,
                        f"Invalid type for 'messages[{i}].tool_calls[0].function.arguments': "
                        "expected a string.",
                        param=f"messages[{i}].tool_calls[0].function.arguments",
                        code="invalid_type",
                    )
                asked.add(call.get("id"))
            if message["role"] == "tool" and message.get("tool_call_id") not in asked:
                return openai_error(
                    400,
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    param=f"messages.[{i}].role",
                )
        return None

    def _flavor_refusal(self, body: dict[str, Any]) -> Scripted | None:
        fmt = body.get("response_format") or {}
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if self.flavor == "llama.cpp" and kind == "json_schema":
            return Scripted(500, LLAMA_CPP_JSON_SCHEMA_500)
        if self.flavor == "llama.cpp" and kind == "json_object":
            return None  # takes the schema beside the type, constrains by it
        if self.flavor == "lmstudio" and kind == "json_object":
            return Scripted(
                400, {"error": "'response_format.type' must be 'json_schema' or 'text'"}
            )
        auto = body.get("tool_choice", "auto") == "auto"
        if self.flavor == "vllm" and body.get("tools") and auto and not self.enable_auto_tools:
            return Scripted(
                400,
                {
                    "error": {
                        "message": '"auto" tool choice requires --enable-auto-tool-choice '
                        "and --tool-call-parser to be set",
                        "type": "BadRequestError",
                        "param": None,
                        "code": 400,
                    }
                },
            )
        if self.flavor == "openai" and kind == "json_object":
            said = " ".join(str(m.get("content") or "") for m in body["messages"]).lower()
            if "json" not in said:
                return openai_error(
                    400,
                    "'messages' must contain the word 'json' in some form, to use "
                    "'response_format' of type 'json_object'.",
                    param="messages",
                )
        return None

    def _invalid_format(self, fmt: Any) -> Scripted | None:
        if fmt is None or fmt == {"type": "text"} or fmt == {"type": "json_object"}:
            return None
        if self.flavor != "openai" and isinstance(fmt, dict) and fmt.get("type") == "json_object":
            return None  # llama.cpp, vLLM: a `schema` beside the type constrains the output
        spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
        if not isinstance(spec, dict) or fmt.get("type") != "json_schema":
            return openai_error(400, "Invalid 'response_format'.", param="response_format")
        name = spec.get("name")
        if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
            return openai_error(
                400,
                f"Invalid 'response_format.json_schema.name': {name!r}.",
                param="response_format.json_schema.name",
                code="invalid_value",
            )
        schema = spec.get("schema")
        problem = (
            "schema must be a JSON Schema of 'type: \"object\"'"
            if not isinstance(schema, dict) or schema.get("type") != "object"
            else strict_problem(schema)
            if spec.get("strict")
            else None
        )
        if problem:
            return openai_error(
                400,
                f"Invalid schema for response_format '{name}': {problem}",
                param="response_format",
            )
        return None

    def _constraint(self, body: dict[str, Any]) -> str | None:
        """What constrains this completion's output on this server (None: nothing)."""
        fmt = body.get("response_format")
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind == "json_schema":
            return "json_schema"
        if self.flavor == "vllm":
            version = tuple(int(p) for p in self.vllm_version.split(".")[:3])
            if "structured_outputs" in body and version >= (0, 10, 2):
                return "structured_outputs"
            if "guided_json" in body and version < (0, 12, 0):
                return "guided_json"
        if kind == "json_object":
            constrains_by_schema = self.flavor == "llama.cpp" and "schema" in fmt
            return "json_object+schema" if constrains_by_schema else "json_object"
        return None

    def _complete(self, body: dict[str, Any]) -> Scripted:
        with self._lock:
            index, self.completions = self.completions, self.completions + 1
        constraint = self._constraint(body)
        self.honoured.append(constraint)
        text = self._text(body, index)
        if constraint in (None, "json_object") and self.unconstrained_reply is not None:
            text = self.unconstrained_reply
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body["messages"])
        usage = self.usage or Tokens(
            prompt_chars // 4 + 3 * len(body["messages"]) + 3, max(1, len(text) // 4)
        )
        refused = self.refusal is not None
        calls = self.tools(body) if self.tools is not None and body.get("tools") else None
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if refused or calls else text,
            "refusal": self.refusal,
            "annotations": [],
        }
        if calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{uuid.uuid4().hex[:24]}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
                for name, arguments in calls
            ]
        payload = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:29]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.snapshots.get(body["model"], body["model"]),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if calls else self.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": usage.prompt,
                "completion_tokens": usage.completion,
                "total_tokens": usage.prompt + usage.completion,
                "prompt_tokens_details": {"cached_tokens": usage.cached, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": usage.reasoning,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_" + uuid.uuid4().hex[:10],
        }
        headers = {"x-request-id": _request_id(), "openai-processing-ms": "412"}
        return Scripted(200, payload, headers=headers)

    def _text(self, body: dict[str, Any], index: int) -> str:
        if isinstance(self.reply, str):
            return self.reply
        if callable(self.reply):
            return self.reply(body)
        return self.reply[min(index, len(self.reply) - 1)]
