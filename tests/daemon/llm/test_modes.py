"""Structured output and tool calling step down on a clear refusal, against imitations of
the servers that refuse (llama.cpp's 500, LM Studio's 400, vLLM's tool flag, Ollama's
"does not support tools"), and the runner remembers what worked per provider, server and model."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, Field

from daemon.ai.runner import AI
from daemon.config.load import load_settings
from daemon.llm.anthropic import AnthropicProvider
from daemon.llm.ollama import OllamaProvider
from daemon.llm.openai import OpenAIProvider
from daemon.llm.types import (
    ChatMessage,
    ModelRequest,
    ProviderHTTPError,
    ToolCall,
    ToolSpec,
)
from daemon.store import Store
from tests.daemon.llm.conftest import Sleeps, build
from tests.peers.providers.anthropic import FakeAnthropic
from tests.peers.providers.ollama import FakeOllama
from tests.peers.providers.openai import FakeOpenAI, server_error
from tests.peers.scripted import Scripted

ANSWER = '{"verdict": "real", "why": "disk full"}'
LOOKUP = ToolSpec(
    "pod_logs",
    "Read a pod's log.",
    {"type": "object", "properties": {"pod": {"type": "string"}}, "required": ["pod"]},
)


class Verdict(BaseModel):
    verdict: str
    why: str = Field(max_length=2000)


def structured(**kw: Any) -> ModelRequest:
    return ModelRequest.ask("Is this real?", system="You triage.", output=Verdict, **kw)


async def test_llama_cpp_json_schema_500_steps_down_to_json_object_with_schema(
    client: httpx.AsyncClient,
) -> None:
    with FakeOpenAI(key=None, flavor="llama.cpp", reply=ANSWER) as fake:
        provider = build(OpenAIProvider, fake.url, client, None)
        response = await provider.complete("smollm2", structured())
        first, second = fake.bodies()
    assert response.data == {"verdict": "real", "why": "disk full"}
    assert response.structured_mode == "json"
    assert response.refused == ("structured:schema",)
    assert len(fake.bodies()) == 2, "a refusal is not retried like an outage"
    assert first["response_format"]["type"] == "json_schema"
    assert second["response_format"]["type"] == "json_object"
    sent_schema = second["response_format"]["schema"]
    assert sent_schema["required"] == ["verdict", "why"]
    assert "maxLength" in json.dumps(Verdict.model_json_schema())
    assert "maxLength" not in json.dumps(sent_schema), "llama.cpp's grammar cannot take it"
    assert "JSON Schema" in second["messages"][0]["content"], "the schema is also spelled out"
    assert response.attempts == 2


async def test_lm_studio_takes_json_schema_at_once(client: httpx.AsyncClient) -> None:
    with FakeOpenAI(key=None, flavor="lmstudio", reply=ANSWER) as fake:
        provider = build(OpenAIProvider, fake.url, client, None)
        response = await provider.complete("qwen3-8b", structured())
        assert len(fake.bodies()) == 1
    assert response.structured_mode == "schema" and response.refused == ()


async def test_lm_studio_has_no_json_mode_so_json_means_instructions(
    client: httpx.AsyncClient,
) -> None:
    """LM Studio says who it is in /v1/models; JSON mode goes as instructions at once, without
    paying the `json_object` it would refuse."""
    with FakeOpenAI(key=None, flavor="lmstudio", reply=ANSWER) as fake:
        provider = build(OpenAIProvider, fake.url, client, None)
        response = await provider.complete("qwen3-8b", structured(structured_mode="json"))
        [body] = fake.bodies()
    assert response.structured_mode == "prompt" and response.refused == ()
    assert "response_format" not in body and "JSON Schema" in body["messages"][0]["content"]
    assert response.data == {"verdict": "real", "why": "disk full"}


async def test_an_unidentified_lm_studio_refuses_json_mode_and_steps_to_instructions(
    client: httpx.AsyncClient,
) -> None:
    """Behind a proxy that hides /v1/models, LM Studio's 400 for `json_object` is the step."""
    with FakeOpenAI(key=None, flavor="lmstudio", reply=ANSWER) as fake:
        normal = fake.server.handler
        hidden = Scripted(404, {"error": "Unexpected endpoint or method. (GET /v1/models)"})
        fake.server.handler = lambda r: hidden if r.method == "GET" else normal(r)
        provider = build(OpenAIProvider, fake.url, client, None)
        response = await provider.complete("qwen3-8b", structured(structured_mode="json"))
        refused, last = fake.bodies()
    assert refused["response_format"]["type"] == "json_object"
    assert response.structured_mode == "prompt" and response.refused == ("structured:json",)
    assert "response_format" not in last
    assert response.data == {"verdict": "real", "why": "disk full"}


async def test_a_server_refusing_a_schema_beside_json_object_gets_instructions(
    client: httpx.AsyncClient,
) -> None:
    """OpenAI itself refuses unknown keys in `response_format` (400 naming it): one more
    step down, to the schema in the instructions, validated."""
    with FakeOpenAI(reply=ANSWER) as fake:
        provider = build(OpenAIProvider, fake.url, client, "sk-test-fake-openai-0000")
        response = await provider.complete("gpt-5.4-mini", structured(structured_mode="json"))
        json_mode, instructed = fake.bodies()
    assert json_mode["response_format"]["type"] == "json_object"
    assert "response_format" not in instructed
    assert response.data is not None and response.structured_mode == "prompt"
    assert response.refused == ("structured:json",)


async def test_an_outage_500_is_retried_not_taken_for_a_refusal(
    client: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    with FakeOpenAI(key=None, reply=ANSWER) as fake:
        fake.server.queue(server_error(500), server_error(500))
        provider = build(OpenAIProvider, fake.url, client, None, sleep=sleeps)
        response = await provider.complete("m", structured())
        bodies = fake.bodies()
    assert response.structured_mode == "schema" and response.refused == ()
    assert [b["response_format"]["type"] for b in bodies] == ["json_schema"] * 3
    assert len(sleeps.delays) == 2


async def test_vllm_without_auto_tool_choice_steps_down_to_no_tools(
    client: httpx.AsyncClient,
) -> None:
    with FakeOpenAI(key=None, flavor="vllm", reply="plain answer") as fake:
        provider = build(OpenAIProvider, fake.url, client, None)
        request = ModelRequest.ask("why?", tools=(LOOKUP,))
        response = await provider.complete("llama-3.1-8b", request)
        first, second = fake.bodies()
    assert first["tools"][0]["function"]["name"] == "pod_logs"
    assert "tools" not in second
    assert response.tool_mode == "none" and response.refused == ("tools:native",)
    assert response.text == "plain answer"


async def test_vllm_with_auto_tool_choice_calls_tools(client: httpx.AsyncClient) -> None:
    def calls(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        return [("pod_logs", {"pod": "api-0"})]

    with FakeOpenAI(key=None, flavor="vllm", enable_auto_tools=True, tools=calls) as fake:
        provider = build(OpenAIProvider, fake.url, client, None)
        response = await provider.complete("m", ModelRequest.ask("why?", tools=(LOOKUP,)))
    [call] = response.tool_calls
    assert (call.name, call.arguments) == ("pod_logs", {"pod": "api-0"})
    assert call.id.startswith("call_") and response.tool_mode == "native"


async def test_openai_tool_turns_round_trip_in_openai_shape(client: httpx.AsyncClient) -> None:
    """A history with a call and its result is accepted by the strict imitation: arguments as
    a JSON string, `tool_call_id` matching, no keys OpenAI does not know."""
    call = ToolCall("call_abc", "pod_logs", {"pod": "api-0"})
    request = ModelRequest(
        messages=(
            ChatMessage("user", "why?"),
            ChatMessage("assistant", "", tool_calls=(call,)),
            ChatMessage("tool", "OOMKilled", tool_call_id="call_abc", tool_name="pod_logs"),
        ),
        tools=(LOOKUP,),
    )
    with FakeOpenAI(reply="the pod ran out of memory") as fake:
        provider = build(OpenAIProvider, fake.url, client, "sk-test-fake-openai-0000")
        response = await provider.complete("gpt-5.4", request)
        [body] = fake.bodies()
    assert response.text == "the pod ran out of memory"
    assert body["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"pod": "api-0"}'
    assert body["messages"][2] == {
        "role": "tool",
        "content": "OOMKilled",
        "tool_call_id": "call_abc",
    }


async def test_ollama_model_without_tools_steps_down(client: httpx.AsyncClient) -> None:
    with FakeOllama(["gemma3:1b"], reply="no tools here", tools_models=()) as fake:
        provider = build(OllamaProvider, fake.url, client, None)
        response = await provider.complete("gemma3:1b", ModelRequest.ask("why?", tools=(LOOKUP,)))
        first, second = fake.bodies()
    assert "tools" in first and "tools" not in second
    assert response.tool_mode == "none" and response.refused == ("tools:native",)


async def test_ollama_tool_calls_arrive_with_object_arguments(client: httpx.AsyncClient) -> None:
    def calls(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]] | None:
        done = any(m["role"] == "tool" for m in body["messages"])
        return None if done else [("pod_logs", {"pod": "api-0"})]

    with FakeOllama(["qwen3:8b"], reply="it is the config", tools=calls) as fake:
        provider = build(OllamaProvider, fake.url, client, None)
        first = await provider.complete("qwen3:8b", ModelRequest.ask("why?", tools=(LOOKUP,)))
        [call] = first.tool_calls
        follow = ModelRequest(
            messages=(
                ChatMessage("user", "why?"),
                ChatMessage("assistant", "", tool_calls=(call,)),
                ChatMessage("tool", "log", tool_call_id=call.id, tool_name=call.name),
            ),
            tools=(LOOKUP,),
        )
        second = await provider.complete("qwen3:8b", follow)
        sent = fake.bodies()[-1]["messages"]
    assert call.arguments == {"pod": "api-0"}
    assert second.text == "it is the config" and second.tool_calls == ()
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == {"pod": "api-0"}
    assert sent[2] == {"role": "tool", "content": "log", "tool_name": "pod_logs"}


async def test_ollama_thinking_stays_out_of_the_answer(client: httpx.AsyncClient) -> None:
    with FakeOllama(["qwen3:8b"], reply=ANSWER, thinking="Let me reason about disks…") as fake:
        provider = build(OllamaProvider, fake.url, client, None)
        response = await provider.complete("qwen3:8b", structured())
    assert response.data == {"verdict": "real", "why": "disk full"}
    assert "reason" not in response.text


async def test_ollama_json_mode_sends_format_json(client: httpx.AsyncClient) -> None:
    with FakeOllama(["gemma3"], reply=ANSWER) as fake:
        provider = build(OllamaProvider, fake.url, client, None)
        await provider.complete("gemma3", structured(structured_mode="json"))
        [body] = fake.bodies()
    assert body["format"] == "json"
    assert "JSON Schema" in body["messages"][0]["content"]


async def test_anthropic_has_no_json_mode_so_json_means_instructions(
    client: httpx.AsyncClient,
) -> None:
    with FakeAnthropic(reply=ANSWER) as fake:
        provider = build(AnthropicProvider, fake.url, client, fake.key)
        response = await provider.complete("claude-haiku-4-5", structured(structured_mode="json"))
        [body] = [r.json() for r in fake.requests]
    assert "tools" not in body and "JSON Schema" in body["system"]
    assert response.structured_mode == "prompt" and response.data is not None


async def test_a_refusal_on_the_last_mode_is_an_error_that_says_so(
    client: httpx.AsyncClient,
) -> None:
    with FakeOpenAI(key=None, reply=ANSWER) as fake:
        normal = fake.server.handler
        refusal = Scripted(400, {"error": {"message": "response_format is bad"}})
        fake.server.handler = lambda r: refusal if r.method == "POST" else normal(r)
        provider = build(OpenAIProvider, fake.url, client, None)
        with pytest.raises(ProviderHTTPError) as raised:
            await provider.complete("m", structured())
    assert raised.value.refused == ("structured:schema", "structured:json")


async def test_the_runner_remembers_what_worked_and_reprobes_after_a_day(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    now = [datetime(2026, 12, 4, 12, 0, tzinfo=UTC)]
    with FakeOpenAI(key=None, flavor="llama.cpp", reply=ANSWER) as fake:
        config = tmp_path / "config.toml"
        config.write_text(
            '[daemon]\nstate_dir = "state"\n'
            f'[providers.llamacpp]\napi = "openai"\nbase_url = "{fake.url}"\nlocal = true\n',
            encoding="utf-8",
        )
        settings = load_settings(config)
        with Store.open(settings.daemon.state_dir) as store:
            ai = AI(settings, store, client, now=lambda: now[0])
            first = await ai.run("triage", structured(), models=["llamacpp/smollm2"])
            after_first = len(fake.bodies())
            second = await ai.run("triage", structured(), models=["llamacpp/smollm2"])
            after_second = len(fake.bodies())
            now[0] += timedelta(days=1, minutes=1)
            await ai.run("triage", structured(), models=["llamacpp/smollm2"])
            after_reprobe = len(fake.bodies())
            [known] = store.capabilities.all()
    assert first.ok and second.ok
    assert first.calls[0].detail == "stepped down: refused structured:schema"
    assert after_first == 2 and after_second == 3, "the second call starts at JSON mode"
    assert after_reprobe == 5, "a day later the schema mode is tried again"
    assert (known.provider, known.model, known.feature, known.mode) == (
        "llamacpp",
        "smollm2",
        "structured",
        "json",
    )


async def test_anthropic_tool_use_round_trip(client: httpx.AsyncClient) -> None:
    """Calls arrive as `tool_use` blocks with ids; results of one turn go back together as
    `tool_result` blocks in the next user message, which the imitation checks as the API does."""

    def calls(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]] | None:
        if len(body["messages"]) == 1:
            return [("pod_logs", {"pod": "api-0"}), ("pod_logs", {"pod": "api-1"})]
        return None

    with FakeAnthropic(reply="both pods ran out of memory", tools=calls) as fake:
        provider = build(AnthropicProvider, fake.url, client, fake.key)
        first = await provider.complete(
            "claude-haiku-4-5", ModelRequest.ask("why?", tools=(LOOKUP,))
        )
        results = tuple(
            ChatMessage("tool", f"log of {c.arguments['pod']}", tool_call_id=c.id, tool_name=c.name)
            for c in first.tool_calls
        )
        follow = ModelRequest(
            messages=(
                ChatMessage("user", "why?"),
                ChatMessage("assistant", first.text, tool_calls=first.tool_calls),
                *results,
            ),
            tools=(LOOKUP,),
        )
        second = await provider.complete("claude-haiku-4-5", follow)
        sent = [r.json() for r in fake.requests][-1]
    assert [c.arguments for c in first.tool_calls] == [{"pod": "api-0"}, {"pod": "api-1"}]
    assert all(c.id.startswith("toolu_") for c in first.tool_calls)
    assert first.text == "", "a call's input is not the assistant's text"
    assert second.text == "both pods ran out of memory" and second.tool_calls == ()
    assert sent["tools"][0]["input_schema"] == LOOKUP.parameters
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert [b["type"] for b in sent["messages"][2]["content"]] == ["tool_result", "tool_result"]


async def _round_trip(provider: Any, model: str) -> tuple[Any, Any]:
    """Ask with tools, answer both calls, ask again: (first response, second response)."""
    first = await provider.complete(model, ModelRequest.ask("why?", tools=(LOOKUP,)))
    follow = ModelRequest(
        messages=(
            ChatMessage("user", "why?"),
            ChatMessage("assistant", first.text, tool_calls=first.tool_calls),
            *(
                ChatMessage("tool", f"log of {c.arguments['pod']}", tool_call_id=c.id,
                            tool_name=c.name)
                for c in first.tool_calls
            ),
        ),
        tools=(LOOKUP,),
    )  # fmt: skip
    return first, await provider.complete(model, follow)


def two_calls(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]] | None:
    said = json.dumps(body)
    if "log of api-0" in said:
        return None
    return [("pod_logs", {"pod": "api-0"}), ("pod_logs", {"pod": "api-1"})]


async def test_gemini_function_calls_round_trip(client: httpx.AsyncClient) -> None:
    from daemon.llm.google import GoogleProvider
    from tests.peers.providers.google import FakeGemini

    with FakeGemini(reply="memory", tools=two_calls) as fake:
        provider = build(GoogleProvider, fake.url, client, fake.key)
        first, second = await _round_trip(provider, "gemini-3.1-pro-preview")
        sent = [r.json() for r in fake.requests][-1]
    assert [c.arguments for c in first.tool_calls] == [{"pod": "api-0"}, {"pod": "api-1"}]
    assert second.text == "memory" and second.tool_calls == ()
    declared = sent["tools"][0]["functionDeclarations"][0]
    assert declared["name"] == "pod_logs" and declared["parameters"]["type"] == "OBJECT"
    model_turn, results = sent["contents"][1], sent["contents"][2]
    assert [p["functionCall"]["name"] for p in model_turn["parts"]] == ["pod_logs", "pod_logs"]
    assert [p["functionResponse"]["response"]["content"] for p in results["parts"]] == [
        "log of api-0",
        "log of api-1",
    ]


async def test_cohere_tool_calls_round_trip(client: httpx.AsyncClient) -> None:
    from daemon.llm.cohere import CohereProvider
    from tests.peers.providers.cohere import FakeCohere

    with FakeCohere(reply="memory", tools=two_calls) as fake:
        provider = build(CohereProvider, fake.url, client, fake.key)
        first, second = await _round_trip(provider, "command-a-03-2025")
        sent = [r.json() for r in fake.requests][-1]
    assert [c.arguments for c in first.tool_calls] == [{"pod": "api-0"}, {"pod": "api-1"}]
    assert all(c.id.startswith("pod_logs_") for c in first.tool_calls)
    assert second.text == "memory" and second.tool_calls == ()
    assistant = sent["messages"][1]
    assert assistant["tool_plan"] and len(assistant["tool_calls"]) == 2
    assert sent["messages"][2]["content"][0]["document"]["data"] == "log of api-0"


async def test_no_correction_round_when_the_request_allows_none(
    client: httpx.AsyncClient,
) -> None:
    """The investigator's last answer when only one request's money is left."""
    from daemon.llm.types import StructuredOutputError

    with FakeOpenAI(key=None, reply='{"verdict": "real"}') as fake:
        provider = build(OpenAIProvider, fake.url, client, None)
        with pytest.raises(StructuredOutputError) as raised:
            await provider.complete("m", structured(corrections=0))
        assert len(fake.bodies()) == 1
    assert "did not match the schema:" in str(raised.value)


async def test_two_servers_serving_one_model_name_keep_separate_memories(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    """A provider moved from a llama.cpp server (which refuses JSON-schema mode) to a vLLM
    server with the same model name: the memory of the first server's refusal does not make
    the second start at the weaker mode."""
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    def pointing_at(url: str) -> Any:
        config = tmp_path / "config.toml"
        config.write_text(
            '[daemon]\nstate_dir = "state"\n'
            f'[providers.box]\napi = "openai"\nbase_url = "{url}"\nlocal = true\n',
            encoding="utf-8",
        )
        return load_settings(config)

    with (
        FakeOpenAI(key=None, flavor="llama.cpp", reply=ANSWER) as llama,
        FakeOpenAI(key=None, flavor="vllm", reply=ANSWER) as vllm,
    ):
        with Store.open(tmp_path / "state") as store:
            ai = AI(pointing_at(llama.url), store, client, now=lambda: now)
            assert (await ai.run("triage", structured(), models=["box/qwen3"])).ok
            ai.apply(pointing_at(vllm.url))
            assert (await ai.run("triage", structured(), models=["box/qwen3"])).ok
            ai.apply(pointing_at(llama.url))
            assert (await ai.run("triage", structured(), models=["box/qwen3"])).ok
            remembered = store.capabilities.all()
        formats = [b["response_format"]["type"] for b in vllm.bodies()]
        back = [b["response_format"]["type"] for b in llama.bodies()]
        urls = llama.url, vllm.url
    assert formats == ["json_schema"], "the vLLM server starts at the strongest mode"
    assert back == ["json_schema", "json_object", "json_object"], "llama.cpp's memory kept"
    assert {(c.base_url, c.mode) for c in remembered} == {(urls[0], "json"), (urls[1], "schema")}


def test_a_mode_remembered_before_base_urls_were_kept_still_applies(tmp_path: Path) -> None:
    """A row from the schema before this change (no base URL) is read for any server until
    that server's own outcome is remembered."""
    import sqlite3

    from daemon.store.database import DB_NAME
    from daemon.store.schema import _MIGRATIONS, SCHEMA_VERSION

    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    before = next(i for i, m in enumerate(_MIGRATIONS) if "model_capabilities" in m) + 1
    tmp_path.mkdir(exist_ok=True)
    conn = sqlite3.connect(tmp_path / DB_NAME)
    for script in _MIGRATIONS[:before]:
        conn.executescript(script)
    conn.execute(
        "INSERT INTO model_capabilities VALUES ('box', 'qwen3', 'structured', 'json', ?, '')",
        (now.isoformat(),),
    )
    conn.execute(f"PRAGMA user_version = {before}")
    conn.commit()
    conn.close()
    assert before < SCHEMA_VERSION
    with Store.open(tmp_path) as store:
        caps = store.capabilities
        assert caps.mode("box", "qwen3", "structured", base_url="http://a/v1", now=now) == "json"
        caps.remember("box", "qwen3", "structured", "schema", base_url="http://a/v1", now=now)
        assert caps.mode("box", "qwen3", "structured", base_url="http://a/v1", now=now) == "schema"
        assert caps.mode("box", "qwen3", "structured", base_url="http://b/v1", now=now) == "json"
