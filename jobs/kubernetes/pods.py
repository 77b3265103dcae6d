"""Pod rules of the `kubernetes` check: crash loops, image pulls, OOM kills, restarts that grew
since the previous run, and pods stuck Pending.

Pure functions over the client's typed pods; at most one finding per container (the most
severe), and a Pending finding only for a pod whose containers have nothing to say.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from daemon.models import Status, format_duration
from daemon.util.text import clip
from jobs.kubernetes.errors import QUOTE_CHARS
from jobs.kubernetes.rules import Finding, Value, clock, identify, subject

if TYPE_CHECKING:
    from kubernetes.client import V1ContainerStateTerminated, V1ContainerStatus, V1Pod

IMAGE_PULL = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName"})
CANNOT_START = frozenset(
    {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
)
RESTARTED = "RestartsIncreased"
"""Our own reason for a container whose restart count grew between two runs."""


@dataclass(frozen=True)
class PodRules:
    now: datetime
    pending_after: timedelta
    oom_window: timedelta
    """An OOM kill older than this is history, not a current failure."""
    restart_threshold: int
    previous_restarts: Mapping[str, int] | None
    """Counts from the previous run; None on the first run (no restart findings)."""


def restart_key(namespace: str | None, pod: str, container: str) -> str:
    return f"{namespace}/{pod}/{container}"


def restart_counts(pods: Iterable[V1Pod]) -> dict[str, int]:
    """What to remember until the next run: the restart count of every container."""
    counts: dict[str, int] = {}
    for pod in pods:
        namespace, name = identify(pod)
        for status in _statuses(pod):
            counts[restart_key(namespace, name, status.name)] = status.restart_count
    return counts


def judge_pods(pods: Iterable[V1Pod], rules: PodRules) -> list[Finding]:
    findings: list[Finding] = []
    for pod in pods:
        found = [f for s in _statuses(pod) if (f := _judge_container(pod, s, rules))]
        if not found and (pending := _judge_pending(pod, rules)) is not None:
            found.append(pending)
        findings.extend(found)
    return findings


def _statuses(pod: V1Pod) -> list[V1ContainerStatus]:
    if pod.status is None:
        return []
    return [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]


def _judge_container(pod: V1Pod, status: V1ContainerStatus, rules: PodRules) -> Finding | None:
    namespace, name = identify(pod)
    who = f"{subject('pod', namespace, name)} container {status.name}"
    waiting = status.state.waiting if status.state is not None else None
    current = status.state.terminated if status.state is not None else None
    last = status.last_state.terminated if status.last_state is not None else None
    numbers: dict[str, Value] = {"restarts": status.restart_count}
    if last is not None:
        numbers |= {"exit_code": last.exit_code, "last_reason": last.reason}

    def finding(severity: Status, reason: str, evidence: str) -> Finding:
        return Finding(severity, "pod", namespace, name, reason, evidence, status.name, numbers)

    reason = waiting.reason if waiting is not None else None
    message = clip(waiting.message or "", QUOTE_CHARS) if waiting is not None else ""
    if reason == "CrashLoopBackOff":
        ended = _termination(last, rules.now) if last else "no previous exit recorded"
        restarts = _times(status.restart_count)
        return finding(
            "failing", reason, f"{who} is in CrashLoopBackOff: restarted {restarts}, {ended}"
        )
    if reason in IMAGE_PULL:
        numbers["image"] = status.image
        quote = f": {message}" if message else ""
        return finding(
            "failing", reason, f'{who} cannot pull image "{status.image}" ({reason}){quote}'
        )
    if reason in CANNOT_START:
        quote = f": {message}" if message else ""
        return finding("failing", reason, f"{who} cannot start ({reason}){quote}")
    for term in (current, last):
        if term is not None and term.reason == "OOMKilled":
            if term.finished_at is not None and rules.now - term.finished_at > rules.oom_window:
                continue
            limit = _memory_limit(pod, status.name)
            limit_text = f", memory limit {limit}" if limit else ""
            restarts = _times(status.restart_count)
            return finding(
                "failing",
                "OOMKilled",
                f"{who} was OOMKilled at {clock(term.finished_at, rules.now)} "
                f"(exit code {term.exit_code}{limit_text}); restarted {restarts}",
            )
    if rules.previous_restarts is None:
        return None
    before = rules.previous_restarts.get(restart_key(namespace, name, status.name))
    grown = status.restart_count - before if before is not None else 0
    if grown < rules.restart_threshold:
        return None
    numbers["restarts_since_last_run"] = grown
    ended = f"; {_termination(last, rules.now)}" if last else ""
    return finding(
        "degraded",
        RESTARTED,
        f"{who} restarted {_times(grown)} since the previous run "
        f"({status.restart_count} in total){ended}",
    )


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _termination(term: V1ContainerStateTerminated, now: datetime) -> str:
    """`last exit code 1 (Error) at 14:02 UTC: "panic: …"`."""
    text = f"last exit code {term.exit_code}" + (f" ({term.reason})" if term.reason else "")
    text += f" at {clock(term.finished_at, now)}"
    if term.message:
        text += f': "{clip(term.message, 200)}"'
    return text


def _memory_limit(pod: V1Pod, container: str) -> str | None:
    if pod.spec is None:
        return None
    for spec in [*(pod.spec.init_containers or []), *pod.spec.containers]:
        if spec.name == container and spec.resources is not None and spec.resources.limits:
            return spec.resources.limits.get("memory")
    return None


def _judge_pending(pod: V1Pod, rules: PodRules) -> Finding | None:
    if pod.status is None or pod.status.phase != "Pending" or pod.metadata is None:
        return None
    created = pod.metadata.creation_timestamp
    if created is None or rules.now - created < rules.pending_after:
        return None
    namespace, name = identify(pod)
    age = rules.now - created
    scheduled = next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)
    if scheduled is not None and scheduled.status != "True":
        why = clip(scheduled.message or scheduled.reason or "not scheduled yet", QUOTE_CHARS)
    else:
        waiting = [
            f"{s.name} {s.state.waiting.reason or 'waiting'}"
            for s in _statuses(pod)
            if s.state is not None and s.state.waiting is not None
        ]
        why = "scheduled, containers waiting: " + ", ".join(waiting) if waiting else "scheduled"
    return Finding(
        "failing",
        "pod",
        namespace,
        name,
        "Pending",
        f"{subject('pod', namespace, name)} has been Pending for {format_duration(age)} "
        f"(limit {format_duration(rules.pending_after)}): {why}",
        numbers={"pending_minutes": round(age.total_seconds() / 60, 1)},
    )
