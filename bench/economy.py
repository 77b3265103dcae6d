"""Model economy over a simulated day: what the real pipeline spends on local triage and cloud
root-cause analysis, against a naive design that sends every cycle to the cloud `rca` model.

288 cycles x 50 checks (one every 5 minutes, on an injected clock), baselines warmed first, three
incidents injected: one check failing for a while, a dependency group, one check slow but up.
Results are synthetic; everything after them is real: `Pipeline.record` with AI + Investigator
(via `open_runtime`), loopback fakes speaking Ollama's and Anthropic's JSON, the ledger, prices
from genai-prices through `daemon.ai.pricing`.
Run: `python -m bench.economy [--cycles 288] [--json]`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench._common import emit, isolate_this_process, machine, parser, quiet_logs, table, verdict

CYCLES = 288
CHECKS = 50
WARMUP = 36
"""Cycles of quiet history before the day starts: baselines judge from 30 samples on."""
STEP = timedelta(minutes=5)
DAY_START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
TRIAGE_REF = "ollama/gemma4:27b"
RCA_REF = "anthropic/claude-opus-4-6"
TRIAGE_TOKENS = (1200, 150)
RCA_TOKENS = (2300, 480)
CHARS_PER_TOKEN = 4
"""For the naive design's prompts: the usual English-text estimate (the fakes use it too)."""
KEY = "sk-ant-bench-loopback-fake-key-0001"
TARGET_SHARE = 0.01

FLAKY = "web-07"
GROUP_ROOT, GROUP_DEPENDENTS = "db-primary", ("orders-api", "cart-api")
SLOW = "cache-edge"

RCA_REPLY = {
    "root_cause": "The service stopped answering after a configuration change.",
    "confidence": "medium",
    "evidence": ["503 from /health for several cycles"],
    "blast_radius": [],
    "next_steps": ["check the last deploy", "read the service logs"],
}


def check_names() -> list[str]:
    fixed = [FLAKY, GROUP_ROOT, *GROUP_DEPENDENTS, SLOW]
    others = [f"svc-{i:02d}" for i in range(CHECKS - len(fixed))]
    return fixed + others


@dataclass
class Scenario:
    """Which check misbehaves in which cycle of the day."""

    cycles: int
    windows: dict[str, range] = field(default_factory=dict)

    def __post_init__(self) -> None:
        spacing = self.cycles // 4
        length = max(3, min(6, spacing - 2))
        self.windows = {
            "flaky": range(spacing, spacing + length),
            "group": range(2 * spacing, 2 * spacing + length),
            "slow": range(3 * spacing, 3 * spacing + length),
        }

    def mode(self, check: str, cycle: int) -> str:
        if check == FLAKY and cycle in self.windows["flaky"]:
            return "failing"
        if check in (GROUP_ROOT, *GROUP_DEPENDENTS) and cycle in self.windows["group"]:
            return "failing"
        if check == SLOW and cycle in self.windows["slow"]:
            return "slow"
        return "ok"


def results_for(cycle: int, at: datetime, scenario: Scenario) -> list[Any]:
    """One cycle of `http` results, shaped like `jobs.http` makes them (same evidence
    sentences, same values); deterministic per cycle."""
    from daemon.models import CheckResult

    rng = random.Random(cycle)
    out = []
    for name in check_names():
        url = f"GET http://{name}.internal:8080/health"
        mode = scenario.mode(name, cycle)
        if mode == "failing":
            latency = round(rng.uniform(2, 6), 1)
            status, code = "failing", 503
            evidence = (
                f"{url} returned 503 in {latency:.0f} ms; expected 200; body: "
                '"upstream connect error or disconnect/reset before headers"'
            )
        else:
            base = (8, 14) if name == SLOW else (15, 45)
            latency = round(rng.uniform(420, 480) if mode == "slow" else rng.uniform(*base), 1)
            status, code = "ok", 200
            evidence = f"{url} returned 200 in {latency:.0f} ms"
        out.append(
            CheckResult(
                check=name,
                status=status,
                evidence=evidence,
                started_at=at,
                latency_ms=latency,
                values={"latency_ms": latency, "status_code": code, "body_bytes": 312},
                labels={"type": "http"},
            )
        )
    return out


def write_config(directory: Path, ollama_url: str, anthropic_url: str) -> Path:
    lines = [
        "[daemon]",
        'state_dir = "state"',
        "[providers.ollama]",
        f'base_url = "{ollama_url}"',
        "[providers.anthropic]",
        f'base_url = "{anthropic_url}"',
        "max_retries = 0",
        "[routing]",
        f'triage = ["{TRIAGE_REF}"]',
        f'rca = ["{RCA_REF}"]',
    ]
    for name in check_names():
        lines += [
            "[[checks]]",
            f'name = "{name}"',
            'type = "http"',
            'url = "http://127.0.0.1:9/health"',  # never requested: results are synthetic
            'interval = "5m"',
            'severity = "high"',
        ]
        if name in GROUP_DEPENDENTS:
            lines.append(f'depends_on = ["{GROUP_ROOT}"]')
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def triage_reply(body: dict[str, Any]) -> str:
    """The triage schema's answer for every incident the prompt names: a summary, `high`,
    escalate — what a local model says about a real outage."""
    prompt = body["messages"][-1]["content"]
    ids = sorted({int(n) for n in re.findall(r"incident (\d+) ", prompt)})
    return json.dumps(
        {
            "incidents": [
                {
                    "incident_id": i,
                    "summary": "The service stopped answering its health check.",
                    "suggested_severity": "high",
                    "escalate": True,
                    "reason": "hard down or far slower than usual",
                }
                for i in ids
            ],
            "correlations": [],
        }
    )


@dataclass
class Day:
    """What the pipeline did, cycle by cycle."""

    events: dict[str, int] = field(default_factory=dict)
    changed_cycles: set[int] = field(default_factory=set)
    """A check's status differs from the cycle before, or an incident event happened."""
    event_cycles: set[int] = field(default_factory=set)
    warmup_calls: int = 0
    rows: list[Any] = field(default_factory=list)
    rca_prompt_chars: list[int] = field(default_factory=list)
    seconds: float = 0.0


async def simulate(cycles: int) -> Day:
    from daemon.config.load import load_settings
    from daemon.runtime import open_runtime
    from tests.peers.providers.anthropic import FakeAnthropic
    from tests.peers.providers.ollama import FakeOllama

    scenario = Scenario(cycles)
    day = Day()
    in_t, out_t = TRIAGE_TOKENS
    rca_in, rca_out = RCA_TOKENS
    usage = {
        "input_tokens": rca_in,
        "output_tokens": rca_out,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    os.environ["ANTHROPIC_API_KEY"] = KEY  # this process only; the fake accepts nothing else
    with (
        FakeOllama(reply=triage_reply, prompt_eval_count=in_t, eval_count=out_t) as ollama,
        FakeAnthropic(key=KEY, reply=RCA_REPLY, usage=usage) as anthropic,
        tempfile.TemporaryDirectory() as tmp,
    ):
        settings = load_settings(write_config(Path(tmp), ollama.url, anthropic.url))
        clock = [DAY_START - WARMUP * STEP]
        started = time.perf_counter()
        async with open_runtime(settings, now=lambda: clock[0]) as rt:
            previous: dict[str, str | None] = {}
            for cycle in range(-WARMUP, cycles):
                results = results_for(cycle, clock[0], scenario)
                events = await rt.pipeline.record(results)
                await rt.pipeline.wait_background(60)
                state = await rt.pipeline.state()
                statuses: dict[str, str | None] = {
                    name: s.last_status for name, s in state.checks.items()
                }
                if cycle >= 0:
                    for event in events:
                        day.events[event.kind] = day.events.get(event.kind, 0) + 1
                    if events:
                        day.event_cycles.add(cycle)
                    if events or statuses != previous:
                        day.changed_cycles.add(cycle)
                previous = statuses
                clock[0] += STEP
            ai = rt.ai
            assert ai is not None
            day.warmup_calls = len(rt.store.ledger.calls(DAY_START - WARMUP * STEP, DAY_START))
            day.rows = rt.store.ledger.calls(DAY_START)
        day.seconds = time.perf_counter() - started
        for request in anthropic.requests:
            body = request.json()
            tools = json.dumps(body.get("tools", []))
            text = str(body.get("system", "")) + "".join(
                str(m["content"]) for m in body["messages"]
            )
            day.rca_prompt_chars.append(len(text) + len(tools))
    del os.environ["ANTHROPIC_API_KEY"]
    return day


def naive(cycles: int) -> dict[str, Any]:
    """Every cycle's results to the `rca` model: the RCA prompt builder over all 50 results
    (one section each), the RCA system prompt and output schema, 480 output tokens a call,
    priced like the real calls."""
    from daemon.ai.pricing import price
    from daemon.engine.rca import SYSTEM, RcaOutput, build_context
    from daemon.llm.types import Usage
    from daemon.models import Incident, ModelRef, Severity

    scenario = Scenario(cycles)
    schema = len(json.dumps(RcaOutput.model_json_schema()))
    depends_on = {name: [GROUP_ROOT] for name in GROUP_DEPENDENTS}
    ref = ModelRef.parse(RCA_REF)
    total_in = total_out = 0
    cost = Decimal(0)
    for cycle in range(cycles):
        at = DAY_START + cycle * STEP
        results = results_for(cycle, at, scenario)
        failing = [r.check for r in results if r.status != "ok"]
        summary = Incident(
            id=cycle + 1,
            fingerprint=f"cycle-{cycle}",
            check="all checks",
            severity=Severity.HIGH if failing else Severity.INFO,
            opened_at=at,
            evidence=f"{len(results)} results, not ok: {', '.join(failing) or 'none'}",
        )
        history = {r.check: [r] for r in results}
        prompt, _ = build_context(summary, [], history, depends_on, [], [])
        tokens_in = math.ceil((len(SYSTEM) + len(prompt) + schema) / CHARS_PER_TOKEN)
        tokens_out = RCA_TOKENS[1]
        call = price(Usage(tokens_in, tokens_out), ref, api="anthropic", local=False, overrides={})
        assert call is not None, f"no price for {RCA_REF}"
        total_in, total_out, cost = total_in + tokens_in, total_out + tokens_out, cost + call
    return {
        "calls": cycles,
        "input_tokens": total_in,
        "output_tokens": total_out,
        "input_tokens_per_call": round(total_in / cycles),
        "usd": float(cost),
    }


def summarise(cycles: int, day: Day, naive_day: dict[str, Any]) -> dict[str, Any]:
    ok_rows = [r for r in day.rows if r.outcome == "ok"]
    local = [r for r in day.rows if r.local]
    cloud = [r for r in day.rows if not r.local]
    cloud_usd = sum((r.cost_usd or Decimal(0) for r in cloud), Decimal(0))
    unknown = sum(r.cost_usd is None for r in cloud)
    triage_cycles = {int((r.ts - DAY_START) / STEP) for r in local if r.task == "triage"}
    incidents = day.events.get("opened", 0)
    share = float(cloud_usd) / naive_day["usd"] if naive_day["usd"] else None
    rca_chars = day.rca_prompt_chars
    return {
        "bench": "economy",
        "machine": machine(),
        "cycles": cycles,
        "checks": CHECKS,
        "cycle_minutes": STEP.total_seconds() / 60,
        "warmup_cycles": WARMUP,
        "warmup_model_calls": day.warmup_calls,
        "simulated_in_s": round(day.seconds, 2),
        "incidents": incidents,
        "events": day.events,
        "cycles_with_change": len(day.changed_cycles),
        "cycles_with_incident_event": len(day.event_cycles),
        "local": {
            "model": TRIAGE_REF,
            "calls": len(local),
            "ok": sum(r.outcome == "ok" for r in local),
            "input_tokens": sum(r.input_tokens for r in local),
            "output_tokens": sum(r.output_tokens for r in local),
            "usd": float(sum((r.cost_usd or Decimal(0) for r in local), Decimal(0))),
            "calls_in_cycles_without_change": len(triage_cycles - day.changed_cycles),
        },
        "cloud": {
            "model": RCA_REF,
            "calls": len(cloud),
            "ok": sum(r.outcome == "ok" for r in cloud),
            "input_tokens": sum(r.input_tokens for r in cloud),
            "output_tokens": sum(r.output_tokens for r in cloud),
            "usd": float(cloud_usd),
            "unknown_cost_calls": unknown,
            "rca_prompt_chars_median": sorted(rca_chars)[len(rca_chars) // 2] if rca_chars else 0,
        },
        "naive": {"model": RCA_REF, **naive_day},
        "cloud_share_of_naive": None if share is None else round(share, 5),
        "failed_calls": len(day.rows) - len(ok_rows),
        "targets": {
            "cloud_calls_eq_incidents": {
                "cloud_calls": len(cloud),
                "incidents": incidents,
                "met": len(cloud) == incidents,
            },
            "local_calls_le_changed_cycles": {
                "local_calls": len(local),
                "cycles_with_change": len(day.changed_cycles),
                "met": len(local) <= len(day.changed_cycles),
            },
            "cloud_usd_le_1pct_naive": {
                "share": share,
                "limit": TARGET_SHARE,
                "met": share is not None and share <= TARGET_SHARE,
            },
        },
    }


def render(data: dict[str, Any]) -> str:
    m = data["machine"]
    local, cloud, naive_day = data["local"], data["cloud"], data["naive"]
    rows = [
        [
            "watchkeeper: local triage",
            local["calls"],
            f"{local['input_tokens']:,}",
            f"{local['output_tokens']:,}",
            f"${local['usd']:.4f}",
        ],
        [
            "watchkeeper: cloud RCA",
            cloud["calls"],
            f"{cloud['input_tokens']:,}",
            f"{cloud['output_tokens']:,}",
            f"${cloud['usd']:.4f}",
        ],
        [
            "naive: every cycle to rca",
            naive_day["calls"],
            f"{naive_day['input_tokens']:,}",
            f"{naive_day['output_tokens']:,}",
            f"${naive_day['usd']:.4f}",
        ],
    ]
    t = data["targets"]
    share = data["cloud_share_of_naive"]
    lines = [
        f"bench.economy — {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}",
        f"{data['cycles']} cycles x {data['checks']} checks every {data['cycle_minutes']:g} min "
        f"(+{data['warmup_cycles']} warm-up cycles, {data['warmup_model_calls']} model calls), "
        f"simulated in {data['simulated_in_s']:.1f} s; events: {data['events']}",
        "",
        table(["design", "calls", "input tok", "output tok", "USD"], rows),
        "",
        f"cloud calls = incidents: {t['cloud_calls_eq_incidents']['cloud_calls']} vs "
        f"{t['cloud_calls_eq_incidents']['incidents']} — "
        f"{verdict(t['cloud_calls_eq_incidents']['met'])}",
        f"local calls <= cycles with a change: {local['calls']} vs "
        f"{data['cycles_with_change']} — {verdict(t['local_calls_le_changed_cycles']['met'])} "
        f"({local['calls_in_cycles_without_change']} triage calls fell in cycles where no status "
        f"changed and no incident event happened)",
        f"cloud USD <= 1% of naive: "
        f"{'n/a' if share is None else f'{share * 100:.2f}%'} — "
        f"{verdict(t['cloud_usd_le_1pct_naive']['met'])}",
        f"naive prompts: {naive_day['input_tokens_per_call']:,} input tokens a call "
        f"({CHARS_PER_TOKEN} chars a token); real RCA prompts measured "
        f"{cloud['rca_prompt_chars_median']:,} chars (~"
        f"{cloud['rca_prompt_chars_median'] // CHARS_PER_TOKEN:,} tokens) against the "
        f"{RCA_TOKENS[0]:,} the fake reports",
    ]
    return "\n".join(lines)


def main() -> None:
    p = parser("AI calls and spend over a simulated day, against a naive all-cloud design.")
    p.add_argument("--cycles", type=int, default=CYCLES, help="cycles in the day (>= 24)")
    args = p.parse_args()
    cycles = max(24, args.cycles)
    isolate_this_process()
    quiet_logs()
    day = asyncio.run(simulate(cycles))
    data = summarise(cycles, day, naive(cycles))
    emit(render(data), data, args.json)


if __name__ == "__main__":
    main()
