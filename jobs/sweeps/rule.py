"""The one way a sweep rule is written: `@rule(meta, FRAME)` over ~20 lines of judgement that
turn datasets into `Hit`s, judged once per place of its frame (region, account, cluster context).

Judgements never call an API (they ask the cloud's collector for datasets) and never read the
wall clock (`ctx.now`); this module turns their hits into Findings and knows no cloud.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from daemon.models import Finding, Severity
from jobs.sweeps.base import RuleMeta, SweepContext


@dataclass(frozen=True)
class Hit:
    """One offending resource, as a judgement sees it."""

    resource: str
    evidence: str
    fill: Mapping[str, str] = field(default_factory=dict)
    """Values for the placeholders of `RuleMeta.remediation_cli` (the frame gives its place)."""
    command: str | None = None
    """A command the judgement built itself, for when no template in the metadata can say it."""
    severity: Severity | None = None
    """When the rule raises or lowers its default; the evidence says why."""
    location: str | None = None
    """Default: what the frame says of the place judged."""
    savings: float | None = None
    """Estimated USD per month that fixing it saves (cost rules); None: unknown or not a saving."""
    title: str | None = None
    """When this finding's title says more than the rule's."""


@dataclass(frozen=True)
class Scope:
    """What every rule judged in a frame needs before it can judge anything: credentials that
    work, an API that answers. The runner checks each scope once per sweep, before any rule;
    when the check fails its rules do not run and the sweep reports the failure once, not once
    per rule."""

    name: str
    """How reports name it, e.g. `AWS`."""
    check: Callable[[SweepContext], Awaitable[None]]
    """Raises CollectError saying what is missing and what to do."""


@dataclass(frozen=True)
class Frame:
    """Where a rule judges: each place in turn, and what its findings say about where they are."""

    key: str
    """The place's placeholder in remediation_cli templates, e.g. `region`."""
    places: Callable[[SweepContext], Awaitable[Sequence[str]]]
    location: Callable[[str], str]
    """A hit's default location, from the place it was judged in."""
    account: Callable[[SweepContext], Awaitable[str | None]]
    """The account findings belong to; asked only when there are findings."""
    scope: Scope | None = None
    """Checked once per sweep before any rule of this frame runs; None: nothing to check."""


Judge = Callable[[SweepContext, str], Awaitable[list[Hit]]]
Severities = Callable[[RuleMeta, Hit], Severity]


def declared(meta: RuleMeta, hit: Hit) -> Severity:
    """The hit's own severity, else the rule's default."""
    return hit.severity or meta.severity


def savings_severity(monthly_usd: float | None) -> Severity:
    """Low by default; medium from $100/mo, high from $1,000/mo saved."""
    if monthly_usd is not None and monthly_usd >= 1000:
        return Severity.HIGH
    if monthly_usd is not None and monthly_usd >= 100:
        return Severity.MEDIUM
    return Severity.LOW


def by_savings(meta: RuleMeta, hit: Hit) -> Severity:
    """The hit's own severity, else what fixing it saves decides (`savings_severity`)."""
    return hit.severity or savings_severity(hit.savings)


@dataclass
class SweepRule:
    """A rule: its metadata, its judgement, where it judges and how a hit's severity is set."""

    meta: RuleMeta
    judge: Judge
    frame: Frame
    severity: Severities = declared

    async def evaluate(self, ctx: SweepContext) -> list[Finding]:
        places = list(await self.frame.places(ctx))
        judged = await asyncio.gather(
            *(self.judge(ctx, place) for place in places), return_exceptions=True
        )
        hits: list[tuple[str, Hit]] = []
        for place, outcome in zip(places, judged, strict=True):
            if isinstance(outcome, BaseException):  # the first place in order, not in time
                raise outcome
            hits += [(place, hit) for hit in outcome]
        account = await self.frame.account(ctx) if hits else None
        return [self.finding(hit, place, account) for place, hit in hits]

    def finding(self, hit: Hit, place: str, account: str | None) -> Finding:
        meta, template = self.meta, self.meta.remediation_cli
        cli = hit.command
        if cli is None and template is not None:
            cli = template.format_map({self.frame.key: place, **hit.fill})
        return Finding(
            rule=meta.id,
            kind=meta.kind,
            severity=self.severity(meta, hit),
            title=hit.title or meta.title,
            resource=hit.resource,
            location=hit.location or self.frame.location(place),
            evidence=hit.evidence,
            remediation=meta.remediation,
            remediation_cli=cli,
            est_monthly_savings_usd=None if hit.savings is None else round(hit.savings, 2),
            account=account,
        )


def rule(
    meta: RuleMeta, frame: Frame, *, severity: Severities = declared
) -> Callable[[Judge], SweepRule]:
    """Decorator: the judgement below becomes the rule `meta` describes, judged per `frame`."""
    return lambda judge: SweepRule(meta, judge, frame, severity)
