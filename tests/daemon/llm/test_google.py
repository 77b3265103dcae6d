from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel, Field

from daemon.llm import provider_class
from daemon.llm.google import GoogleProvider, gemini_schema
from daemon.llm.types import (
    ChatMessage,
    MissingKeyError,
    ModelRequest,
    ProviderAuthError,
    ProviderHTTPError,
    ProviderResponseError,
    ProviderUnavailable,
    Usage,
)
from tests.daemon.llm.conftest import Sleeps, assert_key_never_shown, build
from tests.peers.providers.google import FakeGemini, error_response, rate_limited
from tests.peers.scripted import Scripted

KEY = "AIzaSyRightKeyForTests-0000000000000000"
CANARY = "wk-canary-gemini-8d2b41"
MODEL = "gemini-2.5-flash"
PATH = f"/v1beta/models/{MODEL}:generateContent"


class Severity(StrEnum):
    LOW = "low"
    HIGH = "high"


class Step(BaseModel):
    """One thing to do next."""

    command: str = Field(description="a shell command")
    why: str | None = None


class Verdict(BaseModel):
    severity: Severity
    summary: str
    steps: list[Step] = Field(default_factory=list, max_length=3)


VALID = {"severity": "high", "summary": "cache is down", "steps": []}
USAGE = {"promptTokenCount": 100, "candidatesTokenCount": 20, "totalTokenCount": 120}


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(key=KEY) as server:
        yield server


def make(
    fake: FakeGemini, client: httpx.AsyncClient, key: str | None = KEY, **options: Any
) -> GoogleProvider:
    return build(GoogleProvider, fake.url, client, key, **options)


def test_registry_points_at_this_module() -> None:
    assert provider_class("google") is GoogleProvider
    assert GoogleProvider.info.default_base_url == "https://generativelanguage.googleapis.com"


# -- gemini_schema -----------------------------------------------------------------------------


def test_schema_inlines_refs_and_drops_what_gemini_does_not_know() -> None:
    schema = gemini_schema(Verdict.model_json_schema())
    assert schema == {
        "type": "OBJECT",
        "properties": {
            "severity": {"type": "STRING", "enum": ["low", "high"]},
            "summary": {"type": "STRING"},
            "steps": {
                "type": "ARRAY",
                "items": {
                    "type": "OBJECT",
                    "description": "One thing to do next.",
                    "properties": {
                        "command": {"type": "STRING", "description": "a shell command"},
                        "why": {"type": "STRING", "nullable": True},
                    },
                    "propertyOrdering": ["command", "why"],
                    "required": ["command"],
                },
                "maxItems": 3,
            },
        },
        "propertyOrdering": ["severity", "summary", "steps"],
        "required": ["severity", "summary"],
    }


def test_schema_turns_optional_into_nullable_and_keeps_real_unions() -> None:
    class Probe(BaseModel):
        step: Step | None = None
        value: int | str
        when: datetime
        url: str = Field(json_schema_extra={"format": "uri"})
        mode: Literal["fast"] = "fast"
        levels: Literal[1, 2] = 1

    schema = gemini_schema(Probe.model_json_schema())
    properties = schema["properties"]
    assert properties["step"]["nullable"] is True
    assert properties["step"]["type"] == "OBJECT"
    assert properties["value"] == {"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]}
    assert properties["when"] == {"type": "STRING", "format": "date-time"}
    assert properties["url"] == {"type": "STRING"}  # Gemini only knows enum/date-time formats
    assert properties["mode"] == {"type": "STRING", "enum": ["fast"]}
    assert properties["levels"] == {"type": "INTEGER"}  # Gemini enums are strings only
    assert "title" not in json.dumps(schema) and "default" not in json.dumps(schema)


def test_schema_handles_type_lists_allof_and_dollar_schema() -> None:
    raw = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "a": {"type": ["string", "null"], "title": "A"},
            "b": {"allOf": [{"$ref": "#/definitions/B"}], "description": "the b"},
        },
        "definitions": {"B": {"type": "integer", "format": "int64", "minimum": 0}},
    }
    assert gemini_schema(raw) == {
        "type": "OBJECT",
        "properties": {
            "a": {"type": "STRING", "nullable": True},
            "b": {"type": "INTEGER", "format": "int64", "minimum": 0, "description": "the b"},
        },
        "propertyOrdering": ["a", "b"],
    }


def test_schema_refuses_recursive_models() -> None:
    class Node(BaseModel):
        children: list[Node] = []

    with pytest.raises(ValueError, match="recursive"):
        gemini_schema(Node.model_json_schema())


# -- the wire --------------------------------------------------------------------------------


async def test_request_carries_the_key_header_roles_and_config(
    fake: FakeGemini, client: httpx.AsyncClient
) -> None:
    messages = (
        ChatMessage("user", "q1"),
        ChatMessage("assistant", "a1"),
        ChatMessage("user", "q2"),
    )
    request = ModelRequest(messages=messages, system="You are an SRE.", max_output_tokens=300)
    response = await make(fake, client).complete(MODEL, request)

    sent = fake.requests[0]
    assert (sent.method, sent.path) == ("POST", PATH)  # the key is not in the URL
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.json() == {
        "contents": [
            {"role": "user", "parts": [{"text": "q1"}]},
            {"role": "model", "parts": [{"text": "a1"}]},
            {"role": "user", "parts": [{"text": "q2"}]},
        ],
        "systemInstruction": {"parts": [{"text": "You are an SRE."}]},
        "generationConfig": {"maxOutputTokens": 300, "temperature": 0.2},
    }
    assert (response.text, response.finish_reason) == ("All checks look healthy.", "STOP")


async def test_a_models_prefix_in_the_name_is_not_doubled(
    fake: FakeGemini, client: httpx.AsyncClient
) -> None:
    await make(fake, client).complete(f"models/{MODEL}", ModelRequest.ask("hi"))
    assert fake.requests[0].path == PATH


async def test_thought_parts_are_not_the_answer_but_are_billed_as_output(
    client: httpx.AsyncClient,
) -> None:
    usage = {
        "promptTokenCount": 1200,
        "cachedContentTokenCount": 1000,
        "candidatesTokenCount": 80,
        "thoughtsTokenCount": 300,
        "totalTokenCount": 1580,
    }
    with FakeGemini(key=KEY, thoughts="Hmm, the cache…", usage=usage) as fake:
        response = await make(fake, client).complete(MODEL, ModelRequest.ask("hi"))
    assert response.text == "All checks look healthy."
    # prompt 1200 already includes the 1000 cached; output = 80 candidates + 300 thoughts.
    assert response.usage == Usage(
        input_tokens=1200, output_tokens=380, cached_input_tokens=1000, reasoning_tokens=300
    )


async def test_absent_usage_fields_count_as_zero(client: httpx.AsyncClient) -> None:
    with FakeGemini(key=KEY, usage={"promptTokenCount": 5}) as fake:
        response = await make(fake, client).complete(MODEL, ModelRequest.ask("hi"))
    assert response.usage == Usage(input_tokens=5)


async def test_structured_output_sends_a_gemini_response_schema(client: httpx.AsyncClient) -> None:
    with FakeGemini(key=KEY, reply=VALID) as fake:
        response = await make(fake, client).complete(MODEL, ModelRequest.ask("x", output=Verdict))
    config = fake.requests[0].json()["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"] == gemini_schema(Verdict.model_json_schema())
    assert response.data == VALID
    assert response.attempts == 1


async def test_invalid_structured_reply_is_corrected_once(client: httpx.AsyncClient) -> None:
    def answer(body: dict[str, Any]) -> str | dict[str, Any]:
        return VALID if len(body["contents"]) > 1 else "Sure! The severity is high."

    with FakeGemini(key=KEY, reply=answer, usage=USAGE) as fake:
        response = await make(fake, client).complete(MODEL, ModelRequest.ask("x", output=Verdict))
    assert response.data == VALID
    assert response.attempts == 2
    assert response.usage == Usage(input_tokens=200, output_tokens=40)
    second = fake.requests[1].json()["contents"]
    assert [c["role"] for c in second] == ["user", "model", "user"]
    assert second[1]["parts"] == [{"text": "Sure! The severity is high."}]


async def test_a_blocked_prompt_is_a_response_error_naming_the_reason(
    client: httpx.AsyncClient,
) -> None:
    with (
        FakeGemini(key=KEY, block_reason="SAFETY") as fake,
        pytest.raises(ProviderResponseError, match="blockReason SAFETY"),
    ):
        await make(fake, client).complete(MODEL, ModelRequest.ask("hi"))
    assert len(fake.requests) == 1


async def test_a_withheld_candidate_is_a_response_error(client: httpx.AsyncClient) -> None:
    with (
        FakeGemini(key=KEY, finish_reason="SAFETY") as fake,
        pytest.raises(ProviderResponseError, match="finishReason SAFETY"),
    ):
        await make(fake, client).complete(MODEL, ModelRequest.ask("hi"))


async def test_an_invalid_key_says_the_key_was_rejected_and_never_shows_it(
    fake: FakeGemini, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderAuthError) as info:
        await make(fake, client, key=CANARY).complete(MODEL, ModelRequest.ask("hi"))
    error = info.value
    # Gemini answers a bad key with 400 API_KEY_INVALID (its DebugInfo echoes the key).
    assert error.status == 400
    assert error.outcome == "auth"
    assert "key for google rejected (API_KEY_INVALID)" in str(error)
    assert_key_never_shown(error, CANARY)
    assert not error.retryable
    assert len(fake.requests) == 1


async def test_a_leaked_key_is_an_auth_error(client: httpx.AsyncClient) -> None:
    with (
        FakeGemini(key=KEY, leaked_keys={CANARY}) as fake,
        pytest.raises(ProviderAuthError) as info,
    ):
        await make(fake, client, key=CANARY).complete(MODEL, ModelRequest.ask("hi"))
    assert "google" in str(info.value)
    assert "PERMISSION_DENIED: Your API key was reported as leaked" in str(info.value)
    assert CANARY not in str(info.value) + repr(info.value)


async def test_missing_key_fails_before_any_request(
    fake: FakeGemini, client: httpx.AsyncClient
) -> None:
    with pytest.raises(MissingKeyError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        await make(fake, client, key=None).complete(MODEL, ModelRequest.ask("hi"))
    assert fake.requests == []


async def test_rate_limit_waits_as_long_as_retry_after_says(
    fake: FakeGemini, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(rate_limited(12, retry_after_header=True))
    response = await make(fake, client, sleep=sleeps).complete(MODEL, ModelRequest.ask("hi"))
    assert sleeps.delays == [12.0]
    assert response.attempts == 2


async def test_rate_limit_honours_the_retry_info_delay_in_the_body(
    fake: FakeGemini, client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    fake.server.queue(rate_limited(30))
    response = await make(fake, client, sleep=sleeps).complete(MODEL, ModelRequest.ask("hi"))
    assert sleeps.delays == [30.0]  # google.rpc.RetryInfo.retryDelay in the error body
    assert response.attempts == 2


async def test_an_overloaded_model_503_is_retried(
    fake: FakeGemini, client: httpx.AsyncClient
) -> None:
    fake.server.queue(error_response(503, "UNAVAILABLE", "The model is overloaded."))
    response = await make(fake, client).complete(MODEL, ModelRequest.ask("hi"))
    assert response.attempts == 2


async def test_an_unknown_model_is_a_clear_http_error(client: httpx.AsyncClient) -> None:
    with FakeGemini(key=KEY, models={MODEL}) as fake, pytest.raises(ProviderHTTPError) as info:
        await make(fake, client).complete("gemini-0-nope", ModelRequest.ask("hi"))
    assert info.value.status == 404
    assert "NOT_FOUND: models/gemini-0-nope is not found" in str(info.value)


@pytest.mark.parametrize(
    "scripted",
    [
        Scripted(200, "<html>oops</html>"),
        Scripted(200, b'{"candidates": [{"content": {"parts": [{"text": "x'),
        Scripted(200, {"candidates": []}),
        Scripted(200, {"candidates": [], "usageMetadata": {"promptTokenCount": 3}}),
        Scripted(200, {"candidates": [{"content": {"parts": [{"text": 5}]}}], "usageMetadata": {}}),
    ],
    ids=["html", "cut-json", "no-usage", "no-candidates", "text-not-string"],
)
async def test_a_body_that_is_not_a_response_is_a_response_error(
    fake: FakeGemini, client: httpx.AsyncClient, scripted: Scripted
) -> None:
    fake.server.queue(scripted)
    with pytest.raises(ProviderResponseError):
        await make(fake, client).complete(MODEL, ModelRequest.ask("hi"))


async def test_a_truncated_body_is_a_transport_error(
    fake: FakeGemini, client: httpx.AsyncClient
) -> None:
    fake.server.queue(Scripted(200, {"candidates": []}, truncate=True))
    with pytest.raises(ProviderUnavailable):
        await make(fake, client, max_retries=0).complete(MODEL, ModelRequest.ask("hi"))


async def test_the_fake_rejects_schema_fields_gemini_does_not_know(
    fake: FakeGemini, client: httpx.AsyncClient
) -> None:
    config = {"responseMimeType": "application/json", "responseSchema": Verdict.model_json_schema()}
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}], "generationConfig": config}
    answer = await client.post(fake.url + PATH, json=body, headers={"x-goog-api-key": KEY})
    assert answer.status_code == 400
    assert 'Unknown name "$defs"' in answer.json()["error"]["message"]
