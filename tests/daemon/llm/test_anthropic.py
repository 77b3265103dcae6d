from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel

from daemon.llm import provider_class
from daemon.llm.anthropic import EMPTY_TURN, AnthropicProvider
from daemon.llm.base import ProviderOptions
from daemon.llm.types import (
    ChatMessage,
    MissingKeyError,
    ModelRequest,
    ProviderAuthError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderUnavailable,
    StructuredOutputError,
    Usage,
)
from tests.daemon.llm.conftest import Sleeps, assert_key_never_shown, build
from tests.peers.providers.anthropic import FakeAnthropic, message_body, overloaded, rate_limited
from tests.peers.scripted import Scripted

KEY = "sk-ant-api03-right-key-for-tests"
CANARY = "wk-canary-anthropic-5c1f0e"
MODEL = "claude-sonnet-4-5"


class Verdict(BaseModel):
    severity: Literal["low", "high"]
    summary: str


VALID = {"severity": "high", "summary": "cache is down"}
USAGE = {"input_tokens": 100, "output_tokens": 20}


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(key=KEY) as server:
        yield server


def make(
    fake: FakeAnthropic, client: httpx.AsyncClient, key: str | None = KEY, **options: Any
) -> AnthropicProvider:
    return build(AnthropicProvider, fake.url, client, key, **options)


def test_registry_points_at_this_module() -> None:
    assert provider_class("anthropic") is AnthropicProvider
    assert AnthropicProvider.info.key_env == ("ANTHROPIC_API_KEY",)
    assert AnthropicProvider.info.default_base_url == "https://api.anthropic.com"


async def test_request_carries_key_version_system_and_messages(
    fake: FakeAnthropic, client: httpx.AsyncClient
) -> None:
    request = ModelRequest.ask("Is the cache healthy?", system="You are an SRE.", temperature=0.1)
    response = await make(fake, client).complete(MODEL, request)

    sent = fake.requests[0]
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {
        "model": MODEL,
        "max_tokens": 1024,
        "system": "You are an SRE.",
        "messages": [{"role": "user", "content": "Is the cache healthy?"}],
        "temperature": 0.1,
    }
    assert response.text == "All checks look healthy."
    assert response.finish_reason == "end_turn"
    assert response.host == "127.0.0.1"


async def test_no_temperature_and_no_system_are_left_out(
    fake: FakeAnthropic, client: httpx.AsyncClient
) -> None:
    await make(fake, client).complete(MODEL, ModelRequest.ask("hi", temperature=None))
    body = fake.requests[0].json()
    assert "temperature" not in body
    assert "system" not in body
    assert "tools" not in body


async def test_text_blocks_are_joined_and_other_blocks_skipped(
    fake: FakeAnthropic, client: httpx.AsyncClient
) -> None:
    content = [
        {"type": "thinking", "thinking": "let me see", "signature": "sig"},
        {"type": "text", "text": "The cache "},
        {"type": "text", "text": "is down."},
    ]
    fake.server.queue(Scripted(200, message_body(content, model="claude-sonnet-4-5-20250929")))
    response = await make(fake, client).complete(MODEL, ModelRequest.ask("status?"))
    assert response.text == "The cache is down."


def test_the_reply_names_the_model_snapshot_that_answered() -> None:
    provider = AnthropicProvider(
        ProviderOptions(name="anthropic", base_url="http://127.0.0.1:9"), KEY, httpx.AsyncClient()
    )
    body = message_body([{"type": "text", "text": "ok"}], model="claude-sonnet-4-5-20250929")
    assert provider.parse(body).model == "claude-sonnet-4-5-20250929"


async def test_cache_reads_and_writes_are_part_of_the_input(client: httpx.AsyncClient) -> None:
    usage = {
        "input_tokens": 12,
        "cache_creation_input_tokens": 1000,
        "cache_read_input_tokens": 3000,
        "output_tokens": 250,
    }
    with FakeAnthropic(key=KEY, usage=usage) as fake:
        response = await make(fake, client).complete(MODEL, ModelRequest.ask("hi"))
    # 12 uncached + 1000 written + 3000 read = 4012 in total.
    assert response.usage == Usage(
        input_tokens=4012, output_tokens=250, cached_input_tokens=3000, cache_write_tokens=1000
    )


async def test_null_or_absent_cache_fields_count_as_zero(client: httpx.AsyncClient) -> None:
    usage = {"input_tokens": 7, "output_tokens": 3, "cache_creation_input_tokens": None}
    with FakeAnthropic(key=KEY, usage=usage) as fake:
        response = await make(fake, client).complete(MODEL, ModelRequest.ask("hi"))
    assert response.usage == Usage(input_tokens=7, output_tokens=3)


async def test_structured_output_is_a_forced_tool_call(client: httpx.AsyncClient) -> None:
    request = ModelRequest.ask("Assess.", output=Verdict, output_name="verdict")
    with FakeAnthropic(key=KEY, reply=VALID) as fake:
        response = await make(fake, client).complete(MODEL, request)
    body = fake.requests[0].json()
    assert body["tools"] == [
        {
            "name": "verdict",
            "description": "Reply with the structured result.",
            "input_schema": Verdict.model_json_schema(),
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "verdict"}
    assert response.data == VALID
    assert json.loads(response.text) == VALID
    assert (response.finish_reason, response.attempts) == ("tool_use", 1)


async def test_invalid_structured_reply_is_corrected_once(client: httpx.AsyncClient) -> None:
    wrong = {"severity": "catastrophic"}
    request = ModelRequest.ask("Assess.", output=Verdict)
    with FakeAnthropic(key=KEY, reply=[wrong, VALID], usage=USAGE) as fake:
        response = await make(fake, client).complete(MODEL, request)

    assert response.data == VALID
    assert response.attempts == 2
    assert response.usage == Usage(input_tokens=200, output_tokens=40)
    second = fake.requests[1].json()
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert json.loads(second["messages"][1]["content"]) == wrong
    assert "did not match the required JSON schema" in second["messages"][2]["content"]
    assert second["tool_choice"] == {"type": "tool", "name": "respond"}


async def test_still_invalid_after_the_correction_is_an_error_with_the_spent_usage(
    client: httpx.AsyncClient,
) -> None:
    with (
        FakeAnthropic(key=KEY, reply={"nope": 1}, usage=USAGE) as fake,
        pytest.raises(StructuredOutputError) as info,
    ):
        await make(fake, client).complete(MODEL, ModelRequest.ask("x", output=Verdict))
    assert info.value.usage == Usage(input_tokens=200, output_tokens=40)
    assert info.value.attempts == 2


async def test_an_empty_assistant_turn_is_sent_as_a_placeholder(
    fake: FakeAnthropic, client: httpx.AsyncClient
) -> None:
    messages = (ChatMessage("user", "a"), ChatMessage("assistant", ""), ChatMessage("user", "b"))
    await make(fake, client).complete(MODEL, ModelRequest(messages=messages))
    assert fake.requests[0].json()["messages"][1]["content"] == EMPTY_TURN


async def test_rejected_key_is_an_auth_error_that_never_shows_the_key(
    fake: FakeAnthropic, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderAuthError) as info:
        await make(fake, client, key=CANARY).complete(MODEL, ModelRequest.ask("hi"))
    error = info.value
    assert "anthropic" in str(error)
    assert "authentication_error" in str(error)
    assert_key_never_shown(error, CANARY)
    assert error.status == 401
    assert len(fake.requests) == 1  # never retried


async def test_missing_key_fails_before_any_request(
    fake: FakeAnthropic, client: httpx.AsyncClient
) -> None:
    with pytest.raises(MissingKeyError, match="ANTHROPIC_API_KEY"):
        await make(fake, client, key=None).complete(MODEL, ModelRequest.ask("hi"))
    assert fake.requests == []


async def test_rate_limit_waits_as_long_as_retry_after_says(
    fake: FakeAnthropic, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(rate_limited(retry_after=7))
    response = await make(fake, client, sleep=sleeps).complete(MODEL, ModelRequest.ask("hi"))
    assert sleeps.delays == [7.0]
    assert response.attempts == 2


async def test_overloaded_529_is_retried_with_backoff(
    fake: FakeAnthropic, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(overloaded(), overloaded())
    response = await make(fake, client, sleep=sleeps).complete(MODEL, ModelRequest.ask("hi"))
    assert sleeps.delays == [0.5, 1.0]
    assert response.attempts == 3


async def test_overloaded_every_time_gives_up_after_the_retries(
    fake: FakeAnthropic, client: httpx.AsyncClient
) -> None:
    fake.server.queue(*[overloaded() for _ in range(3)])
    provider = make(fake, client, max_retries=2)
    with pytest.raises(ProviderHTTPError) as info:
        await provider.complete(MODEL, ModelRequest.ask("hi"))
    assert (info.value.status, info.value.attempts) == (529, 3)
    assert "overloaded_error: Overloaded" in str(info.value)


@pytest.mark.parametrize(
    "scripted",
    [
        Scripted(200, "<html>502 Bad Gateway</html>"),
        Scripted(200, b'{"type": "message", "role": "assis'),
        Scripted(200, {"type": "message", "role": "assistant", "model": "m", "content": []}),
        Scripted(200, message_body([{"type": "text"}])),
        Scripted(200, message_body([{"type": "tool_use", "name": "respond", "input": "x"}])),
    ],
    ids=["html", "cut-json", "no-usage", "text-without-text", "tool-input-not-object"],
)
async def test_a_body_that_is_not_a_message_is_a_response_error(
    fake: FakeAnthropic, client: httpx.AsyncClient, scripted: Scripted
) -> None:
    fake.server.queue(scripted)
    with pytest.raises(ProviderResponseError) as info:
        await make(fake, client).complete(MODEL, ModelRequest.ask("hi"))
    assert info.value.outcome == "bad_response"


async def test_a_truncated_body_is_a_transport_error(
    fake: FakeAnthropic, client: httpx.AsyncClient
) -> None:
    fake.server.queue(Scripted(200, message_body([{"type": "text", "text": "x"}]), truncate=True))
    with pytest.raises(ProviderUnavailable):
        await make(fake, client, max_retries=0).complete(MODEL, ModelRequest.ask("hi"))


async def test_the_fake_rejects_what_the_real_api_rejects(
    fake: FakeAnthropic, client: httpx.AsyncClient
) -> None:
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    no_max = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    answer = await client.post(f"{fake.url}/v1/messages", json=no_max, headers=headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "max_tokens: Field required"
    system_role = {**no_max, "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}
    answer = await client.post(f"{fake.url}/v1/messages", json=system_role, headers=headers)
    assert "Unexpected role" in answer.json()["error"]["message"]
    answer = await client.post(
        f"{fake.url}/v1/messages", json={**no_max, "max_tokens": 5}, headers={"x-api-key": KEY}
    )
    assert answer.json()["error"]["message"] == "anthropic-version: header is required"
