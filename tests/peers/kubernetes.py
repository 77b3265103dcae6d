"""A loopback fake of the Kubernetes API server, reached by the official client through a
generated kubeconfig: real paths, real-shaped JSON (`kind: PodList`, Status error bodies).

Scenario builders at the bottom return objects shaped as the API server returns them.
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.peers.kube_leases import Leases, status_body
from tests.peers.loopback import serve_in_thread

Obj = dict[str, Any]
TOKEN = "fake-token-for-tests"

_RESOURCES: dict[tuple[str, str], str] = {  # (group, plural) -> kind
    ("", "pods"): "Pod",
    ("", "nodes"): "Node",
    ("", "events"): "Event",
    ("", "persistentvolumeclaims"): "PersistentVolumeClaim",
    ("", "configmaps"): "ConfigMap",
    ("apps", "deployments"): "Deployment",
    ("apps", "statefulsets"): "StatefulSet",
    ("apps", "daemonsets"): "DaemonSet",
    ("batch", "jobs"): "Job",
    ("metrics.k8s.io", "pods"): "PodMetrics",
}
_GROUP_VERSION = {"": "v1", "apps": "v1", "batch": "v1", "metrics.k8s.io": "v1beta1"}
_KEY_OF_KIND = {kind: key for key, kind in _RESOURCES.items()}


def ts(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(**delta: float) -> str:
    return ts(datetime.now(UTC) - timedelta(**delta))


@dataclass
class FakeCluster:
    """What the fake API server serves; tests mutate it between runs."""

    objects: dict[tuple[str, str], list[Obj]] = field(default_factory=dict)
    metrics_available: bool = True
    """False: metrics.k8s.io answers 404, as when metrics-server is not installed."""
    logs: dict[tuple[str, str, str, bool], str] = field(default_factory=dict)
    """(namespace, pod, container, previous) -> log text."""
    forbidden: set[tuple[str, str | None]] = field(default_factory=set)
    """(plural, namespace or None for cluster-wide lists) answered 403."""
    token: str = TOKEN
    hang: threading.Event | None = None
    """When set to an unset Event, every request waits on it (for timeouts)."""
    requests: list[str] = field(default_factory=list)
    leases: Leases = field(default_factory=Leases)
    """coordination.k8s.io Leases (GET, POST, PUT), for leader election."""

    def add(self, *items: Obj) -> None:
        for item in items:
            self.objects.setdefault(_KEY_OF_KIND[item["kind"]], []).append(item)

    def set_log(
        self, namespace: str, pod: str, container: str, text: str, *, previous: bool = False
    ) -> None:
        self.logs[(namespace, pod, container, previous)] = text

    def forbid(self, plural: str, namespace: str | None = None) -> None:
        self.forbidden.add((plural, namespace))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client gave up (a timeout test): nothing to report
        super().handle_error(request, client_address)


class FakeKubernetes:
    """A ThreadingHTTPServer on 127.0.0.1 speaking enough of the API for the check."""

    def __init__(self, cluster: FakeCluster | None = None) -> None:
        self.cluster = cluster or FakeCluster()
        self.server = _Server(("127.0.0.1", 0), _handler_for(self.cluster))
        self._stop: Callable[[], None] = lambda: None

    @property
    def port(self) -> int:
        port: int = self.server.server_address[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeKubernetes:
        self._stop = serve_in_thread(self.server)
        return self

    def stop(self) -> None:
        if self.cluster.hang is not None:
            self.cluster.hang.set()
        self._stop()

    def kubeconfig(
        self, path: Path, *, token: str = TOKEN, contexts: Iterable[str] = ("fake",)
    ) -> Path:
        """Write a kubeconfig whose contexts all point at this server (the first is current)."""
        return write_kubeconfig(path, self.url, token=token, contexts=contexts)


def write_kubeconfig(
    path: Path, server: str, *, token: str = TOKEN, contexts: Iterable[str] = ("fake",)
) -> Path:
    """A kubeconfig with a bearer-token user; every context points at `server`."""
    names = list(contexts)
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": token}}],
        "contexts": [{"name": n, "context": {"cluster": "fake", "user": "tester"}} for n in names],
        "current-context": names[0],
        "preferences": {},
    }
    path.write_text(json.dumps(document, indent=2))  # JSON is YAML
    return path


def _handler_for(cluster: FakeCluster) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _admitted(self) -> bool:
            cluster.requests.append(
                f"{self.command} {self.path}" if self.command != "GET" else self.path
            )
            if cluster.hang is not None:
                cluster.hang.wait(timeout=10)
            if self.headers.get("Authorization") != f"Bearer {cluster.token}":
                self._json(401, status_body(401, "Unauthorized", "Unauthorized"))
                return False
            return True

        def _lease_call(self, body: Obj | None) -> bool:
            """/apis/coordination.k8s.io/v1/namespaces/NS/leases[/NAME]: True when it was one."""
            parts = [p for p in urlsplit(self.path).path.split("/") if p]
            if parts[:3] != ["apis", "coordination.k8s.io", "v1"] or len(parts) < 6:
                return False
            if parts[3] != "namespaces" or parts[5] != "leases":
                return False
            code, document = cluster.leases.handle(self.command, parts[4], parts[5:], body)
            self._json(code, document)
            return True

        def _write(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not self._admitted():
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._json(400, status_body(400, "BadRequest", "the body is not JSON"))
                return
            if not self._lease_call(body):
                self._json(405, status_body(405, "MethodNotAllowed", "not supported here"))

        do_POST = _write
        do_PUT = _write

        def do_GET(self) -> None:
            if not self._admitted() or self._lease_call(None):
                return
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            parts = [p for p in url.path.split("/") if p]
            if parts[:1] == ["api"] and len(parts) >= 3:
                self._route("", parts[2:], query)
            elif parts[:1] == ["apis"] and len(parts) >= 4:
                self._route(parts[1], parts[3:], query)
            else:
                self._not_found()

        def _route(self, group: str, rest: list[str], query: dict[str, str]) -> None:
            namespace = None
            if rest[:1] == ["namespaces"] and len(rest) >= 3:
                namespace, rest = rest[1], rest[2:]
            if len(rest) == 3 and group == "" and rest[0] == "pods" and rest[2] == "log":
                self._log(namespace or "", rest[1], query)
            elif len(rest) == 1 and (group, rest[0]) in _RESOURCES:
                self._list(group, rest[0], namespace, query)
            elif len(rest) == 2 and (group, rest[0]) in _RESOURCES and namespace is not None:
                self._get(group, rest[0], namespace, rest[1])
            else:
                self._not_found()

        def _list(
            self, group: str, plural: str, namespace: str | None, query: dict[str, str]
        ) -> None:
            list_kind = _RESOURCES[(group, plural)] + "List"
            if group == "metrics.k8s.io" and not cluster.metrics_available:
                self._not_found()
                return
            if (plural, namespace) in cluster.forbidden or (plural, None) in cluster.forbidden:
                self._forbidden(group, plural, namespace)
                return
            items = [
                item
                for item in cluster.objects.get((group, plural), [])
                if (namespace is None or item["metadata"].get("namespace") == namespace)
                and _labels_match(item, query.get("labelSelector", ""))
                and _fields_match(item, query.get("fieldSelector", ""))
            ]
            version = _GROUP_VERSION[group]
            self._json(
                200,
                {
                    "kind": list_kind,
                    "apiVersion": f"{group}/{version}" if group else version,
                    "metadata": {"resourceVersion": "12345"},
                    "items": items,
                },
            )

        def _get(self, group: str, plural: str, namespace: str, name: str) -> None:
            for item in cluster.objects.get((group, plural), []):
                meta = item["metadata"]
                if meta.get("namespace") == namespace and meta.get("name") == name:
                    self._json(200, item)
                    return
            details = {"name": name, "kind": plural} | ({"group": group} if group else {})
            message = f'{plural}{"." + group if group else ""} "{name}" not found'
            self._json(404, status_body(404, "NotFound", message, details))

        def _log(self, namespace: str, pod: str, query: dict[str, str]) -> None:
            container = query.get("container", "")
            previous = query.get("previous") == "true"
            text = cluster.logs.get((namespace, pod, container, previous))
            if text is None:
                which = "previous terminated container" if previous else "container"
                message = f'{which} "{container}" in pod "{pod}" not found'
                self._json(400, status_body(400, "BadRequest", message))
                return
            lines = text.splitlines(keepends=True)
            if "tailLines" in query:
                lines = lines[-int(query["tailLines"]) :] if int(query["tailLines"]) else []
            body = "".join(lines).encode()
            if "limitBytes" in query:
                body = body[: int(query["limitBytes"])]
            self._send(200, body, "text/plain")

        def _forbidden(self, group: str, plural: str, namespace: str | None) -> None:
            where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
            message = (
                f'{plural} is forbidden: User "system:serviceaccount:wk:wk" cannot list '
                f'resource "{plural}" in API group "{group}" {where}'
            )
            details = {"group": group, "kind": plural} if group else {"kind": plural}
            self._json(403, status_body(403, "Forbidden", message, details))

        def _not_found(self) -> None:
            message = "the server could not find the requested resource"
            self._json(404, status_body(404, "NotFound", message))

        def _json(self, code: int, document: Obj) -> None:
            self._send(code, json.dumps(document).encode(), "application/json")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _labels_match(item: Obj, selector: str) -> bool:
    labels = item["metadata"].get("labels") or {}
    for term in filter(None, selector.split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key) != value.lstrip("="):
                return False
        elif term not in labels:
            return False
    return True


def _fields_match(item: Obj, selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        negate = "!=" in term
        path, value = term.split("!=" if negate else "=", 1)
        current: Any = item
        for key in path.split("."):
            current = current.get(key) if isinstance(current, dict) else None
        if (str(current) == value) == negate:
            return False
    return True


# --- scenario builders ------------------------------------------------------------------------


def _meta(name: str, namespace: str | None, age_minutes: float, labels: Obj | None) -> Obj:
    meta: Obj = {
        "name": name,
        "uid": str(uuid.uuid4()),
        "resourceVersion": "1001",
        "creationTimestamp": ago(minutes=age_minutes),
        "labels": labels or {"app": name.split("-")[0]},
    }
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def container_status(
    name: str = "app",
    *,
    image: str = "registry.example.com/shop/app:1.4.2",
    ready: bool = True,
    restarts: int = 0,
    state: Obj | None = None,
    last_state: Obj | None = None,
) -> Obj:
    return {
        "name": name,
        "image": image,
        "imageID": "" if not ready else f"{image.split(':')[0]}@sha256:{'ab' * 32}",
        "containerID": f"containerd://{uuid.uuid4().hex}",
        "ready": ready,
        "started": ready,
        "restartCount": restarts,
        "state": state or {"running": {"startedAt": ago(hours=2)}},
        "lastState": last_state or {},
    }


def pod(
    name: str,
    namespace: str = "prod",
    *,
    phase: str = "Running",
    statuses: list[Obj] | None = None,
    requests: Obj | None = None,
    limits: Obj | None = None,
    age_minutes: float = 180,
    conditions: list[Obj] | None = None,
    labels: Obj | None = None,
) -> Obj:
    statuses = [container_status()] if statuses is None else statuses
    resources: Obj = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    containers = [
        {
            "name": s["name"],
            "image": s["image"],
            "resources": resources,
            "terminationMessagePath": "/dev/termination-log",
            "imagePullPolicy": "IfNotPresent",
        }
        for s in statuses
    ] or [{"name": "app", "image": "registry.example.com/shop/app:1.4.2", "resources": resources}]
    ready = all(s["ready"] for s in statuses) and phase == "Running"
    if conditions is None:
        conditions = [
            {"type": t, "status": "True" if (t == "PodScheduled" or ready) else "False"}
            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
    status: Obj = {"phase": phase, "conditions": conditions, "qosClass": "Burstable"}
    if statuses:
        status["containerStatuses"] = statuses
        status["startTime"] = ago(minutes=age_minutes)
        status["hostIP"] = "10.0.1.5"
        status["podIP"] = "10.0.7.23"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(name, namespace, age_minutes, labels),
        "spec": {
            "containers": containers,
            "restartPolicy": "Always",
            "serviceAccountName": "default",
        }
        | ({"nodeName": "ip-10-0-1-5"} if statuses else {}),
        "status": status,
    }


def healthy_pod(name: str = "checkout-7d9c-x2x9k", namespace: str = "prod", **kw: Any) -> Obj:
    return pod(name, namespace, **kw)


def crashloop_pod(
    name: str = "checkout-7d9c-x2x9k", namespace: str = "prod", *, restarts: int = 7
) -> Obj:
    status = container_status(
        ready=False,
        restarts=restarts,
        state={
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off 5m0s restarting failed container=app pod={name}",
            }
        },
        last_state={
            "terminated": {
                "exitCode": 1,
                "reason": "Error",
                "startedAt": ago(minutes=3),
                "finishedAt": ago(minutes=2),
                "containerID": f"containerd://{uuid.uuid4().hex}",
            }
        },
    )
    return pod(name, namespace, statuses=[status])


def image_pull_pod(
    name: str = "checkout-7d9c-x2x9k",
    namespace: str = "prod",
    *,
    image: str = "registry.example.com/shop/app:1.4.3",
    reason: str = "ImagePullBackOff",
) -> Obj:
    status = container_status(
        image=image,
        ready=False,
        state={
            "waiting": {
                "reason": reason,
                "message": f'Back-off pulling image "{image}": ErrImagePull: '
                f"rpc error: code = NotFound desc = failed to pull and unpack image "
                f'"{image}": not found',
            }
        },
    )
    return pod(name, namespace, phase="Pending", statuses=[status], age_minutes=4)


def oomkilled_pod(
    name: str = "worker-5f6b-abcde", namespace: str = "prod", *, minutes_ago: float = 3
) -> Obj:
    status = container_status(
        restarts=3,
        last_state={
            "terminated": {
                "exitCode": 137,
                "reason": "OOMKilled",
                "startedAt": ago(minutes=minutes_ago + 30),
                "finishedAt": ago(minutes=minutes_ago),
            }
        },
    )
    return pod(name, namespace, statuses=[status], limits={"memory": "256Mi"})


def pending_pod(
    name: str = "batch-6c8d-qwert",
    namespace: str = "prod",
    *,
    minutes: float = 20,
    message: str = "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are "
    "available: 3 No preemption victims found for incoming pod.",
) -> Obj:
    condition = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastTransitionTime": ago(minutes=minutes),
    }
    return pod(
        name,
        namespace,
        phase="Pending",
        statuses=[],
        age_minutes=minutes,
        conditions=[condition],
        requests={"memory": "64Gi"},
    )


def restarting_pod(
    name: str = "api-59c7-zzt8p", namespace: str = "prod", *, restarts: int = 2
) -> Obj:
    status = container_status(
        restarts=restarts,
        state={"running": {"startedAt": ago(minutes=1)}},
        last_state={
            "terminated": {
                "exitCode": 2,
                "reason": "Error",
                "startedAt": ago(minutes=30),
                "finishedAt": ago(minutes=1),
            }
        },
    )
    return pod(name, namespace, statuses=[status])


def _pod_template(name: str) -> Obj:
    return {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/shop/app:1.4.2"}]},
    }


def deployment(
    name: str = "checkout", namespace: str = "prod", *, replicas: int = 3, available: int = 3
) -> Obj:
    status: Obj = {
        "observedGeneration": 4,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": available,
        "availableReplicas": available,
        "conditions": [
            {
                "type": "Available",
                "status": "True" if available >= replicas else "False",
                "reason": "MinimumReplicasAvailable"
                if available >= replicas
                else "MinimumReplicasUnavailable",
                "message": "Deployment has minimum availability."
                if available >= replicas
                else "Deployment does not have minimum availability.",
            }
        ],
    }
    if available < replicas:
        status["unavailableReplicas"] = replicas - available
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, namespace, 600, None) | {"generation": 4},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": _pod_template(name),
        },
        "status": status,
    }


def statefulset(
    name: str = "db", namespace: str = "prod", *, replicas: int = 3, ready: int = 3
) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(name, namespace, 600, None),
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": _pod_template(name),
        },
        "status": {
            "replicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "currentReplicas": replicas,
            "updatedReplicas": replicas,
        },
    }


def daemonset(
    name: str = "fluent-bit", namespace: str = "logging", *, desired: int = 3, ready: int = 3
) -> Obj:
    status: Obj = {
        "currentNumberScheduled": desired,
        "desiredNumberScheduled": desired,
        "numberMisscheduled": 0,
        "numberReady": ready,
        "numberAvailable": ready,
        "updatedNumberScheduled": desired,
    }
    if ready < desired:
        status["numberUnavailable"] = desired - ready
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _meta(name, namespace, 600, None),
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": _pod_template(name)},
        "status": status,
    }


_PRESSURE = {  # kind -> (when False, when True): (reason, message) as the kubelet says them
    "MemoryPressure": (
        ("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
    ),
    "DiskPressure": (
        ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("KubeletHasDiskPressure", "kubelet has disk pressure"),
    ),
    "PIDPressure": (
        ("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
    ),
}


def node(name: str = "ip-10-0-1-5", *, ready: bool = True, pressure: str | None = None) -> Obj:
    def condition(kind: str, status: bool, reason: str, message: str) -> Obj:
        return {
            "type": kind,
            "status": "True" if status else "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": ago(minutes=1),
            "lastTransitionTime": ago(minutes=25),
        }

    conditions = [
        condition(kind, pressure == kind, *_PRESSURE[kind][pressure == kind])
        for kind in ("MemoryPressure", "DiskPressure", "PIDPressure")
    ]
    if ready:
        conditions.append(
            condition("Ready", True, "KubeletReady", "kubelet is posting ready status")
        )
    else:
        unknown = condition(
            "Ready", False, "NodeStatusUnknown", "Kubelet stopped posting node status."
        )
        unknown["status"] = "Unknown"
        conditions.append(unknown)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": _meta(name, None, 6000, {"kubernetes.io/hostname": name}),
        "spec": {"providerID": f"aws:///eu-west-1a/i-{uuid.uuid4().hex[:17]}"},
        "status": {
            "conditions": conditions,
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "3920m", "memory": "15Gi", "pods": "110"},
        },
    }


def pvc(
    name: str = "data-db-0",
    namespace: str = "prod",
    *,
    phase: str = "Pending",
    age_minutes: float = 30,
    storage_class: str = "gp3",
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(name, namespace, age_minutes, None),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "10Gi"}},
            "storageClassName": storage_class,
            "volumeMode": "Filesystem",
        },
        "status": {"phase": phase},
    }


def job(
    name: str = "nightly-backup-28391",
    namespace: str = "prod",
    *,
    failed: bool = True,
    cronjob: str | None = None,
    age_minutes: float = 60,
) -> Obj:
    metadata = _meta(name, namespace, age_minutes, None)
    if cronjob is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": cronjob,
                "uid": "c0ffee00-0000-4000-8000-000000000001",
                "controller": True,
            }
        ]
    if failed:
        status: Obj = {
            "failed": 7,
            "startTime": ago(minutes=age_minutes),
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                    "lastTransitionTime": ago(minutes=age_minutes - 10),
                }
            ],
        }
    else:
        status = {
            "succeeded": 1,
            "startTime": ago(minutes=age_minutes),
            "completionTime": ago(minutes=age_minutes - 5),
            "conditions": [{"type": "Complete", "status": "True"}],
        }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {"backoffLimit": 6, "completions": 1, "template": _pod_template(name)},
        "status": status,
    }


def warning_event(
    kind: str,
    name: str,
    namespace: str = "prod",
    *,
    reason: str = "FailedMount",
    message: str = 'MountVolume.SetUp failed for volume "config" : configmap "web-config" '
    "not found",
    count: int = 3,
    minutes_ago: float = 2,
    type_: str = "Warning",
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{name}.{uuid.uuid4().hex[:16]}",
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "resourceVersion": "2002",
            "creationTimestamp": ago(minutes=minutes_ago + 10),
        },
        "involvedObject": {
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "uid": str(uuid.uuid4()),
            "apiVersion": "v1",
            "resourceVersion": "1001",
        },
        "reason": reason,
        "message": message,
        "source": {"component": "kubelet", "host": "ip-10-0-1-5"},
        "firstTimestamp": ago(minutes=minutes_ago + 10),
        "lastTimestamp": ago(minutes=minutes_ago),
        "count": count,
        "type": type_,
        "eventTime": None,
        "reportingComponent": "kubelet",
        "reportingInstance": "ip-10-0-1-5",
    }


def pod_metrics(name: str, namespace: str = "prod", **usage_by_container: tuple[str, str]) -> Obj:
    """`pod_metrics("worker-1", app=("912m", "300Mi"))`: (cpu, memory) per container."""
    return {
        "apiVersion": "metrics.k8s.io/v1beta1",
        "kind": "PodMetrics",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": ago(seconds=0),
            "labels": {"app": name.split("-")[0]},
        },
        "timestamp": ago(seconds=20),
        "window": "18.272s",
        "containers": [
            {"name": c, "usage": {"cpu": cpu, "memory": memory}}
            for c, (cpu, memory) in usage_by_container.items()
        ],
    }


# --- sweep resources and builders (security and cost sweeps) ---------------------------------
# Added kinds only: the check's own resources above are served exactly as before.

_RESOURCES.update(
    {
        ("", "services"): "Service",
        ("", "serviceaccounts"): "ServiceAccount",
        ("apps", "replicasets"): "ReplicaSet",
        ("batch", "cronjobs"): "CronJob",
    }
)
_KEY_OF_KIND.update({kind: key for key, kind in _RESOURCES.items()})


def pod_spec_of(obj: Obj) -> Obj:
    """The pod spec of a pod, or of the template of a workload (CronJob: its job template's)."""
    if obj["kind"] == "Pod":
        spec: Obj = obj["spec"]
    elif obj["kind"] == "CronJob":
        spec = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    else:
        spec = obj["spec"]["template"]["spec"]
    return spec


def with_pod_spec(obj: Obj, **fields: Any) -> Obj:
    """Set pod-spec fields (camelCase, as in YAML): `with_pod_spec(d, hostNetwork=True)`."""
    pod_spec_of(obj).update(fields)
    return obj


def with_container(obj: Obj, index: int = 0, **fields: Any) -> Obj:
    """Set fields of one container: `with_container(d, securityContext={"privileged": True})`."""
    pod_spec_of(obj)["containers"][index].update(fields)
    return obj


def add_container(obj: Obj, name: str, **fields: Any) -> Obj:
    container: Obj = {"name": name, "image": f"registry.example.com/shop/{name}:1.0", **fields}
    pod_spec_of(obj)["containers"].append(container)
    return obj


def owned_by(obj: Obj, owner: Obj) -> Obj:
    """Make `owner` the controller of `obj` (a ReplicaSet of a Deployment, a pod of either)."""
    obj["metadata"]["ownerReferences"] = [
        {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    return obj


def replicaset(owner: Obj, template_hash: str = "7d9c") -> Obj:
    """The current ReplicaSet of Deployment `owner`, named as the deployment controller does."""
    name = f"{owner['metadata']['name']}-{template_hash}"
    namespace = owner["metadata"]["namespace"]
    replicas = owner["spec"]["replicas"]
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": _meta(name, namespace, 600, {"pod-template-hash": template_hash}),
        "spec": {
            "replicas": replicas,
            "selector": owner["spec"]["selector"],
            "template": json.loads(json.dumps(owner["spec"]["template"])),
        },
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }
    return owned_by(rs, owner)


def cronjob(
    name: str = "nightly-backup", namespace: str = "prod", *, schedule: str = "0 3 * * *"
) -> Obj:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _meta(name, namespace, 6000, None),
        "spec": {
            "schedule": schedule,
            "jobTemplate": {"spec": {"backoffLimit": 6, "template": _pod_template(name)}},
        },
        "status": {},
    }


def service(
    name: str = "web",
    namespace: str = "prod",
    *,
    type_: str = "ClusterIP",
    ports: Iterable[tuple[int, str]] = ((443, "TCP"),),
    source_ranges: list[str] | None = None,
    annotations: dict[str, str] | None = None,
) -> Obj:
    spec: Obj = {
        "type": type_,
        "selector": {"app": name},
        "ports": [
            {"name": f"p{port}", "port": port, "protocol": protocol, "targetPort": port}
            for port, protocol in ports
        ],
        "clusterIP": "10.100.23.7",
    }
    if source_ranges is not None:
        spec["loadBalancerSourceRanges"] = source_ranges
    metadata = _meta(name, namespace, 600, None)
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def service_account(
    name: str = "default", namespace: str = "prod", *, automount: bool | None = None
) -> Obj:
    account: Obj = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(name, namespace, 6000, {}),
    }
    if automount is not None:
        account["automountServiceAccountToken"] = automount
    return account


def config_map(name: str, namespace: str = "prod", data: dict[str, str] | None = None) -> Obj:
    """A ConfigMap as the API server returns it."""
    return {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": _meta(name, namespace, 90, None),
        "data": dict(data or {}),
    }


# --- RBAC, NetworkPolicy, Namespace and node addresses (the RBAC and network sweeps) ----------
# Shapes as the API reference gives them: rbac.authorization.k8s.io/v1 ClusterRole (rules,
# aggregationRule), ClusterRoleBinding/RoleBinding (roleRef, subjects), networking.k8s.io/v1
# NetworkPolicy, core/v1 Namespace and Node status.addresses.

RBAC = "rbac.authorization.k8s.io"
_RESOURCES.update(
    {
        ("", "namespaces"): "Namespace",
        (RBAC, "clusterroles"): "ClusterRole",
        (RBAC, "clusterrolebindings"): "ClusterRoleBinding",
        (RBAC, "roles"): "Role",
        (RBAC, "rolebindings"): "RoleBinding",
        ("networking.k8s.io", "networkpolicies"): "NetworkPolicy",
    }
)
_GROUP_VERSION.update({RBAC: "v1", "networking.k8s.io": "v1"})
_KEY_OF_KIND.update({kind: key for key, kind in _RESOURCES.items()})

_DEFAULTS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
"""The label the API server puts on the roles and bindings of its bootstrap policy."""


def namespace(name: str = "prod", *, labels: Obj | None = None) -> Obj:
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": _meta(
            name, None, 60000, {"kubernetes.io/metadata.name": name} | (labels or {})
        ),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def policy_rule(
    verbs: Iterable[str],
    resources: Iterable[str] = (),
    api_groups: Iterable[str] = ("",),
    *,
    non_resource_urls: Iterable[str] = (),
    resource_names: Iterable[str] = (),
) -> Obj:
    """One PolicyRule: resource rules carry apiGroups/resources, non-resource ones only URLs."""
    rule: Obj = {"verbs": list(verbs)}
    if non_resource_urls:
        rule["nonResourceURLs"] = list(non_resource_urls)
        return rule
    rule["apiGroups"] = list(api_groups)
    rule["resources"] = list(resources)
    if resource_names:
        rule["resourceNames"] = list(resource_names)
    return rule


CLUSTER_ADMIN_RULES = [
    policy_rule(["*"], ["*"], ["*"]),
    policy_rule(["*"], non_resource_urls=["*"]),
]


def cluster_role(
    name: str,
    rules: list[Obj] | None = None,
    *,
    builtin: bool = False,
    aggregate_to: str | None = None,
    aggregation: Obj | None = None,
) -> Obj:
    """A ClusterRole. `builtin`: labelled and annotated as the bootstrap policy's are;
    `aggregate_to`: labelled to be aggregated into `admin`/`edit`/`view`; `aggregation`: the
    labels whose roles this one aggregates (its rules are then the controller's union)."""
    labels: Obj = dict(_DEFAULTS) if builtin else {}
    if aggregate_to:
        labels[f"rbac.authorization.k8s.io/aggregate-to-{aggregate_to}"] = "true"
    meta = _meta(name, None, 60000, labels)
    if builtin:
        meta["annotations"] = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    role: Obj = {"kind": "ClusterRole", "apiVersion": f"{RBAC}/v1", "metadata": meta}
    if aggregation is not None:
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": aggregation}]}
    role["rules"] = rules if rules is not None else []
    return role


def role(name: str, namespace: str = "prod", rules: list[Obj] | None = None) -> Obj:
    return {
        "kind": "Role",
        "apiVersion": f"{RBAC}/v1",
        "metadata": _meta(name, namespace, 6000, {}),
        "rules": rules or [],
    }


def subject(kind: str, name: str, namespace: str | None = None) -> Obj:
    """A binding's subject: ServiceAccounts carry a namespace and no apiGroup; users and groups
    carry apiGroup rbac.authorization.k8s.io."""
    if kind == "ServiceAccount":
        return {"kind": kind, "name": name, "namespace": namespace or "default"}
    return {"kind": kind, "apiGroup": RBAC, "name": name}


def cluster_role_binding(
    name: str, role_name: str, subjects: list[Obj], *, builtin: bool = False
) -> Obj:
    return {
        "kind": "ClusterRoleBinding",
        "apiVersion": f"{RBAC}/v1",
        "metadata": _meta(name, None, 60000, dict(_DEFAULTS) if builtin else {}),
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role_name},
        "subjects": subjects,
    }


def role_binding(
    name: str,
    role_name: str,
    subjects: list[Obj],
    namespace: str = "prod",
    *,
    role_kind: str = "Role",
) -> Obj:
    """A RoleBinding to a Role of its namespace, or (`role_kind="ClusterRole"`) to a
    ClusterRole whose rules then apply in this namespace only."""
    return {
        "kind": "RoleBinding",
        "apiVersion": f"{RBAC}/v1",
        "metadata": _meta(name, namespace, 6000, {}),
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role_name},
        "subjects": subjects,
    }


_WRITE_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def bootstrap_rbac() -> list[Obj]:
    """The part of the API server's bootstrap policy the RBAC rules meet: cluster-admin bound to
    system:masters, the aggregated admin role, and a system: controller role and binding."""
    return [
        cluster_role("cluster-admin", CLUSTER_ADMIN_RULES, builtin=True),
        cluster_role_binding(
            "cluster-admin", "cluster-admin", [subject("Group", "system:masters")], builtin=True
        ),
        cluster_role(
            "admin",
            [policy_rule(_WRITE_VERBS, ["pods", "secrets", "deployments"], ["", "apps"])],
            builtin=True,
            aggregation={"rbac.authorization.k8s.io/aggregate-to-admin": "true"},
        ),
        cluster_role(
            "system:controller:namespace-controller",
            [policy_rule(["delete", "deletecollection", "get", "list"], ["*"], ["*"])],
            builtin=True,
        ),
        cluster_role_binding(
            "system:controller:namespace-controller",
            "system:controller:namespace-controller",
            [subject("ServiceAccount", "namespace-controller", "kube-system")],
            builtin=True,
        ),
        cluster_role(
            "system:kube-controller-manager",
            [policy_rule(["get", "list", "watch"], ["secrets", "serviceaccounts"])],
            builtin=True,
        ),
        cluster_role_binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            [subject("User", "system:kube-controller-manager")],
            builtin=True,
        ),
    ]


def network_policy(
    name: str = "default-deny",
    namespace: str = "prod",
    *,
    pod_selector: Obj | None = None,
    policy_types: Iterable[str] = ("Ingress",),
) -> Obj:
    return {
        "kind": "NetworkPolicy",
        "apiVersion": "networking.k8s.io/v1",
        "metadata": _meta(name, namespace, 6000, {}) | {"generation": 1},
        "spec": {"podSelector": pod_selector or {}, "policyTypes": list(policy_types)},
    }


def with_addresses(obj: Obj, *, internal: str = "10.0.1.5", external: str | None = None) -> Obj:
    """Give node `obj` the status.addresses a cloud node reports: InternalIP, an ExternalIP
    when it has a public address, Hostname and InternalDNS."""
    name = obj["metadata"]["name"]
    addresses = [{"type": "InternalIP", "address": internal}]
    if external is not None:
        addresses.append({"type": "ExternalIP", "address": external})
    addresses += [
        {"type": "InternalDNS", "address": f"{name}.eu-west-1.compute.internal"},
        {"type": "Hostname", "address": f"{name}.eu-west-1.compute.internal"},
    ]
    obj["status"]["addresses"] = addresses
    return obj


def node_port_service(
    name: str = "web",
    namespace: str = "prod",
    *,
    type_: str = "NodePort",
    ports: Iterable[tuple[int, int]] = ((443, 30443),),
) -> Obj:
    """A Service of type NodePort (or LoadBalancer) with the node ports the API server
    allocated: `ports` as (port, nodePort)."""
    svc = service(name, namespace, type_=type_, ports=[(port, "TCP") for port, _ in ports])
    for entry, (_, node_port) in zip(svc["spec"]["ports"], ports, strict=True):
        entry["nodePort"] = node_port
    svc["spec"] |= {"externalTrafficPolicy": "Cluster", "sessionAffinity": "None"}
    if type_ == "LoadBalancer":
        svc["spec"]["allocateLoadBalancerNodePorts"] = True
        svc["status"] = {"loadBalancer": {"ingress": [{"hostname": f"{name}.elb.example.com"}]}}
    return svc
