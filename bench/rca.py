"""What the investigator can see, and what it costs: incident scenarios built from real
failure patterns, each with the pieces of evidence an engineer needs to name the cause.

Each scenario runs the real `Investigator` (context hooks, toolbox, limits, ledger) against
the loopback Kubernetes, Prometheus and HTTP peers and moto's AWS server, with a *scripted*
model (the OpenAI imitation) that follows the look-ups an engineer would make. Reported per
scenario: the pieces present in the first (single-shot) context, the pieces reachable through
the tools, tokens and dollars per investigation at gpt-5.4's list price, and steps used. The figures
measure what the investigator can see and what it costs — not a model's reasoning: the
model is scripted, and its token counts are the imitation's (4 characters a token).
Run: `python -m bench.rca [--json]`.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import emit, isolate_this_process, machine, parser, quiet_logs, table
from bench.rca_scenario import Scenario, substitute

MODEL = "openai/gpt-5.4"
KEY = "sk-test-fake-openai-0000"


def _scenarios() -> list[Scenario]:
    from bench.rca_more import more_scenarios
    from tests.peers import kubernetes as kube
    from tests.peers.prometheus import matrix, vector

    def crashloop(k8s: Any, prom: Any) -> None:
        k8s.add(
            kube.crashloop_pod("checkout-7d9c-x2x9k"),
            kube.config_map("checkout-config", data={"DB_POOL_SIZE": "-5"}),
        )
        k8s.set_log(
            "prod", "checkout-7d9c-x2x9k", "app",
            'loading configmap checkout-config\nFATAL invalid DB_POOL_SIZE "-5"\n',
            previous=True,
        )  # fmt: skip

    def oom(k8s: Any, prom: Any) -> None:
        k8s.add(kube.oomkilled_pod("worker-5f6b-abcde"))
        k8s.set_log(
            "prod", "worker-5f6b-abcde", "app",
            "cache entries 9,800,000 (no eviction configured)\nheap 1.9GiB\n",
            previous=True,
        )  # fmt: skip
        prom.ranges['container_memory_working_set_bytes{pod="worker-5f6b-abcde"}'] = matrix(
            {"pod": "worker-5f6b-abcde"}, "6.1e8", "1.1e9", "1.6e9", "2.0e9"
        )

    def pool(k8s: Any, prom: Any) -> None:
        prom.answers["hikaricp_connections_pending"] = vector(({"pool": "orders"}, "48"))
        prom.answers["hikaricp_connections_max"] = vector(({"pool": "orders"}, "10"))
        prom.ranges["hikaricp_connections_active"] = matrix(
            {"pool": "orders"}, "4", "9", "10", "10"
        )

    def upstream(k8s: Any, prom: Any) -> None:
        prom.answers['sum by (upstream) (rate(http_client_errors_total{code="503"}[5m]))'] = vector(
            ({"upstream": "payments"}, "12.5")
        )

    crash_pod = {"kind": "pod", "namespace": "prod", "container": "app"}
    return [
        Scenario(
            "crash loop from a bad config value",
            "cluster",
            "pod prod/checkout-7d9c-x2x9k: CrashLoopBackOff (7 restarts)",
            ["CrashLoopBackOff", "FATAL invalid DB_POOL_SIZE", '"DB_POOL_SIZE":"-5"'],
            [
                [
                    (
                        "k8s_pod_logs",
                        {
                            "namespace": "prod",
                            "pod": "checkout-7d9c-x2x9k",
                            "container": "app",
                            "previous": True,
                        },
                    )
                ],
                [
                    (
                        "k8s_get",
                        {"kind": "configmap", "namespace": "prod", "name": "checkout-config"},
                    )
                ],
            ],
            {**crash_pod, "name": "checkout-7d9c-x2x9k", "reason": "CrashLoopBackOff"},
            crashloop,
        ),
        Scenario(
            "OOM from a leak",
            "cluster",
            "pod prod/worker-5f6b-abcde: OOMKilled (3 restarts)",
            ["OOMKilled", "no eviction configured", "2.0e9"],
            [
                [
                    (
                        "k8s_pod_logs",
                        {
                            "namespace": "prod",
                            "pod": "worker-5f6b-abcde",
                            "container": "app",
                            "previous": True,
                        },
                    )
                ],
                [
                    (
                        "prometheus_range",
                        {
                            "query": 'container_memory_working_set_bytes{pod="worker-5f6b-abcde"}',
                            "minutes": 120,
                        },
                    )
                ],
            ],
            {**crash_pod, "name": "worker-5f6b-abcde", "reason": "OOMKilled"},
            oom,
        ),
        Scenario(
            "connection-pool exhaustion, visible only in Prometheus",
            "orders-latency",
            "orders_p99_seconds = 2.4 > 1",
            ["2.4", '"48"', '"10"'],
            [
                [("prometheus_query", {"query": "hikaricp_connections_pending"})],
                [
                    ("prometheus_query", {"query": "hikaricp_connections_max"}),
                    ("prometheus_range", {"query": "hikaricp_connections_active"}),
                ],
            ],
            setup=pool,
        ),
        Scenario(
            "an upstream dependency's 5xx",
            "shop",
            "GET /checkout answered 502 Bad Gateway",
            ["502", '"upstream":"payments"', '"12.5"'],
            [
                [("http_get", {"url": "SHOP_URL"})],
                [
                    (
                        "prometheus_query",
                        {
                            "query": "sum by (upstream) "
                            '(rate(http_client_errors_total{code="503"}[5m]))'
                        },
                    )
                ],
            ],
            setup=upstream,
        ),
        Scenario(
            "expiring certificate",
            "shop",
            "certificate of shop.example expires in 2 days (2026-12-06)",
            ["expires in 2 days"],
            [[("check_history", {"check": "shop"})]],
        ),
        Scenario(
            "DNS change",
            "shop",
            "connect to 203.0.113.9:443 refused",
            ["203.0.113.9", "198.51.100.7"],
            [[("check_history", {"check": "shop", "limit": 30})]],
            history=[f"200 OK from 198.51.100.7 in {40 + i} ms" for i in range(20)],
        ),
        *more_scenarios(),
    ]


async def _run_one(scenario: Scenario, root: Path, moto: str) -> dict[str, Any]:
    import httpx

    from bench.rca_more import aws_checks, fresh_aws
    from daemon.ai.runner import AI
    from daemon.config.load import load_settings
    from daemon.engine.investigator import Investigator
    from daemon.models import CheckResult, EngineState, Incident, Severity
    from daemon.store import Store
    from jobs.base import CheckContext
    from tests.peers.kubernetes import FakeKubernetes
    from tests.peers.prometheus import FakeProm
    from tests.peers.providers.openai import FakeOpenAI
    from tests.peers.targets import HttpPeer, asyncio_servers

    now = datetime.now(UTC)
    k8s = FakeKubernetes().start()
    async with asyncio_servers() as start:
        prom, web = FakeProm(), HttpPeer()
        prom.port = await start(prom.handle)
        web.port = await start(web.handle)
        shop = web.url("/status/502")
        scenario.setup(k8s.cluster, prom)
        placeholders = {"SHOP_URL": shop}
        if scenario.aws is not None:
            placeholders |= scenario.aws(fresh_aws(moto))
        plan = substitute(scenario.plan, placeholders)

        def calls(body: dict[str, Any]) -> Any:
            turns = sum(1 for m in body["messages"] if m["role"] == "assistant")
            return plan[turns] if turns < len(plan) else None

        def answer(body: dict[str, Any]) -> str:
            if not body.get("response_format"):
                return "I have what I need."
            return json.dumps(
                {"root_cause": "scripted", "confidence": "low", "evidence": [],
                 "blast_radius": [], "next_steps": []}
            )  # fmt: skip

        with FakeOpenAI(key=KEY, reply=answer, tools=calls) as model:
            config = root / "config.toml"
            config.write_text(f"""
[daemon]
state_dir = "state"
[providers.openai]
base_url = "{model.url}"
max_retries = 0
[routing]
rca = ["{MODEL}"]
[[checks]]
name = "cluster"
type = "kubernetes"
kubeconfig = "{k8s.kubeconfig(root / "kubeconfig")}"
namespaces = ["prod"]
[[checks]]
name = "orders-latency"
type = "prometheus"
url = "{prom.url("")}"
query = "orders_p99_seconds"
op = ">"
threshold = 1
depends_on = ["shop"]
[[checks]]
name = "shop"
type = "http"
url = "{shop}"
{aws_checks(prom.url(""))}
""")
            settings = load_settings(config)
            radius = ["orders-latency"] if scenario.check == "shop" else []
            if scenario.check == "orders-latency":
                radius = ["shop"]
            radius = radius if scenario.radius is None else scenario.radius
            incident = Incident(
                id=1, fingerprint=scenario.check, check=scenario.check, severity=Severity.HIGH,
                opened_at=now, evidence=scenario.evidence, first_evidence=scenario.evidence,
                blast_radius=radius,
            )  # fmt: skip
            results = [
                CheckResult(check=scenario.check, status="ok", evidence=text,
                            started_at=now - timedelta(minutes=len(scenario.history) - i + 1))
                for i, text in enumerate(scenario.history)
            ]  # fmt: skip
            results.append(
                CheckResult(check=scenario.check, status="failing", evidence=scenario.evidence,
                            started_at=now, values=scenario.values, subject=scenario.subject)
            )  # fmt: skip
            async with httpx.AsyncClient(trust_env=False) as client:
                with Store.open(settings.daemon.state_dir) as store:
                    state = EngineState(incidents={1: incident}, next_incident_id=2)
                    store.incidents.commit_cycle(results, state, [], [], [], now=now)
                    ai = AI(settings, store, client, now=lambda: now)
                    ctx = CheckContext(http=client, now=lambda: now)
                    investigator = Investigator(settings, store, ai, ctx, now=lambda: now)
                    outcome = await investigator.investigate(
                        incident, "bench", notify_targets=False
                    )
            bodies = model.bodies()
    k8s.stop()
    first = bodies[0]["messages"][-1]["content"] if bodies else ""
    seen = "\n".join(
        str(m.get("content") or "") for b in bodies for m in b["messages"] if m["role"] == "tool"
    )
    record = outcome.investigation
    in_first = [p for p in scenario.pieces if p in first]
    reachable = [p for p in scenario.pieces if p in first or p in seen]
    cost = record.cost
    return {
        "scenario": scenario.name,
        "pieces": len(scenario.pieces),
        "in_first_context": len(in_first),
        "reachable_with_tools": len(reachable),
        "missing": [p for p in scenario.pieces if p not in reachable],
        "model_turns": len(record.calls),
        "tool_calls": len(record.trail),
        "input_tokens": sum(c.input_tokens for c in record.calls),
        "output_tokens": sum(c.output_tokens for c in record.calls),
        "usd": None if cost is None else float(cost),
        "limit": record.limit,
    }


def main() -> None:
    from bench.rca_more import moto_server

    args = parser(__doc__.splitlines()[0]).parse_args()
    isolate_this_process()
    quiet_logs()
    os.environ["OPENAI_API_KEY"] = KEY
    rows = []
    with tempfile.TemporaryDirectory() as tmp, moto_server(Path(tmp)) as moto:
        for i, scenario in enumerate(_scenarios()):
            root = Path(tmp) / str(i)
            root.mkdir()
            rows.append(asyncio.run(_run_one(scenario, root, moto)))
    pieces = sum(r["pieces"] for r in rows)
    first = sum(r["in_first_context"] for r in rows)
    reach = sum(r["reachable_with_tools"] for r in rows)
    usd = [r["usd"] for r in rows if r["usd"] is not None]
    overall = {
        "pieces": pieces,
        "in_first_context": first,
        "reachable_with_tools": reach,
        "mean_usd": sum(usd) / len(usd) if usd else None,
        "mean_model_turns": sum(r["model_turns"] for r in rows) / len(rows),
    }
    text = table(
        ["scenario", "pieces", "first ctx", "with tools", "turns", "tokens in/out", "$"],
        [
            [
                r["scenario"],
                r["pieces"],
                r["in_first_context"],
                r["reachable_with_tools"],
                r["model_turns"],
                f"{r['input_tokens']}/{r['output_tokens']}",
                f"{r['usd']:.4f}" if r["usd"] is not None else "unknown",
            ]
            for r in rows
        ],
    )
    text += (
        f"\n\noverall: {first}/{pieces} pieces in the first context, {reach}/{pieces} with the "
        "tools. Scripted model: these figures measure what the investigator can see and what "
        "it costs, not a model's reasoning."
    )
    data = {"bench": "rca", "machine": machine(), "model": MODEL, "scenarios": rows,
            "overall": overall}  # fmt: skip
    emit(text, data, args.json)


if __name__ == "__main__":
    main()
