"""The model-layer commands as a user runs them, against loopback fakes of every provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from daemon.llm import PROVIDERS, provider_info
from tests import ROOT
from tests.cli import run_cli
from tests.peers.providers import key_variables
from tests.peers.providers.anthropic import FakeAnthropic
from tests.peers.providers.cohere import FakeCohere
from tests.peers.providers.google import FakeGemini
from tests.peers.providers.ollama import FakeOllama
from tests.peers.providers.openai import FakeOpenAI, Tokens

PY = sys.executable
KEYS = {
    "anthropic": "sk-ant-canary-a1b2c3d4e5",
    "openai": "sk-proj-canary-f6e5d4c3b2",
    "google": "AIzaCanaryKey0123456789abcdefghijklmnop",
    "cohere": "co-canary-9z8y7x6w5v4u3t",
}
ENV_VARS = {provider: provider_info(provider).key_env[0] for provider in KEYS}
"""The variable each provider's canary key is given in: the first one it declares."""


@dataclass
class Estate:
    config: Path
    fakes: dict[str, Any]
    env: dict[str, str]

    def wk(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """`watchkeeper ARGS --config CONFIG` in process (tests.cli), in `env`."""
        return run_cli(*args, "--config", str(self.config), env=self.env, input=stdin)


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[Estate]:
    with ExitStack() as stack:
        fakes: dict[str, Any] = {
            "ollama": stack.enter_context(
                FakeOllama(reply="Everything is green.", prompt_eval_count=1500, eval_count=90)
            ),
            "anthropic": stack.enter_context(
                FakeAnthropic(
                    key=KEYS["anthropic"],
                    reply="Disk full on db-1.",
                    usage={
                        "input_tokens": 1000,
                        "output_tokens": 200,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 2000,
                    },
                )
            ),
            "openai": stack.enter_context(
                FakeOpenAI(
                    key=KEYS["openai"],
                    reply="Certificate expired.",
                    usage=Tokens(prompt=1000, completion=100, cached=400, reasoning=40),
                )
            ),
            "google": stack.enter_context(
                FakeGemini(
                    key=KEYS["google"],
                    reply="DNS is failing.",
                    usage={
                        "promptTokenCount": 1000,
                        "candidatesTokenCount": 100,
                        "thoughtsTokenCount": 50,
                        "totalTokenCount": 1150,
                    },
                )
            ),
            "cohere": stack.enter_context(
                FakeCohere(
                    key=KEYS["cohere"],
                    reply="Queue is backed up.",
                    usage={
                        "billed_units": {"input_tokens": 1000, "output_tokens": 100},
                        "tokens": {"input_tokens": 1010, "output_tokens": 100},
                    },
                )
            ),
        }
        providers = "".join(
            f'[providers.{name}]\nbase_url = "{fake.url}"\nmax_retries = 0\n\n'
            for name, fake in fakes.items()
        )
        config = tmp_path / "config.toml"
        config.write_text(
            '[daemon]\nstate_dir = "state"\n\n'
            + providers
            + '[routing]\nask = ["ollama/gemma4:27b"]\n'
        )
        env = {k: v for k, v in os.environ.items() if k not in key_variables()}
        env.update({ENV_VARS[p]: key for p, key in KEYS.items()})
        yield Estate(config, fakes, env)


ASK_CASES = [
    # model, answer, expected cost (hand-computed from genai-prices list rates)
    ("ollama/gemma4:27b", "Everything is green.", 0.0),
    # claude-opus-4-6: 1000 in x $5 + 2000 cache reads x $0.50 + 200 out x $25, per MTok
    ("anthropic/claude-opus-4-6", "Disk full on db-1.", 0.011),
    # gpt-5.4: 600 uncached x $2.50 + 400 cached x $0.25 + 100 out x $15 (40 reasoning inside)
    ("openai/gpt-5.4", "Certificate expired.", 0.0031),
    # gemini-3.1-pro-preview: 1000 in x $2 + (100 + 50 thoughts) out x $12
    ("google/gemini-3.1-pro-preview", "DNS is failing.", 0.0038),
    # command-a-03-2025: 1000 billed in x $2.50 + 100 billed out x $10
    ("cohere/command-a-03-2025", "Queue is backed up.", 0.0035),
]


@pytest.mark.parametrize(("model", "answer", "cost"), ASK_CASES, ids=[c[0] for c in ASK_CASES])
def test_ask_answers_with_each_provider_and_prices_it(
    estate: Estate, model: str, answer: str, cost: float
) -> None:
    result = estate.wk("ask", "what is broken?", "--model", model, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["answer"] == answer
    assert data["model"] == model
    [call] = data["calls"]
    assert call["outcome"] == "ok"
    assert call["cost_usd"] == pytest.approx(cost, abs=1e-9)
    assert call["host"] == "127.0.0.1"
    costs = json.loads(estate.wk("costs", "--json").stdout)
    assert costs["total_usd"] == pytest.approx(cost, abs=1e-9)
    assert costs["by_model"][0]["model"] == model


def test_ask_text_output_ends_with_the_cost_line(estate: Estate) -> None:
    result = estate.wk("ask", "status?")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "Everything is green."
    assert "ollama/gemma4:27b (local) · 1,500 in / 90 out · $0.00" in result.stdout
    assert lines[-1] == "AI cost: $0.00"


def test_ask_sends_the_estate_state_and_the_question(estate: Estate) -> None:
    estate.wk("ask", "which checks are failing?")
    chat = next(r for r in estate.fakes["ollama"].requests if r.path == "/api/chat").json()
    prompt = chat["messages"][-1]["content"]
    assert "<state>" in prompt and "Open incidents:" in prompt
    assert prompt.endswith("Question: which checks are failing?")
    assert chat["messages"][0]["role"] == "system"


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_keys_test_makes_the_smallest_real_call(estate: Estate, provider: str) -> None:
    result = estate.wk("keys", "test", provider)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{provider}: ok — {provider}/")
    assert "answered in" in result.stdout and "AI cost: $" in result.stdout
    fake = estate.fakes[provider]
    body = next(r for r in fake.requests if r.method == "POST").json()
    limit = (
        body.get("max_tokens")
        or body.get("max_completion_tokens")
        or (
            body.get("options", {}).get("num_predict")
            or body.get("generationConfig", {}).get("maxOutputTokens")
        )
    )
    assert limit == 16


def test_keys_test_with_a_wrong_key_says_it_was_rejected(estate: Estate) -> None:
    estate.env["ANTHROPIC_API_KEY"] = "sk-ant-wrong-key-000000"
    result = estate.wk("keys", "test", "anthropic")
    assert result.returncode == 1
    assert "key for anthropic rejected by 127.0.0.1" in result.stderr
    assert "sk-ant-wrong-key-000000" not in result.stderr + result.stdout


def test_keys_list_shows_sources_never_values(estate: Estate) -> None:
    result = estate.wk("keys", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["provider"]: r for r in json.loads(result.stdout)["keys"]}
    assert rows["anthropic"]["source"] == "env"
    assert rows["anthropic"]["where"] == "$ANTHROPIC_API_KEY"
    assert rows["ollama"]["source"] == "not needed"
    for key in KEYS.values():
        assert key not in result.stdout


def test_keys_set_without_a_usable_keyring_points_to_alternatives(estate: Estate) -> None:
    result = estate.wk("keys", "set", "openai", "--stdin", stdin="sk-whatever-123456\n")
    assert result.returncode == 1
    assert "no usable OS keyring" in result.stderr
    assert "LoadCredentialEncrypted=openai_api_key" in result.stderr
    assert "OPENAI_API_KEY" in result.stderr


def test_keys_set_list_delete_through_a_keyring(estate: Estate, tmp_path: Path) -> None:
    estate.env.update(
        {
            "PYTHON_KEYRING_BACKEND": "tests.peers.keyring_file.FileKeyring",
            "WK_TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
            "PYTHONPATH": str(ROOT),
        }
    )
    del estate.env["COHERE_API_KEY"]
    stored = estate.wk("keys", "set", "cohere", "--stdin", stdin=KEYS["cohere"] + "\n")
    assert stored.returncode == 0, stored.stderr
    assert KEYS["cohere"] not in stored.stdout
    listed = {
        r["provider"]: r for r in json.loads(estate.wk("keys", "list", "--json").stdout)["keys"]
    }
    assert listed["cohere"]["source"] == "keyring"
    assert estate.wk("keys", "test", "cohere").returncode == 0
    assert estate.wk("keys", "delete", "cohere").stdout.startswith("deleted the cohere key")
    listed = {
        r["provider"]: r for r in json.loads(estate.wk("keys", "list", "--json").stdout)["keys"]
    }
    assert listed["cohere"]["source"] == "missing"


def test_models_shows_chains_keys_reachability_and_prices(estate: Estate) -> None:
    result = estate.wk("models", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["routing"]["ask"] == {"chain": ["ollama/gemma4:27b"], "override": False}
    models = {m["model"]: m for m in data["models"]}
    local = models["ollama/gemma4:27b"]
    assert local["reachable"] is True and local["local"] is True
    assert local["price_per_mtok"] == {"input": 0.0, "output": 0.0, "cached_input": 0.0}
    opus = models["anthropic/claude-opus-4-6"]
    assert opus["key_source"] == "env"
    assert opus["price_per_mtok"]["input"] == 5.0 and opus["price_per_mtok"]["output"] == 25.0
    text = estate.wk("models").stdout
    assert "rca" in text and "ollama/gemma4:27b" in text


def test_route_set_and_reset_change_the_next_job(estate: Estate) -> None:
    assert estate.wk("route", "set", "ask", "openai/gpt-5.4").returncode == 0
    routed = json.loads(estate.wk("ask", "status?", "--json").stdout)
    assert routed["model"] == "openai/gpt-5.4"
    shown = json.loads(estate.wk("models", "--json").stdout)["routing"]["ask"]
    assert shown == {"chain": ["openai/gpt-5.4"], "override": True}
    assert estate.wk("route", "reset", "ask").returncode == 0
    assert json.loads(estate.wk("ask", "status?", "--json").stdout)["model"] == "ollama/gemma4:27b"


def test_route_set_rejects_unknown_providers_and_tasks(estate: Estate) -> None:
    bad = estate.wk("route", "set", "rca", "acme/brain-9")
    assert bad.returncode == 2
    assert "unknown provider 'acme'" in bad.stderr
    assert estate.wk("route", "set", "sing", "ollama/x").returncode == 2


def test_costs_json_contract_and_audit(estate: Estate) -> None:
    estate.wk("ask", "a?", "--model", "anthropic/claude-opus-4-6")
    estate.wk("ask", "b?", "--model", "cohere/command-a-03-2025")
    estate.wk("ask", "c?")
    data = json.loads(estate.wk("costs", "--json", "--since", "1d").stdout)
    assert set(data) >= {"since", "total_usd", "calls", "by_model"}
    assert data["total_usd"] == pytest.approx(0.011 + 0.0035)
    call_keys = {
        "ts",
        "task",
        "provider",
        "model",
        "host",
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "reasoning_tokens",
        "cost_usd",
        "latency_ms",
        "outcome",
        "incident_id",
    }
    for call in data["calls"]:
        assert call_keys <= set(call)
        assert isinstance(call["input_tokens"], int)
    by_model = {m["model"]: m for m in data["by_model"]}
    assert by_model["anthropic/claude-opus-4-6"]["input_tokens"] == 3000
    assert by_model["ollama/gemma4:27b"]["cost_usd"] == 0
    text = estate.wk("costs", "--by", "provider").stdout
    assert "anthropic" in text and "$0.011" in text

    audit = json.loads(estate.wk("audit", "--json").stdout)
    text = json.dumps(audit)
    assert "127.0.0.1" in text and '"env"' in text
    for key in KEYS.values():
        assert key not in text


def test_the_canary_keys_never_reach_the_database_or_another_provider(estate: Estate) -> None:
    for model, _, _ in ASK_CASES:
        assert estate.wk("ask", "why?", "--model", model).returncode == 0
    db = b"".join(
        p.read_bytes()
        for p in (estate.config.parent / "state").iterdir()
        if p.name.startswith("watchkeeper.db")
    )
    for provider, key in KEYS.items():
        assert key.encode() not in db
        for other, fake in estate.fakes.items():
            for request in fake.requests:
                if other != provider:
                    assert key not in json.dumps(request.headers)
                assert key.encode() not in request.body


def test_bad_since_is_a_usage_error(estate: Estate) -> None:
    result = estate.wk("costs", "--since", "forever")
    assert result.returncode == 2
    assert "--since" in result.stderr


def test_unknown_provider_in_routing_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[routing]\nrca = ["acme/brain-9", "nonsense"]\n')
    result = run_cli("config", "validate", "--config", str(config))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert any(": routing.rca[0]: unknown provider 'acme'" in line for line in lines)
    assert any(": routing.rca[1]: 'nonsense' is not a model reference" in line for line in lines)


def test_costs_and_audit_count_only_requests_that_left_the_machine(
    estate: Estate, tmp_path: Path
) -> None:
    """A missing key, a refused connection and an exhausted budget are skips: listed as such,
    never "3 calls $0.00", and a refused connection sent no bytes to anybody."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    text = estate.config.read_text()
    text = text.replace(
        "[routing]",
        f'[providers.dead]\napi = "openai"\nbase_url = "http://127.0.0.1:{closed}/v1"\n'
        'key = "secret:DEAD_KEY"\nmax_retries = 2\n\n'
        "[budget]\ndaily_usd = 0.03\n\n[routing]",
    )
    estate.config.write_text(text)
    estate.env["DEAD_KEY"] = "sk-dead-0000"
    del estate.env["COHERE_API_KEY"]
    assert estate.wk("ask", "a?", "--model", "anthropic/claude-opus-4-6").returncode == 0
    assert estate.wk("ask", "b?", "--model", "dead/gpt-5.4").returncode != 0
    assert estate.wk("ask", "c?", "--model", "cohere/command-a-03-2025").returncode != 0
    # The first call spent $0.011 of $0.03; the next one is estimated at up to $0.023.
    assert estate.wk("ask", "d?", "--model", "anthropic/claude-opus-4-6").returncode != 0

    data = json.loads(estate.wk("costs", "--json").stdout)
    assert [c["model"] for c in data["calls"]] == ["claude-opus-4-6"]
    assert sorted(s["outcome"] for s in data["skipped"]) == ["budget", "missing_key", "unreachable"]
    assert data["by_model"] == [
        {
            "model": "anthropic/claude-opus-4-6",
            "calls": 1,
            "input_tokens": 3000,
            "output_tokens": 200,
            "cost_usd": pytest.approx(0.011),
        }
    ]
    text = estate.wk("costs").stdout
    assert "skipped, never sent: 3 (budget 1, no key 1, unreachable 1)" in text
    assert "dead/" not in text.split("skipped")[0] and "cohere" not in text

    audit = json.loads(estate.wk("audit", "--json").stdout)
    hosts = {h["host"]: h for h in audit["hosts"]}
    assert list(hosts) == ["127.0.0.1"]
    assert hosts["127.0.0.1"]["providers"] == ["anthropic"]
    assert hosts["127.0.0.1"]["calls"] == 1
    assert hosts["127.0.0.1"]["bytes_sent"] == len(estate.fakes["anthropic"].requests[0].body)
