"""The network rules of jobs.sweeps.k8s.network against the fake Kubernetes API: namespaces
without a NetworkPolicy, and node ports on nodes with a public address."""

from __future__ import annotations

import json
import shlex

import pytest

from daemon.models import Finding, Severity
from jobs.sweeps.base import CollectError, KubernetesScope, SweepContext
from jobs.sweeps.k8s.network import RULES
from tests.jobs.sweeps.k8s.conftest import run_rule
from tests.peers.kubernetes import (
    FakeCluster,
    healthy_pod,
    namespace,
    network_policy,
    node,
    node_port_service,
    service,
    with_addresses,
)


async def evaluate(ctx: SweepContext, rule_id: str) -> list[Finding]:
    return await run_rule(RULES, ctx, rule_id)


@pytest.fixture
def everywhere(sweep: SweepContext) -> SweepContext:
    """The sweep over all namespaces (the fixture's scope names only prod)."""
    scope = sweep.kubernetes or KubernetesScope()
    sweep.kubernetes = KubernetesScope(kubeconfig=scope.kubeconfig)
    return sweep


# --- NetworkPolicy ------------------------------------------------------------------------------


async def test_a_namespace_without_network_policy_is_reported(
    cluster: FakeCluster, everywhere: SweepContext
) -> None:
    cluster.add(
        *(namespace(n) for n in ("prod", "shop", "kube-system", "kube-public", "sandbox")),
        network_policy("default-deny", "shop"),
        healthy_pod("checkout-1", "prod"),
        healthy_pod("checkout-2", "prod"),
        healthy_pod("coredns-1", "kube-system"),
    )
    found = {f.resource: f for f in await evaluate(everywhere, "k8s.namespace.no_network_policy")}
    assert sorted(found) == ["Namespace/prod", "Namespace/sandbox"]
    prod = found["Namespace/prod"]
    assert prod.severity == Severity.MEDIUM
    assert prod.location == "fake/prod"
    assert prod.evidence == (
        "namespace prod has no NetworkPolicy: its 2 pods accept connections from every pod in "
        "the cluster"
    )
    command = prod.remediation_cli or ""
    assert command.endswith(" | kubectl --context fake -n prod apply -f -")
    manifest = json.loads(shlex.split(command)[1])  # what `echo` pipes into kubectl
    assert manifest["kind"] == "NetworkPolicy"
    assert manifest["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    sandbox = found["Namespace/sandbox"]
    assert sandbox.severity == Severity.LOW
    assert "no pods run there yet" in sandbox.evidence


async def test_exempt_namespaces_are_an_option_and_the_scope_limits_the_namespaces(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(namespace("prod"), namespace("sandbox"), network_policy("web", "sandbox"))
    sweep.options["k8s_netpol_exempt_namespaces"] = ["prod"]
    assert await evaluate(sweep, "k8s.namespace.no_network_policy") == []
    sweep.options["k8s_netpol_exempt_namespaces"] = []
    (found,) = await evaluate(sweep, "k8s.namespace.no_network_policy")
    assert found.resource == "Namespace/prod"  # sandbox is outside the scope (prod only)


async def test_a_namespace_with_a_policy_passes(cluster: FakeCluster, sweep: SweepContext) -> None:
    cluster.add(namespace("prod"), network_policy("allow-web", "prod", pod_selector={"app": "web"}))
    assert await evaluate(sweep, "k8s.namespace.no_network_policy") == []


# --- node ports ---------------------------------------------------------------------------------


def nodes(*external: str | None) -> list[dict[str, object]]:
    return [
        with_addresses(node(f"ip-10-0-1-{i}"), internal=f"10.0.1.{i}", external=ip)
        for i, ip in enumerate(external, 5)
    ]


async def test_node_port_on_public_nodes_names_the_nodes_and_ports(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(
        *nodes("52.18.41.10", None, "10.20.0.7"),  # an ExternalIP need not be public
        node_port_service("web", ports=[(443, 30443), (80, 30080)]),
        service("internal"),
    )
    (found,) = await evaluate(sweep, "k8s.service.nodeport_public")
    assert found.severity == Severity.MEDIUM
    assert found.resource == "prod/Service/web"
    assert found.evidence == (
        "Service prod/web is type NodePort: node ports 30443/TCP (port 443), 30080/TCP "
        "(port 80) listen on every node, and 1 of 3 nodes has a public address: ip-10-0-1-5 "
        "(52.18.41.10); reachable from the internet unless the nodes' firewall closes "
        "30000-32767"
    )
    assert found.remediation_cli == (
        """kubectl --context fake -n prod patch service web -p '{"spec":{"type":"ClusterIP"}}'"""
        "  # after exposing it through a LoadBalancer or an Ingress"
    )


async def test_load_balancer_node_ports_are_a_low_side_door(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(
        *nodes("54.170.12.34", "2001:db8::1", "2a05:d018:1::7"),
        node_port_service("shop", type_="LoadBalancer", ports=[(443, 31443)]),
    )
    (found,) = await evaluate(sweep, "k8s.service.nodeport_public")
    assert found.severity == Severity.LOW
    assert (
        "2 of 3 nodes have a public address: ip-10-0-1-5 (54.170.12.34), ip-10-0-1-7 "
        "(2a05:d018:1::7) — low" in found.evidence
    )  # 2001:db8::/32 is the documentation range: not routable, so not public
    assert "side door around the load balancer" in found.evidence
    assert found.remediation_cli is None


async def test_node_ports_on_private_nodes_pass(cluster: FakeCluster, sweep: SweepContext) -> None:
    cluster.add(*nodes(None, "10.20.0.7", "203.0.113.9"), node_port_service("web"))
    assert await evaluate(sweep, "k8s.service.nodeport_public") == []


async def test_a_forbidden_node_list_asks_for_the_grant_not_a_check_option(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    """The `kubernetes` check can skip its node list (`nodes = false`); a sweep cannot, so its
    403 names the grant alone — advice the sweep's config could not follow is no advice."""
    cluster.forbid("nodes")
    with pytest.raises(CollectError) as caught:
        await evaluate(sweep, "k8s.service.nodeport_public")
    message = str(caught.value)
    assert "cannot list nodes" in message
    assert message.endswith("grant list on nodes with a ClusterRole and ClusterRoleBinding")
