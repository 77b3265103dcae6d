"""Talks to the Kubernetes API for the `kubernetes` check: builds the client and lists what the
rules judge, concurrently, each call in a thread under the check's timeout.

`kubernetes` is imported only inside functions (config validation must not load it), the
client is synchronous so every call runs in a thread with its own timeout, and nothing here
ever reads Secret objects.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from daemon.util.text import clip
from jobs.kubernetes.errors import (
    INSTALL_HINT,
    QUOTE_CHARS,
    KubernetesError,
    Request,
    describe_api_error,
    is_timeout,
)

if TYPE_CHECKING:
    from kubernetes.client import (
        ApiClient,
        CoreV1Event,
        V1DaemonSet,
        V1Deployment,
        V1Job,
        V1Node,
        V1PersistentVolumeClaim,
        V1Pod,
        V1StatefulSet,
    )

PAGE_SIZE = 500


@dataclass(frozen=True)
class Target:
    """Where to connect: a kubeconfig (+ context) or the pod's service account."""

    kubeconfig: str
    context: str | None
    in_cluster: bool

    @property
    def cache_key(self) -> str:
        return f"kubernetes:{self.kubeconfig}:{self.context}:{self.in_cluster}"


@dataclass(frozen=True)
class Scope:
    namespaces: tuple[str, ...]
    """Empty: all namespaces."""
    label_selector: str | None
    nodes: bool
    events: bool
    metrics: bool


class ContainerUsage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    usage: dict[str, str] = Field(default_factory=dict)


class _MetricsMeta(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    namespace: str = ""


class PodUsage(BaseModel):
    """One `PodMetrics` item of metrics.k8s.io/v1beta1."""

    model_config = ConfigDict(extra="ignore")
    metadata: _MetricsMeta
    containers: list[ContainerUsage] = Field(default_factory=list)


class _PodUsageList(BaseModel):
    model_config = ConfigDict(extra="ignore")
    items: list[PodUsage] = Field(default_factory=list)


@dataclass
class Snapshot:
    """Everything one run looked at."""

    pods: list[V1Pod] = field(default_factory=list)
    deployments: list[V1Deployment] = field(default_factory=list)
    statefulsets: list[V1StatefulSet] = field(default_factory=list)
    daemonsets: list[V1DaemonSet] = field(default_factory=list)
    pvcs: list[V1PersistentVolumeClaim] = field(default_factory=list)
    jobs: list[V1Job] = field(default_factory=list)
    nodes: list[V1Node] | None = None
    """None when node checks are off."""
    events: list[CoreV1Event] = field(default_factory=list)
    usage: list[PodUsage] | None = None
    """None when no threshold is configured or metrics.k8s.io could not be read."""
    usage_problem: str | None = None
    """Why CPU/memory thresholds were not checked, when they are configured."""


def require_client_package() -> None:
    try:
        import kubernetes  # noqa: F401
    except ImportError as exc:
        raise KubernetesError(f"the kubernetes package is not installed: {INSTALL_HINT}") from exc


def default_kubeconfig() -> str:
    return os.environ.get("KUBECONFIG") or "~/.kube/config"


def expand_paths(kubeconfig: str) -> str:
    """`~` expanded in each of the (os.pathsep-separated) paths, as kubectl does."""
    return os.pathsep.join(os.path.expanduser(p) for p in kubeconfig.split(os.pathsep) if p)


def build_client(target: Target) -> ApiClient:
    """A fresh ApiClient with its own Configuration (never the process-wide default)."""
    require_client_package()
    from kubernetes import client, config

    if target.in_cluster:
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except config.ConfigException as exc:
            raise KubernetesError(_incluster_problem(str(exc))) from exc
        return client.ApiClient(configuration)

    paths = [p for p in target.kubeconfig.split(os.pathsep) if p]
    if not any(os.path.isfile(p) for p in paths):
        raise KubernetesError(
            f"kubeconfig {target.kubeconfig} not found: set `kubeconfig` in the check or "
            "$KUBECONFIG, or set in_cluster = true when watchkeeper runs in a pod"
        )
    try:
        api: ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=target.kubeconfig, context=target.context, persist_config=False
        )
    except Exception as exc:  # a user's file and plugins: every failure is a config problem
        raise KubernetesError(_kubeconfig_problem(target, exc)) from exc
    return api


def _incluster_problem(message: str) -> str:
    if "host/port" in message:
        return (
            "in_cluster = true but KUBERNETES_SERVICE_HOST/PORT are not set: watchkeeper is "
            "not running in a Kubernetes pod; use a kubeconfig instead"
        )
    reason = clip(message, QUOTE_CHARS)
    return f"in_cluster = true but the service account cannot be loaded: {reason}"


def _kubeconfig_problem(target: Target, exc: Exception) -> str:
    message = str(exc)
    if target.context is not None and "contexts list" in message:
        from kubernetes import config

        try:
            contexts, _ = config.list_kube_config_contexts(target.kubeconfig)  # type: ignore[no-untyped-call]
            names = ", ".join(sorted(str(c["name"]) for c in contexts)) or "none"
        except Exception:
            names = "unknown"
        return (
            f"context {target.context!r} is not in kubeconfig {target.kubeconfig} (it has: {names})"
        )
    if "No configuration found" in message:
        return f"kubeconfig {target.kubeconfig} is empty or has no usable configuration"
    if "current_context" in message or "current-context" in message:
        return f"kubeconfig {target.kubeconfig} has no current-context: set `context` in the check"
    return f"cannot load kubeconfig {target.kubeconfig}: {clip(message, QUOTE_CHARS)}"


@dataclass
class Caller:
    """Runs one synchronous client call in a thread and translates what it raises."""

    api: ApiClient
    timeout_s: float
    in_cluster: bool

    @property
    def host(self) -> str:
        host: str = self.api.configuration.host
        return host

    def sync(self, request: Request, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, _request_timeout=self.timeout_s, **kw)
        except ValidationError as exc:  # a server that is not quite Kubernetes
            raise KubernetesError(
                f"the Kubernetes API at {self.host} sent a {request} answer the client could "
                f"not read: {clip(str(exc), 200)}"
            ) from exc
        except (ApiException, HTTPError, OSError) as exc:
            if is_timeout(exc):
                raise KubernetesError(self.timeout_message()) from exc
            raise describe_api_error(exc, request, self.host, in_cluster=self.in_cluster) from exc

    def timeout_message(self) -> str:
        return f"the Kubernetes API at {self.host} did not answer within {self.timeout_s:g} s"

    def list_all(self, request: Request, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """Every item, following `continue` tokens page by page."""
        items: list[Any] = []
        token: str | None = None
        while True:
            page = self.sync(request, fn, *args, limit=PAGE_SIZE, _continue=token, **kw)
            items.extend(page.items)
            token = page.metadata.var_continue if page.metadata is not None else None
            if not token:
                return items

    async def run(self, request: Request, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return await asyncio.to_thread(self.list_all, request, fn, *args, **kw)


RESOURCES: dict[str, tuple[str, str, str]] = {
    # resource -> (API class, API group, method stem of list_namespaced_<stem> and
    # list_<stem>_for_all_namespaces)
    "pods": ("CoreV1Api", "", "pod"),
    "services": ("CoreV1Api", "", "service"),
    "serviceaccounts": ("CoreV1Api", "", "service_account"),
    "persistentvolumeclaims": ("CoreV1Api", "", "persistent_volume_claim"),
    "events": ("CoreV1Api", "", "event"),
    "deployments": ("AppsV1Api", "apps", "deployment"),
    "statefulsets": ("AppsV1Api", "apps", "stateful_set"),
    "daemonsets": ("AppsV1Api", "apps", "daemon_set"),
    "replicasets": ("AppsV1Api", "apps", "replica_set"),
    "jobs": ("BatchV1Api", "batch", "job"),
    "cronjobs": ("BatchV1Api", "batch", "cron_job"),
    # the RBAC and network sweeps (jobs.sweeps.k8s.rbac, jobs.sweeps.k8s.network)
    "roles": ("RbacAuthorizationV1Api", "rbac.authorization.k8s.io", "role"),
    "rolebindings": ("RbacAuthorizationV1Api", "rbac.authorization.k8s.io", "role_binding"),
    "networkpolicies": ("NetworkingV1Api", "networking.k8s.io", "network_policy"),
}
CLUSTER_RESOURCES: dict[str, tuple[str, str, str]] = {
    # cluster-scoped resource -> (API class, API group, method stem of list_<stem>)
    "nodes": ("CoreV1Api", "", "node"),
    "namespaces": ("CoreV1Api", "", "namespace"),
    "clusterroles": ("RbacAuthorizationV1Api", "rbac.authorization.k8s.io", "cluster_role"),
    "clusterrolebindings": (
        "RbacAuthorizationV1Api",
        "rbac.authorization.k8s.io",
        "cluster_role_binding",
    ),
}
METRICS_MISSING = "metrics.k8s.io is not available (metrics-server not installed?)"


class MetricsError(KubernetesError):
    """metrics.k8s.io is not served, or answered something else; the message says which."""


async def cached_client(clients: dict[str, Any], target: Target) -> ApiClient:
    """The ApiClient for `target` kept in `clients` (a CheckContext's), built the first time in
    a thread: loading a kubeconfig may run an exec credential plugin."""
    api: ApiClient | None = clients.get(target.cache_key)
    if api is None:
        api = await asyncio.to_thread(build_client, target)
        clients[target.cache_key] = api
    return api


def current_context(kubeconfig: str) -> tuple[str, ApiClient]:
    """The name of the kubeconfig's current-context, and a client for it."""
    api = build_client(Target(kubeconfig, None, False))  # the check's messages for a bad file
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(kubeconfig)  # type: ignore[no-untyped-call]
        return str(active["name"]), api
    except Exception as exc:  # a user's file: any failure is a config problem
        raise KubernetesError(
            f"cannot read the current-context of {kubeconfig}: {clip(str(exc), QUOTE_CHARS)}"
        ) from exc


def list_calls(
    caller: Caller, resource: str, namespaces: tuple[str, ...], **options: Any
) -> list[Coroutine[Any, Any, list[Any]]]:
    """One call listing every `resource` per namespace (empty: one for all namespaces)."""
    from kubernetes import client

    api_class, group, stem = RESOURCES[resource]
    api = getattr(client, api_class)(caller.api)
    calls = []
    for namespace in namespaces or (None,):
        request = Request(resource, namespace, group)
        if namespace is None:
            everywhere = getattr(api, f"list_{stem}_for_all_namespaces")
            calls.append(caller.run(request, everywhere, **options))
        else:
            namespaced = getattr(api, f"list_namespaced_{stem}")
            calls.append(caller.run(request, namespaced, namespace, **options))
    return calls


def cluster_list_call(
    caller: Caller, resource: str, **options: Any
) -> Coroutine[Any, Any, list[Any]]:
    """The call listing every object of a cluster-scoped `resource` (nodes, ClusterRoles …)."""
    from kubernetes import client

    api_class, group, stem = CLUSTER_RESOURCES[resource]
    listing = getattr(getattr(client, api_class)(caller.api), f"list_{stem}")
    request = Request(resource, group=group, cluster_scoped=True)
    result: Coroutine[Any, Any, list[Any]] = caller.run(request, listing, **options)
    return result


async def collect(caller: Caller, scope: Scope) -> Snapshot:
    """List everything in scope concurrently; the first failure (in a fixed order) wins."""
    labels = {"label_selector": scope.label_selector} if scope.label_selector else {}
    plan = [
        ("pods", "pods", labels),
        ("deployments", "deployments", labels),
        ("statefulsets", "statefulsets", labels),
        ("daemonsets", "daemonsets", labels),
        ("pvcs", "persistentvolumeclaims", labels),
        ("jobs", "jobs", labels),
    ]
    if scope.events:
        plan.append(("events", "events", {"field_selector": "type=Warning"}))
    calls = [
        (name, call)
        for name, resource, options in plan
        for call in list_calls(caller, resource, scope.namespaces, **options)
    ]
    if scope.nodes:
        from kubernetes import client

        nodes = client.CoreV1Api(caller.api).list_node
        request = Request("nodes", cluster_scoped=True, avoid="set nodes = false")
        calls.append(("nodes", caller.run(request, nodes)))
    outcomes = await asyncio.gather(*(call for _, call in calls), return_exceptions=True)

    snapshot = Snapshot(nodes=[] if scope.nodes else None)
    for (name, _), outcome in zip(calls, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            raise outcome
        getattr(snapshot, name).extend(outcome)
    if scope.metrics:
        snapshot.usage, snapshot.usage_problem = await _usage(caller, scope)
    return snapshot


async def pod_usage(
    caller: Caller, namespaces: tuple[str, ...], label_selector: str | None = None
) -> list[PodUsage]:
    """Current pod usage from metrics.k8s.io: one sample, as `kubectl top pods` shows it.
    Raises MetricsError when it is not served or not understood, KubernetesError otherwise."""
    from kubernetes import client

    custom = client.CustomObjectsApi(caller.api)
    selector = {"label_selector": label_selector} if label_selector else {}
    usage: list[PodUsage] = []
    for namespace in namespaces or (None,):
        request = Request("pods", namespace, "metrics.k8s.io")
        fn: Callable[..., Any]
        if namespace is None:
            args: tuple[Any, ...] = ("metrics.k8s.io", "v1beta1", "pods")
            fn = custom.list_cluster_custom_object
        else:
            args = ("metrics.k8s.io", "v1beta1", namespace, "pods")
            fn = custom.list_namespaced_custom_object
        try:
            raw = await asyncio.to_thread(caller.sync, request, fn, *args, **selector)
        except KubernetesError as exc:
            if getattr(exc.__cause__, "status", None) in (404, 503):
                raise MetricsError(METRICS_MISSING) from exc
            raise
        try:
            usage.extend(_PodUsageList.model_validate(raw).items)
        except ValidationError as exc:
            raise MetricsError(
                "metrics.k8s.io answered something that is not a PodMetricsList "
                f"({clip(str(exc), 150)})"
            ) from exc
    return usage


async def _usage(caller: Caller, scope: Scope) -> tuple[list[PodUsage] | None, str | None]:
    """Pod metrics from metrics.k8s.io, or why they could not be read."""
    try:
        return await pod_usage(caller, scope.namespaces, scope.label_selector), None
    except MetricsError as exc:
        return None, f"{exc.message}: CPU/memory thresholds not checked"
    except KubernetesError as exc:
        return (
            None,
            f"cannot read metrics.k8s.io ({exc.message}): CPU/memory thresholds not checked",
        )
