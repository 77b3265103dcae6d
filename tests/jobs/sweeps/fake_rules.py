"""Small sweep rules for framework tests: each way a real rule can behave, no cloud needed.

`use(monkeypatch, *rules)` points `jobs.sweeps.RULE_MODULES` (both kinds) at this module and
sets `RULES`, so `jobs.sweeps.rules(kind)` returns exactly these rules.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

import jobs.sweeps
from daemon.models import Finding, Severity, SweepKind
from jobs.sweeps.base import CollectError, RuleMeta, SweepContext

RULES: list[Any] = []


def use(monkeypatch: pytest.MonkeyPatch, *rules: Any) -> None:
    here = (__name__,)
    monkeypatch.setattr(jobs.sweeps, "RULE_MODULES", {"security": here, "cost": here})
    monkeypatch.setattr(sys.modules[__name__], "RULES", list(rules))


def meta(
    rule_id: str,
    *,
    kind: SweepKind = "security",
    severity: Severity = Severity.HIGH,
    service: str = "aws:ec2",
) -> RuleMeta:
    return RuleMeta(
        id=rule_id,
        title=f"{rule_id} title",
        kind=kind,
        severity=severity,
        risk=f"{rule_id} risk",
        remediation=f"fix {rule_id}",
        remediation_cli=f"fixit {rule_id}",
        service=service,
    )


def finding(
    rule: str,
    resource: str,
    *,
    severity: Severity = Severity.HIGH,
    kind: SweepKind = "security",
    savings: float | None = None,
    evidence: str | None = None,
) -> Finding:
    return Finding(
        rule=rule,
        kind=kind,
        severity=severity,
        title=f"{rule} on {resource}",
        resource=resource,
        location="eu-west-1",
        evidence=evidence or f"{resource} is exposed",
        remediation=f"fix {rule}",
        est_monthly_savings_usd=savings,
    )


@dataclass
class FakeRule:
    """Returns `findings` (a list, or one list per call in turn), or raises `error`."""

    meta: RuleMeta
    findings: list[Finding] = field(default_factory=list)
    error: BaseException | None = None
    calls: int = 0

    async def evaluate(self, ctx: SweepContext) -> list[Finding]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return list(self.findings)


@dataclass
class SharedDataRule:
    """Asks the context for one dataset; several such rules must share one fetch."""

    meta: RuleMeta
    fetches: list[str]
    denied: bool = False

    async def evaluate(self, ctx: SweepContext) -> list[Finding]:
        async def fetch() -> list[str]:
            self.fetches.append(self.meta.id)
            await asyncio.sleep(0)
            if self.denied:
                raise CollectError("AccessDenied on ec2:DescribeSecurityGroups")
            return ["sg-1"]

        groups = await ctx.collect("aws:eu-west-1:ec2:security_groups", fetch)
        arn = "arn:aws:ec2:eu-west-1:1:security-group/"
        return [finding(self.meta.id, arn + g) for g in groups]


@dataclass
class HangingRule:
    """Never finishes on its own: only the sweep's timeout ends it."""

    meta: RuleMeta

    async def evaluate(self, ctx: SweepContext) -> list[Finding]:
        await asyncio.Event().wait()
        return []


@dataclass
class OptionsRule:
    """Records what the sweep handed its rules."""

    meta: RuleMeta
    seen: list[SweepContext] = field(default_factory=list)

    async def evaluate(self, ctx: SweepContext) -> list[Finding]:
        self.seen.append(ctx)
        return []
