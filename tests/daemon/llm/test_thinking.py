"""Ollama thinking models against the Ollama imitation speaking the real JSON: `think` goes as
configured per model (true/false, gpt-oss's levels), `message.thinking` is never taken for the
answer and its tokens are billed as Ollama counts them, and a model without thinking answers
400 "… does not support thinking": the call steps down and the runner remembers it per server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from structlog.testing import capture_logs

from daemon.ai.runner import AI
from daemon.ai.targets import resolve_target
from daemon.config.load import load_settings
from daemon.errors import ConfigError
from daemon.llm.ollama import OllamaProvider
from daemon.llm.types import ModelRequest
from daemon.models import ModelRef
from daemon.store import Store
from tests.daemon.llm.conftest import build
from tests.peers.providers.ollama import FakeOllama

ANSWER = '{"verdict": "real", "why": "disk full"}'
# Reasoning that holds a JSON object of its own: were it parsed, the verdict would be "fake".
THINKING = 'First guess: {"verdict": "fake", "why": "flap"}.\x1b[2J No — the disk is at 100 %.'
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


class Verdict(BaseModel):
    verdict: str
    why: str


def structured(**kw: Any) -> ModelRequest:
    return ModelRequest.ask("Is this real?", system="You triage.", output=Verdict, **kw)


async def test_think_is_sent_and_the_thinking_is_counted_but_never_the_answer(
    client: httpx.AsyncClient,
) -> None:
    with FakeOllama(["qwen3:8b"], reply=ANSWER, thinking=THINKING) as fake:
        provider = build(OllamaProvider, fake.url, client, None)
        response = await provider.complete("qwen3:8b", structured(think=True))
        [body] = fake.bodies()
    assert body["think"] is True and body["stream"] is False
    assert response.data == {"verdict": "real", "why": "disk full"}
    assert response.text == ANSWER and response.thinking == THINKING
    assert response.usage.output_tokens == (len(ANSWER) + len(THINKING)) // 4
    assert response.think_mode == "native" and response.refused == ()


@pytest.mark.parametrize("think", ["low", "medium", "high"])
async def test_gpt_oss_gets_its_level(client: httpx.AsyncClient, think: str) -> None:
    with FakeOllama(["gpt-oss:20b"], reply=ANSWER, thinking=THINKING) as fake:
        provider = build(OllamaProvider, fake.url, client, None)
        response = await provider.complete("gpt-oss:20b", structured(think=think))
        [body] = fake.bodies()
    assert body["think"] == think and response.data is not None


async def test_think_false_turns_it_off_and_unset_sends_nothing(client: httpx.AsyncClient) -> None:
    with FakeOllama(["qwen3:8b"], reply=ANSWER, thinking=THINKING) as fake:
        provider = build(OllamaProvider, fake.url, client, None)
        off = await provider.complete("qwen3:8b", structured(think=False))
        default = await provider.complete("qwen3:8b", structured())
        first, second = fake.bodies()
    assert first["think"] is False and off.thinking is None
    assert "think" not in second and default.think_mode is None


async def test_a_model_without_thinking_refuses_and_the_call_steps_down(
    client: httpx.AsyncClient,
) -> None:
    with FakeOllama(["gemma3:4b"], reply=ANSWER, thinking_models=()) as fake:
        provider = build(OllamaProvider, fake.url, client, None)
        response = await provider.complete("gemma3:4b", structured(think="high"))
        refused, retried = fake.bodies()
    assert refused["think"] == "high" and "think" not in retried
    assert response.data is not None and response.think_mode == "none"
    assert response.refused == ("think:native",)


def config(tmp_path: Path, url: str, think: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "state"\n[providers.ollama]\nbase_url = "{url}"\nthink = {think}\n',
        encoding="utf-8",
    )
    return path


async def test_the_runner_sends_the_configured_think_and_remembers_a_refusal(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    with FakeOllama(
        ["qwen3:8b", "gemma3:4b"], reply=ANSWER, thinking=THINKING, thinking_models=["qwen3:8b"]
    ) as fake:
        settings = load_settings(config(tmp_path, fake.url, '{"qwen3:8b" = "low", "*" = true}'))
        with Store.open(settings.daemon.state_dir) as store:
            ai = AI(settings, store, client, now=lambda: NOW)
            with capture_logs() as logs:
                thinker = await ai.run("triage", structured(), models=["ollama/qwen3:8b"])
            first = await ai.run("triage", structured(), models=["ollama/gemma3:4b"])
            again = await ai.run("triage", structured(), models=["ollama/gemma3:4b"])
            remembered = [(c.model, c.feature, c.mode) for c in store.capabilities.all()]
        sent = [(b["model"], b.get("think")) for b in fake.bodies()]
    assert sent == [
        ("qwen3:8b", "low"),
        ("gemma3:4b", True),
        ("gemma3:4b", None),
        ("gemma3:4b", None),
    ], "the refusal is paid once; the next call starts without think"
    assert thinker.response is not None and thinker.response.data == {
        "verdict": "real",
        "why": "disk full",
    }
    assert first.ok and again.ok
    assert first.calls[0].detail == "stepped down: refused think:native"
    assert thinker.calls[0].output_tokens == (len(ANSWER) + len(THINKING)) // 4
    assert ("gemma3:4b", "think", "none") in remembered
    assert ("qwen3:8b", "think", "native") in remembered
    # shown nowhere but a debug log line, with its terminal escape made visible
    [line] = [e for e in logs if "thinking" in e]
    assert line["log_level"] == "debug" and "\x1b" not in line["thinking"]
    assert "No — the disk" in line["thinking"]
    assert not any(THINKING in str(e) for e in logs if e is not line)


def test_think_is_resolved_per_model_with_a_default(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path, "http://127.0.0.1:11434", '{"qwen3:8b" = false}'))
    providers = settings.providers
    assert resolve_target(ModelRef.parse("ollama/qwen3:8b"), providers).think is False
    assert resolve_target(ModelRef.parse("ollama/gemma3"), providers).think is None


def test_an_unknown_think_level_is_a_config_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(config(tmp_path, "http://127.0.0.1:11434", '{"gpt-oss:20b" = "max"}'))
    [problem] = caught.value.problems
    assert problem.key.startswith("providers.ollama.think")
    assert "\n" not in problem.message


def test_think_on_another_api_is_a_config_problem(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[daemon]\nstate_dir = "state"\n[providers.openai]\nthink = {"*" = true}\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    [problem] = caught.value.problems
    assert problem.key == "providers.openai.think" and "only Ollama" in problem.message
