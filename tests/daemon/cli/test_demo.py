"""`watchkeeper demo` ends with the bill: estimated on a bare machine, real with a model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

from daemon.llm import PROVIDERS, key_env
from tests.peers.loopback import free_port
from tests.peers.providers.ollama import FakeOllama

KEY_VARS = {name for provider in PROVIDERS for name in key_env(provider)}


def demo(ollama_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS and k != "WATCHKEEPER_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "daemon", "demo", "--pause", "0", "--ollama-url", ollama_url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_on_a_bare_machine_the_demo_prices_what_it_built_on_every_model() -> None:
    result = demo(f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 0, result.stderr
    bill = result.stdout.split("\nThe bill\n", 1)[1]
    triage, rca = bill.split("No model ran the RCA.")
    assert triage.startswith("No model ran the triage. At list price it would have cost, for the ≈")
    for model in ("anthropic/claude-opus-4-6", "openai/gpt-5.4", "google/gemini-3.1-pro-preview"):
        for part in (triage, rca):
            line = next(x for x in part.splitlines() if x.startswith(model))
            assert re.fullmatch(rf"{re.escape(model)}\s+\$0\.0\d+", line), line
    assert re.search(r"ollama/gemma4:27b\s+\$0\.00 \(local\)", rca)
    assert "A month of this estate: 3 checks, 129,600 check runs in 43,200 cycles." in rca
    assert "watched by local triage (ollama/gemma4:27b): $0.00" in rca
    month = re.search(r"every cycle sent to anthropic/claude-opus-4-6: at least \$([\d,.]+)", rca)
    assert month is not None and float(month.group(1).replace(",", "")) > 10


def answer(body: dict[str, Any]) -> str:
    """Answers whichever schema the request carries: triage or root-cause analysis (a
    look-up turn of the investigator carries none: nothing more to look up)."""
    if not isinstance(body.get("format"), dict):
        return "Nothing more to look up."
    properties = body["format"]["properties"]
    if "incidents" in properties:
        ids = sorted(
            {int(n) for n in re.findall(r"incident (\d+) ", body["messages"][-1]["content"])}
        )
        return json.dumps(
            {
                "incidents": [
                    {
                        "incident_id": i,
                        "summary": "session-cache is out of memory.",
                        "suggested_severity": "high",
                        "escalate": True,
                        "reason": "hard down",
                    }
                    for i in ids
                ],
                "correlations": [],
            }
        )
    return json.dumps(
        {
            "root_cause": "session-cache hit maxmemory",
            "confidence": "medium",
            "evidence": ["OOM command not allowed"],
            "blast_radius": ["checkout-api"],
            "next_steps": ["raise maxmemory"],
        }
    )


def test_with_a_local_model_the_bill_shows_the_real_calls_instead() -> None:
    with FakeOllama(reply=answer, prompt_eval_count=1204, eval_count=151) as ollama:
        result = demo(ollama.url)
        chats = ollama.chats
    assert result.returncode == 0, result.stderr
    bill = result.stdout.split("\nThe bill\n", 1)[1]
    assert "What the models this run used cost (from the ledger):" in bill
    rows = [line.split() for line in bill.splitlines() if line.startswith(("triage ", "rca "))]
    assert rows and len(rows) == chats
    assert all(row[1:] == ["ollama/gemma4:27b", "local", "1,204", "151", "$0.00"] for row in rows)
    assert {row[0] for row in rows} == {"triage", "rca"}
    assert "No model ran" not in bill
    assert f"({sum(r[0] == 'triage' for r in rows)} call" in bill
