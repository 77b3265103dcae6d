"""SIGHUP reaches every component of a running daemon: after a reload, the next root-cause
analysis goes to the new `rca` route, is priced with the new `[prices]`, held against the new
`[budget]`, and every message — the budget notice included — goes to the new targets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.peers.loopback import free_port
from tests.peers.providers.anthropic import FakeAnthropic
from tests.peers.providers.openai import FakeOpenAI, Tokens
from tests.peers.receivers import WebhookReceiver

PY = sys.executable
DEADLINE_S = 30.0
ANTHROPIC_KEY = "sk-ant-reload-canary-5e1f"
OPENAI_KEY = "sk-proj-reload-canary-77a0c1d2e3f4a5b6c7d8"
RCA = {
    "root_cause": "the port is closed",
    "confidence": "high",
    "evidence": ["connection refused"],
    "blast_radius": [],
    "next_steps": ["start the service"],
}


def check(name: str) -> str:
    return f"""
[[checks]]
name = "{name}"
type = "tcp"
host = "127.0.0.1"
port = {free_port()}
interval = "1s"
timeout = "2s"
failure_threshold = 1
"""


def config_text(
    anthropic: FakeAnthropic, openai: FakeOpenAI, target: WebhookReceiver, rest: str
) -> str:
    return f"""
[daemon]
state_dir = "state"
jitter = "0s"
cycle_window = "0s"
drain_timeout = "3s"

[delivery]
retry_initial = "1s"
timeout = "5s"

[triage]
enabled = false

[providers.anthropic]
base_url = "{anthropic.url}"
max_retries = 0

[providers.openai]
base_url = "{openai.url}"
max_retries = 0

[[notify]]
name = "on-call"
url = "{target.url()}"
{rest}
"""


def wait_for(predicate: Callable[[], object], what: str) -> None:
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def titles(receiver: WebhookReceiver) -> list[str]:
    return [str(m["title"]) for m in receiver.messages]


def ledger(config: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [PY, "-m", "daemon", "costs", "--json", "--since", "1d", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=True,
        env=os.environ.copy(),
    ).stdout
    data = json.loads(out)
    calls: list[dict[str, Any]] = sorted(data["calls"] + data["skipped"], key=lambda c: c["ts"])
    return calls


def test_a_reload_reaches_routing_prices_budget_and_targets(
    tmp_path: Path,
    make_webhook_receiver: Callable[[], WebhookReceiver],
    monkeypatch: Any,
) -> None:
    before, after = make_webhook_receiver(), make_webhook_receiver()
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    usage = {"input_tokens": 900, "output_tokens": 120}
    with (
        FakeAnthropic(key=ANTHROPIC_KEY, reply=RCA, usage=usage) as anthropic,
        FakeOpenAI(key=OPENAI_KEY, reply=json.dumps(RCA), usage=Tokens(1000, 1000)) as openai,
    ):
        config = tmp_path / "config.toml"
        config.write_text(
            config_text(
                anthropic, openai, before, '[routing]\nrca = ["anthropic/claude-opus-4-6"]\n'
            )
            + check("first")
        )
        proc = subprocess.Popen(
            [PY, "-m", "daemon", "run", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=os.environ.copy(),
        )
        try:
            wait_for(
                lambda: "[HIGH] first — root cause (incident #1)" in titles(before),
                "the first incident's root cause from the first route",
            )
            # One reload changes the route, prices, budget and target at once. At $1 in and
            # $1,000 out per MTok, one openai RCA holds ~$1.50 and settles at ~$1.00: a $2.00
            # day has room for one call, and the second of the two new incidents is refused.
            reloaded = (
                '[routing]\nrca = ["openai/gpt-5.4"]\n'
                '[prices."openai/gpt-5.4"]\ninput_per_mtok = 1\noutput_per_mtok = 1000\n'
                "[budget]\ndaily_usd = 2.00\n"
            )
            config.write_text(
                config_text(anthropic, openai, after, reloaded)
                + check("first")
                + check("second")
                + check("third")
            )
            proc.send_signal(signal.SIGHUP)
            wait_for(
                lambda: (
                    sum("root cause" in t or "RCA not available" in t for t in titles(after)) == 2
                ),
                "both new incidents' investigations at the new target",
            )
            wait_for(lambda: "AI budget reached (daily)" in titles(after), "the budget notice")
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=DEADLINE_S)
        assert proc.returncode == 0, out
        assert "configuration reloaded" in out

        assert len(anthropic.requests) == 1  # before the reload only
        assert len(openai.requests) == 1  # after it: one call, the other held back

    calls = [c for c in ledger(config) if c["task"] == "rca"]
    assert [(c["provider"], c["outcome"]) for c in calls[:1]] == [("anthropic", "ok")]
    assert sorted((c["provider"], c["outcome"]) for c in calls[1:]) == [
        ("openai", "budget"),
        ("openai", "ok"),
    ]
    (priced,) = [c for c in calls if c["provider"] == "openai" and c["outcome"] == "ok"]
    assert priced["cost_usd"] == 1.001  # 1,000 in at $1 + 1,000 out at $1,000 per MTok

    # Nothing after the reload went to the old target; the notice names the new limit.
    assert titles(before) == [
        "[HIGH] first failing — incident #1",
        "[HIGH] first — root cause (incident #1)",
    ]
    assert "[HIGH] second failing — incident #2" in titles(after)
    assert "[HIGH] third failing — incident #3" in titles(after)
    (notice,) = [m for m in after.messages if m["title"] == "AI budget reached (daily)"]
    assert "daily AI budget $2.00 reached" in notice["message"]
