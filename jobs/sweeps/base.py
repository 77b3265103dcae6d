"""The contract of a sweep rule: metadata beside ~20 lines of judgement over data collected
once per sweep.

A rule never calls an API itself: it asks the `SweepContext` for a dataset by key, and the
context fetches each dataset once per sweep (every rule that needs security groups shares one
DescribeSecurityGroups). A dataset that cannot be fetched (access denied, service not enabled)
raises `CollectError` naming the denied action; the sweep records it for the rules that needed
it and carries on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from daemon.models import Finding, Severity, SweepKind
from jobs.base import CheckContext


class CollectError(Exception):
    """A dataset could not be collected. The message names what was denied or missing."""


@dataclass(frozen=True)
class RuleMeta:
    id: str
    title: str
    kind: SweepKind
    severity: Severity
    """The default; a rule may raise or lower it per finding (and says why in the evidence)."""
    risk: str
    remediation: str
    remediation_cli: str | None = None
    service: str = ""
    """What it looks at, e.g. `aws:ec2`, `k8s:pods` — rules are skipped when out of scope."""
    reference: str | None = None
    """The vendor's documentation of the risk and its fix (the SARIF rule's `helpUri`)."""
    controls: tuple[str, ...] = ()
    """The compliance controls a finding of this rule evidences, as `framework:control`
    (`cis-aws:5.2`, `soc2:CC6.6`, `hipaa:164.312(a)(1)`; see jobs.sweeps.compliance)."""


@dataclass(frozen=True)
class AwsScope:
    profile: str | None = None
    regions: tuple[str, ...] = ()


@dataclass(frozen=True)
class KubernetesScope:
    kubeconfig: str | None = None
    contexts: tuple[str, ...] = ()
    """Empty: the kubeconfig's current context."""
    namespaces: tuple[str, ...] = ()
    """Empty: all namespaces."""


@dataclass
class SweepContext:
    """What rules may use during one sweep. Built by daemon.sweeps.runner; tests build their own."""

    check: CheckContext
    """Shared clients (ctx.clients caches boto3/kubernetes clients) and the clock."""
    now: datetime
    aws: AwsScope | None = None
    kubernetes: KubernetesScope | None = None
    options: dict[str, Any] = field(default_factory=dict)
    """Per-sweep settings rules read: thresholds, price overrides (see each rule's docs)."""
    timeout_s: float = 60.0
    _data: dict[str, Any] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def collect(self, key: str, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """The dataset `key` (e.g. "aws:eu-west-1:ec2:security_groups"), fetched once per
        sweep; a CollectError is remembered and re-raised for every rule that asks."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._data:
                try:
                    self._data[key] = await fetch()
                except CollectError as exc:
                    self._data[key] = exc
        value = self._data[key]
        if isinstance(value, CollectError):
            raise value
        return value


class Rule(Protocol):
    meta: RuleMeta

    async def evaluate(self, ctx: SweepContext) -> list[Finding]: ...
