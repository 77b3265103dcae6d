from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.models import Finding, Severity
from jobs.base import CheckContext
from jobs.sweeps.base import CollectError, KubernetesScope, SweepContext
from jobs.sweeps.k8s.cost import RULES, Prices, Sample, right_size
from tests.peers.kubernetes import (
    FakeCluster,
    FakeKubernetes,
    deployment,
    owned_by,
    pod,
    pod_metrics,
    replicaset,
    statefulset,
)

Obj = dict[str, Any]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KUBECONFIG", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("all_proxy", raising=False)


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def k8s(cluster: FakeCluster) -> Iterator[FakeKubernetes]:
    server = FakeKubernetes(cluster).start()
    yield server
    server.stop()


@pytest.fixture
async def sweep(k8s: FakeKubernetes, tmp_path: Path) -> AsyncIterator[SweepContext]:
    kubeconfig = k8s.kubeconfig(tmp_path / "kubeconfig")
    async with httpx.AsyncClient() as http:
        yield SweepContext(
            check=CheckContext(http=http),
            now=datetime.now(UTC),
            kubernetes=KubernetesScope(kubeconfig=str(kubeconfig), namespaces=("prod",)),
        )


async def evaluate(ctx: SweepContext) -> list[Finding]:
    (rule,) = RULES
    found: list[Finding] = await rule.evaluate(ctx)
    return found


def worker_pool(cluster: FakeCluster, *, cpu_used: str, replicas: int = 4) -> None:
    """Deployment `worker`: each replica requests 1 CPU and 2Gi, and uses `cpu_used`/200Mi."""
    workload = deployment("worker", replicas=replicas, available=replicas)
    rs = replicaset(workload)
    cluster.add(workload, rs)
    for i in range(replicas):
        name = f"worker-7d9c-{i}"
        replica = owned_by(pod(name, requests={"cpu": "1", "memory": "2Gi"}), rs)
        cluster.add(replica, pod_metrics(name, app=(cpu_used, "200Mi")))


async def test_idle_deployment_saving_matches_the_hand_computed_figure(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    worker_pool(cluster, cpu_used="30m")
    (found,) = await evaluate(sweep)
    # 4 replicas x 30m = 120m used of 4 x 1000m = 4000m requested: 3% < 10%.
    # Right-sized per container: cpu max(2 x 30m, 50m) = 60m; memory max(2 x 200Mi, 64Mi) = 400Mi.
    # CPU freed:    4 x (1000m - 60m) = 3.76 vCPU;  3.76 x 0.031611 x 730 = 86.7658728
    # Memory freed: 4 x (2048Mi - 400Mi) = 6592Mi = 6.4375 GiB; 6.4375 x 0.004237 x 730 = 19.9112519
    # Total: 86.7658728 + 19.9112519 = 106.6771247 -> $106.68/mo
    assert found.est_monthly_savings_usd == 106.68
    assert found.kind == "cost"
    assert found.severity == Severity.LOW
    assert found.resource == "prod/Deployment/worker"
    assert found.location == "fake/prod"
    assert found.title == "Idle worker averaging 3% CPU, 4 replicas running — save $107/mo"
    assert "used 120m of 4000m requested CPU (3%, under 10%)" in found.evidence
    assert "at sweep time (one metrics.k8s.io sample" in found.evidence
    assert "(floor 50m CPU, 64Mi memory: app cpu=60m,memory=400Mi)" in found.evidence
    assert "(3.760 vCPU x $0.031611/vCPU-h + 6.438 GiB x $0.004237/GiB-h) x 730 h" in found.evidence
    assert found.remediation_cli == (
        "kubectl --context fake -n prod set resources deployment worker -c app "
        "--requests=cpu=60m,memory=400Mi"
    )


async def test_busy_deployment_passes(cluster: FakeCluster, sweep: SweepContext) -> None:
    worker_pool(cluster, cpu_used="450m")  # 45% of the request
    assert await evaluate(sweep) == []


async def test_threshold_and_prices_come_from_the_sweep_options(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    worker_pool(cluster, cpu_used="30m")
    sweep.options.update(k8s_idle_request_percent=2)
    assert await evaluate(sweep) == []
    sweep.options.update(k8s_idle_request_percent=5, vcpu_hour_usd=0.05, gib_hour_usd=0)
    (found,) = await evaluate(sweep)
    assert found.est_monthly_savings_usd == 137.24  # 3.76 vCPU x 0.05 x 730 = 137.24


async def test_idle_statefulset_replicas_are_owned_directly(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    db = statefulset("db", replicas=1, ready=1)
    replica = owned_by(pod("db-0", requests={"cpu": "2"}), db)
    cluster.add(db, replica, pod_metrics("db-0", app=("10m", "1Gi")))
    (found,) = await evaluate(sweep)
    # 10m of 2000m = 0.5%; right-sized 50m (the floor); 1.95 vCPU x 0.031611 x 730 = 44.9982585.
    # No memory request: nothing to free there.
    assert found.resource == "prod/StatefulSet/db"
    assert found.est_monthly_savings_usd == 45.0
    assert "1 replica running" in found.title
    assert found.remediation_cli == (  # no memory request: none is added
        "kubectl --context fake -n prod set resources statefulset db -c app --requests=cpu=50m"
    )


async def test_no_metrics_server_is_a_collect_error(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    worker_pool(cluster, cpu_used="30m")
    cluster.metrics_available = False
    with pytest.raises(
        CollectError, match=r"metrics\.k8s\.io is not available \(metrics-server not installed\?\)"
    ):
        await evaluate(sweep)


async def test_forbidden_replicasets_name_verb_and_resource(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    worker_pool(cluster, cpu_used="30m")
    cluster.forbid("replicasets", "prod")
    with pytest.raises(
        CollectError, match=r"forbidden: cannot list replicasets\.apps in namespace prod"
    ):
        await evaluate(sweep)


def test_right_size_never_raises_a_request_and_needs_usage_headroom() -> None:
    mib = Decimal(2**20)
    samples = [
        Sample("app", Decimal("0.04"), 32 * mib, Decimal("0.001"), 10 * mib),  # under the floors
        Sample("app", Decimal("0.04"), 32 * mib, Decimal("0.030"), 10 * mib),
    ]
    sizing = right_size(samples, 2, Prices())
    # 2 x 30m = 60m > 40m requested; 2 x 10Mi is under the 64Mi floor > 32Mi requested.
    assert sizing.new_requests == {}
    assert sizing.monthly_usd == Decimal("0.00")
    assert sizing.percent == pytest.approx(31 / 80 * 100)
