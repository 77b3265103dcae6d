"""Canary secrets: recognisable values for every provider key, a notify URL token and a
webhook signing secret, followed through a whole incident and every read command.

A key may appear in exactly one place: the auth header of requests to its own provider. A
notify URL token may appear only in the request line of deliveries to that URL; a signing
secret nowhere at all (only its HMAC travels). Everything else is searched: the processes'
stdout/stderr, the state directory's bytes (db, -wal, -shm, lock), every notification
received, the digest report, every request any fake provider received, every `--json` output.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.peers.loopback import free_port
from tests.peers.providers.anthropic import FakeAnthropic
from tests.peers.providers.cohere import FakeCohere
from tests.peers.providers.google import FakeGemini
from tests.peers.providers.ollama import FakeOllama
from tests.peers.providers.openai import FakeOpenAI
from tests.peers.receivers import WebhookReceiver
from tests.peers.scripted import Recorded
from tests.reliability import child_env, cli

pytestmark = pytest.mark.reliability

ANTHROPIC = "sk-ant-api03-CANARYanthropic-7d3f1a9e2b4c6d8e"
OPENAI = "sk-proj-CANARYopenai-4b8e2c6d1f3a5b7c9d"
GOOGLE = "AIzaSyCANARYgoogle-9a7c5e3b1d2f4a6c8e0"
COHERE = "CANARYcohere2e4f6a8c0b1d3f5a7c9e1b3d5f7a"
"""Cohere keys are 40 letters and digits with no prefix: no pattern can spot a bare one."""
URL_TOKEN = "CANARYurltoken-5c3e1a9f7b2d4e6a"
JSON_TOKEN = "CANARYjsontoken-8a6c4e2b0d1f3a5c"
SIGNING = "whsec-CANARYsigning-8f6d4b2a0c1e3f5a"
KEYS = {"anthropic": ANTHROPIC, "openai": OPENAI, "google": GOOGLE, "cohere": COHERE}
CANARIES = {**KEYS, "notify url": URL_TOKEN, "json url": JSON_TOKEN, "signing": SIGNING}
AUTH_HEADERS = {
    "anthropic": "x-api-key",
    "openai": "authorization",
    "google": "x-goog-api-key",
    "cohere": "authorization",
}
RCA = {
    "root_cause": "session-cache stopped accepting connections after its host rebooted",
    "confidence": "medium",
    "evidence": ["connection refused on the cache port"],
    "blast_radius": [],
    "next_steps": ["systemctl status session-cache"],
}


def found(secret: str, text: str | bytes) -> bool:
    """Whether `text` holds the secret, or enough of it to matter: anything beyond the
    first 8 and last 4 characters (the usual masked form, e.g. `sk-proj-…9d`)."""
    core = secret[8:-4]
    if isinstance(text, bytes):
        return core.encode() in text
    return core in text


def leaks(where: str, text: str | bytes, allowed: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{name} in {where}"
        for name, v in CANARIES.items()
        if name not in allowed and found(v, text)
    ]


def triage_reply(body: dict[str, Any]) -> str:
    prompt = body["messages"][-1]["content"]
    ids = sorted({int(n) for n in re.findall(r"incident (\d+) ", prompt)})
    return json.dumps(
        {
            "incidents": [
                {
                    "incident_id": i,
                    "summary": "The cache port refuses connections.",
                    "suggested_severity": "critical",
                    "escalate": True,
                    "reason": "hard down",
                }
                for i in ids
            ],
            "correlations": [],
        }
    )


def local_reply(body: dict[str, Any]) -> str:
    if body.get("format"):
        return triage_reply(body)
    return "session-cache is failing: its port refuses connections."


@dataclass
class Fakes:
    ollama: FakeOllama
    anthropic: FakeAnthropic
    openai: FakeOpenAI
    google: FakeGemini
    cohere: FakeCohere

    def by_provider(self) -> dict[str, list[Recorded]]:
        return {
            "ollama": self.ollama.requests,
            "anthropic": self.anthropic.requests,
            "openai": self.openai.requests,
            "google": self.google.requests,
            "cohere": self.cohere.requests,
        }


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    with ExitStack() as stack:
        yield Fakes(
            ollama=stack.enter_context(FakeOllama(reply=local_reply)),
            anthropic=stack.enter_context(FakeAnthropic(key=ANTHROPIC, reply=RCA)),
            openai=stack.enter_context(
                FakeOpenAI(OPENAI, reply="The cache is down.", echo_key=True)
            ),
            google=stack.enter_context(FakeGemini(key=GOOGLE, reply="The cache is down.")),
            # cohere does not know this key: its 401 echoes the key it was given
            cohere=stack.enter_context(FakeCohere(key="co-some-other-valid-key-000000000000")),
        )


def write_config(tmp_path: Path, fakes: Fakes, receiver: WebhookReceiver) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[daemon]
state_dir = "state"
log_level = "debug"
log_format = "json"

[providers.ollama]
base_url = "{fakes.ollama.url}"
[providers.anthropic]
base_url = "{fakes.anthropic.url}"
max_retries = 0
[providers.openai]
base_url = "{fakes.openai.url}"
max_retries = 0
[providers.google]
base_url = "{fakes.google.url}"
max_retries = 0
[providers.cohere]
base_url = "{fakes.cohere.url}"
max_retries = 0

[routing]
triage = ["ollama/gemma4:27b"]
rca = ["cohere/command-a-03-2025", "anthropic/claude-opus-4-6", "ollama/gemma4:27b"]
ask = ["ollama/gemma4:27b"]
digest = ["ollama/gemma4:27b"]

[[notify]]
name = "hook"
kind = "webhook"
url = "secret:CANARY_HOOK_URL"
signing_secret = "secret:CANARY_SIGNING"

[[notify]]
name = "json"
url = "secret:CANARY_JSON_URL"

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
    return path


def canary_env(tmp_path: Path, receiver: WebhookReceiver) -> dict[str, str]:
    """Keys in the environment, cohere's as a systemd credential, notify secrets by name."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "cohere_api_key").write_text(COHERE + "\n", encoding="utf-8")
    return child_env(
        ANTHROPIC_API_KEY=ANTHROPIC,
        OPENAI_API_KEY=OPENAI,
        GEMINI_API_KEY=GOOGLE,
        CREDENTIALS_DIRECTORY=str(credentials),
        CANARY_HOOK_URL=f"http://127.0.0.1:{receiver.port}/hook/{URL_TOKEN}",
        CANARY_JSON_URL=f"json://127.0.0.1:{receiver.port}/json/{JSON_TOKEN}",
        CANARY_SIGNING=SIGNING,
    )


def test_no_canary_escapes_its_one_legitimate_place(
    tmp_path: Path, fakes: Fakes, webhook_receiver: WebhookReceiver
) -> None:
    env = canary_env(tmp_path, webhook_receiver)
    config = str(write_config(tmp_path, fakes, webhook_receiver))

    outputs: dict[str, str] = {}

    def run(name: str, *args: str, code: int = 0) -> str:
        done = cli(*args, "--config", config, env=env)
        outputs[f"{name} stdout"], outputs[f"{name} stderr"] = done.stdout, done.stderr
        assert done.returncode == code, (name, done.stdout, done.stderr)
        assert "Traceback" not in done.stdout + done.stderr, name
        return done.stdout

    once = run("run --once", "run", "--once")
    assert "incident #1 opened" in once
    json_outputs = {
        "ask": run("ask", "ask", "what is broken?", "--json"),
        "ask openai": run(
            "ask openai", "ask", "what changed?", "--model", "openai/gpt-5.4", "--json"
        ),
        "ask google": run(
            "ask google",
            "ask",
            "what is broken?",
            "--model",
            "google/gemini-3-flash-preview",
            "--json",
        ),
        "investigate": run(
            "investigate",
            "investigate",
            "1",
            "--model",
            "cohere/command-a-03-2025",
            "--json",
            code=1,
        ),
        "costs": run("costs", "costs", "--json"),
        "audit": run("audit", "audit", "--json"),
        "status": run("status", "status", "--json"),
        "incidents": run("incidents", "incidents", "--all", "--json"),
        "incidents show": run("incidents show", "incidents", "show", "1", "--json"),
        "keys list": run("keys list", "keys", "list", "--json"),
        "models": run("models", "models", "--json"),
    }
    report = run("digest", "digest", "--send")
    for text in json_outputs.values():
        json.loads(text)  # every one is real JSON

    # the run did what a real incident does: triage, a failed and a good RCA, deliveries
    audit = json.loads(json_outputs["audit"])
    assert audit, "nothing was audited"
    costs = json.loads(json_outputs["costs"])
    assert costs
    failed = json.loads(json_outputs["investigate"])["calls"]
    assert [c["outcome"] for c in failed] == ["auth"]  # cohere's 401, which echoed the key
    keys = {k["provider"]: k for k in json.loads(json_outputs["keys list"])["keys"]}
    assert keys["cohere"]["source"] == "systemd-credential"
    assert keys["anthropic"]["source"] == "env"
    assert any(r.headers.get("authorization") == f"Bearer {COHERE}" for r in fakes.cohere.requests)
    assert fakes.anthropic.requests and fakes.openai.requests and fakes.google.requests
    delivered = [r for r in webhook_receiver.requests if 200 <= r.status < 300]
    hook = [r for r in delivered if r.path.startswith("/hook/")]
    events = [r.json()["event"] for r in hook]
    assert {"opened", "investigation", "report"} <= set(events), events
    assert any(r.path.startswith("/json/") for r in delivered)
    for request in hook:  # signed with the secret (scheme v1), which itself never travels
        signed = "v1\n{}\n{}\n{}\n".format(
            *(request.headers[f"X-Watchkeeper-{h}"] for h in ("Delivery", "Timestamp", "Event"))
        )
        mac = hmac.new(SIGNING.encode(), signed.encode() + request.body, hashlib.sha256)
        assert request.headers["X-Watchkeeper-Signature"] == "v1=" + mac.hexdigest()

    problems: list[str] = []
    for name, text in outputs.items():
        problems += leaks(name, text)
    problems += leaks("the digest report", report)
    for path in sorted((tmp_path / "state").iterdir()):
        problems += leaks(f"state file {path.name}", path.read_bytes())
    for request in webhook_receiver.requests:
        where = f"notification to {request.path.split('/')[1]}"
        problems += leaks(where + " body", request.body)
        problems += leaks(where + " headers", json.dumps(request.headers))
        own = ("notify url",) if request.path.startswith("/hook/") else ("json url",)
        problems += leaks(where + " path", request.path, allowed=own)
    for provider, requests in fakes.by_provider().items():
        for sent in requests:
            where = f"a request to {provider} {sent.path}"
            problems += leaks(where + " body", sent.body)
            problems += leaks(where + " path", sent.path)
            for header, value in sent.headers.items():
                allowed = (provider,) if header == AUTH_HEADERS.get(provider) else ()
                problems += leaks(f"{where} header {header}", value, allowed=allowed)
    assert not problems, "\n".join(problems)


def test_another_providers_key_in_a_question_is_redacted_before_it_leaves(
    tmp_path: Path, fakes: Fakes, webhook_receiver: WebhookReceiver
) -> None:
    """A question (or estate text) that happens to hold the Cohere key must not carry it to
    OpenAI: the key is this machine's, whether or not cohere was called in this process."""
    env = canary_env(tmp_path, webhook_receiver)
    config = str(write_config(tmp_path, fakes, webhook_receiver))
    question = f"our cohere key is {COHERE} and the anthropic one {ANTHROPIC}: are they valid?"
    done = cli("ask", question, "--model", "openai/gpt-5.4", "--json", "--config", config, env=env)
    assert done.returncode == 0, done.stderr
    [request] = [r for r in fakes.openai.requests if r.path.endswith("/chat/completions")]
    assert not found(ANTHROPIC, request.body)  # a recognisable shape: redacted by pattern
    assert not found(COHERE, request.body), "the cohere key was sent to openai in the prompt"
    assert not leaks("ask --json output", done.stdout)
