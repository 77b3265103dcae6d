"""Look-ups into the systems the incident's checks watch: Kubernetes reads (objects, events,
pod logs with the previous container), Prometheus instant and range queries, and an HTTP GET
of a URL a configured check already requests. Scoped to those checks' clusters, namespaces,
servers and URLs; never a Secret, never a write.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from daemon.engine.tools import Toolbox, ToolRefused, as_json
from jobs.base import CheckContext, CheckSpec

if TYPE_CHECKING:
    from jobs.alertmanager import AlertmanagerCheck
    from jobs.kubernetes.check import KubernetesCheck
    from jobs.prometheus import PrometheusCheck

K8S_KINDS: dict[str, tuple[str, str]] = {
    # kind → (API class, read_namespaced_<stem>). Secrets are deliberately absent.
    "pod": ("CoreV1Api", "pod"),
    "configmap": ("CoreV1Api", "config_map"),
    "service": ("CoreV1Api", "service"),
    "persistentvolumeclaim": ("CoreV1Api", "persistent_volume_claim"),
    "deployment": ("AppsV1Api", "deployment"),
    "statefulset": ("AppsV1Api", "stateful_set"),
    "daemonset": ("AppsV1Api", "daemon_set"),
    "job": ("BatchV1Api", "job"),
}
LOG_LINES = 200
RANGE_POINTS = 60


def add_sources(box: Toolbox, specs: Sequence[CheckSpec], ctx: CheckContext) -> None:
    from jobs.alertmanager import AlertmanagerCheck
    from jobs.http import HttpCheck
    from jobs.kubernetes.check import KubernetesCheck
    from jobs.prometheus import PrometheusCheck

    kube = next((s for s in specs if isinstance(s, KubernetesCheck)), None)
    if kube is not None:
        _kubernetes(box, kube, ctx)
    prom = next((s for s in specs if isinstance(s, PrometheusCheck)), None)
    if prom is not None:
        _prometheus(box, prom, ctx)
    manager = next((s for s in specs if isinstance(s, AlertmanagerCheck)), None)
    if manager is not None:
        _alertmanager(box, manager, ctx)
    urls = [s.url for s in specs if isinstance(s, HttpCheck)]
    if urls:
        _http(box, urls, ctx)


def _namespace_arg(check: KubernetesCheck) -> dict[str, Any]:
    if check.namespaces:
        return {"type": "string", "enum": list(check.namespaces)}
    return {"type": "string", "description": "Namespace of the object."}


def _kubernetes(box: Toolbox, check: KubernetesCheck, ctx: CheckContext) -> None:
    from jobs.kubernetes.errors import KubernetesError, Request
    from jobs.kubernetes.rca import _events_for, _log_tail, event_line

    async def caller() -> Any:
        return await check._caller(ctx, check._target())

    def name_ok(name: str) -> str:
        if not name or len(name) > 253 or not all(c.isalnum() or c in "-." for c in name):
            raise ToolRefused(f"{name[:80]!r} is not a Kubernetes object name")
        return name

    async def get(args: dict[str, Any]) -> str:
        from kubernetes import client

        api_class, stem = K8S_KINDS[args["kind"]]
        call = await caller()
        api = getattr(client, api_class)(call.api)
        read = getattr(api, f"read_namespaced_{stem}")
        request = Request(args["kind"] + "s", args["namespace"], verb="get")
        try:
            obj = await asyncio.to_thread(
                call.sync, request, read, name_ok(args["name"]), args["namespace"]
            )
        except KubernetesError as exc:
            return f"error: {exc}"
        data: dict[str, Any] = call.api.sanitize_for_serialization(obj)
        meta = data.get("metadata", {})
        meta.pop("managedFields", None)
        (meta.get("annotations") or {}).pop(
            "kubectl.kubernetes.io/last-applied-configuration", None
        )
        return as_json(data)

    async def events(args: dict[str, Any]) -> str:
        call = await caller()
        kind = "ConfigMap" if args["kind"] == "configmap" else args["kind"].capitalize()
        kind = {"Statefulset": "StatefulSet", "Daemonset": "DaemonSet"}.get(kind, kind)
        try:
            found = await asyncio.to_thread(
                _events_for, call, kind, name_ok(args["name"]), args["namespace"]
            )
        except KubernetesError as exc:
            return f"error: {exc}"
        now = datetime.now(UTC)
        return "\n".join(event_line(e, now) for e in found[-40:]) or "no events"

    async def logs(args: dict[str, Any]) -> str:
        call = await caller()
        try:
            return (
                await asyncio.to_thread(
                    _log_tail,
                    call,
                    args["namespace"],
                    name_ok(args["pod"]),
                    name_ok(args["container"]),
                    lines=LOG_LINES,
                    previous=bool(args.get("previous", False)),
                )
                or "(the container logged nothing)"
            )
        except KubernetesError as exc:
            return f"error: {exc}"

    kinds = {"type": "string", "enum": list(K8S_KINDS)}
    box.add(
        "k8s_get",
        "Read one Kubernetes object (pod, deployment, configmap, …; never a Secret) as JSON.",
        {"kind": kinds, "namespace": _namespace_arg(check), "name": {"type": "string"}},
        get,
    )
    box.add(
        "k8s_events",
        "Recent Kubernetes events about one object.",
        {"kind": kinds, "namespace": _namespace_arg(check), "name": {"type": "string"}},
        events,
    )
    box.add(
        "k8s_pod_logs",
        f"The last {LOG_LINES} log lines of a pod's container; previous=true reads the "
        "instance before its last restart (a crash loop's cause is usually there).",
        {
            "namespace": _namespace_arg(check),
            "pod": {"type": "string"},
            "container": {"type": "string"},
            "previous": {"type": "boolean", "optional": True},
        },
        logs,
    )


def _prometheus(box: Toolbox, check: PrometheusCheck, ctx: CheckContext) -> None:
    from jobs._prometheus_api import ApiUnavailable

    async def ask(path: str, params: list[tuple[str, str]]) -> str:
        try:
            reply = await check.call_api(ctx, path, params)
        except ApiUnavailable as exc:
            return f"error: {exc}"
        if reply.status_code != 200:
            return f"error: HTTP {reply.status_code} {reply.quote()}"
        try:
            data = reply.json()
        except ValueError:
            return f"error: not JSON: {reply.quote()}"
        result = data.get("data", {}).get("result", []) if isinstance(data, dict) else []
        return as_json(result[:20]) + (
            f"\n… {len(result) - 20} more series" if len(result) > 20 else ""
        )

    async def instant(args: dict[str, Any]) -> str:
        return await ask("/api/v1/query", [("query", args["query"])])

    async def window(args: dict[str, Any]) -> str:
        minutes = int(args.get("minutes", 60))
        end = time.time()
        step = max(minutes * 60 // RANGE_POINTS, 15)
        params = [
            ("query", args["query"]),
            ("start", f"{end - minutes * 60:.0f}"),
            ("end", f"{end:.0f}"),
            ("step", str(step)),
        ]
        return await ask("/api/v1/query_range", params)

    query = {"type": "string", "description": "A PromQL expression."}
    box.add(
        "prometheus_query",
        f"Evaluate a PromQL instant query on the Prometheus that check {check.name} uses.",
        {"query": query},
        instant,
    )
    box.add(
        "prometheus_range",
        "Evaluate a PromQL range query over the last N minutes (about 60 points).",
        {
            "query": query,
            "minutes": {"type": "integer", "minimum": 5, "maximum": 1440, "optional": True},
        },
        window,
    )


def _alertmanager(box: Toolbox, check: AlertmanagerCheck, ctx: CheckContext) -> None:
    from jobs._prometheus_api import ApiUnavailable

    async def alerts(args: dict[str, Any]) -> str:
        params = [("active", "true"), ("silenced", "false"), ("inhibited", "false")]
        if args.get("filter"):
            params.append(("filter", args["filter"]))
        try:
            reply = await check.call_api(ctx, "/api/v2/alerts", params)
        except ApiUnavailable as exc:
            return f"error: {exc}"
        if reply.status_code != 200:
            return f"error: HTTP {reply.status_code} {reply.quote()}"
        try:
            found = reply.json()
        except ValueError:
            return f"error: not JSON: {reply.quote()}"
        if not isinstance(found, list):
            return "error: not a list of alerts"
        kept = [
            {k: a.get(k) for k in ("labels", "annotations", "startsAt")}
            for a in found[:30]
            if isinstance(a, dict)
        ]
        return as_json(kept) or "[]"

    box.add(
        "alertmanager_alerts",
        f"Active alerts on the Alertmanager check {check.name} watches; `filter` is a label "
        'matcher such as alertname="HighLatency".',
        {"filter": {"type": "string", "optional": True}},
        alerts,
    )


def _http(box: Toolbox, urls: list[str], ctx: CheckContext) -> None:
    async def get(args: dict[str, Any]) -> str:
        response = await ctx.http.get(args["url"], follow_redirects=False, timeout=10.0)
        head = f"HTTP {response.status_code} {response.reason_phrase}"
        kept = ("content-type", "location", "retry-after", "server", "date")
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items() if k in kept)
        return f"{head}\n{headers}\n\n{response.text[:4000]}"

    box.add(
        "http_get",
        "GET one of the URLs the incident's HTTP checks watch (no other URL can be fetched).",
        {"url": {"type": "string", "enum": urls}},
        get,
    )
