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


@dataclass(frozen=True)
class _Listing:
    """One kind of object to list, and the Snapshot field it fills."""

    field: str
    resource: str
    group: str
    everywhere: Callable[..., Any]
    """The `list_*_for_all_namespaces` call."""
    namespaced: Callable[..., Any]
    options: dict[str, Any]


def _listings(api: ApiClient, scope: Scope) -> list[_Listing]:
    from kubernetes import client

    core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
    labels = {"label_selector": scope.label_selector} if scope.label_selector else {}
    listings = [
        _Listing(
            "pods", "pods", "", core.list_pod_for_all_namespaces, core.list_namespaced_pod, labels
        ),
        _Listing(
            "deployments",
            "deployments",
            "apps",
            apps.list_deployment_for_all_namespaces,
            apps.list_namespaced_deployment,
            labels,
        ),
        _Listing(
            "statefulsets",
            "statefulsets",
            "apps",
            apps.list_stateful_set_for_all_namespaces,
            apps.list_namespaced_stateful_set,
            labels,
        ),
        _Listing(
            "daemonsets",
            "daemonsets",
            "apps",
            apps.list_daemon_set_for_all_namespaces,
            apps.list_namespaced_daemon_set,
            labels,
        ),
        _Listing(
            "pvcs",
            "persistentvolumeclaims",
            "",
            core.list_persistent_volume_claim_for_all_namespaces,
            core.list_namespaced_persistent_volume_claim,
            labels,
        ),
        _Listing(
            "jobs",
            "jobs",
            "batch",
            batch.list_job_for_all_namespaces,
            batch.list_namespaced_job,
            labels,
        ),
    ]
    if scope.events:
        listings.append(
            _Listing(
                "events",
                "events",
                "",
                core.list_event_for_all_namespaces,
                core.list_namespaced_event,
                {"field_selector": "type=Warning"},
            )
        )
    return listings


async def collect(caller: Caller, scope: Scope) -> Snapshot:
    """List everything in scope concurrently; the first failure (in a fixed order) wins."""
    from kubernetes import client

    calls: list[tuple[str, Coroutine[Any, Any, Any]]] = []
    for listing in _listings(caller.api, scope):
        for namespace in scope.namespaces or (None,):
            request = Request(listing.resource, namespace, listing.group)
            if namespace is None:
                call = caller.run(request, listing.everywhere, **listing.options)
            else:
                call = caller.run(request, listing.namespaced, namespace, **listing.options)
            calls.append((listing.field, call))
    if scope.nodes:
        nodes = client.CoreV1Api(caller.api).list_node
        calls.append(("nodes", caller.run(Request("nodes", cluster_scoped=True), nodes)))
    outcomes = await asyncio.gather(*(call for _, call in calls), return_exceptions=True)

    snapshot = Snapshot(nodes=[] if scope.nodes else None)
    for (name, _), outcome in zip(calls, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            raise outcome
        getattr(snapshot, name).extend(outcome)
    if scope.metrics:
        snapshot.usage, snapshot.usage_problem = await _usage(caller, scope)
    return snapshot


async def _usage(caller: Caller, scope: Scope) -> tuple[list[PodUsage] | None, str | None]:
    """Pod metrics from metrics.k8s.io, or why they could not be read."""
    from kubernetes import client

    custom = client.CustomObjectsApi(caller.api)
    selector = {"label_selector": scope.label_selector} if scope.label_selector else {}
    usage: list[PodUsage] = []
    for namespace in scope.namespaces or (None,):
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
            cause = getattr(exc.__cause__, "status", None)
            if cause in (404, 503):
                return None, (
                    "metrics.k8s.io is not available (metrics-server not installed?): "
                    "CPU/memory thresholds not checked"
                )
            return (
                None,
                f"cannot read metrics.k8s.io ({exc.message}): CPU/memory thresholds not checked",
            )
        try:
            usage.extend(_PodUsageList.model_validate(raw).items)
        except ValidationError as exc:
            return None, (
                f"metrics.k8s.io answered something that is not a PodMetricsList "
                f"({clip(str(exc), 150)}): CPU/memory thresholds not checked"
            )
    return usage, None
