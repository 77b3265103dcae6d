"""Findings of the `kubernetes` check, and the rules for workloads, nodes, volumes, jobs and
Warning events (pods have their own module).

Pure functions over the client's typed objects (imported for type checking only): no I/O, no
clock of their own (callers pass `now`), and evidence that quotes the API's own words.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from daemon.models import Status, format_duration
from daemon.util.text import clip
from jobs.kubernetes.errors import QUOTE_CHARS

if TYPE_CHECKING:
    from kubernetes.client import (
        CoreV1Event,
        V1DaemonSet,
        V1Deployment,
        V1Job,
        V1Node,
        V1PersistentVolumeClaim,
        V1Pod,
        V1StatefulSet,
    )

Value = float | int | str | bool | None

PRESSURES = ("MemoryPressure", "DiskPressure", "PIDPressure")


@dataclass(frozen=True)
class Finding:
    """One problem with one object. `kind` is lower case, as in `pod prod/x`."""

    status: Status
    kind: str
    namespace: str | None
    name: str
    reason: str
    evidence: str
    container: str | None = None
    numbers: dict[str, Value] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return subject(self.kind, self.namespace, self.name)

    @property
    def values(self) -> dict[str, Value]:
        base: dict[str, Value] = {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "reason": self.reason,
        }
        if self.container is not None:
            base["container"] = self.container
        return base | self.numbers


def subject(kind: str, namespace: str | None, name: str) -> str:
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def clock(moment: datetime | None, now: datetime) -> str:
    """`14:02 UTC`, with the date when it was not today."""
    if moment is None:
        return "an unknown time"
    moment = moment.astimezone(UTC)
    if moment.date() == now.astimezone(UTC).date():
        return f"{moment:%H:%M} UTC"
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def identify(
    obj: V1Pod
    | V1Deployment
    | V1StatefulSet
    | V1DaemonSet
    | V1Job
    | V1Node
    | V1PersistentVolumeClaim,
) -> tuple[str | None, str]:
    """(namespace, name) of any object."""
    meta = obj.metadata
    if meta is None:
        return None, "?"
    return meta.namespace, meta.name or "?"


# --- workloads, storage, jobs -------------------------------------------------------------------


def judge_workloads(
    deployments: Iterable[V1Deployment],
    statefulsets: Iterable[V1StatefulSet],
    daemonsets: Iterable[V1DaemonSet],
) -> list[Finding]:
    """Controllers with fewer available pods than they want."""
    found = [
        *(_deployment(d) for d in deployments),
        *(_statefulset(s) for s in statefulsets),
        *(_daemonset(d) for d in daemonsets),
    ]
    return [f for f in found if f is not None]


def _deployment(deployment: V1Deployment) -> Finding | None:
    spec, status = deployment.spec, deployment.status
    desired = spec.replicas if spec is not None and spec.replicas is not None else 1
    if status is None:
        return None
    missing = status.unavailable_replicas or max(desired - (status.available_replicas or 0), 0)
    stuck = next(
        (c for c in status.conditions or [] if c.type == "Progressing" and c.status == "False"),
        None,
    )
    extra = ""
    if stuck is not None:
        extra = f"; {stuck.reason}: {clip(stuck.message or '', QUOTE_CHARS)}"
    return _unavailable("deployment", deployment, desired, missing, "replicas", extra)


def _statefulset(statefulset: V1StatefulSet) -> Finding | None:
    spec, status = statefulset.spec, statefulset.status
    desired = spec.replicas if spec is not None and spec.replicas is not None else 1
    if status is None:
        return None
    available = status.available_replicas
    if available is None:  # older API servers report only readyReplicas
        available = status.ready_replicas or 0
    return _unavailable("statefulset", statefulset, desired, desired - available, "replicas")


def _daemonset(daemonset: V1DaemonSet) -> Finding | None:
    status = daemonset.status
    if status is None:
        return None
    desired = status.desired_number_scheduled
    missing = status.number_unavailable or max(desired - (status.number_available or 0), 0)
    return _unavailable("daemonset", daemonset, desired, missing, "scheduled pods")


def _unavailable(
    kind: str,
    obj: V1Deployment | V1StatefulSet | V1DaemonSet,
    desired: int,
    missing: int,
    noun: str,
    extra: str = "",
) -> Finding | None:
    """`deployment prod/checkout: 1 of 3 replicas unavailable`."""
    if missing <= 0:
        return None
    namespace, name = identify(obj)
    return Finding(
        "failing",
        kind,
        namespace,
        name,
        "Unavailable",
        f"{subject(kind, namespace, name)}: {missing} of {desired} {noun} unavailable{extra}",
        numbers={"desired": desired, "unavailable": missing},
    )


def judge_nodes(nodes: Iterable[V1Node], now: datetime) -> list[Finding]:
    findings: list[Finding] = []
    for node in nodes:
        _, name = identify(node)
        conditions = {c.type: c for c in (node.status.conditions if node.status else None) or []}
        ready = conditions.get("Ready")
        if ready is None or ready.status != "True":
            if ready is None:
                why = "(it reports no Ready condition)"
            else:
                since = clock(ready.last_transition_time, now)
                cause = f", {ready.reason}" if ready.reason else ""
                why = f"since {since} (Ready={ready.status}{cause})"
                why += f": {clip(ready.message, QUOTE_CHARS)}" if ready.message else ""
            evidence = f"node {name} is NotReady {why}"
            findings.append(Finding("failing", "node", None, name, "NotReady", evidence))
        for kind in (*PRESSURES, "NetworkUnavailable"):
            cond = conditions.get(kind)
            if cond is None or cond.status != "True":
                continue
            status: Status = "failing" if kind == "NetworkUnavailable" else "degraded"
            since = clock(cond.last_transition_time, now)
            message = clip(cond.message or cond.reason or "", QUOTE_CHARS)
            evidence = f"node {name} has {kind} since {since}: {message}"
            findings.append(Finding(status, "node", None, name, kind, evidence))
    return findings


def judge_pvcs(
    pvcs: Iterable[V1PersistentVolumeClaim], now: datetime, pending_after: timedelta
) -> list[Finding]:
    """Claims Lost, or Pending longer than `pending_after` (a new claim waits a moment)."""
    findings: list[Finding] = []
    for claim in pvcs:
        namespace, name = identify(claim)
        phase = claim.status.phase if claim.status is not None else None
        created = claim.metadata.creation_timestamp if claim.metadata else None
        who = f"{subject('persistentvolumeclaim', namespace, name)}"
        if phase == "Lost":
            evidence = f"{who} is Lost: its PersistentVolume no longer exists{_claim_about(claim)}"
        elif phase == "Pending" and created is not None and now - created >= pending_after:
            age = format_duration(now - created)
            evidence = f"{who} has been Pending for {age}{_claim_about(claim)}"
        else:
            continue
        findings.append(
            Finding("failing", "persistentvolumeclaim", namespace, name, phase, evidence)
        )
    return findings


def _claim_about(claim: V1PersistentVolumeClaim) -> str:
    """` (storage class gp3, 10Gi requested)`."""
    spec = claim.spec
    if spec is None:
        return ""
    size = (spec.resources.requests or {}).get("storage") if spec.resources else None
    parts = [
        f"storage class {spec.storage_class_name}" if spec.storage_class_name else "",
        f"{size} requested" if size else "",
    ]
    about = ", ".join(p for p in parts if p)
    return f" ({about})" if about else ""


def judge_jobs(jobs: Iterable[V1Job], now: datetime) -> list[Finding]:
    """Failed Jobs; of those a CronJob owns, only its newest run counts (a later success
    supersedes an old failure kept in the history)."""
    findings: list[Finding] = []
    for job in _newest_per_cronjob(jobs):
        namespace, name = identify(job)
        status = job.status
        if status is None:
            continue
        failed_pods = status.failed or 0
        conditions = {c.type: c for c in status.conditions or [] if c.status == "True"}
        who = subject("job", namespace, name)
        if "Failed" in conditions:
            cond = conditions["Failed"]
            why = (
                f"{cond.reason}: {clip(cond.message or '', QUOTE_CHARS)}"
                if cond.reason
                else clip(cond.message or "", QUOTE_CHARS)
            )
            findings.append(
                Finding(
                    "failing",
                    "job",
                    namespace,
                    name,
                    cond.reason or "Failed",
                    f"{who} failed at {clock(cond.last_transition_time, now)}: {why} "
                    f"({failed_pods} failed pods)",
                    numbers={"failed_pods": failed_pods},
                )
            )
        elif failed_pods and "Complete" not in conditions:
            limit = job.spec.backoff_limit if job.spec is not None else None
            findings.append(
                Finding(
                    "degraded",
                    "job",
                    namespace,
                    name,
                    "PodsFailed",
                    f"{who}: {failed_pods} pods failed so far, still retrying "
                    f"(backoff limit {limit if limit is not None else 6})",
                    numbers={"failed_pods": failed_pods},
                )
            )
    return findings


def _newest_per_cronjob(jobs: Iterable[V1Job]) -> list[V1Job]:
    standalone: list[V1Job] = []
    newest: dict[tuple[str | None, str], V1Job] = {}
    for job in jobs:
        owner = next(
            (
                o.name
                for o in (job.metadata.owner_references if job.metadata else None) or []
                if o.kind == "CronJob"
            ),
            None,
        )
        if owner is None:
            standalone.append(job)
            continue
        key = (job.metadata.namespace if job.metadata else None, owner)
        if key not in newest or _created(job) > _created(newest[key]):
            newest[key] = job
    return standalone + list(newest.values())


def _created(job: V1Job) -> datetime:
    created = job.metadata.creation_timestamp if job.metadata else None
    return created or datetime.min.replace(tzinfo=UTC)


# --- events -------------------------------------------------------------------------------------


def event_time(event: CoreV1Event) -> datetime | None:
    if event.series is not None and event.series.last_observed_time is not None:
        return event.series.last_observed_time
    return (
        event.last_timestamp
        or event.event_time
        or event.first_timestamp
        or event.metadata.creation_timestamp
    )


def event_count(event: CoreV1Event) -> int:
    if event.series is not None and event.series.count:
        return event.series.count
    return event.count or 1


def judge_events(
    events: Iterable[CoreV1Event], now: datetime, window: timedelta, known: set[str], limit: int
) -> tuple[list[Finding], str | None]:
    """Recent Warning events, one per (object, reason), skipping objects already reported;
    past `limit`, one sentence about the rest."""
    latest: dict[tuple[str, str], tuple[CoreV1Event, int]] = {}
    for event in events:
        when = event_time(event)
        if event.type != "Warning" or when is None or now - when > window:
            continue
        obj = event.involved_object
        who = subject((obj.kind or "object").lower(), obj.namespace, obj.name or "?")
        if who in known:
            continue
        key = (who, event.reason or "")
        count = event_count(event)
        if key in latest:
            previous, total = latest[key]
            keep = event if (event_time(previous) or when) <= when else previous
            latest[key] = (keep, total + count)
        else:
            latest[key] = (event, count)
    ordered = sorted(latest.values(), key=lambda pair: event_time(pair[0]) or now, reverse=True)
    findings = [_event_finding(event, count, now) for event, count in ordered[:limit]]
    rest = ordered[limit:]
    if not rest:
        return findings, None
    reasons = sorted({e.reason or "?" for e, _ in rest})
    more = (
        f"{len(rest)} more Warning events in the last {format_duration(window)} "
        f"(reasons: {', '.join(reasons[:10])})"
    )
    return findings, more


def _event_finding(event: CoreV1Event, count: int, now: datetime) -> Finding:
    obj = event.involved_object
    kind = (obj.kind or "object").lower()
    name = obj.name or "?"
    times = "once" if count == 1 else f"{count} times"
    return Finding(
        "degraded",
        kind,
        obj.namespace,
        name,
        event.reason or "Warning",
        f"Warning {event.reason} on {subject(kind, obj.namespace, name)} ({times}, last "
        f"at {clock(event_time(event), now)}): {clip(event.message or '', QUOTE_CHARS)}",
        numbers={"count": count},
    )
