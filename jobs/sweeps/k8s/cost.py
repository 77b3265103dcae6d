"""Kubernetes cost sweep: Deployments and StatefulSets whose running replicas use a small share
of the CPU they request, with what right-sizing those requests would save per month.

It never guesses: a container without a request, or without a usage sample, is left out, and
usage is one metrics.k8s.io sample taken at sweep time (not an average over days).

Savings formula (options in brackets, defaults after `=`):

    new_cpu(c) = max(2 * busiest replica's CPU use of container c, 50m), rounded up to 1m
    new_mem(c) = max(2 * busiest replica's memory use of container c, 64Mi), rounded up to 1Mi
    freed_vcpu = Σ over running replicas r, containers c of max(0, cpu_request(r,c) - new_cpu(c))
    freed_gib  = Σ over r, c of max(0, memory_request(r,c) - new_mem(c)) / 2^30
    $/month    = 730 * (freed_vcpu * vcpu_hour_usd + freed_gib * gib_hour_usd)
    (defaults $0.031611/vCPU-h and $0.004237/GiB-h: m6i.xlarge on-demand in us-east-1,
    $0.192/h, split into CPU and memory as Kubecost's default AWS rates do)

A request defaults to the container's limit when only the limit is set (as the API server
does). A workload is reported when Σ CPU use / Σ CPU requests < [k8s_idle_request_percent = 10]%
and the saving is at least one cent.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from daemon.models import Severity
from jobs.kubernetes.metrics import format_cpu, parse_quantity
from jobs.sweeps.base import Rule, RuleMeta, SweepContext
from jobs.sweeps.k8s.collect import dataset, pod_metrics
from jobs.sweeps.k8s.rule import CONTEXT
from jobs.sweeps.k8s.workloads import controller_uid, kubectl
from jobs.sweeps.rule import Hit, rule

if TYPE_CHECKING:
    from kubernetes.client import V1Container

    from jobs.kubernetes.api import PodUsage

HOURS_PER_MONTH = 730
HEADROOM = 2
CPU_FLOOR = Decimal("0.05")
MEMORY_FLOOR = Decimal(64 * 2**20)
_MILLI = Decimal("0.001")
_MI = Decimal(2**20)
_GIB = Decimal(2**30)


@dataclass(frozen=True)
class Prices:
    vcpu_hour: Decimal = Decimal("0.031611")
    gib_hour: Decimal = Decimal("0.004237")


@dataclass(frozen=True)
class Sample:
    """One container of one running replica: what it asks for and what it used at sweep time."""

    container: str
    cpu_request: Decimal
    """Cores."""
    memory_request: Decimal
    """Bytes; 0 when the container requests no memory."""
    cpu_used: Decimal
    memory_used: Decimal


@dataclass(frozen=True)
class RightSizing:
    replicas: int
    cpu_used: Decimal
    cpu_requested: Decimal
    new_requests: dict[str, dict[str, Decimal]]
    """Container -> {"cpu": cores, "memory": bytes}: only requests that go down (one the
    container does not set, or that is already at or below the proposal, is left alone)."""
    freed_vcpu: Decimal
    freed_gib: Decimal
    monthly_usd: Decimal

    @property
    def percent(self) -> float:
        return float(self.cpu_used / self.cpu_requested * 100)


def _round_up(value: Decimal, step: Decimal) -> Decimal:
    return Decimal(math.ceil(value / step)) * step


def right_size(samples: list[Sample], replicas: int, prices: Prices) -> RightSizing:
    """Pure: the module docstring's formula over the samples of one workload."""
    new: dict[str, dict[str, Decimal]] = {}
    for name in dict.fromkeys(s.container for s in samples):
        mine = [s for s in samples if s.container == name]
        cpu = _round_up(max(HEADROOM * max(s.cpu_used for s in mine), CPU_FLOOR), _MILLI)
        memory = _round_up(max(HEADROOM * max(s.memory_used for s in mine), MEMORY_FLOOR), _MI)
        new[name] = {}
        if cpu < max(s.cpu_request for s in mine):
            new[name]["cpu"] = cpu
        if memory < max(s.memory_request for s in mine):
            new[name]["memory"] = memory

    def freed(resource: str) -> Decimal:
        return sum(
            (
                max(Decimal(0), getattr(s, f"{resource}_request") - new[s.container][resource])
                for s in samples
                if resource in new[s.container]
            ),
            Decimal(0),
        )

    freed_cpu, freed_memory = freed("cpu"), freed("memory")
    freed_gib = freed_memory / _GIB
    monthly = HOURS_PER_MONTH * (freed_cpu * prices.vcpu_hour + freed_gib * prices.gib_hour)
    return RightSizing(
        replicas=replicas,
        cpu_used=sum((s.cpu_used for s in samples), Decimal(0)),
        cpu_requested=sum((s.cpu_request for s in samples), Decimal(0)),
        new_requests={name: requests for name, requests in new.items() if requests},
        freed_vcpu=freed_cpu,
        freed_gib=freed_gib,
        monthly_usd=monthly.quantize(Decimal("0.01")),
    )


def samples_of(containers: Iterable[V1Container], usage: PodUsage) -> list[Sample]:
    """Containers with a CPU request (or limit) and a usage sample; the rest are not judged."""
    used = {c.name: c.usage for c in usage.containers}
    found = []
    for container in containers:
        resources = container.resources
        requests = (resources.requests if resources else None) or {}
        limits = (resources.limits if resources else None) or {}
        cpu = _quantity(requests.get("cpu") or limits.get("cpu"))
        sample = used.get(container.name, {})
        cpu_used = _quantity(sample.get("cpu"))
        if not cpu or cpu_used is None:
            continue
        memory = _quantity(requests.get("memory") or limits.get("memory")) or Decimal(0)
        memory_used = _quantity(sample.get("memory")) or Decimal(0)
        found.append(Sample(container.name, cpu, memory, cpu_used, memory_used))
    return found


def _quantity(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return parse_quantity(text)
    except ValueError:
        return None


@rule(
    RuleMeta(
        id="k8s.workload.idle",
        title="Idle workload: CPU requests far above use",
        kind="cost",
        severity=Severity.LOW,
        risk="Requested CPU and memory are reserved on nodes whether used or not: idle "
        "requests keep nodes (and their bill) that the cluster does not need.",
        remediation="Lower the requests towards observed use (check a week of metrics "
        "first), scale replicas down, or let a VerticalPodAutoscaler recommend requests.",
        service="k8s:pods",
    ),
    CONTEXT,
)
async def idle_workloads(ctx: SweepContext, context: str) -> list[Hit]:
    threshold = float(ctx.options.get("k8s_idle_request_percent", 10))
    prices = Prices(
        Decimal(str(ctx.options.get("vcpu_hour_usd", Prices.vcpu_hour))),
        Decimal(str(ctx.options.get("gib_hour_usd", Prices.gib_hour))),
    )
    return [
        _idle(context, kind, obj, sizing, threshold, prices)
        for kind, obj, sizing in await _sized(ctx, context, prices)
        if sizing.percent < threshold and sizing.monthly_usd >= Decimal("0.01")
    ]


async def _sized(
    ctx: SweepContext, context: str, prices: Prices
) -> list[tuple[str, Any, RightSizing]]:
    """Each Deployment and StatefulSet with sampled running replicas, right-sized."""
    kinds = ("deployments", "statefulsets", "replicasets", "pods")
    deploys, stss, rss, pods = await asyncio.gather(*(dataset(ctx, context, k) for k in kinds))
    usage = {(u.metadata.namespace, u.metadata.name): u for u in await pod_metrics(ctx, context)}
    rs_owner = {rs.metadata.uid: controller_uid(rs.metadata) for rs in rss if rs.metadata}
    samples: dict[str, list[Sample]] = {}
    replicas: dict[str, int] = {}
    for pod in pods:
        if pod.status is None or pod.status.phase != "Running" or pod.spec is None:
            continue
        owner = controller_uid(pod.metadata)
        owner = rs_owner.get(owner, owner)
        sample = usage.get((pod.metadata.namespace, pod.metadata.name))
        if owner is None or sample is None:
            continue
        if found := samples_of(pod.spec.containers, sample):
            samples.setdefault(owner, []).extend(found)
            replicas[owner] = replicas.get(owner, 0) + 1
    sized = []
    for kind, objs in (("Deployment", deploys), ("StatefulSet", stss)):
        for obj in objs:
            uid = obj.metadata.uid if obj.metadata else None
            if uid in samples:
                sized.append((kind, obj, right_size(samples[uid], replicas[uid], prices)))
    return sized


def _idle(
    context: str, kind: str, obj: Any, sizing: RightSizing, threshold: float, prices: Prices
) -> Hit:
    namespace, name = obj.metadata.namespace or "", obj.metadata.name or ""
    n = sizing.replicas
    running = f"{n} replica{'s' if n != 1 else ''} running"
    percent = f"{sizing.percent:.0f}%"
    new = "; ".join(f"{c} {_requests(r)}" for c, r in sizing.new_requests.items())
    cpu, gib = f"{sizing.freed_vcpu:.3f} vCPU", f"{sizing.freed_gib:.3f} GiB"
    evidence = (
        f"{kind} {namespace}/{name} used {format_cpu(sizing.cpu_used)} of "
        f"{format_cpu(sizing.cpu_requested)} requested CPU ({percent}, under {threshold:g}%) "
        f"with {running}, at sweep time (one metrics.k8s.io sample, not an average over "
        f"days). Requesting 2x current usage (floor 50m CPU, 64Mi memory: {new}) frees "
        f"{cpu} and {gib}: ({cpu} x ${prices.vcpu_hour}/vCPU-h + {gib} x "
        f"${prices.gib_hour}/GiB-h) x {HOURS_PER_MONTH} h = ${sizing.monthly_usd}/mo "
        "(prices: options vcpu_hour_usd, gib_hour_usd)"
    )
    cli = " && ".join(
        kubectl(
            context,
            namespace,
            f"set resources {kind.lower()} {name} -c {c} --requests={_requests(r)}",
        )
        for c, r in sizing.new_requests.items()
    )
    return Hit(
        f"{namespace}/{kind}/{name}",
        evidence,
        command=cli,
        location=f"{context}/{namespace}",
        savings=float(sizing.monthly_usd),
        title=f"Idle {name} averaging {percent} CPU, {running} — save ${sizing.monthly_usd:.0f}/mo",
    )


def _requests(requests: dict[str, Decimal]) -> str:
    """`cpu=60m,memory=400Mi`, as `kubectl set resources --requests` takes them."""
    return ",".join(
        f"{key}={format_cpu(value) if key == 'cpu' else f'{math.ceil(value / _MI)}Mi'}"
        for key, value in requests.items()
    )


RULES: list[Rule] = [idle_workloads]
