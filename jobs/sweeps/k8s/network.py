"""Kubernetes network sweep: namespaces no NetworkPolicy isolates (CIS Kubernetes 5.3.2), and
Services whose node ports listen on nodes with a public address.

What this cannot see, and says so: the cloud firewall in front of the nodes (a security group
may close 30000-32767), and policy engines' own resources (CiliumNetworkPolicy, Calico's
GlobalNetworkPolicy), which can isolate a namespace without a NetworkPolicy object.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import shlex
from collections import Counter
from typing import Any

from daemon.models import Severity
from jobs.sweeps.base import KubernetesScope, Rule, SweepContext
from jobs.sweeps.k8s.collect import cluster_dataset, dataset
from jobs.sweeps.k8s.rule import CONTEXT, security_meta
from jobs.sweeps.k8s.workloads import kubectl
from jobs.sweeps.rule import Hit, rule

EXEMPT_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
"""Default of the sweep option `k8s_netpol_exempt_namespaces`: the control plane's own."""
POLICIES = "https://kubernetes.io/docs/concepts/services-networking/network-policies/"
SERVICES = "https://kubernetes.io/docs/concepts/services-networking/service/#type-nodeport"

_DENY_INGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "default-deny-ingress"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
}


@rule(
    security_meta(
        "k8s.namespace.no_network_policy",
        "Namespace without a NetworkPolicy",
        Severity.MEDIUM,
        "Without a NetworkPolicy every pod accepts connections from every other pod in the "
        "cluster: one compromised pod can reach every database and internal API.",
        "Apply a default-deny ingress NetworkPolicy in the namespace, then allow what each "
        "application needs (needs a CNI that enforces policies: Calico, Cilium, the cloud's).",
        "k8s:networkpolicies",
        reference=POLICIES,
        controls=("cis-k8s:5.3.2", "soc2:CC6.6"),
    ),
    CONTEXT,
)
async def no_network_policy(ctx: SweepContext, context: str) -> list[Hit]:
    """Namespaces in scope with no NetworkPolicy at all; those in the option
    `k8s_netpol_exempt_namespaces` (default: kube-system, kube-public, kube-node-lease) are
    skipped, terminating ones too. Low when no pod runs there yet."""
    exempt = set(ctx.options.get("k8s_netpol_exempt_namespaces", EXEMPT_NAMESPACES))
    wanted = (ctx.kubernetes or KubernetesScope()).namespaces
    namespaces, policies, pods = await asyncio.gather(
        cluster_dataset(ctx, context, "namespaces"),
        dataset(ctx, context, "networkpolicies"),
        dataset(ctx, context, "pods"),
    )
    covered = {p.metadata.namespace for p in policies if p.metadata is not None}
    running = Counter(p.metadata.namespace for p in pods if p.metadata is not None)
    hits = []
    for ns in namespaces:
        name: str = ns.metadata.name if ns.metadata else ""
        if name in exempt or name in covered or (wanted and name not in wanted):
            continue
        if ns.status is not None and ns.status.phase == "Terminating":
            continue
        hits.append(_unisolated(context, name, running[name]))
    return hits


def _unisolated(context: str, namespace: str, pods: int) -> Hit:
    if pods:
        them = "its pod accepts" if pods == 1 else f"its {pods} pods accept"
        evidence = (
            f"namespace {namespace} has no NetworkPolicy: {them} connections from every pod "
            "in the cluster"
        )
        severity = None
    else:
        evidence = (
            f"namespace {namespace} has no NetworkPolicy (no pods run there yet — low: any "
            "pod deployed there will accept connections from every pod in the cluster)"
        )
        severity = Severity.LOW
    manifest = shlex.quote(json.dumps(_DENY_INGRESS, separators=(",", ":")))
    command = f"echo {manifest} | " + kubectl(context, shlex.quote(namespace), "apply -f -")
    return Hit(
        f"Namespace/{namespace}",
        evidence,
        command=command,
        severity=severity,
        location=f"{context}/{namespace}",
    )


# --- node ports on public nodes -----------------------------------------------------------------


@rule(
    security_meta(
        "k8s.service.nodeport_public",
        "Service node port on nodes with a public address",
        Severity.MEDIUM,
        "A node port listens on every node's every address: where nodes have public "
        "addresses the Service is one firewall rule away from the internet, without the "
        "load balancer's or an Ingress's TLS, authentication and source ranges.",
        "Expose Services through a LoadBalancer or an Ingress and make them ClusterIP; run "
        "nodes in private subnets without public addresses, or close 30000-32767 to the "
        "internet in the nodes' firewall (security group).",
        "k8s:services",
        reference=SERVICES,
        controls=("soc2:CC6.6", "hipaa:164.312(a)(1)"),
    ),
    CONTEXT,
)
async def nodeport_public(ctx: SweepContext, context: str) -> list[Hit]:
    """Services of type NodePort (medium) — and of type LoadBalancer with node ports (low:
    the load balancer is the intended way in, the node port a side door) — while at least one
    node reports a globally routable ExternalIP. The nodes' firewall is not visible here."""
    nodes, services = await asyncio.gather(
        cluster_dataset(ctx, context, "nodes"), dataset(ctx, context, "services")
    )
    public = [(n.metadata.name, ips) for n in nodes if (ips := public_addresses(n))]
    if not public:
        return []
    hits = []
    for svc in services:
        spec = svc.spec
        if spec is None or svc.metadata is None or spec.type not in ("NodePort", "LoadBalancer"):
            continue
        ports = [p for p in spec.ports or [] if p.node_port]
        if ports:
            hits.append(_exposed(context, svc, ports, public, len(nodes)))
    return hits


def public_addresses(node: Any) -> list[str]:
    """The node's ExternalIP addresses that are globally routable (an ExternalIP need not be:
    the API only says it is 'more usable from outside the cluster' than an InternalIP)."""
    found = []
    for address in (node.status.addresses if node.status else None) or []:
        if address.type != "ExternalIP":
            continue
        try:
            ip = ipaddress.ip_address(address.address)
        except ValueError:
            continue
        if ip.is_global:
            found.append(address.address)
    return found


def _exposed(
    context: str, svc: Any, ports: list[Any], public: list[tuple[str, list[str]]], total: int
) -> Hit:
    namespace, name = svc.metadata.namespace or "", svc.metadata.name or ""
    listed = ", ".join(f"{p.node_port}/{p.protocol or 'TCP'} (port {p.port})" for p in ports)
    nodes = ", ".join(f"{node} ({', '.join(ips)})" for node, ips in public)
    noun = "node port" if len(ports) == 1 else "node ports"
    head = f"Service {namespace}/{name} is type {svc.spec.type}: {noun} {listed} listen"
    where = (
        f"on every node, and {len(public)} of {total} node{'s' if total > 1 else ''} "
        f"{'has' if len(public) == 1 else 'have'} a public address: {nodes}"
    )
    firewall = "reachable from the internet unless the nodes' firewall closes 30000-32767"
    if svc.spec.type == "LoadBalancer":
        evidence = (
            f"{head} {where} — low: a side door around the load balancer (and its "
            f"loadBalancerSourceRanges), {firewall}"
        )
        return Hit(
            f"{namespace}/Service/{name}",
            evidence,
            severity=Severity.LOW,
            location=f"{context}/{namespace}",
        )
    patch = shlex.quote(json.dumps({"spec": {"type": "ClusterIP"}}, separators=(",", ":")))
    command = kubectl(
        context, shlex.quote(namespace), f"patch service {shlex.quote(name)} -p {patch}"
    )
    return Hit(
        f"{namespace}/Service/{name}",
        f"{head} {where}; {firewall}",
        command=command + "  # after exposing it through a LoadBalancer or an Ingress",
        location=f"{context}/{namespace}",
    )


RULES: list[Rule] = [no_network_policy, nodeport_public]
