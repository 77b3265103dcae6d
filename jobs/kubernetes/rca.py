"""Root-cause context for the `kubernetes` check: recent events of the objects that failed,
and the log tail of crashed containers (their previous instance).

Bounded (a few objects, a few dozen events, 8 KB of log each) and never reads Secret objects.
Text is passed on as the API gives it: the model layer redacts before anything leaves.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from daemon.models import CheckResult, ContextBlock, Status
from daemon.util.text import clip
from jobs.kubernetes.api import Caller
from jobs.kubernetes.errors import KubernetesError, Request
from jobs.kubernetes.pods import RESTARTED
from jobs.kubernetes.rules import clock, event_count, event_time, subject

if TYPE_CHECKING:
    from kubernetes.client import CoreV1Event

LOG_READ_LIMIT = 256 * 1024
"""Bytes read from a log response before the tail is cut to size (long JSON lines)."""
RCA_OBJECTS = 5
RCA_EVENT_LINES = 30
LOG_MAX_BYTES = 8 * 1024
KIND_NAMES = {
    "pod": "Pod",
    "deployment": "Deployment",
    "statefulset": "StatefulSet",
    "daemonset": "DaemonSet",
    "node": "Node",
    "persistentvolumeclaim": "PersistentVolumeClaim",
    "job": "Job",
}
CRASHED = frozenset({"CrashLoopBackOff", "OOMKilled", RESTARTED})
"""Reasons whose previous container instance wrote the log worth reading."""


@dataclass(frozen=True)
class RcaTarget:
    status: Status
    kind: str
    namespace: str | None
    name: str
    container: str | None
    reason: str

    @property
    def subject(self) -> str:
        return subject(self.kind, self.namespace, self.name)


def rca_targets(results: list[CheckResult]) -> list[RcaTarget]:
    """The objects of failing results first, then degraded ones; each once, a few at most."""
    seen: dict[tuple[str, str | None, str, str | None], RcaTarget] = {}
    for result in sorted(results, key=lambda r: r.status != "failing"):
        kind, name = result.values.get("kind"), result.values.get("name")
        if result.status not in ("failing", "degraded"):
            continue
        if not isinstance(kind, str) or kind not in KIND_NAMES or not isinstance(name, str):
            continue
        namespace = result.values.get("namespace")
        container = result.values.get("container")
        target = RcaTarget(
            result.status,
            kind,
            namespace if isinstance(namespace, str) else None,
            name,
            container if isinstance(container, str) else None,
            str(result.values.get("reason") or ""),
        )
        seen.setdefault((kind, target.namespace, name, target.container), target)
    return list(seen.values())[:RCA_OBJECTS]


async def collect_context(
    caller: Caller,
    targets: list[RcaTarget],
    *,
    now: datetime,
    log_lines: int,
    into: list[ContextBlock],
) -> None:
    """Append blocks to `into` as they arrive, so a timeout keeps what was already fetched.
    An object whose events or log cannot be read is skipped."""
    for target in targets:
        boost = 10 if target.status == "failing" else 0
        try:
            events = await asyncio.to_thread(
                _events_for, caller, KIND_NAMES[target.kind], target.name, target.namespace
            )
        except KubernetesError:
            events = []
        if events:
            lines = [event_line(e, now) for e in sorted(events, key=_sort_time)]
            text = "\n".join(lines[-RCA_EVENT_LINES:])
            into.append(ContextBlock(f"Kubernetes events for {target.subject}", text, 60 + boost))
        if target.kind != "pod" or not target.container or target.reason not in CRASHED:
            continue
        try:
            log = await asyncio.to_thread(
                _log_tail,
                caller,
                target.namespace or "",
                target.name,
                target.container,
                lines=log_lines,
                previous=True,
            )
        except KubernetesError:
            continue
        title = (
            f"last {log_lines} log lines of {target.subject} container {target.container} "
            "(previous instance, before its last restart)"
        )
        text = tail_bytes(log, LOG_MAX_BYTES) or "(the previous instance logged nothing)"
        into.append(ContextBlock(title, text, 40 + boost))


def _events_for(caller: Caller, kind: str, name: str, namespace: str | None) -> list[CoreV1Event]:
    from kubernetes import client

    core = client.CoreV1Api(caller.api)
    selector = f"involvedObject.name={name},involvedObject.kind={kind}"
    request = Request("events", namespace)
    if namespace is None:
        items: list[CoreV1Event] = caller.list_all(
            request, core.list_event_for_all_namespaces, field_selector=selector
        )
    else:
        items = caller.list_all(
            request, core.list_namespaced_event, namespace, field_selector=selector
        )
    return items


def _log_tail(
    caller: Caller, namespace: str, pod: str, container: str, *, lines: int, previous: bool
) -> str:
    """The last `lines` lines of a container's log (its previous instance when asked)."""
    from kubernetes import client

    core = client.CoreV1Api(caller.api)
    request = Request("pods/log", namespace, verb="get")
    response = caller.sync(
        request,
        core.read_namespaced_pod_log,
        pod,
        namespace,
        container=container,
        previous=previous,
        tail_lines=lines,
        _preload_content=False,
    )
    try:
        data: bytes = response.read(LOG_READ_LIMIT)
    finally:
        response.close()  # a partly read body must not be reused by the next request
        response.release_conn()
    return data.decode("utf-8", errors="replace")


def _sort_time(event: CoreV1Event) -> datetime:
    return event_time(event) or datetime.min.replace(tzinfo=UTC)


def event_line(event: CoreV1Event, now: datetime) -> str:
    """`14:02 UTC Warning BackOff (12 times, kubelet): Back-off restarting failed container`."""
    count = event_count(event)
    source = event.source.component if event.source is not None else None
    about = [f"{count} times" if count > 1 else "", source or event.reporting_component or ""]
    detail = ", ".join(a for a in about if a)
    head = f"{clock(event_time(event), now)} {event.type} {event.reason}"
    head += f" ({detail})" if detail else ""
    return f"{head}: {clip(event.message or '', 500)}"


def tail_bytes(text: str, limit: int) -> str:
    """The end of `text` within `limit` UTF-8 bytes, starting at a line boundary."""
    data = text.encode()
    if len(data) <= limit:
        return text.rstrip("\n")
    tail = data[-limit:].decode("utf-8", errors="ignore")
    _, _, rest = tail.partition("\n")
    return "[…]\n" + (rest or tail).rstrip("\n")
