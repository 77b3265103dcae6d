"""The frame of the AWS sweep rules: a rule is metadata plus a judgement that turns datasets
into `Hit`s, judged once per region in scope (or once per account); this makes them Findings.

Judgements never call AWS (they ask `_aws_collect`) and never read the wall clock (`ctx.now`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from daemon.models import Finding, Severity
from jobs.sweeps.aws.collect import GLOBAL, caller_identity, regions
from jobs.sweeps.base import RuleMeta, SweepContext


@dataclass(frozen=True)
class Hit:
    """One offending resource, as a rule's judgement sees it."""

    resource: str
    evidence: str
    cli: dict[str, str] = field(default_factory=dict)
    """Values for the placeholders of `RuleMeta.remediation_cli` (`{region}` is given)."""
    severity: Severity | None = None
    """When the rule raises or lowers its default; the evidence says why."""
    location: str | None = None
    """Default: the region judged (regional rules) or "global"."""


Judge = Callable[[SweepContext, str], Awaitable[list[Hit]]]


@dataclass
class AwsRule:
    """A rule judged once per region in scope, or once per account (`regional=False`)."""

    meta: RuleMeta
    judge: Judge
    regional: bool = True

    async def evaluate(self, ctx: SweepContext) -> list[Finding]:
        account = (await caller_identity(ctx))["Account"]
        places = await regions(ctx)
        if not self.regional:
            places = places[:1]  # global services answer from any region: ask the first
        judged = await asyncio.gather(*(self.judge(ctx, region) for region in places))
        return [
            self._finding(hit, region, account)
            for region, hits in zip(places, judged, strict=True)
            for hit in hits
        ]

    def _finding(self, hit: Hit, region: str, account: str) -> Finding:
        meta = self.meta
        cli = meta.remediation_cli
        return Finding(
            rule=meta.id,
            kind=meta.kind,
            severity=hit.severity or meta.severity,
            title=meta.title,
            resource=hit.resource,
            location=hit.location or (region if self.regional else GLOBAL),
            evidence=hit.evidence,
            remediation=meta.remediation,
            remediation_cli=cli.format(region=region, **hit.cli) if cli else None,
            account=account,
        )


def rule(meta: RuleMeta, *, regional: bool = True) -> Callable[[Judge], AwsRule]:
    """Decorator: the judgement below becomes the rule described by `meta`."""
    return lambda judge: AwsRule(meta, judge, regional)


SERVICES = {"sg": "aws:ec2", "ebs": "aws:ec2"}


def security_meta(id: str, title: str, severity: Severity, **text: str) -> RuleMeta:
    """A security rule's metadata; its service (`aws:rds`) follows from the id."""
    family = id.split(".")[1]
    return RuleMeta(
        id, title, "security", severity, service=SERVICES.get(family, f"aws:{family}"), **text
    )
