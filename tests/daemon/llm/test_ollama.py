"""The Ollama provider against a loopback fake of Ollama's HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel

from daemon.llm import provider_class
from daemon.llm.ollama import OllamaProvider, strip_think
from daemon.llm.types import (
    ModelRequest,
    ProviderHTTPError,
    ProviderResponseError,
    StructuredOutputError,
    Usage,
)
from tests.daemon.llm.conftest import Sleeps, build
from tests.peers.loopback import free_port
from tests.peers.providers.ollama import FakeOllama, ollama_error
from tests.peers.scripted import Scripted, serving

MODEL = "gemma4:27b"


class Triage(BaseModel):
    severity: Literal["low", "high"]
    escalate: bool


VALID = '{"severity": "high", "escalate": true}'


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama(models=[MODEL, "llama3.2:latest", "qwen3"]) as fake:
        yield fake


def provider(
    client: httpx.AsyncClient,
    base_url: str,
    *,
    sleep: Sleeps | None = None,
    keep_alive: str | None = None,
    num_ctx: int | None = None,
) -> OllamaProvider:
    return build(
        OllamaProvider,
        base_url,
        client,
        None,
        sleep=sleep,
        local=True,
        keep_alive=keep_alive,
        num_ctx=num_ctx,
    )


def test_registered_under_its_api() -> None:
    assert provider_class("ollama") is OllamaProvider
    assert OllamaProvider.info.default_base_url == "http://127.0.0.1:11434"
    assert OllamaProvider.info.key_env == ()
    assert OllamaProvider.info.local is True


async def test_request_shape(fake: FakeOllama, client: httpx.AsyncClient) -> None:
    ollama = provider(client, fake.url, keep_alive="30m", num_ctx=16384)
    request = ModelRequest.ask(
        "Why is the cache down?", system="You triage.", max_output_tokens=400
    )
    response = await ollama.complete(MODEL, request)

    [sent] = fake.requests
    assert (sent.method, sent.path) == ("POST", "/api/chat")
    assert "authorization" not in sent.headers
    assert sent.json() == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You triage."},
            {"role": "user", "content": "Why is the cache down?"},
        ],
        "stream": False,
        "options": {"num_predict": 400, "temperature": 0.2, "num_ctx": 16384},
        "keep_alive": "30m",
    }
    assert (response.text, response.host, response.finish_reason) == ("OK", "127.0.0.1", "stop")


async def test_unset_options_are_left_out(fake: FakeOllama, client: httpx.AsyncClient) -> None:
    await provider(client, fake.url).complete(MODEL, ModelRequest.ask("hi", temperature=None))
    body = fake.bodies()[0]
    assert body["options"] == {"num_predict": 1024}
    assert "keep_alive" not in body and "format" not in body


async def test_structured_output_sends_the_schema_as_format(
    fake: FakeOllama, client: httpx.AsyncClient
) -> None:
    fake.reply = VALID
    response = await provider(client, fake.url).complete(
        MODEL, ModelRequest.ask("triage", output=Triage)
    )
    assert fake.bodies()[0]["format"] == Triage.model_json_schema()
    assert response.data == {"severity": "high", "escalate": True}


async def test_usage_from_eval_counts(client: httpx.AsyncClient) -> None:
    with FakeOllama(prompt_eval_count=1204, eval_count=151) as fake:
        response = await provider(client, fake.url).complete(MODEL, ModelRequest.ask("hi"))
    assert response.usage == Usage(input_tokens=1204, output_tokens=151)


async def test_cached_prompt_without_prompt_eval_count_counts_zero_input(
    client: httpx.AsyncClient,
) -> None:
    with FakeOllama(eval_count=42, cached_prompt=True) as fake:
        response = await provider(client, fake.url).complete(MODEL, ModelRequest.ask("hi"))
    assert response.usage == Usage(input_tokens=0, output_tokens=42)


async def test_think_block_is_stripped(client: httpx.AsyncClient) -> None:
    reply = "<think>\nThe 503s started at 14:02…\n</think>\n\nRedis is out of memory."
    with FakeOllama(reply=reply) as fake:
        response = await provider(client, fake.url).complete(MODEL, ModelRequest.ask("why?"))
    assert response.text == "Redis is out of memory."


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("<think>a</think>b<think>c</think> d", "b d"),
        ("<think>ran out of tokens while thinking", ""),
        ("opening tag was in the template</think>\nanswer", "answer"),
        ("  plain answer, untouched  ", "  plain answer, untouched  "),
        ("answer mentioning <think> later", "answer mentioning <think> later"),
    ],
)
def test_strip_think(text: str, answer: str) -> None:
    assert strip_think(text) == answer


async def test_think_block_before_json_does_not_break_structured_output(
    client: httpx.AsyncClient,
) -> None:
    with FakeOllama(reply=f"<think>{{draft}}</think>{VALID}") as fake:
        response = await provider(client, fake.url).complete(
            MODEL, ModelRequest.ask("triage", output=Triage)
        )
    assert response.data == {"severity": "high", "escalate": True}


async def test_invalid_reply_is_corrected_once(client: httpx.AsyncClient) -> None:
    replies = ['{"severity": "severe"}', VALID]
    with FakeOllama(reply=replies, prompt_eval_count=300, eval_count=20) as fake:
        response = await provider(client, fake.url).complete(
            MODEL, ModelRequest.ask("triage", output=Triage)
        )
    assert (len(fake.requests), response.attempts) == (2, 2)
    assert response.usage == Usage(input_tokens=600, output_tokens=40)
    assert "did not match the required JSON schema" in fake.bodies()[1]["messages"][-1]["content"]


async def test_invalid_twice_keeps_the_spent_usage(client: httpx.AsyncClient) -> None:
    with (
        FakeOllama(reply="I think it is fine.", prompt_eval_count=300, eval_count=20) as fake,
        pytest.raises(StructuredOutputError) as caught,
    ):
        await provider(client, fake.url).complete(MODEL, ModelRequest.ask("triage", output=Triage))
    assert caught.value.usage == Usage(input_tokens=600, output_tokens=40)


async def test_model_not_pulled_says_how_to_pull_it(
    fake: FakeOllama, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderHTTPError) as caught:
        await provider(client, fake.url).complete("gemma4:12b", ModelRequest.ask("hi"))
    assert caught.value.status == 404
    assert "model gemma4:12b is not pulled on 127.0.0.1: run `ollama pull gemma4:12b`" in str(
        caught.value
    )
    assert len(fake.requests) == 1  # a 404 is not retried


def test_older_not_found_wording_is_recognised(client: httpx.AsyncClient) -> None:
    ollama = provider(client, "http://127.0.0.1:11434")
    detail = ollama.error_detail({"error": "model 'llama3' not found"})
    assert detail == "model llama3 is not pulled on 127.0.0.1: run `ollama pull llama3`"
    assert ollama.error_detail({"error": "unexpected EOF"}) == "unexpected EOF"
    assert ollama.error_detail("not an error object") is None


async def test_runner_crash_is_retried_and_shown(
    fake: FakeOllama, client: httpx.AsyncClient
) -> None:
    crash = ollama_error(500, "llama runner process has terminated: signal: killed")
    fake.server.queue(crash, crash, crash, crash)
    sleeps = Sleeps()
    with pytest.raises(ProviderHTTPError, match="llama runner process has terminated") as caught:
        await provider(client, fake.url, sleep=sleeps).complete(MODEL, ModelRequest.ask("hi"))
    assert (caught.value.status, caught.value.attempts) == (500, 4)
    assert sleeps.delays == [0.5, 1.0, 2.0]


async def test_reply_without_message_is_a_response_error(
    fake: FakeOllama, client: httpx.AsyncClient
) -> None:
    fake.server.queue(Scripted(200, {"model": MODEL, "done": True}))
    with pytest.raises(ProviderResponseError, match="message"):
        await provider(client, fake.url).complete(MODEL, ModelRequest.ask("hi"))


# -- probe ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (MODEL, (True, "pulled")),
        ("llama3.2", (True, "pulled")),  # implicit :latest on our side
        ("qwen3:latest", (True, "pulled")),  # implicit :latest on Ollama's side
        ("gemma4:12b", (False, "not pulled: run `ollama pull gemma4:12b`")),
        ("gemma4", (False, "not pulled: run `ollama pull gemma4`")),
    ],
)
async def test_probe(
    fake: FakeOllama, client: httpx.AsyncClient, model: str, expected: tuple[bool, str]
) -> None:
    assert await provider(client, fake.url).probe(model) == expected
    assert (fake.requests[-1].method, fake.requests[-1].path) == ("GET", "/api/tags")


async def test_probe_unreachable(client: httpx.AsyncClient) -> None:
    usable, reason = await provider(client, f"http://127.0.0.1:{free_port()}").probe(MODEL)
    assert usable is False
    assert reason.startswith("unreachable: cannot connect to 127.0.0.1")


async def test_probe_of_something_that_is_not_ollama(client: httpx.AsyncClient) -> None:
    with serving(lambda request: Scripted(200, "<html>router login</html>")) as other:
        usable, reason = await provider(client, other.url).probe(MODEL)
    assert usable is False
    assert "not Ollama's" in reason


async def test_fake_streams_ndjson_when_stream_is_not_false(
    fake: FakeOllama, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        fake.url + "/api/chat",
        json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.text.count("\n") == 2  # one chunk for "OK", then the final done chunk


async def test_reply_can_follow_the_request(client: httpx.AsyncClient) -> None:
    def answer(body: dict[str, Any]) -> str:  # invalid at first, valid once corrected
        return VALID if len(body["messages"]) > 1 else "Severity: high. Escalate!"

    with FakeOllama(reply=answer) as fake:
        response = await provider(client, fake.url).complete(
            MODEL, ModelRequest.ask("triage", output=Triage)
        )
    assert response.data == {"severity": "high", "escalate": True}
    assert [len(body["messages"]) for body in fake.bodies()] == [1, 3]
