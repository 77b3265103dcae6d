"""A loopback imitation of Ollama's HTTP API, for provider and pipeline tests.

It answers like a real `ollama serve` (0.12): `POST /api/chat` with `stream: false` returns one
object with `model`, `created_at`, `message` {role, content}, `done: true`, `done_reason` and
the metrics `total_duration`, `load_duration`, `prompt_eval_count`, `prompt_eval_duration`,
`eval_count`, `eval_duration` (nanoseconds; counts are omitted when zero, as Go's `omitempty`
does — so `prompt_eval_count` is absent for a fully cached prompt); without `stream: false` it
streams NDJSON chunks, as the real server does. `GET /api/tags` lists pulled models (`name`,
`model`, `modified_at`, `size`, `digest`, `details`), `GET /api/version` and `GET /` answer as
Ollama does. Errors are `{"error": "…"}`: 404 `model "x" not found, try pulling it first`,
400 for a missing model or a malformed body; unknown paths get gin's plain `404 page not found`.

Tools as Ollama takes them: `tools` [{type: function, function: {…}}]; a `tools` script makes
the reply's message carry `tool_calls` [{function: {index, name, arguments: an *object*}}]
(no id, unlike OpenAI); a tool result is `{"role": "tool", "content", "tool_name"}`. A model
outside `tools_models` answers 400 `registry.ollama.ai/library/NAME does not support tools`,
as Ollama does for a model whose template has no tool support. `thinking` imitates a thinking
model (qwen3, deepseek-r1): its reasoning arrives in `message.thinking`, beside the answer.

`think` as Ollama takes it (0.9+; levels since 0.11 for gpt-oss): `true`/`false`, or "low",
"medium", "high"; any other value is a 400 `invalid think value: …`. A model outside
`thinking_models` sent a truthy `think` answers 400 `{"error": "\"NAME\" does not support
thinking"}` (Ollama 0.12+; `think: false` is accepted). `think: false` leaves `thinking` out;
`eval_count` counts the thinking tokens too (Ollama reports no separate count). Streamed, the
reasoning arrives first, in chunks carrying `message.thinking`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tests.peers.scripted import FakeServer, Recorded, Scripted

ReplySource = str | Sequence[str] | Callable[[dict[str, Any]], str]
"""A fixed text; texts served in turn (the last repeats); or request JSON → text."""

_DETAILS = {
    "parent_model": "",
    "format": "gguf",
    "family": "gemma3",
    "families": ["gemma3"],
    "parameter_size": "27.4B",
    "quantization_level": "Q4_K_M",
}


def ollama_error(status: int, message: str) -> Scripted:
    """An error the way Ollama sends it: `{"error": "…"}`."""
    return Scripted(status, {"error": message})


def _tagged(name: str) -> str:
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def _pieces(text: str) -> list[str]:
    """`text` as streamed: word by word, each but the last with its following space."""
    if not text:
        return []
    words = text.split(" ")
    return [word + " " * (i < len(words) - 1) for i, word in enumerate(words)]


def _created_at() -> str:
    now = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 10**9)) + f".{now % 10**9:09d}Z"


class FakeOllama:
    """`with FakeOllama(models=["gemma4:27b"], reply=...) as fake:`, then base_url = fake.url.

    Token counts are estimated from the text (~4 characters a token) unless given;
    `cached_prompt=True` leaves `prompt_eval_count` out, as Ollama does when the whole prompt
    came from its cache.
    """

    def __init__(
        self,
        models: Iterable[str] = ("gemma4:27b",),
        *,
        reply: ReplySource = "OK",
        prompt_eval_count: int | None = None,
        eval_count: int | None = None,
        cached_prompt: bool = False,
        done_reason: str = "stop",
        version: str = "0.12.6",
        tools: Callable[[dict[str, Any]], list[tuple[str, dict[str, Any]]] | None] | None = None,
        tools_models: Iterable[str] | None = None,
        thinking: str | None = None,
        thinking_models: Iterable[str] | None = None,
    ) -> None:
        self.tools = tools
        self.thinking_models = None if thinking_models is None else list(thinking_models)
        self.tools_models = None if tools_models is None else list(tools_models)
        self.thinking = thinking
        self.models = list(models)
        self.reply = reply
        self.prompt_eval_count = prompt_eval_count
        self.eval_count = eval_count
        self.cached_prompt = cached_prompt
        self.done_reason = done_reason
        self.version = version
        self.chats = 0
        """Chats answered 200 so far (indexes a sequence `reply`)."""
        self._lock = threading.Lock()
        self.server = FakeServer(self.handle)

    @property
    def url(self) -> str:
        """The base_url to configure (no path, like `http://127.0.0.1:11434`)."""
        return self.server.url

    @property
    def requests(self) -> list[Recorded]:
        return self.server.requests

    def bodies(self) -> list[dict[str, Any]]:
        """JSON bodies of the `/api/chat` requests received, in order."""
        return [r.json() for r in self.requests if r.path == "/api/chat"]

    def start(self) -> FakeOllama:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the protocol --------------------------------------------------------------------------

    def handle(self, request: Recorded) -> Scripted:
        route = (request.method, request.path.partition("?")[0])
        if route == ("GET", "/"):
            return Scripted(200, b"Ollama is running", {"Content-Type": "text/plain"})
        if route == ("GET", "/api/version"):
            return Scripted(200, {"version": self.version})
        if route == ("GET", "/api/tags"):
            return Scripted(
                200, {"models": [self._tag(i, name) for i, name in enumerate(self.models)]}
            )
        if route != ("POST", "/api/chat"):
            return Scripted(404, b"404 page not found", {"Content-Type": "text/plain"})
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            return ollama_error(400, f"invalid character in request body: {exc}")
        problem = self._problem(body)
        if problem is not None:
            return problem
        with self._lock:
            index, self.chats = self.chats, self.chats + 1
        text = self._text(body, index)
        thinking = self._thinking(body)
        if body.get("stream", True) is not False:
            return self._stream(body, text, thinking)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if thinking is not None:
            message["thinking"] = thinking
        calls = self.tools(body) if self.tools is not None and body.get("tools") else None
        if calls:
            message["content"] = ""
            message["tool_calls"] = [
                {"function": {"index": i, "name": name, "arguments": arguments}}
                for i, (name, arguments) in enumerate(calls)
            ]
        return Scripted(200, self._final(body, text + (thinking or ""), message))

    def _thinking(self, body: dict[str, Any]) -> str | None:
        """The reasoning to return: none when `think` is false or the model does not think."""
        if body.get("think") is False:
            return None
        return self.thinking

    def _tag(self, index: int, name: str) -> dict[str, Any]:
        digest = f"{index:02x}" * 32
        return {
            "name": name,
            "model": name,
            "modified_at": "2026-04-02T09:14:07.482913+00:00",
            "size": 17_400_000_000 + index,
            "digest": digest,
            "details": _DETAILS,
        }

    def _problem(self, body: Any) -> Scripted | None:
        model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(model, str) or not model:
            return ollama_error(400, "model is required")
        if not any(_tagged(model) == _tagged(name) for name in self.models):
            return ollama_error(404, f'model "{model}" not found, try pulling it first')
        messages = body.get("messages", [])
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages
        ):
            return ollama_error(400, "json: cannot unmarshal messages into []api.Message")
        supported = self.tools_models is None or any(
            _tagged(model) == _tagged(name) for name in self.tools_models
        )
        if body.get("tools") and not supported:
            return ollama_error(400, f"registry.ollama.ai/library/{model} does not support tools")
        think = body.get("think")
        if think is not None and think not in (True, False, "low", "medium", "high"):
            return ollama_error(
                400,
                f'invalid think value: "{think}" (must be "high", "medium", "low", true, or false)',
            )
        thinks = self.thinking_models is None or any(
            _tagged(model) == _tagged(name) for name in self.thinking_models
        )
        if think not in (None, False) and not thinks:
            return ollama_error(400, f'"{model}" does not support thinking')
        fmt = body.get("format")
        if fmt is not None and fmt != "json" and not isinstance(fmt, dict):
            return ollama_error(400, 'invalid format: expected "json" or a JSON schema')
        if not isinstance(body.get("options", {}), dict):
            return ollama_error(400, "json: cannot unmarshal options into map[string]any")
        return None

    def _final(self, body: dict[str, Any], text: str, message: dict[str, Any]) -> dict[str, Any]:
        chars = sum(len(str(m.get("content", ""))) for m in body["messages"])
        prompt = self.prompt_eval_count
        prompt = chars // 4 + 10 * len(body["messages"]) if prompt is None else prompt
        output = max(1, len(text) // 4) if self.eval_count is None else self.eval_count
        metrics: dict[str, Any] = {"load_duration": 2_154_458}
        if prompt and not self.cached_prompt:
            metrics |= {"prompt_eval_count": prompt, "prompt_eval_duration": prompt * 250_000}
        if output:
            metrics |= {"eval_count": output, "eval_duration": output * 20_000_000}
        total = sum(v for k, v in metrics.items() if k.endswith("duration")) + 1_204_000
        return {
            "model": body["model"],
            "created_at": _created_at(),
            "message": message,
            "done": True,
            "done_reason": self.done_reason,
            "total_duration": total,
            **metrics,
        }

    def _stream(self, body: dict[str, Any], text: str, thinking: str | None) -> Scripted:
        def chunk(field: str, piece: str) -> dict[str, Any]:
            message = {"role": "assistant", "content": ""} | {field: piece}
            return {
                "model": body["model"],
                "created_at": _created_at(),
                "message": message,
                "done": False,
            }

        lines = [chunk("thinking", piece) for piece in _pieces(thinking or "")]
        lines += [chunk("content", piece) for piece in _pieces(text)]
        final = self._final(body, text + (thinking or ""), {"role": "assistant", "content": ""})
        lines.append(final)
        payload = "".join(json.dumps(line) + "\n" for line in lines).encode()
        return Scripted(200, payload, {"Content-Type": "application/x-ndjson"})

    def _text(self, body: dict[str, Any], index: int) -> str:
        if isinstance(self.reply, str):
            return self.reply
        if callable(self.reply):
            return self.reply(body)
        return self.reply[min(index, len(self.reply) - 1)]
