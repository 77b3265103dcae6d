"""The routing orchestrator against loopback fakes of the real provider APIs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.ai.runner import AI
from daemon.config.load import load_settings
from daemon.config.settings import Settings
from daemon.llm.types import ModelRequest
from daemon.models import Message
from daemon.store import Store
from tests.peers.providers.anthropic import FakeAnthropic
from tests.peers.providers.ollama import FakeOllama
from tests.peers.providers.openai import FakeOpenAI
from tests.peers.scripted import Scripted

CANARY = "sk-ant-canary-7f3e9d21c0"
NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
OPUS_USAGE = {
    "input_tokens": 1000,
    "output_tokens": 200,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}


def settings_for(tmp_path: Path, body: str) -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(f'[daemon]\nstate_dir = "state"\n{body}', encoding="utf-8")
    return load_settings(path)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


@pytest.fixture
def ollama() -> FakeOllama:
    with FakeOllama(reply="local answer", prompt_eval_count=900, eval_count=120) as fake:
        yield fake  # type: ignore[misc]


def make_ai(settings: Settings, client: httpx.AsyncClient) -> tuple[AI, Store, list[Message]]:
    store = Store.open(settings.daemon.state_dir)
    notices: list[Message] = []
    ai = AI(settings, store, client, now=lambda: NOW, on_budget_notice=notices.append)
    return ai, store, notices


async def test_local_triage_is_a_zero_cost_ledger_line(
    tmp_path: Path, client: httpx.AsyncClient, ollama: FakeOllama
) -> None:
    settings = settings_for(tmp_path, f'[providers.ollama]\nbase_url = "{ollama.url}"\n')
    ai, store, _ = make_ai(settings, client)
    result = await ai.run("triage", ModelRequest.ask("anything wrong?"), incident_id=7)
    store.close()
    assert result.ok and result.response is not None
    assert result.response.text == "local answer"
    [row] = result.calls
    assert (row.provider, row.model, row.outcome, row.local) == ("ollama", "gemma4:27b", "ok", True)
    assert (row.input_tokens, row.output_tokens) == (900, 120)
    assert row.cost_usd == Decimal(0)
    assert row.incident_id == 7
    assert row.key_source == "none"
    assert row.host == "127.0.0.1"


async def test_chain_falls_back_and_records_every_skip(
    tmp_path: Path, client: httpx.AsyncClient, ollama: FakeOllama
) -> None:
    with FakeOpenAI(key="sk-openai-test-123456") as openai:
        openai.server.queue(*[Scripted(500, {"error": {"message": "boom"}})] * 5)
        settings = settings_for(
            tmp_path,
            f"""
[providers.ollama]
base_url = "{ollama.url}"
[providers.openai]
base_url = "{openai.url}"
max_retries = 1
[routing]
rca = [
    "anthropic/claude-opus-4-6", "openai/gpt-5.4", "ollama/llama-not-pulled", "ollama/gemma4:27b"
]
""",
        )
        import os

        os.environ["OPENAI_API_KEY"] = "sk-openai-test-123456"
        try:
            ai, store, _ = make_ai(settings, client)
            result = await ai.run("rca", ModelRequest.ask("why?"))
        finally:
            del os.environ["OPENAI_API_KEY"]
        rows = store.ledger.calls(datetime(2026, 1, 1, tzinfo=UTC))
        store.close()
    assert str(result.ref) == "ollama/gemma4:27b"
    outcomes = [(r.provider, r.model, r.outcome) for r in result.calls]
    assert outcomes == [
        ("anthropic", "claude-opus-4-6", "missing_key"),
        ("openai", "gpt-5.4", "http_error"),
        ("ollama", "llama-not-pulled", "unreachable"),
        ("ollama", "gemma4:27b", "ok"),
    ]
    assert "watchkeeper keys set anthropic" in result.calls[0].detail
    assert "ollama pull llama-not-pulled" in result.calls[2].detail
    assert len(rows) == 4
    assert result.calls[1].key_source == "env"


async def test_cloud_call_is_priced_from_usage(
    tmp_path: Path, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    with FakeAnthropic(key=CANARY, reply="root cause: disk", usage=OPUS_USAGE) as fake:
        settings = settings_for(
            tmp_path,
            f'[providers.anthropic]\nbase_url = "{fake.url}"\n'
            '[routing]\nrca = ["anthropic/claude-opus-4-6"]\n',
        )
        ai, store, _ = make_ai(settings, client)
        result = await ai.run("rca", ModelRequest.ask("why?"))
        store.close()
    [row] = result.calls
    # claude-opus-4-6: $5 / MTok in, $25 / MTok out → 1000 * 5e-6 + 200 * 25e-6 = 0.005 + 0.005
    assert row.cost_usd == Decimal("0.01")
    assert row.local is False and row.key_source == "env"


async def test_budget_denial_falls_back_to_local_and_notifies_once(
    tmp_path: Path, client: httpx.AsyncClient, ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    with FakeAnthropic(key=CANARY, usage=OPUS_USAGE) as fake:
        settings = settings_for(
            tmp_path,
            f"""
[providers.anthropic]
base_url = "{fake.url}"
[providers.ollama]
base_url = "{ollama.url}"
[routing]
rca = ["anthropic/claude-opus-4-6", "ollama/gemma4:27b"]
[budget]
daily_usd = 0.001
""",
        )
        ai, store, notices = make_ai(settings, client)
        first = await ai.run("rca", ModelRequest.ask("why?"))
        second = await ai.run("rca", ModelRequest.ask("why again?"))
        store.close()
        assert fake.requests == []  # nothing was sent to the cloud
    for result in (first, second):
        assert [r.outcome for r in result.calls] == ["budget", "ok"]
        assert str(result.ref) == "ollama/gemma4:27b"
    assert "daily AI budget $0.001 reached" in first.calls[0].detail
    assert len(notices) == 1
    assert notices[0].title == "AI budget reached (daily)"


async def test_concurrent_cloud_calls_never_exceed_the_budget(
    tmp_path: Path, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    with FakeAnthropic(key=CANARY, usage=OPUS_USAGE) as fake:
        settings = settings_for(
            tmp_path,
            f'[providers.anthropic]\nbase_url = "{fake.url}"\n'
            '[routing]\nrca = ["anthropic/claude-opus-4-6"]\n[budget]\ndaily_usd = 0.1\n',
        )
        ai, store, _ = make_ai(settings, client)
        request = ModelRequest.ask("x" * 300, max_output_tokens=1000)
        results = await asyncio.gather(*(ai.run("rca", request) for _ in range(12)))
        spent = store.ledger.spent(datetime(2026, 11, 27, tzinfo=UTC))
        store.close()
    answered = sum(r.ok for r in results)
    denied = sum(1 for r in results for c in r.calls if c.outcome == "budget")
    # Each call is reserved at its estimate, (100 + 1000 tokens) at list price = $0.0255, and
    # settles at its real cost, $0.01: at least three fit, never all twelve, never over $0.10.
    assert 3 <= answered < 12
    assert answered + denied == 12
    assert spent == Decimal("0.01") * answered
    assert spent <= Decimal("0.1")


async def test_prompts_to_the_cloud_are_redacted_local_ones_are_not(
    tmp_path: Path, client: httpx.AsyncClient, ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    evidence = (
        "pod env: AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE db=postgres://app:hunter2pw@db:5432/x"
    )
    with FakeAnthropic(key=CANARY, usage=OPUS_USAGE) as fake:
        settings = settings_for(
            tmp_path,
            f'[providers.anthropic]\nbase_url = "{fake.url}"\n'
            f'[providers.ollama]\nbase_url = "{ollama.url}"\n',
        )
        ai, store, _ = make_ai(settings, client)
        await ai.run("rca", ModelRequest.ask(evidence), models=["anthropic/claude-opus-4-6"])
        await ai.run("triage", ModelRequest.ask(evidence), models=["ollama/gemma4:27b"])
        store.close()
        cloud_body = fake.requests[0].body.decode()
    local_body = next(r for r in ollama.requests if r.path == "/api/chat").body.decode()
    assert "AKIAIOSFODNN7EXAMPLE" not in cloud_body and "hunter2pw" not in cloud_body
    assert "[REDACTED:" in cloud_body
    assert "AKIAIOSFODNN7EXAMPLE" in local_body and "hunter2pw" in local_body


async def test_the_canary_key_goes_only_into_its_providers_auth_header(
    tmp_path: Path,
    client: httpx.AsyncClient,
    ollama: FakeOllama,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from daemon.logging import configure

    configure("debug", "json")
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    with FakeAnthropic(key=CANARY, usage=OPUS_USAGE) as fake:
        fake.server.queue(
            Scripted(
                401,
                {
                    "type": "error",
                    "error": {
                        "type": "authentication_error",
                        "message": f"invalid x-api-key {CANARY}",
                    },
                },
            )
        )
        settings = settings_for(
            tmp_path,
            f'[providers.anthropic]\nbase_url = "{fake.url}"\n'
            f'[providers.ollama]\nbase_url = "{ollama.url}"\n'
            '[routing]\nrca = ["anthropic/claude-opus-4-6", "ollama/gemma4:27b"]\n',
        )
        ai, store, _ = make_ai(settings, client)
        failed = await ai.run("rca", ModelRequest.ask(f"the key is {CANARY}"))
        answered = await ai.run("rca", ModelRequest.ask("second try"))
        store.close()
        headers = [r.headers.get("x-api-key") for r in fake.requests]
        cloud_bodies = b"".join(r.body for r in fake.requests)
    assert headers == [CANARY, CANARY]
    assert CANARY.encode() not in cloud_bodies  # redacted out of the prompt itself
    assert [c.outcome for c in failed.calls] == ["auth", "ok"]
    assert "key for anthropic rejected" in failed.calls[0].detail
    assert CANARY not in failed.calls[0].detail
    assert answered.ok
    for request in ollama.requests:
        assert CANARY not in str(request.headers)
    db = b"".join(p.read_bytes() for p in (tmp_path / "state").glob("watchkeeper.db*"))
    assert CANARY.encode() not in db
    out = capsys.readouterr()
    assert CANARY not in out.out + out.err


async def test_runtime_route_override_wins_over_config(
    tmp_path: Path, client: httpx.AsyncClient, ollama: FakeOllama
) -> None:
    settings = settings_for(
        tmp_path,
        f'[providers.ollama]\nbase_url = "{ollama.url}"\n'
        '[routing]\nrca = ["anthropic/claude-opus-4-6"]\n',
    )
    ai, store, _ = make_ai(settings, client)
    assert await ai.chain("rca") == ["anthropic/claude-opus-4-6"]
    store.routes.set("rca", ["ollama/gemma4:27b"])
    result = await ai.run("rca", ModelRequest.ask("why?"))
    store.close()
    assert str(result.ref) == "ollama/gemma4:27b"


async def test_nothing_usable_gives_a_reason_not_an_exception(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    settings = settings_for(
        tmp_path,
        '[providers.ollama]\nbase_url = "http://127.0.0.1:9"\n'
        '[routing]\ntriage = ["ollama/gemma4:27b"]\n',
    )
    ai, store, _ = make_ai(settings, client)
    result = await ai.run("triage", ModelRequest.ask("x"))
    store.close()
    assert not result.ok
    assert result.calls[0].outcome == "unreachable"
    assert "ollama/gemma4:27b:" in result.reason


def test_savings_are_compared_with_the_first_cloud_model_of_rca(tmp_path: Path) -> None:
    from daemon.ai.targets import cloud_references

    settings = settings_for(
        tmp_path,
        '[providers.lmstudio]\napi = "openai"\nbase_url = "http://127.0.0.1:1234/v1"\n'
        "local = true\n"
        '[providers.gateway]\napi = "openai"\nbase_url = "https://gw.example/v1"\n'
        '[routing]\nrca = ["lmstudio/qwen3", "ollama/gemma4:27b", "gateway/gpt-5.4", '
        '"anthropic/claude-opus-4-6"]\n',
    )
    found = [(str(ref), api) for ref, api in cloud_references(settings)]
    # a declared local server is not "cloud"; a declared gateway is priced as the API it speaks
    assert found == [("gateway/gpt-5.4", "openai"), ("anthropic/claude-opus-4-6", "anthropic")]


# -- budgets that cannot be slipped past (attack review) ------------------------------------


async def test_an_unpriced_cloud_model_is_refused_under_a_budget_naming_the_entry_to_add(
    tmp_path: Path, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-budget-canary-0123456789abcdef")
    with FakeOpenAI(key="sk-proj-budget-canary-0123456789abcdef") as fake:
        settings = settings_for(
            tmp_path,
            f'[providers.openai]\nbase_url = "{fake.url}"\n[budget]\ndaily_usd = 0.001\n',
        )
        ai, store, notices = make_ai(settings, client)
        results = [
            await ai.run("rca", ModelRequest.ask("why?"), models=["openai/gpt-unpriced-9"])
            for _ in range(10)
        ]
        store.close()
    assert not any(r.ok for r in results)
    assert fake.requests == []  # not one call went out
    (reason,) = {r.calls[0].detail for r in results}
    assert reason.startswith("the price of openai/gpt-unpriced-9 is unknown")
    assert '[prices."openai/gpt-unpriced-9"]' in reason
    assert {r.calls[0].outcome for r in results} == {"budget"}
    assert notices == []  # a config gap, not a spent budget


async def test_calls_of_unknown_cost_count_at_their_reservation(
    tmp_path: Path, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    with FakeAnthropic(key=CANARY, usage=OPUS_USAGE) as fake:
        fake.server.queue(*[Scripted(200, {"never": "answered"}, delay_s=1.0)] * 10)
        settings = settings_for(
            tmp_path,
            f'[providers.anthropic]\nbase_url = "{fake.url}"\ntimeout = "0.3s"\n'
            "max_retries = 0\n[budget]\ndaily_usd = 0.1\n",
        )
        ai, store, _ = make_ai(settings, client)
        request = ModelRequest.ask("x" * 300, max_output_tokens=1000)
        outcomes = [
            (await ai.run("rca", request, models=["anthropic/claude-opus-4-6"])).calls[0]
            for _ in range(10)
        ]
        spent = store.ledger.spent(datetime(2026, 11, 27, tzinfo=UTC))
        store.close()
    timed_out = [c for c in outcomes if c.outcome == "timeout"]
    # each timed-out call holds its reservation (~$0.027): three fit in $0.10, then no more
    assert [c.outcome for c in outcomes] == ["timeout"] * 3 + ["budget"] * 7
    assert all(c.cost_usd is None for c in timed_out)  # the report still says unknown
    assert len(fake.requests) == 3
    assert Decimal("0.07") < spent <= Decimal("0.1")


async def test_dense_scripts_cannot_spend_past_the_budget(
    tmp_path: Path, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty concurrent calls on Chinese text, billed (worst case) a token per byte of the
    prompt and the whole output allowance: never past the cap."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    prompt = "数据库连接超时\u3001缓存节点内存不足\u3001结账服务返回五百零二错误\u3002" * 120

    def worst(body: dict[str, Any]) -> dict[str, int]:
        sent = sum(len(str(m["content"]).encode()) for m in body["messages"])
        return {"input_tokens": sent, "output_tokens": int(body["max_tokens"])}

    with FakeAnthropic(key=CANARY, reply="fine", usage=worst) as fake:
        settings = settings_for(
            tmp_path,
            f'[providers.anthropic]\nbase_url = "{fake.url}"\n[budget]\ndaily_usd = 0.5\n',
        )
        ai, store, _ = make_ai(settings, client)
        request = ModelRequest.ask(prompt, max_output_tokens=1000)
        results = await asyncio.gather(
            *(ai.run("rca", request, models=["anthropic/claude-opus-4-6"]) for _ in range(20))
        )
        spent = store.ledger.spent(datetime(2026, 11, 27, tzinfo=UTC))
        store.close()
    assert any(r.ok for r in results) and not all(r.ok for r in results)
    assert spent <= Decimal("0.5")
