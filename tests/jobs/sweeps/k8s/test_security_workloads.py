"""The container-settings rules of jobs.sweeps.k8s.security_workloads against the fake
Kubernetes API: for each rule a workload that fails and one that passes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from daemon.models import Finding
from jobs.base import CheckContext
from jobs.sweeps.base import KubernetesScope, SweepContext
from jobs.sweeps.k8s.security_workloads import RULES
from tests.peers.kubernetes import FakeCluster, FakeKubernetes, deployment, with_container

HARDENED = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}
LIMITS = {"limits": {"cpu": "500m", "memory": "256Mi"}}


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def k8s(cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubernetes]:
    for var in ("KUBECONFIG", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    server = FakeKubernetes(cluster).start()
    yield server
    server.stop()


@pytest.fixture
async def sweep(k8s: FakeKubernetes, tmp_path: Path) -> AsyncIterator[SweepContext]:
    kubeconfig = k8s.kubeconfig(tmp_path / "kubeconfig", contexts=("fake",))
    async with httpx.AsyncClient() as http:
        yield SweepContext(
            check=CheckContext(http=http),
            now=datetime.now(UTC),
            kubernetes=KubernetesScope(kubeconfig=str(kubeconfig), namespaces=("prod",)),
        )


async def evaluate(ctx: SweepContext, rule_id: str) -> list[Finding]:
    (rule,) = [r for r in RULES if r.meta.id == rule_id]
    found: list[Finding] = await rule.evaluate(ctx)
    return found


def hardened(name: str) -> dict[str, object]:
    return with_container(
        deployment(name),
        securityContext=dict(HARDENED),
        resources=LIMITS,
        image="registry.example.com/shop/app:1.4.2",
    )


async def test_privilege_escalation(cluster: FakeCluster, sweep: SweepContext) -> None:
    cluster.add(hardened("safe"), with_container(deployment("loose"), resources=LIMITS))
    (found,) = await evaluate(sweep, "k8s.pod.privilege_escalation")
    assert found.resource == "prod/Deployment/loose"
    assert found.evidence == (
        "Deployment prod/loose: container app may escalate privileges "
        "(allowPrivilegeEscalation unset or true)"
    )
    assert found.remediation_cli == (
        "kubectl --context fake -n prod patch deployment loose -p "
        """'{"spec":{"template":{"spec":{"containers":[{"name":"app","""
        """"securityContext":{"allowPrivilegeEscalation":false}}]}}}}'"""
    )


async def test_writable_root_filesystem(cluster: FakeCluster, sweep: SweepContext) -> None:
    writable = with_container(
        deployment("writer"), securityContext={"readOnlyRootFilesystem": False}
    )
    cluster.add(hardened("safe"), writable)
    (found,) = await evaluate(sweep, "k8s.pod.writable_root_fs")
    assert found.resource == "prod/Deployment/writer"
    assert (
        found.evidence == "Deployment prod/writer: container app can write to its root filesystem"
    )


async def test_missing_limits(cluster: FakeCluster, sweep: SweepContext) -> None:
    half = with_container(deployment("half"), resources={"limits": {"cpu": "1"}})
    cluster.add(hardened("safe"), half)
    (found,) = await evaluate(sweep, "k8s.pod.no_limits")
    assert found.evidence == "Deployment prod/half: container app has no memory limit"
    assert found.remediation_cli == (
        "kubectl --context fake -n prod set resources deployment/half -c app "
        "--limits=cpu=<cpu>,memory=<memory>"
    )


@pytest.mark.parametrize(
    ("image", "why"),
    [
        ("nginx", "has no tag (latest)"),
        ("registry.example.com:5000/shop/app:latest", "uses :latest"),
    ],
)
async def test_unpinned_images(
    cluster: FakeCluster, sweep: SweepContext, image: str, why: str
) -> None:
    pinned = with_container(
        deployment("pinned"), image="registry.example.com/app@sha256:" + "a" * 64
    )
    cluster.add(hardened("safe"), pinned, with_container(deployment("floating"), image=image))
    (found,) = await evaluate(sweep, "k8s.pod.latest_image")
    assert found.resource == "prod/Deployment/floating"
    assert found.evidence == f"Deployment prod/floating: container app image {image} {why}"
    base = image.removesuffix(":latest")
    assert found.remediation_cli == (
        f"kubectl --context fake -n prod set image deployment/floating app={base}:<version>"
    )
