"""The `kubernetes` check: pods, workloads, nodes, volumes, jobs, Warning events and usage of a
cluster, judged into one result per problem with the API's own words as evidence.

It never imports `kubernetes` at module import (config validation loads every check class),
never uses the client's process-wide default configuration, and never reads Secret objects.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Literal, Self

from pydantic import Field, field_validator, model_validator

from daemon.models import CheckResult, ContextBlock, Duration, Status, format_duration
from jobs.base import CheckContext, CheckSpec
from jobs.kubernetes.api import (
    Caller,
    Scope,
    Snapshot,
    Target,
    cached_client,
    collect,
    default_kubeconfig,
    expand_paths,
    require_client_package,
)
from jobs.kubernetes.errors import KubernetesError
from jobs.kubernetes.metrics import Thresholds, UsageReport, judge_usage
from jobs.kubernetes.pods import PodRules, judge_pods, restart_counts
from jobs.kubernetes.rca import LOG_MAX_BYTES, collect_context, rca_targets
from jobs.kubernetes.rules import (
    Value,
    judge_events,
    judge_jobs,
    judge_nodes,
    judge_pvcs,
    judge_workloads,
)

if TYPE_CHECKING:
    pass

MAX_EVENT_RESULTS = 20
"""Warning events beyond this many become one summary result (an event storm is one fact)."""
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class KubernetesCheck(CheckSpec):
    """A Kubernetes cluster (or some namespaces of it) has nothing crashing, stuck or short."""

    type: Literal["kubernetes"]
    kubeconfig: str | None = Field(
        default=None,
        description="Path to the kubeconfig file (several joined by ':' like $KUBECONFIG). "
        "Default: $KUBECONFIG, else ~/.kube/config. Not used with in_cluster.",
    )
    context: str | None = Field(
        default=None, description="kubeconfig context to use. Default: its current-context."
    )
    in_cluster: bool = Field(
        default=False,
        description="Use the pod's service account instead of a kubeconfig (when watchkeeper "
        "runs inside the cluster it watches).",
    )
    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to look at. Empty: all namespaces."
    )
    label_selector: str | None = Field(
        default=None,
        description="Only pods, workloads, PVCs and jobs with these labels, e.g. "
        "'app=checkout,tier!=batch'. Nodes and events are not filtered.",
    )
    pending_minutes: int = Field(
        default=10,
        ge=1,
        description="A pod (or PVC) Pending longer than this many minutes is failing.",
    )
    restart_threshold: int = Field(
        default=1,
        ge=1,
        description="Report degraded when a container restarted at least this many times "
        "since the previous run.",
    )
    cpu_threshold_percent: float | None = Field(
        default=None,
        gt=0,
        description="Report degraded when a container's CPU usage (metrics.k8s.io) is above "
        "this % of its request (or limit, see `against`).",
    )
    memory_threshold_percent: float | None = Field(
        default=None,
        gt=0,
        description="Report degraded when a container's memory usage (metrics.k8s.io) is "
        "above this % of its request (or limit, see `against`).",
    )
    against: Literal["requests", "limits"] = Field(
        default="requests",
        description="What the CPU/memory thresholds are a percentage of: 'requests' or "
        "'limits'. Containers without one are skipped.",
    )
    warning_events: bool = Field(
        default=True,
        description="Report recent Warning events (within event_window) as degraded.",
    )
    event_window: Duration = Field(
        default=timedelta(minutes=15),
        description="How far back Warning events and OOM kills count, e.g. '15m'.",
    )
    log_tail_lines: int = Field(
        default=50,
        ge=1,
        le=5000,
        description="Log lines of a crashed container (its previous instance) given to "
        f"root-cause analysis, at most {LOG_MAX_BYTES // 1024} KB.",
    )
    nodes: bool = Field(
        default=True,
        description="Check node conditions (NotReady, memory/disk/PID pressure). Nodes are "
        "cluster-scoped: listing them needs a ClusterRole.",
    )

    @field_validator("namespaces")
    @classmethod
    def _namespaces_valid(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _DNS_LABEL.match(name):
                raise ValueError(f"{name!r} is not a namespace name (lower-case DNS label)")
        return list(dict.fromkeys(value))

    @field_validator("event_window")
    @classmethod
    def _window_positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("event_window must be greater than 0")
        return value

    @model_validator(mode="after")
    def _options_consistent(self) -> Self:
        if self.in_cluster and (self.kubeconfig is not None or self.context is not None):
            raise ValueError("kubeconfig and context have no effect with in_cluster = true")
        thresholds = (self.cpu_threshold_percent, self.memory_threshold_percent)
        if "against" in self.model_fields_set and thresholds == (None, None):
            raise ValueError(
                "against needs cpu_threshold_percent or memory_threshold_percent to apply to"
            )
        return self

    # --- run ------------------------------------------------------------------------------------

    async def run(self, ctx: CheckContext) -> list[CheckResult]:
        started_at = ctx.now()
        t0 = time.perf_counter()
        target = self._target()

        def results(outcomes: Iterable[_Outcome]) -> list[CheckResult]:
            latency = (time.perf_counter() - t0) * 1000
            return [
                self.result(
                    o.status,
                    o.evidence,
                    started_at=started_at,
                    latency_ms=latency,
                    subject=o.subject,
                    values=o.values,
                )
                for o in outcomes
            ]

        caller: Caller | None = None
        try:
            # The first import of the client takes a while; it is not the cluster's fault.
            await asyncio.to_thread(require_client_package)
            async with asyncio.timeout(self.timeout.total_seconds()):
                caller = await self._caller(ctx, target)
                snapshot = await collect(caller, self._scope())
        except TimeoutError:
            return results([_Outcome("error", self._timeout_message(caller, target))])
        except KubernetesError as exc:
            if exc.stale_client:
                ctx.clients.pop(target.cache_key, None)
            return results([_Outcome("error", exc.message)])
        return results(self._judge(snapshot, ctx))

    def _target(self) -> Target:
        if self.in_cluster:
            return Target("", None, in_cluster=True)
        return Target(expand_paths(self.kubeconfig or default_kubeconfig()), self.context, False)

    def _scope(self) -> Scope:
        return Scope(
            namespaces=tuple(self.namespaces),
            label_selector=self.label_selector,
            nodes=self.nodes,
            events=self.warning_events,
            metrics=self._thresholds() is not None,
        )

    def _thresholds(self) -> Thresholds | None:
        if self.cpu_threshold_percent is None and self.memory_threshold_percent is None:
            return None
        return Thresholds(self.cpu_threshold_percent, self.memory_threshold_percent, self.against)

    async def _caller(self, ctx: CheckContext, target: Target) -> Caller:
        api = await cached_client(ctx.clients, target)
        return Caller(api, self.timeout.total_seconds(), self.in_cluster)

    def _timeout_message(self, caller: Caller | None, target: Target) -> str:
        if caller is not None:
            return caller.timeout_message()
        source = "the in-cluster service account" if target.in_cluster else target.kubeconfig
        return (
            f"loading {source} did not finish within {self.timeout.total_seconds():g} s "
            "(a slow exec credential plugin?)"
        )

    def _judge(self, snapshot: Snapshot, ctx: CheckContext) -> list[_Outcome]:
        now = ctx.now()
        # Restart counts live in ctx.clients, not on this instance, so they survive a reload.
        memory = f"kubernetes-restarts:{self.name}"
        previous = ctx.clients.get(memory)
        ctx.clients[memory] = restart_counts(snapshot.pods)
        rules = PodRules(
            now=now,
            pending_after=timedelta(minutes=self.pending_minutes),
            oom_window=self.event_window,
            restart_threshold=self.restart_threshold,
            previous_restarts=previous,
        )
        findings = [
            *judge_pods(snapshot.pods, rules),
            *judge_workloads(snapshot.deployments, snapshot.statefulsets, snapshot.daemonsets),
            *judge_nodes(snapshot.nodes or [], now),
            *judge_pvcs(snapshot.pvcs, now, rules.pending_after),
            *judge_jobs(snapshot.jobs, now),
        ]
        thresholds = self._thresholds()
        usage = None
        if thresholds is not None and snapshot.usage is not None:
            usage = judge_usage(snapshot.pods, snapshot.usage, thresholds)
            findings += usage.findings
        known = {f.subject for f in findings}
        events, more = judge_events(
            snapshot.events, now, self.event_window, known, MAX_EVENT_RESULTS
        )
        findings += events

        out = [_Outcome(f.status, f.evidence, f.subject, f.values) for f in findings]
        if more is not None:
            out.append(_Outcome("degraded", more))
        if snapshot.usage_problem is not None:
            out.append(_Outcome("degraded", snapshot.usage_problem))
        if not findings:
            out.insert(0, self._summary(snapshot, usage))
        return out

    def _summary(self, snapshot: Snapshot, usage: UsageReport | None) -> _Outcome:
        """`12 pods, 3 deployments, 2 nodes in prod, staging: all healthy`."""
        counts = [
            (len(snapshot.pods), "pod"),
            (len(snapshot.deployments), "deployment"),
            (len(snapshot.statefulsets), "statefulset"),
            (len(snapshot.daemonsets), "daemonset"),
            (len(snapshot.pvcs), "persistentvolumeclaim"),
            (len(snapshot.jobs), "job"),
        ]
        if snapshot.nodes is not None:
            counts.append((len(snapshot.nodes), "node"))
        parts = [_plural(n, noun) for n, noun in counts if n or noun == "pod"]
        where = "in " + ", ".join(self.namespaces) if self.namespaces else "in all namespaces"
        if self.label_selector:
            where += f" matching {self.label_selector}"
        text = f"{', '.join(parts)} {where}: all healthy"
        if self.warning_events:
            text += f"; no Warning events in the last {format_duration(self.event_window)}"
        values: dict[str, Value] = {f"{noun}s": n for n, noun in counts}
        if usage is not None:
            text += f"; CPU/memory within thresholds for {_plural(usage.compared, 'container')}"
            if usage.skipped:
                text += f" ({usage.skipped} without {self.against} not compared)"
            values["containers_compared"] = usage.compared
        return _Outcome("ok", text, values=values)

    # --- root-cause context ---------------------------------------------------------------------

    async def rca_context(
        self, ctx: CheckContext, results: list[CheckResult]
    ) -> list[ContextBlock]:
        """Recent events of the failing objects, and the log tail of crashed containers (the
        previous instance's). Partial on timeout or API errors; never raises for them."""
        targets = rca_targets(results)
        blocks: list[ContextBlock] = []
        if not targets:
            return blocks
        try:
            async with asyncio.timeout(self.timeout.total_seconds()):
                caller = await self._caller(ctx, self._target())
                await collect_context(
                    caller, targets, now=ctx.now(), log_lines=self.log_tail_lines, into=blocks
                )
        except (TimeoutError, KubernetesError):
            pass  # what was fetched before is still worth giving
        return blocks


@dataclass(frozen=True)
class _Outcome:
    """One result to be: a finding about an object, or a sentence about the whole run."""

    status: Status
    evidence: str
    subject: str | None = None
    values: dict[str, Value] = field(default_factory=dict)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
