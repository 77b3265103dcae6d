"""The fake Kubernetes API and a sweep context on it, scoped to namespace `prod`, for the rule
modules' tests (a module defining its own fixtures of these names keeps them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from daemon.models import Finding
from jobs.base import CheckContext
from jobs.sweeps.base import KubernetesScope, Rule, SweepContext
from tests.peers.kubernetes import FakeCluster, FakeKubernetes


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


async def run_rule(rules: list[Rule], ctx: SweepContext, rule_id: str) -> list[Finding]:
    """The findings of rule `rule_id` of `rules` in the sweep `ctx`."""
    (rule,) = [r for r in rules if r.meta.id == rule_id]
    found: list[Finding] = await rule.evaluate(ctx)
    return found
