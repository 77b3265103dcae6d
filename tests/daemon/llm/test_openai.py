"""The OpenAI provider against a loopback fake of the Chat Completions API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel, Field

from daemon.llm import provider_class
from daemon.llm.openai import OpenAIProvider, strict_schema
from daemon.llm.types import (
    ModelRequest,
    ProviderAuthError,
    ProviderHTTPError,
    ProviderResponseError,
    StructuredOutputError,
    Usage,
)
from tests.daemon.llm.conftest import build
from tests.peers.providers.openai import DEFAULT_KEY, FakeOpenAI, Tokens, strict_problem


class Verdict(BaseModel):
    severity: Literal["low", "high"]
    summary: str = Field(title="Summary", description="one sentence")
    escalate: bool = False


class Step(BaseModel):
    command: str
    why: str | None = None


class Analysis(BaseModel):
    verdict: Verdict
    steps: list[Step] = []
    confidence: float = Field(default=0.5, ge=0, le=1)


class Node(BaseModel):
    name: str
    children: list[Node] = []


VALID = '{"severity": "high", "summary": "cache is down", "escalate": true}'


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def provider(
    client: httpx.AsyncClient, base_url: str, key: str | None = DEFAULT_KEY
) -> OpenAIProvider:
    return build(OpenAIProvider, base_url, client, key)


def test_registered_under_its_api() -> None:
    assert provider_class("openai") is OpenAIProvider
    assert OpenAIProvider.info.default_base_url == "https://api.openai.com/v1"


async def test_request_shape(fake: FakeOpenAI, client: httpx.AsyncClient) -> None:
    request = ModelRequest.ask("Is the cache healthy?", system="You are on call.")
    response = await provider(client, fake.url).complete("gpt-4.1", request)

    [sent] = fake.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {DEFAULT_KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "You are on call."},
            {"role": "user", "content": "Is the cache healthy?"},
        ],
        "max_tokens": 1024,
        "temperature": 0.2,
    }
    assert (response.text, response.host, response.attempts) == ("OK", "127.0.0.1", 1)


async def test_no_authorization_header_without_a_key(client: httpx.AsyncClient) -> None:
    with FakeOpenAI(key=None) as local:
        await provider(client, local.url, key=None).complete("qwen3-8b", ModelRequest.ask("hi"))
    assert "authorization" not in local.requests[0].headers


async def test_temperature_left_out_when_none(fake: FakeOpenAI, client: httpx.AsyncClient) -> None:
    await provider(client, fake.url).complete("gpt-4.1", ModelRequest.ask("hi", temperature=None))
    assert "temperature" not in fake.bodies()[0]


def test_api_openai_com_gets_max_completion_tokens(client: httpx.AsyncClient) -> None:
    cloud = provider(client, OpenAIProvider.info.default_base_url)
    body = cloud.body("gpt-4.1", ModelRequest.ask("hi", max_output_tokens=300))
    assert cloud.url("gpt-4.1") == "https://api.openai.com/v1/chat/completions"
    assert body["max_completion_tokens"] == 300
    assert "max_tokens" not in body


async def test_reasoning_model_gets_neither_temperature_nor_max_tokens(
    client: httpx.AsyncClient,
) -> None:
    # The fake, like OpenAI, answers 400 to either for gpt-5*/o-series models.
    with FakeOpenAI(models=["gpt-5.4"]) as fake:
        response = await provider(client, fake.url).complete("gpt-5.4", ModelRequest.ask("hi"))
        sent = fake.bodies()[0]
        rejected = await client.post(
            fake.url + "/chat/completions",
            json={**sent, "temperature": 0.2},
            headers={"authorization": f"Bearer {DEFAULT_KEY}"},
        )
    assert response.text == "OK"
    assert "temperature" not in sent and "max_tokens" not in sent
    assert sent["max_completion_tokens"] == 1024
    assert rejected.status_code == 400
    assert rejected.json()["error"]["code"] == "unsupported_value"


async def test_usage_maps_cached_and_reasoning_tokens(client: httpx.AsyncClient) -> None:
    tokens = Tokens(prompt=2310, completion=480, cached=1024, reasoning=192)
    with FakeOpenAI(usage=tokens, snapshots={"gpt-5.4": "gpt-5.4-2026-03-05"}) as fake:
        response = await provider(client, fake.url).complete("gpt-5.4", ModelRequest.ask("hi"))
    assert response.usage == Usage(
        input_tokens=2310, output_tokens=480, cached_input_tokens=1024, reasoning_tokens=192
    )
    assert response.finish_reason == "stop"


def test_parse_keeps_the_served_snapshot_and_tolerates_null_details(
    client: httpx.AsyncClient,
) -> None:
    payload = {
        "model": "gpt-5.4-2026-03-05",
        "choices": [{"message": {"content": "x"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "prompt_tokens_details": None},
        "unknown_future_field": {"ok": True},
    }
    reply = provider(client, "http://127.0.0.1:1/v1").parse(payload)
    assert (reply.model, reply.finish_reason) == ("gpt-5.4-2026-03-05", "length")
    assert reply.usage == Usage(input_tokens=3, output_tokens=1)


async def test_refusal_is_a_response_error(client: httpx.AsyncClient) -> None:
    with (
        FakeOpenAI(refusal="I can't help with that request.") as fake,
        pytest.raises(ProviderResponseError, match="refused: I can't help") as caught,
    ):
        await provider(client, fake.url).complete("gpt-4.1", ModelRequest.ask("hi"))
    assert caught.value.outcome == "bad_response"
    assert len(fake.requests) == 1


async def test_unknown_model_reads_the_provider_message(client: httpx.AsyncClient) -> None:
    with (
        FakeOpenAI(models=["gpt-5.4"]) as fake,
        pytest.raises(ProviderHTTPError) as caught,
    ):
        await provider(client, fake.url).complete("gpt-9", ModelRequest.ask("hi"))
    assert caught.value.status == 404
    assert "The model `gpt-9` does not exist" in caught.value.message
    assert "(model_not_found)" in caught.value.message


async def test_missing_key_reads_openai_message(client: httpx.AsyncClient) -> None:
    with FakeOpenAI() as fake, pytest.raises(ProviderAuthError) as caught:
        await provider(client, fake.url, key=None).complete("gpt-4.1", ModelRequest.ask("hi"))
    assert "You didn't provide an API key" in caught.value.message


def test_error_detail_accepts_a_plain_string_error(client: httpx.AsyncClient) -> None:
    local = provider(client, "http://127.0.0.1:1234/v1")
    assert local.error_detail({"error": "Model not loaded"}) == "Model not loaded"
    assert local.error_detail({"detail": "something else"}) is None
    assert local.error_detail(["not", "an", "object"]) is None


# -- structured output ------------------------------------------------------------------------


async def test_structured_output_sends_a_strict_schema(
    fake: FakeOpenAI, client: httpx.AsyncClient
) -> None:
    fake.reply = VALID
    request = ModelRequest.ask("triage", output=Verdict, output_name="triage verdict")
    response = await provider(client, fake.url).complete("gpt-4.1", request)

    assert response.data == {"severity": "high", "summary": "cache is down", "escalate": True}
    fmt = fake.bodies()[0]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "triage_verdict"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"] == strict_schema(Verdict.model_json_schema())


async def test_invalid_reply_is_corrected_once(client: httpx.AsyncClient) -> None:
    tokens = Tokens(prompt=100, completion=20, cached=64, reasoning=8)
    with FakeOpenAI(reply=['{"severity": "urgent"}', VALID], usage=tokens) as fake:
        request = ModelRequest.ask("triage", output=Verdict)
        response = await provider(client, fake.url).complete("gpt-4.1", request)

    assert len(fake.requests) == 2
    assert response.attempts == 2
    assert response.usage == Usage(200, 40, cached_input_tokens=128, reasoning_tokens=16)
    assert response.data is not None and response.data["severity"] == "high"
    correction = fake.bodies()[1]["messages"]
    assert correction[-2] == {"role": "assistant", "content": '{"severity": "urgent"}'}
    assert "did not match the required JSON schema" in correction[-1]["content"]
    assert "severity" in correction[-1]["content"]


async def test_invalid_twice_is_a_structured_output_error(client: httpx.AsyncClient) -> None:
    with (
        FakeOpenAI(reply="not json at all", usage=Tokens(50, 10)) as fake,
        pytest.raises(StructuredOutputError) as caught,
    ):
        await provider(client, fake.url).complete(
            "gpt-4.1", ModelRequest.ask("triage", output=Verdict)
        )
    error = caught.value
    assert len(fake.requests) == 2
    assert (error.outcome, error.attempts) == ("invalid_output", 2)
    assert error.usage == Usage(100, 20)
    assert "no JSON object" in error.message


# -- strict_schema ----------------------------------------------------------------------------


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from _objects(item)


def test_strict_schema_inlines_refs_and_closes_every_object() -> None:
    assert strict_problem(Analysis.model_json_schema()) is not None  # the fake would refuse it
    schema = strict_schema(Analysis.model_json_schema())
    text = json.dumps(schema)
    assert "$ref" not in text and "$defs" not in text
    assert '"title"' not in text and '"default"' not in text
    objects = list(_objects(schema))
    assert len(objects) == 3  # Analysis, Verdict, Step
    for node in objects:
        assert node["additionalProperties"] is False
        assert node["required"] == list(node["properties"])
    assert schema["properties"]["verdict"]["properties"]["summary"] == {
        "type": "string",
        "description": "one sentence",
    }
    why = schema["properties"]["steps"]["items"]["properties"]["why"]
    assert why == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert schema["properties"]["confidence"] == {"type": "number", "minimum": 0, "maximum": 1}
    assert strict_problem(schema) is None


def test_strict_schema_does_not_change_its_input() -> None:
    original = Analysis.model_json_schema()
    copy = json.loads(json.dumps(original))
    strict_schema(original)
    assert original == copy


def test_strict_schema_keeps_recursive_definitions() -> None:
    schema = strict_schema(Node.model_json_schema())
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert schema["$defs"]["Node"]["additionalProperties"] is False
    assert strict_problem(schema) is None


def test_strict_schema_drops_unsupported_keywords() -> None:
    schema = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "format": "uri", "minLength": 1},
            "at": {"type": "string", "format": "date-time"},
            "kind": {"oneOf": [{"const": "a"}, {"const": "b"}], "discriminator": {}},
        },
        "examples": [{}],
    }
    assert strict_schema(schema) == {
        "type": "object",
        "properties": {
            "url": {"type": "string"},
            "at": {"type": "string", "format": "date-time"},
            "kind": {"anyOf": [{"const": "a"}, {"const": "b"}]},
        },
        "required": ["url", "at", "kind"],
        "additionalProperties": False,
    }


async def test_map_fields_are_sent_non_strict(fake: FakeOpenAI, client: httpx.AsyncClient) -> None:
    class Labels(BaseModel):
        labels: dict[str, str]

    fake.reply = '{"labels": {"team": "payments"}}'
    request = ModelRequest.ask("label it", output=Labels)
    response = await provider(client, fake.url).complete("gpt-4.1", request)
    assert response.data == {"labels": {"team": "payments"}}
    assert fake.bodies()[0]["response_format"]["json_schema"]["strict"] is False
