from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel

from daemon.llm import provider_class
from daemon.llm.cohere import CohereProvider
from daemon.llm.types import (
    ChatMessage,
    MissingKeyError,
    ModelRequest,
    ProviderAuthError,
    ProviderResponseError,
    ProviderUnavailable,
    StructuredOutputError,
    Usage,
)
from tests.daemon.llm.conftest import Sleeps, assert_key_never_shown, build
from tests.peers.providers.cohere import FakeCohere, error_response, rate_limited
from tests.peers.scripted import Scripted

KEY = "co-right-key-for-tests-000000000000000000"
CANARY = "wk-canary-cohere-71ae3d"
MODEL = "command-a-03-2025"


class Verdict(BaseModel):
    severity: Literal["low", "high"]
    summary: str


VALID = {"severity": "low", "summary": "a blip"}
USAGE = {
    "billed_units": {"input_tokens": 50, "output_tokens": 120},
    "tokens": {"input_tokens": 260, "output_tokens": 121},
}


@pytest.fixture
def fake() -> Iterator[FakeCohere]:
    with FakeCohere(key=KEY) as server:
        yield server


def make(
    fake: FakeCohere, client: httpx.AsyncClient, key: str | None = KEY, **options: Any
) -> CohereProvider:
    return build(CohereProvider, fake.url, client, key, **options)


def test_registry_points_at_this_module() -> None:
    assert provider_class("cohere") is CohereProvider
    assert CohereProvider.info.default_base_url == "https://api.cohere.com"


async def test_request_carries_bearer_key_and_system_as_first_message(
    fake: FakeCohere, client: httpx.AsyncClient
) -> None:
    messages = (
        ChatMessage("user", "q1"),
        ChatMessage("assistant", "a1"),
        ChatMessage("user", "q2"),
    )
    request = ModelRequest(messages=messages, system="You are an SRE.", max_output_tokens=300)
    response = await make(fake, client).complete(MODEL, request)

    sent = fake.requests[0]
    assert (sent.method, sent.path) == ("POST", "/v2/chat")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json() == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are an SRE."},
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "q2"},
        ],
        "max_tokens": 300,
        "stream": False,
        "temperature": 0.2,
    }
    assert (response.text, response.finish_reason) == ("All checks look healthy.", "COMPLETE")


async def test_usage_is_the_billed_units_not_the_processed_tokens(
    client: httpx.AsyncClient,
) -> None:
    with FakeCohere(key=KEY, usage=USAGE) as fake:
        response = await make(fake, client).complete(MODEL, ModelRequest.ask("hi"))
    assert response.usage == Usage(input_tokens=50, output_tokens=120)


async def test_thinking_content_is_not_the_answer(client: httpx.AsyncClient) -> None:
    with FakeCohere(key=KEY, thinking="Let me look at the cache…") as fake:
        response = await make(fake, client).complete(MODEL, ModelRequest.ask("hi"))
    assert response.text == "All checks look healthy."


async def test_structured_output_sends_the_schema_as_json_object_format(
    client: httpx.AsyncClient,
) -> None:
    with FakeCohere(key=KEY, reply=VALID) as fake:
        response = await make(fake, client).complete(MODEL, ModelRequest.ask("x", output=Verdict))
    assert fake.requests[0].json()["response_format"] == {
        "type": "json_object",
        "json_schema": Verdict.model_json_schema(),
    }
    assert response.data == VALID
    assert response.attempts == 1


async def test_invalid_structured_reply_is_corrected_once(client: httpx.AsyncClient) -> None:
    with FakeCohere(key=KEY, reply=[{"severity": "meh"}, VALID], usage=USAGE) as fake:
        response = await make(fake, client).complete(MODEL, ModelRequest.ask("x", output=Verdict))
    assert response.data == VALID
    assert response.attempts == 2
    assert response.usage == Usage(input_tokens=100, output_tokens=240)
    second = fake.requests[1].json()["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"] == '{"severity": "meh"}'


async def test_still_invalid_after_the_correction_keeps_the_spent_usage(
    client: httpx.AsyncClient,
) -> None:
    with (
        FakeCohere(key=KEY, reply="no JSON here", usage=USAGE) as fake,
        pytest.raises(StructuredOutputError) as info,
    ):
        await make(fake, client).complete(MODEL, ModelRequest.ask("x", output=Verdict))
    assert info.value.usage == Usage(input_tokens=100, output_tokens=240)


async def test_rejected_key_is_an_auth_error_that_never_shows_the_key(
    fake: FakeCohere, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderAuthError) as info:
        await make(fake, client, key=CANARY).complete(MODEL, ModelRequest.ask("hi"))
    error = info.value
    assert "cohere" in str(error)
    assert "invalid api token" in str(error)
    assert_key_never_shown(error, CANARY)
    assert len(fake.requests) == 1


async def test_missing_key_fails_before_any_request(
    fake: FakeCohere, client: httpx.AsyncClient
) -> None:
    with pytest.raises(MissingKeyError, match="COHERE_API_KEY or CO_API_KEY"):
        await make(fake, client, key=None).complete(MODEL, ModelRequest.ask("hi"))
    assert fake.requests == []


async def test_rate_limit_waits_as_long_as_retry_after_says(
    fake: FakeCohere, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(rate_limited(retry_after=3))
    response = await make(fake, client, sleep=sleeps).complete(MODEL, ModelRequest.ask("hi"))
    assert sleeps.delays == [3.0]
    assert response.attempts == 2


async def test_a_server_error_is_retried_with_backoff(
    fake: FakeCohere, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(error_response(503, "upstream connect error"))
    response = await make(fake, client, sleep=sleeps).complete(MODEL, ModelRequest.ask("hi"))
    assert sleeps.delays == [0.5]
    assert response.attempts == 2


@pytest.mark.parametrize(
    "scripted",
    [
        Scripted(200, "<html>oops</html>"),
        Scripted(200, b'{"id": "x", "message": {"role": "assis'),
        Scripted(200, {"id": "x", "finish_reason": "COMPLETE", "message": {"role": "assistant"}}),
        Scripted(
            200,
            {
                "id": "x",
                "finish_reason": "COMPLETE",
                "message": {"role": "assistant", "content": [{"type": "text"}]},
                "usage": USAGE,
            },
        ),
        Scripted(
            200,
            {
                "id": "x",
                "finish_reason": "COMPLETE",
                "message": {"role": "assistant", "content": []},
                "usage": {"tokens": {"input_tokens": 1, "output_tokens": 1}},
            },
        ),
    ],
    ids=["html", "cut-json", "no-usage", "text-without-text", "no-billed-units"],
)
async def test_a_body_that_is_not_a_chat_response_is_a_response_error(
    fake: FakeCohere, client: httpx.AsyncClient, scripted: Scripted
) -> None:
    fake.server.queue(scripted)
    with pytest.raises(ProviderResponseError):
        await make(fake, client).complete(MODEL, ModelRequest.ask("hi"))


async def test_a_truncated_body_is_a_transport_error(
    fake: FakeCohere, client: httpx.AsyncClient
) -> None:
    fake.server.queue(Scripted(200, {"id": "x"}, truncate=True))
    with pytest.raises(ProviderUnavailable):
        await make(fake, client, max_retries=0).complete(MODEL, ModelRequest.ask("hi"))


async def test_the_fake_rejects_a_request_without_a_model(
    fake: FakeCohere, client: httpx.AsyncClient
) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    answer = await client.post(
        f"{fake.url}/v2/chat", json=body, headers={"authorization": f"Bearer {KEY}"}
    )
    assert answer.status_code == 400
    assert answer.json()["message"] == "invalid request: model must be specified"
