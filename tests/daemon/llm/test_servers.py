"""JSON mode in each OpenAI-compatible server's own words, against imitations that model what
each version honours (vLLM's `guided_json` until 0.12.0, `structured_outputs` from 0.10.2, a
schema beside `json_object` ignored; LM Studio without JSON mode; llama.cpp's schema beside
the type). A parameter the server ignores leaves a small model unconstrained: the imitation
then answers off-schema, so a wrong choice shows as an invalid reply, not a passing test."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from daemon.llm.openai import OpenAIProvider
from daemon.llm.servers import UNKNOWN, Server, json_mode_body, version_of
from daemon.llm.types import ModelRequest, StructuredOutputError
from tests.daemon.llm.conftest import build
from tests.peers.providers.openai import FakeOpenAI

ANSWER = '{"verdict": "real", "why": "disk full"}'
PROSE = '{"alert": "looks real to me", "cause": "the disk, probably"}'
"""What a small model writes when nothing holds it to the schema: JSON, of its own shape."""


class Verdict(BaseModel):
    verdict: str
    why: str


def json_mode() -> ModelRequest:
    return ModelRequest.ask("Is this real?", output=Verdict, structured_mode="json")


@pytest.mark.parametrize(
    ("version", "sent", "honoured"),
    [
        ("0.9.2", "guided_json", "guided_json"),
        ("0.10.2", "structured_outputs", "structured_outputs"),
        ("0.11.0", "structured_outputs", "structured_outputs"),
        ("0.13.1", "structured_outputs", "structured_outputs"),
    ],
)
async def test_vllm_json_mode_uses_the_parameter_its_version_honours(
    client: httpx.AsyncClient, version: str, sent: str, honoured: str
) -> None:
    with FakeOpenAI(
        key=None, flavor="vllm", vllm_version=version, reply=ANSWER, unconstrained_reply=PROSE
    ) as fake:
        provider = build(OpenAIProvider, fake.url, client, None)
        response = await provider.complete("Qwen/Qwen3-8B", json_mode())
        [body] = fake.bodies()
        paths = [r.path for r in fake.requests if r.method == "GET"]
    assert sent in body and "response_format" not in body
    schema = body["guided_json"] if sent == "guided_json" else body[sent]["json"]
    assert schema["required"] == ["verdict", "why"]
    assert fake.honoured == [honoured] and response.data is not None
    assert paths == ["/v1/models", "/version"]


async def test_the_old_json_object_with_schema_leaves_vllm_unconstrained(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What JSON mode sent to vLLM before servers were told apart: the schema beside
    `json_object` is ignored there, so a small model answers JSON of its own shape and the
    call fails validation twice."""

    async def unidentified(*args: object) -> Server:
        return UNKNOWN

    monkeypatch.setattr("daemon.llm.openai.identify", unidentified)
    with FakeOpenAI(
        key=None, flavor="vllm", vllm_version="0.13.1", reply=ANSWER, unconstrained_reply=PROSE
    ) as fake:
        provider = build(OpenAIProvider, fake.url, client, None)
        with pytest.raises(StructuredOutputError):
            await provider.complete("Qwen/Qwen3-8B", json_mode())
    assert fake.honoured == ["json_object", "json_object"]


async def test_vllm_takes_json_schema_in_every_version(client: httpx.AsyncClient) -> None:
    with FakeOpenAI(
        key=None, flavor="vllm", vllm_version="0.9.2", reply=ANSWER, unconstrained_reply=PROSE
    ) as fake:
        provider = build(OpenAIProvider, fake.url, client, None)
        response = await provider.complete(
            "Qwen/Qwen3-8B", ModelRequest.ask("Is this real?", output=Verdict)
        )
        gets = [r.path for r in fake.requests if r.method == "GET"]
    assert response.structured_mode == "schema" and fake.honoured == ["json_schema"]
    assert gets == [], "the server is asked who it is only when JSON mode needs it"


async def test_llama_cpp_keeps_the_schema_beside_json_object(client: httpx.AsyncClient) -> None:
    with FakeOpenAI(key=None, flavor="llama.cpp", reply=ANSWER, unconstrained_reply=PROSE) as fake:
        provider = build(OpenAIProvider, fake.url, client, None)
        response = await provider.complete("smollm2", json_mode())
    assert fake.honoured == ["json_object+schema"] and response.data is not None


async def test_the_server_is_asked_once_per_client(client: httpx.AsyncClient) -> None:
    with FakeOpenAI(key=None, flavor="vllm", reply=ANSWER) as fake:
        for _ in range(3):
            provider = build(OpenAIProvider, fake.url, client, None)
            await provider.complete("Qwen/Qwen3-8B", json_mode())
        gets = [r.path for r in fake.requests if r.method == "GET"]
    assert gets == ["/v1/models", "/version"]


def test_versions_and_bodies() -> None:
    assert version_of("0.10.2rc1") == (0, 10, 2) and version_of("v0.9.2+cu126") == (0, 9, 2)
    assert version_of("dev") is None
    schema: dict[str, Any] = {"type": "object"}
    assert json_mode_body(Server("vllm", None), schema) == {"structured_outputs": {"json": schema}}
    assert json_mode_body(Server("unknown"), schema) == {
        "response_format": {"type": "json_object", "schema": schema}
    }
