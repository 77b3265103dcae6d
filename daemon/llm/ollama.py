"""Ollama's native chat API (`POST /api/chat`), the local model that triages every cycle.

It maps a ModelRequest to Ollama's JSON and reports usage (a local call costs nothing, the
ledger still counts tokens); it must never stream, and never guess a model is pulled. A
thinking model's `message.thinking` is kept apart from the answer; `eval_count` already
includes its tokens (Ollama reports no separate count), so they are billed as output.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from daemon.llm.base import (
    Provider,
    ProviderInfo,
    ReplyTooLarge,
    chat_messages,
    fetch_capped,
    function_tools,
    tool_arguments,
)
from daemon.llm.types import ModelRequest, Reply, ToolCall, Usage

PROBE_TIMEOUT_S = 5.0

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
# Ollama's 404: `model "x" not found, try pulling it first` (older: `model 'x' not found`).
_NOT_FOUND = re.compile(r"""model ["']([^"']+)["'] not found""")


def strip_think(text: str) -> str:
    """The answer without a reasoning model's `<think>…</think>` blocks.

    Also handles a leading block whose opening tag was in the chat template (only
    `…</think>` arrives) and one that never closed (the model ran out of tokens while
    thinking: there is no answer)."""
    original = text
    close, open_ = text.find("</think>"), text.find("<think>")
    if close != -1 and (open_ == -1 or close < open_):
        text = text[close + len("</think>") :]
    text = _THINK_BLOCK.sub("", text)
    if text.lstrip().startswith("<think>"):
        return ""
    return text.strip() if text != original else text


def _shape_error(exc: ValidationError) -> ValueError:
    """A one-line account of what the reply lacks (the base shows only the first line)."""
    problems = [f"{'.'.join(map(str, e['loc'])) or '(body)'}: {e['msg']}" for e in exc.errors()]
    return ValueError("; ".join(problems[:3]))


# -- the provider's JSON ---------------------------------------------------------------------


class _Function(BaseModel):
    name: str
    arguments: Any = None


class _ToolCall(BaseModel):
    id: str | None = None
    function: _Function


class _Message(BaseModel):
    content: str = ""
    thinking: str | None = None
    """A thinking model's reasoning when the request set `think` (never the answer)."""
    tool_calls: list[_ToolCall] | None = None


class _Chat(BaseModel):
    model: str
    message: _Message
    done_reason: str | None = None
    # Go's `omitempty`: absent when 0, and prompt_eval_count is absent on a cached prompt.
    prompt_eval_count: int = 0
    eval_count: int = 0


class _Error(BaseModel):
    error: str


class _Tag(BaseModel):
    name: str
    model: str | None = None


class _Tags(BaseModel):
    models: list[_Tag]


def _same_model(wanted: str, pulled: str) -> bool:
    """Exact, or equal once the implicit `:latest` tag is added to a name without a tag."""

    def tagged(name: str) -> str:
        return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"

    return wanted == pulled or tagged(wanted) == tagged(pulled)


class OllamaProvider(Provider):
    """`POST {base_url}/api/chat` with `stream: false`; `GET /api/tags` to probe."""

    info = ProviderInfo(api="ollama", default_base_url="http://127.0.0.1:11434", local=True)
    native_tools = True

    def endpoint(self, model: str) -> str:
        return "/api/chat"

    def headers(self) -> dict[str, str]:
        # No key locally; one is sent only when configured (an authenticating reverse proxy).
        return {"authorization": f"Bearer {self._key}"} if self._key else {}

    def body(self, model: str, request: ModelRequest) -> dict[str, Any]:
        messages = chat_messages(request, ollama=True)
        options: dict[str, Any] = {"num_predict": request.max_output_tokens}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if self.options.num_ctx is not None:
            options["num_ctx"] = self.options.num_ctx
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "stream": False,
            "options": options,
        }
        schema = request.schema()
        if schema is not None and request.structured_mode != "prompt":
            body["format"] = schema if request.structured_mode == "schema" else "json"
        if request.tools and request.tool_mode == "native":
            body["tools"] = function_tools(request)
        if request.think is not None and request.think_mode == "native":
            body["think"] = request.think  # true/false, or gpt-oss's "low"/"medium"/"high"
        if self.options.keep_alive is not None:
            body["keep_alive"] = self.options.keep_alive
        return body

    def parse(self, payload: Any) -> Reply:
        try:
            chat = _Chat.model_validate(payload)
        except ValidationError as exc:
            raise _shape_error(exc) from None
        calls = tuple(
            ToolCall(
                call.id or f"call_{i}", call.function.name, tool_arguments(call.function.arguments)
            )
            for i, call in enumerate(chat.message.tool_calls or ())
        )
        return Reply(
            text=strip_think(chat.message.content),
            usage=Usage(input_tokens=chat.prompt_eval_count, output_tokens=chat.eval_count),
            model=chat.model,
            finish_reason=chat.done_reason,
            tool_calls=calls,
            thinking=chat.message.thinking or None,
        )

    def error_detail(self, payload: Any) -> str | None:
        try:
            message = _Error.model_validate(payload).error
        except ValidationError:
            return None
        missing = _NOT_FOUND.search(message)
        if missing:
            model = missing.group(1)
            return f"model {model} is not pulled on {self.host}: run `ollama pull {model}`"
        return message

    async def probe(self, model: str) -> tuple[bool | None, str]:
        url = self.options.base_url.rstrip("/") + "/api/tags"
        timeout = min(self.options.timeout_s, PROBE_TIMEOUT_S)
        try:
            response = await fetch_capped(
                self._client, "GET", url, headers=self.headers(), timeout=timeout
            )
        except ReplyTooLarge:
            return False, f"{self.host} answered /api/tags with more than any model list holds"
        except httpx.TimeoutException:
            return False, f"unreachable: {self.host} did not answer within {timeout:g} s"
        except httpx.TransportError as exc:
            detail = self.scrub(f"{type(exc).__name__} {exc}")
            return (
                False,
                f"unreachable: cannot connect to {self.host} ({detail}); is Ollama running?",
            )
        if response.status_code != 200:
            return False, f"{self.host} answered HTTP {response.status_code} to /api/tags"
        try:
            tags = _Tags.model_validate(response.json())
        except ValueError:
            return False, f"{self.host} answered /api/tags with something that is not Ollama's"
        if any(_same_model(model, tag.name) for tag in tags.models):
            return True, "pulled"
        return False, f"not pulled: run `ollama pull {model}`"
