"""The Kubernetes frame of the one rule style (`jobs.sweeps.rule`): a rule is judged once per
cluster context in scope; and `each_workload`, for judgements of one pod template at a time.

Frames only name places; the datasets behind them come from `collect` and `workloads`.
"""

from __future__ import annotations

from collections.abc import Callable

from daemon.models import Severity
from jobs.sweeps.base import RuleMeta, SweepContext
from jobs.sweeps.k8s.collect import contexts
from jobs.sweeps.k8s.workloads import Workload, workloads
from jobs.sweeps.rule import Frame, Hit, Judge


async def _no_account(ctx: SweepContext) -> None:
    return None  # a cluster is not an account; findings name their context in the location


CONTEXT = Frame("context", contexts, lambda context: context, _no_account)
"""Judged in each kubeconfig context in scope; hits say their `context/namespace`."""


def each_workload(judge: Callable[[Workload], Hit | None]) -> Judge:
    """A judgement of every pod template (and bare pod) in the context, once each."""

    async def judged(ctx: SweepContext, context: str) -> list[Hit]:
        return [hit for w in await workloads(ctx, context) if (hit := judge(w))]

    return judged


def security_meta(
    rule: str,
    title: str,
    severity: Severity,
    risk: str,
    fix: str,
    service: str = "k8s:pods",
    *,
    reference: str | None = None,
    controls: tuple[str, ...] = (),
) -> RuleMeta:
    return RuleMeta(
        rule,
        title,
        "security",
        severity,
        risk,
        fix,
        service=service,
        reference=reference,
        controls=controls,
    )
