"""Run one nightly sweep: evaluate its rules, compare with the last run, write the reports,
summarise what changed and queue one message about it.

A failing rule is recorded and the sweep carries on; a finding whose rule failed is never
reported as resolved; a model only adds a labelled summary, it never drops a finding.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

import structlog

from daemon.config.sweeps import SweepConfig
from daemon.logging import redact
from daemon.models import Finding, Message, format_duration
from daemon.notify.routing import route_message
from daemon.store import Store
from daemon.store.database import store_io
from daemon.store.sweeps import SweepRunRecord, SweepStatus
from daemon.sweeps.diff import Changes, changes, dedupe, track
from daemon.sweeps.files import stamp, write_reports
from daemon.sweeps.reports import current, notification
from daemon.sweeps.scopes import ScopeFailure, check_scopes
from daemon.sweeps.summary import cost_lines, summarise
from jobs.base import CheckContext
from jobs.sweeps.base import AwsScope, CollectError, KubernetesScope, RuleMeta, SweepContext

if TYPE_CHECKING:
    from daemon.ai.runner import AI, AIResult
    from daemon.config.settings import Settings
    from jobs.sweeps.base import Rule

log = structlog.get_logger(__name__)

MAX_RULES_AT_ONCE = 8


class SweepError(Exception):
    """The sweep could not run at all: its rules cannot be loaded, or none applies."""


@dataclass(frozen=True)
class RuleOutcome:
    meta: RuleMeta
    findings: list[Finding]
    error: str | None = None


Progress = Callable[[RuleOutcome, int, int], None]
"""Called as each rule finishes: (outcome, rules done, rules in all)."""


@dataclass(frozen=True)
class SweepRun:
    record: SweepRunRecord
    metas: dict[str, RuleMeta]
    changes: Changes
    """Compared with the last notified run (with the last run when not notifying)."""
    message: Message | None
    queued: int
    ai: AIResult | None = None

    @property
    def failed(self) -> bool:
        return self.record.status == "failed"


# -- which rules, and running them -------------------------------------------------------------


def applicable(rules: Sequence[Rule], sweep: SweepConfig) -> list[Rule]:
    """Rules of the sweep's kind, matching its `rules` globs, whose service is in scope."""
    chosen = []
    for rule in rules:
        meta = rule.meta
        if meta.kind != sweep.kind:
            continue
        if sweep.rules and not any(fnmatchcase(meta.id, glob) for glob in sweep.rules):
            continue
        if meta.service.startswith("aws:") and sweep.aws is None:
            continue
        if meta.service.startswith("k8s:") and sweep.kubernetes is None:
            continue
        chosen.append(rule)
    return chosen


def sweep_context(
    settings: Settings, sweep: SweepConfig, ctx: CheckContext, now: datetime
) -> SweepContext:
    aws = kubernetes = None
    if sweep.aws is not None:
        aws = AwsScope(sweep.aws.profile, tuple(sweep.aws.regions))
    if sweep.kubernetes is not None:
        k8s = sweep.kubernetes
        kubernetes = KubernetesScope(k8s.kubeconfig, tuple(k8s.contexts), tuple(k8s.namespaces))
    budget = settings.budget.cloud_monthly_usd
    return SweepContext(
        check=ctx,
        now=now,
        aws=aws,
        kubernetes=kubernetes,
        options=sweep.options(None if budget is None else float(budget)),
        timeout_s=min(60.0, sweep.timeout.total_seconds()),
    )


async def evaluate(
    rules: Sequence[Rule],
    sctx: SweepContext,
    limit_s: float,
    progress: Progress | None = None,
    *,
    deadline: float | None = None,
) -> list[RuleOutcome]:
    """Every rule, at most MAX_RULES_AT_ONCE at a time, all within `limit_s` in total (or by
    `deadline`, on the loop's clock, when the sweep's limit started earlier)."""
    gate = asyncio.Semaphore(MAX_RULES_AT_ONCE)
    if deadline is None:
        deadline = asyncio.get_running_loop().time() + limit_s
    done = 0

    async def one(rule: Rule) -> RuleOutcome:
        nonlocal done
        outcome = await _run_rule(rule, sctx, gate, deadline, limit_s)
        done += 1
        if progress is not None:
            progress(outcome, done, len(rules))
        return outcome

    return list(await asyncio.gather(*(one(rule) for rule in rules)))


async def _run_rule(
    rule: Rule, sctx: SweepContext, gate: asyncio.Semaphore, deadline: float, limit_s: float
) -> RuleOutcome:
    meta = rule.meta
    limit = asyncio.timeout_at(deadline)
    try:
        async with limit, gate:
            found = await rule.evaluate(sctx)
        wrong = [f for f in found if not isinstance(f, Finding)]
        if wrong:
            raise TypeError(f"evaluate() returned a {type(wrong[0]).__name__}, not a Finding")
        return RuleOutcome(meta, list(found))
    except CollectError as exc:
        return RuleOutcome(meta, [], str(exc) or "a dataset could not be collected")
    except TimeoutError as exc:
        if limit.expired():
            span = format_duration(timedelta(seconds=limit_s)) if limit_s >= 1 else f"{limit_s:g}s"
            return RuleOutcome(meta, [], f"timed out: the sweep's {span} limit was reached")
        return RuleOutcome(meta, [], redact(f"timed out: {exc}")[:300])
    except Exception as exc:
        collect = exc.subgroup(CollectError) if isinstance(exc, ExceptionGroup) else None
        if collect is not None:
            return RuleOutcome(meta, [], str(_first_leaf(collect)))
        log.exception("sweep rule crashed", rule=meta.id)
        return RuleOutcome(
            meta, [], "rule crashed: " + redact(f"{type(exc).__name__}: {exc}")[:300]
        )


def _first_leaf(group: BaseExceptionGroup[CollectError]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


# -- the whole sweep ---------------------------------------------------------------------------


async def run_sweep(
    settings: Settings,
    sweep: SweepConfig,
    store: Store,
    ai: AI | None,
    ctx: CheckContext,
    now: datetime,
    *,
    notify_targets: bool = True,
    progress: Progress | None = None,
) -> SweepRun:
    """Run `sweep` now, persist it, and (with `notify_targets`) queue one message about what
    changed since the last notified run. Raises SweepError when no rule can run."""
    chosen = _rules_for(sweep)
    started = time.monotonic()
    limit = sweep.timeout.total_seconds()
    sctx = sweep_context(settings, sweep, ctx, now)
    deadline = asyncio.get_running_loop().time() + limit
    runnable, failures = await check_scopes(chosen, sctx, limit, deadline)
    outcomes = await evaluate(runnable, sctx, limit, progress, deadline=deadline)
    finished = now + timedelta(seconds=time.monotonic() - started)
    record, news = await _compare(store, sweep, outcomes, failures, (now, finished), notify_targets)
    result: AIResult | None = None
    if news.new or news.changed:
        summary, result = await summarise(ai, record, news)
        record = replace(record, detail={**record.detail, "summary": summary})
    metas = {rule.meta.id: rule.meta for rule in chosen}
    paths = await store_io(write_reports, settings.daemon.state_dir, record, metas)
    record = replace(record, detail={**record.detail, "reports": paths})
    message, items = None, []
    if notify_targets and not news.empty:
        costs = await cost_lines(ai, result, finished)
        message = notification(record, news, paths["md"], costs)
        targets = [t for t in settings.notify if not sweep.notify or t.name in sweep.notify]
        routed = route_message(message, targets, "report")
        items = [replace(item, attach=paths["md"]) for item in routed]
    await store_io(store.sweeps.commit, record, items, now=finished)
    log.info(
        "sweep finished",
        sweep=sweep.name,
        status=record.status,
        findings=len(current(record)),
        new=len(news.new),
        resolved=len(news.resolved),
        rule_errors=len(record.detail["rule_errors"]),
        scope_errors=[f.scope for f in failures],
        queued=len(items),
    )
    return SweepRun(record, metas, news, message, len(items), result)


def _rules_for(sweep: SweepConfig) -> list[Rule]:
    import jobs.sweeps

    try:
        available = jobs.sweeps.rules(sweep.kind)
    except ImportError as exc:
        raise SweepError(f"the {sweep.kind} rules cannot be loaded: {exc}") from exc
    chosen = applicable(available, sweep)
    if not chosen:
        raise SweepError(
            f"sweep {sweep.name}: no {sweep.kind} rule applies; check its aws/kubernetes "
            "tables and its `rules` globs"
        )
    return chosen


async def _compare(
    store: Store,
    sweep: SweepConfig,
    outcomes: Sequence[RuleOutcome],
    failures: Sequence[ScopeFailure],
    span: tuple[datetime, datetime],
    notify_targets: bool,
) -> tuple[SweepRunRecord, Changes]:
    """The run's record (states against the previous run) and what the targets have not
    heard yet (against the last notified run, which is usually the same one). Rules a scope
    failure held back count as failed: their findings are not re-checked, never resolved."""
    now, finished = span
    findings = dedupe([f for o in outcomes for f in o.findings])
    errors = sorted(
        ({"rule": o.meta.id, "error": o.error} for o in outcomes if o.error),
        key=lambda e: e["rule"],
    )
    held = {rule for failure in failures for rule in failure.rules}
    errored = {o.meta.id for o in outcomes if o.error} | held
    ran = {o.meta.id for o in outcomes if not o.error}
    ran |= {f.rule for o in outcomes if not o.error for f in o.findings}
    previous = await store_io(store.sweeps.last_run, sweep.name)
    tracked = track(findings, previous, ran, errored, sweep.mutelist, now)
    total = len(outcomes) + len(held)
    status: SweepStatus = "failed" if len(errored) == total else "partial" if errored else "ok"
    record = SweepRunRecord(
        id=f"{sweep.name}-{stamp(now)}-{uuid.uuid4().hex[:6]}",
        sweep=sweep.name,
        kind=sweep.kind,
        started_at=now,
        finished_at=finished,
        status=status,
        notified=notify_targets,
        findings=tuple(tracked),
        detail={
            "rules_run": len(outcomes),
            "rule_errors": errors,
            "scope_errors": [failure.as_detail() for failure in failures],
        },
    )
    baseline = previous
    if notify_targets and previous is not None and not previous.notified:
        baseline = await store_io(store.sweeps.last_run, sweep.name, notified=True)
    if baseline is not previous:
        tracked = track(findings, baseline, ran, errored, sweep.mutelist, now)
    return record, changes(tracked, errored, baseline)
