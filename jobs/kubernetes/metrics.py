"""CPU and memory usage (metrics.k8s.io) against each container's requests or limits.

Pure functions: Kubernetes quantities are parsed here (Decimal, no float rounding surprises),
and a container without the request/limit to compare against is skipped, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Literal

from jobs.kubernetes.rules import Finding, subject

if TYPE_CHECKING:
    from kubernetes.client import V1Pod, V1ResourceRequirements

    from jobs.kubernetes.api import PodUsage

Against = Literal["requests", "limits"]

_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUFFIX = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def parse_quantity(text: str) -> Decimal:
    """`"250m"` → 0.25, `"1Gi"` → 1073741824, `"1e3"` → 1000. ValueError if malformed."""
    match = _QUANTITY.match(text.strip())
    if match is None or match.group(2) not in _SUFFIX:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2)]
    except InvalidOperation as exc:
        raise ValueError(f"{text!r} is not a Kubernetes quantity") from exc


def format_cpu(cores: Decimal) -> str:
    """Millicores, as kubectl top shows them: `912m`."""
    return f"{round(cores * 1000)}m"


def format_memory(size: Decimal) -> str:
    """`300Mi`, `1.5Gi`: binary units, at most one decimal."""
    for unit, factor in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size >= factor:
            value = size / factor
            shown = f"{value:.1f}".removesuffix(".0")
            return f"{shown}{unit}"
    return f"{size:f}".rstrip("0").rstrip(".") + "B"


@dataclass(frozen=True)
class Thresholds:
    cpu_percent: float | None
    memory_percent: float | None
    against: Against


@dataclass
class UsageReport:
    findings: list[Finding]
    compared: int
    """Containers with a usage sample and a request/limit to compare it with."""
    skipped: int
    """Containers with a usage sample but no request/limit for a configured threshold."""


def judge_usage(
    pods: Iterable[V1Pod], usage: Iterable[PodUsage], thresholds: Thresholds
) -> UsageReport:
    declared: dict[tuple[str, str], dict[str, V1ResourceRequirements | None]] = {}
    for pod in pods:
        if pod.metadata is not None and pod.spec is not None:
            key = (pod.metadata.namespace or "", pod.metadata.name or "")
            declared[key] = {c.name: c.resources for c in pod.spec.containers}
    report = UsageReport([], 0, 0)
    for sample in usage:
        containers = declared.get((sample.metadata.namespace, sample.metadata.name))
        if containers is None:
            continue  # the pod is gone, or outside the label selector
        for container in sample.containers:
            where = _Where(sample.metadata.namespace, sample.metadata.name, container.name)
            resources = containers.get(container.name)
            bounds = getattr(resources, thresholds.against, None) or {}
            findings, compared = _judge_container(where, container.usage, bounds, thresholds)
            report.findings += findings
            if compared:
                report.compared += 1
            else:
                report.skipped += 1
    return report


@dataclass(frozen=True)
class _Where:
    namespace: str
    pod: str
    container: str


def _judge_container(
    where: _Where, used: dict[str, str], bounds: dict[str, str], thresholds: Thresholds
) -> tuple[list[Finding], bool]:
    """Findings for one container, and whether any resource could be compared at all."""
    findings: list[Finding] = []
    compared = False
    for resource, limit in (("cpu", thresholds.cpu_percent), ("memory", thresholds.memory_percent)):
        pair = _quantities(used.get(resource), bounds.get(resource))
        if limit is None or pair is None:
            continue
        compared = True
        percent = float(pair[0] / pair[1] * 100)
        if percent > limit:
            findings.append(_high(where, resource, *pair, percent, limit, thresholds.against))
    return findings, compared


def _quantities(used: str | None, bound: str | None) -> tuple[Decimal, Decimal] | None:
    if used is None or bound is None:
        return None
    try:
        pair = parse_quantity(used), parse_quantity(bound)
    except ValueError:
        return None
    return pair if pair[1] > 0 else None


def _high(
    where: _Where,
    resource: str,
    used: Decimal,
    bound: Decimal,
    percent: float,
    limit: float,
    against: Against,
) -> Finding:
    show = format_cpu if resource == "cpu" else format_memory
    noun = "CPU" if resource == "cpu" else "memory"
    what = "request" if against == "requests" else "limit"
    return Finding(
        "degraded",
        "pod",
        where.namespace,
        where.pod,
        "HighCPU" if resource == "cpu" else "HighMemory",
        f"{subject('pod', where.namespace, where.pod)} container {where.container} uses "
        f"{show(used)} {noun} = {percent:.0f}% of its {show(bound)} {what} "
        f"(threshold {limit:g}%)",
        where.container,
        {f"{resource}_percent": round(percent, 1), f"{resource}_used": show(used)},
    )
