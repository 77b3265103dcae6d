"""Every provider crossed with every way a provider call goes wrong: the chain falls back,
nothing escapes, and the ledger says exactly what happened.

Each case runs `AI.run("rca", <request with an output schema>, models=[faulty, fallback])`
against loopback fakes that speak the providers' real JSON. The fault is injected on the
provider's POST only, so Ollama's `/api/tags` probe still sees a pulled model. Cloud keys come
from the environment; the "auth" fault presents a wrong one and the fake answers the way that
provider does (Gemini: 400 API_KEY_INVALID; the others: 401), echoing the wrong key back.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.ai.runner import AI
from daemon.config.load import load_settings
from daemon.engine.rca import RcaOutput
from daemon.llm import PROVIDERS as REGISTERED
from daemon.llm import provider_info
from daemon.llm.types import ModelRequest
from daemon.store import Store
from tests.peers.loopback import free_port
from tests.peers.providers import anthropic as fake_anthropic
from tests.peers.providers import cohere as fake_cohere
from tests.peers.providers import google as fake_google
from tests.peers.providers import openai as fake_openai
from tests.peers.providers.anthropic import FakeAnthropic
from tests.peers.providers.cohere import FakeCohere
from tests.peers.providers.google import FakeGemini
from tests.peers.providers.ollama import FakeOllama
from tests.peers.providers.openai import FakeOpenAI
from tests.peers.receivers import WebhookReceiver
from tests.peers.scripted import FakeServer, Recorded, Scripted
from tests.reliability import child_env, cli

pytestmark = pytest.mark.reliability

NOW = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
RETRY_AFTER_S = 0.2
TIMEOUT = "600ms"
"""The faulty provider's per-call deadline in the timeout case (its fake answers after 1.5 s)."""
DEADLINE = "10s"
"""Its deadline in every other case: long enough for two attempts and a back-off (0.5 s) on a
loaded machine, so the fault under test, not the clock, decides the outcome."""
GOOD_RCA: dict[str, Any] = {
    "root_cause": "the cache ran out of memory after the 13:55 deploy",
    "confidence": "medium",
    "evidence": ["503 from /health"],
    "blast_radius": ["checkout-api"],
    "next_steps": ["kubectl -n prod describe pod session-cache-0"],
}
BAD_RCA: dict[str, Any] = {"root_cause": "something", "confidence": "very high", "extra": 1}
"""Valid JSON, wrong shape: an unknown confidence (and no correction makes it right)."""
HTML = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)
CANARY_KEYS = {
    "anthropic": "sk-ant-api03-reliability-matrix-0001",
    "openai": "sk-proj-reliability-matrix-0002",
    "google": "AIzaSyReliabilityMatrix-000000000003",
    "cohere": "co-reliability-matrix-00000000000000000004",
}
KEYS = {name: (provider_info(name).key_env[0], key) for name, key in CANARY_KEYS.items()}
"""provider → (the first variable it declares for its key, a canary key)."""
WRONG_KEY = "sk-wrong-reliability-matrix-key-9999"
PROVIDERS = tuple(REGISTERED)
"""Every registered provider: a new one fails here until it has a fake, a model and faults."""
MODELS = {
    "ollama": "gemma4:27b",
    "openai": "gpt-5.4",
    "anthropic": "claude-opus-4-6",
    "google": "gemini-3.1-pro-preview",
    "cohere": "command-a-03-2025",
}


def rate_limit(provider: str) -> Scripted:
    """A 429 with Retry-After, in the provider's own error shape."""
    header = f"{RETRY_AFTER_S:g}"
    if provider == "anthropic":
        return fake_anthropic.rate_limited(RETRY_AFTER_S)
    if provider == "openai":
        return fake_openai.rate_limited(header)
    if provider == "google":
        message = "You exceeded your current quota, please check your plan and billing details."
        return fake_google.error_response(
            429, "RESOURCE_EXHAUSTED", message, headers={"retry-after": header}
        )
    if provider == "cohere":
        return fake_cohere.rate_limited(RETRY_AFTER_S)
    return Scripted(429, {"error": "too many requests"}, headers={"retry-after": header})


def server_error(provider: str) -> Scripted:
    if provider == "anthropic":
        return fake_anthropic.error_response(500, "api_error", "Internal server error")
    if provider == "openai":
        return fake_openai.server_error(500)
    if provider == "google":
        return fake_google.error_response(500, "INTERNAL", "An internal error has occurred.")
    if provider == "cohere":
        return fake_cohere.error_response(500, "internal server error")
    return Scripted(500, {"error": "llama runner process has terminated: exit status 2"})


@dataclass(frozen=True)
class Fault:
    name: str
    outcome: str
    posts: int
    """POSTs the faulty provider receives: max_retries is 1, so retryable faults get two."""
    inject: Callable[[str], Scripted] | None = None
    """The answer to every POST; None when the fault is in the key or the content."""
    deadline: str = DEADLINE


FAULTS = (
    Fault("auth", "auth", 1),
    Fault("rate_limited", "rate_limited", 2, rate_limit),
    Fault("server_error", "http_error", 2, server_error),
    Fault("timeout", "timeout", 1, lambda p: Scripted(200, {}, delay_s=1.5), TIMEOUT),
    Fault(
        "truncated_json",
        "bad_response",
        1,
        lambda p: Scripted(200, b'{"id": "resp_1", "model": "m", "content": [{"type": "te'),
    ),
    # The connection closes mid-body (Content-Length promised more): the request reached the
    # provider, so it is an "error" ("connection to 127.0.0.1 broke: RemoteProtocolError …")
    # whose bytes count as sent — not "unreachable", which means nothing left the machine.
    Fault(
        "cut_off_transfer",
        "error",
        2,
        lambda p: Scripted(200, b'{"id": "resp_1", "model": "m", "content": []}', truncate=True),
    ),
    Fault("html_error_page", "http_error", 2, lambda p: Scripted(502, HTML)),
    Fault("schema_violation", "invalid_output", 2),
)


def ollama_auth(request: Recorded) -> Scripted:
    """Ollama has no keys; an authenticating reverse proxy in front of it answers 401."""
    return Scripted(401, {"error": "unauthorized"})


@contextmanager
def faulty(provider: str, fault: Fault) -> Iterator[tuple[str, FakeServer, list[float]]]:
    """The faulty provider's fake: (base_url, its server, the times its POSTs arrived)."""
    reply: Any = BAD_RCA if fault.name == "schema_violation" else GOOD_RCA
    key = KEYS[provider][1] if provider in KEYS else ""
    fake: FakeOllama | FakeOpenAI | FakeAnthropic | FakeGemini | FakeCohere
    if provider == "ollama":
        fake = FakeOllama(reply=json.dumps(reply))
    elif provider == "openai":
        fake = FakeOpenAI(key, reply=json.dumps(reply), echo_key=True)
    elif provider == "anthropic":
        fake = FakeAnthropic(key=key, reply=reply)
    elif provider == "google":
        fake = FakeGemini(key=key, reply=reply)
    else:
        fake = FakeCohere(key=key, reply=reply)
    server = fake.server
    posts: list[float] = []
    lock = threading.Lock()
    native = server.handler

    def handler(request: Recorded) -> Scripted:
        if request.method != "POST":
            return native(request)
        with lock:
            posts.append(time.monotonic())
        if fault.inject is not None:
            return fault.inject(provider)
        if fault.name == "auth" and provider == "ollama":
            return ollama_auth(request)
        return native(request)

    server.handler = handler
    with fake:
        yield fake.url, server, posts


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def rca_request() -> ModelRequest:
    return ModelRequest.ask(
        "## Incident\nsession-cache failing: GET /health returned 503 (3 checks in a row).",
        system="You are a senior SRE doing root-cause analysis of one incident.",
        output=RcaOutput,
        output_name="root_cause_analysis",
        output_description="The root cause, confidence, evidence, blast radius, next steps.",
        max_output_tokens=600,
    )


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_provider_fault_falls_back_and_is_recorded(
    tmp_path: Path,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    provider: str,
    fault: Fault,
) -> None:
    for name, (variable, key) in KEYS.items():
        wrong = fault.name == "auth" and name == provider
        monkeypatch.setenv(variable, WRONG_KEY if wrong else key)
    fallback_name = "backup" if provider == "ollama" else "ollama"
    with (
        FakeOllama(reply=json.dumps(GOOD_RCA), prompt_eval_count=800, eval_count=90) as backup,
        faulty(provider, fault) as (url, server, posts),
    ):
        path = tmp_path / "config.toml"
        fallback_table = (
            '[providers.backup]\napi = "ollama"\n'
            if provider == "ollama"
            else "[providers.ollama]\n"
        )
        path.write_text(
            f"""
[daemon]
state_dir = "state"
[providers.{provider}]
base_url = "{url}"
timeout = "{fault.deadline}"
max_retries = 1
{fallback_table}base_url = "{backup.url}"
timeout = "5s"
max_retries = 0
""",
            encoding="utf-8",
        )
        settings = load_settings(path)
        store = Store.open(settings.daemon.state_dir)
        try:
            ai = AI(settings, store, client, now=lambda: NOW)
            models = [f"{provider}/{MODELS[provider]}", f"{fallback_name}/gemma4:27b"]
            result = await ai.run("rca", rca_request(), models=models, incident_id=42)
            rows = store.ledger.calls(datetime(2026, 1, 1, tzinfo=UTC))
        finally:
            store.close()
        sent = [r for r in server.requests if r.method == "POST"]

    # it fell back to the healthy model, with a valid structured answer
    assert result.ok, result.reason
    assert str(result.ref) == f"{fallback_name}/gemma4:27b"
    assert result.response is not None and result.response.data is not None
    RcaOutput.model_validate(result.response.data)

    # the ledger has one row per model, the faulty one with the fault's outcome
    assert [(r.provider, r.outcome) for r in result.calls] == [
        (provider, fault.outcome),
        (fallback_name, "ok"),
    ]
    assert [(r.provider, r.outcome, r.incident_id) for r in rows] == [
        (provider, fault.outcome, 42),
        (fallback_name, "ok", 42),
    ]
    failed = rows[0]
    assert failed.detail, "a failure without a reason"
    assert failed.host == "127.0.0.1"
    assert failed.request_bytes > 0  # the request left: the audit trail must show it
    for _, key in KEYS.values():
        assert key not in failed.detail
    assert WRONG_KEY not in failed.detail  # the fakes echo a rejected key back
    assert "<html" not in failed.detail.lower() and "<!doctype" not in failed.detail.lower()

    # retries: only what is retryable, honouring Retry-After
    assert len(sent) == fault.posts == len(posts)
    if fault.name == "rate_limited":
        assert posts[1] - posts[0] >= RETRY_AFTER_S * 0.9
    if fault.name == "html_error_page":
        assert "502 Bad Gateway" in failed.detail
    if fault.name == "auth":
        assert "rejected" in failed.detail


def test_run_once_with_garbage_from_the_triage_model_still_opens_and_notifies(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """The deterministic path never depends on a model: triage answering nonsense yields a
    deterministic summary, labelled, and the incident opens and is delivered as usual."""
    garbage = Scripted(200, b"\x00\x01 not json at all {{{", headers={"X-Garbage": "1"})
    with FakeOllama() as ollama:
        native = ollama.server.handler
        ollama.server.handler = lambda r: garbage if r.method == "POST" else native(r)
        config = tmp_path / "config.toml"
        config.write_text(
            f"""
[daemon]
state_dir = "state"
[providers.ollama]
base_url = "{ollama.url}"
timeout = "5s"
max_retries = 0
[routing]
triage = ["ollama/gemma4:27b"]
rca = ["ollama/gemma4:27b"]
[triage]
timeout = "5s"
[escalation]
timeout = "10s"
[[notify]]
name = "hook"
kind = "webhook"
url = "{webhook_receiver.url().replace("json://", "http://")}"
[[checks]]
name = "session-cache"
type = "tcp"
host = "127.0.0.1"
port = {free_port()}
timeout = "2s"
severity = "high"
failure_threshold = 1
""",
            encoding="utf-8",
        )
        done = cli("run", "--once", "--config", str(config), env=child_env())
        chats = [r for r in ollama.requests if r.method == "POST"]
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "incident #1 opened" in done.stdout
    assert chats, "triage never asked the model"
    payloads = [r.json() for r in webhook_receiver.requests if 200 <= r.status < 300]
    opened = [p for p in payloads if p["event"] == "opened"]
    assert len(opened) == 1, [p["event"] for p in payloads]
    message = opened[0]
    assert message["title"] == "[HIGH] session-cache failing — incident #1"
    assert message["triage"]["deterministic"] is True
    assert message["triage"]["by"].startswith("deterministic: ")
    assert "bad response" in message["triage"]["by"]
    assert "**Triage** (deterministic: " in message["text"]
