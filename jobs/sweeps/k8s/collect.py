"""Kubernetes datasets for the sweep rules: each list fetched once per sweep per context through
the `kubernetes` check's client, caller and error sentences, plus the pod specs rules judge.

`kubernetes` is imported only inside functions, Secret objects are never read, and every
expected API failure becomes a `CollectError` carrying the check's own sentence.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from daemon.models import Finding, Severity
from daemon.util.text import clip
from jobs.kubernetes.api import (
    Caller,
    PodUsage,
    Target,
    build_client,
    default_kubeconfig,
    expand_paths,
)
from jobs.kubernetes.errors import QUOTE_CHARS, KubernetesError, Request
from jobs.sweeps.base import CollectError, KubernetesScope, RuleMeta, SweepContext

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, V1Container, V1ObjectMeta, V1PodSpec

METRICS_MISSING = "metrics.k8s.io is not available (metrics-server not installed?)"

_LISTINGS: dict[str, tuple[str, str, str]] = {
    # dataset -> (API class, API group, method stem: list_namespaced_<stem> / list_<stem>_for_all…)
    "pods": ("CoreV1Api", "", "pod"),
    "services": ("CoreV1Api", "", "service"),
    "serviceaccounts": ("CoreV1Api", "", "service_account"),
    "deployments": ("AppsV1Api", "apps", "deployment"),
    "statefulsets": ("AppsV1Api", "apps", "stateful_set"),
    "daemonsets": ("AppsV1Api", "apps", "daemon_set"),
    "replicasets": ("AppsV1Api", "apps", "replica_set"),
    "jobs": ("BatchV1Api", "batch", "job"),
    "cronjobs": ("BatchV1Api", "batch", "cron_job"),
}
_TEMPLATE_PATH: dict[str, tuple[str, ...]] = {
    # kind -> where its pod template sits; pods and Jobs have none that can be patched
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


# --- clients and contexts ------------------------------------------------------------------------


def _scope(ctx: SweepContext) -> KubernetesScope:
    return ctx.kubernetes or KubernetesScope()


def _kubeconfig(ctx: SweepContext) -> str:
    return expand_paths(_scope(ctx).kubeconfig or default_kubeconfig())


async def contexts(ctx: SweepContext) -> tuple[str, ...]:
    """The contexts to sweep: the scope's, else the kubeconfig's current-context by name."""
    if _scope(ctx).contexts:
        return _scope(ctx).contexts

    async def current() -> tuple[str, ...]:
        path = _kubeconfig(ctx)
        async with _as_collect_error(ctx, None, None):
            name, api = await asyncio.to_thread(_current_context, path)
        ctx.check.clients.setdefault(Target(path, name, False).cache_key, api)
        return (name,)

    found: tuple[str, ...] = await ctx.collect("k8s:contexts", current)
    return found


def _current_context(path: str) -> tuple[str, ApiClient]:
    api = build_client(Target(path, None, False))  # the check's own messages for a bad file
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(path)  # type: ignore[no-untyped-call]
        return str(active["name"]), api
    except Exception as exc:  # a user's file: any failure is a config problem
        raise KubernetesError(
            f"cannot read the current-context of {path}: {clip(str(exc), QUOTE_CHARS)}"
        ) from exc


async def _caller(ctx: SweepContext, context: str) -> Caller:
    """The shared (cached across sweeps) client for `context`, built once in a thread."""
    target = Target(_kubeconfig(ctx), context, False)

    async def build() -> ApiClient:
        api: ApiClient | None = ctx.check.clients.get(target.cache_key)
        if api is None:
            async with _as_collect_error(ctx, context, None):
                api = await asyncio.to_thread(build_client, target)
            ctx.check.clients[target.cache_key] = api
        return api

    api: ApiClient = await ctx.collect(f"k8s:{context}:client", build)
    return Caller(api, ctx.timeout_s, in_cluster=False)


@asynccontextmanager
async def _as_collect_error(
    ctx: SweepContext, context: str | None, caller: Caller | None
) -> AsyncIterator[None]:
    """Expected API failures, timeouts included, as a CollectError naming the context."""
    prefix = f"context {context}: " if context else ""
    try:
        async with asyncio.timeout(ctx.timeout_s):
            yield
    except TimeoutError as exc:
        waited = f"the kubeconfig did not load within {ctx.timeout_s:g} s"
        message = caller.timeout_message() if caller else waited
        raise CollectError(prefix + message) from exc
    except KubernetesError as exc:
        if exc.stale_client and context:
            ctx.check.clients.pop(Target(_kubeconfig(ctx), context, False).cache_key, None)
        raise CollectError(prefix + exc.message) from exc


# --- datasets ------------------------------------------------------------------------------------


async def dataset(ctx: SweepContext, context: str, name: str) -> list[Any]:
    """Every object of one kind in the scope's namespaces (typed client models)."""

    async def fetch() -> list[Any]:
        caller = await _caller(ctx, context)  # fails with the install hint without the client
        from kubernetes import client

        api_class, group, stem = _LISTINGS[name]
        api = getattr(client, api_class)(caller.api)
        calls = []
        for namespace in _scope(ctx).namespaces or (None,):
            request = Request(name, namespace, group)
            if namespace is None:
                calls.append(caller.run(request, getattr(api, f"list_{stem}_for_all_namespaces")))
            else:
                calls.append(
                    caller.run(request, getattr(api, f"list_namespaced_{stem}"), namespace)
                )
        async with _as_collect_error(ctx, context, caller):
            pages = await asyncio.gather(*calls)
        return [item for page in pages for item in page]

    items: list[Any] = await ctx.collect(f"k8s:{context}:{name}", fetch)
    return items


async def pod_usage(ctx: SweepContext, context: str) -> list[PodUsage]:
    """Current pod usage from metrics.k8s.io: one sample, as `kubectl top pods` shows it."""

    async def fetch() -> list[PodUsage]:
        caller = await _caller(ctx, context)  # fails with the install hint without the client
        from kubernetes import client

        custom = client.CustomObjectsApi(caller.api)
        usage: list[PodUsage] = []
        for namespace in _scope(ctx).namespaces or (None,):
            request = Request("pods", namespace, "metrics.k8s.io")
            call = _metrics_call(custom, namespace)
            async with _as_collect_error(ctx, context, caller):
                try:
                    raw = await asyncio.to_thread(caller.sync, request, *call)
                except KubernetesError as exc:
                    if getattr(exc.__cause__, "status", None) in (404, 503):
                        raise KubernetesError(METRICS_MISSING) from exc
                    raise
            try:
                usage += [PodUsage.model_validate(item) for item in raw.get("items") or []]
            except (AttributeError, ValidationError) as exc:
                raise CollectError(
                    f"context {context}: metrics.k8s.io answered something that is not a "
                    f"PodMetricsList ({clip(str(exc), 150)})"
                ) from exc
        return usage

    found: list[PodUsage] = await ctx.collect(f"k8s:{context}:pod_metrics", fetch)
    return found


def _metrics_call(custom: Any, namespace: str | None) -> tuple[Any, ...]:
    if namespace is None:
        return (custom.list_cluster_custom_object, "metrics.k8s.io", "v1beta1", "pods")
    return (custom.list_namespaced_custom_object, "metrics.k8s.io", "v1beta1", namespace, "pods")


# --- what security rules judge -------------------------------------------------------------------


@dataclass(frozen=True)
class Container:
    key: str
    """Where it sits in the pod spec (for a strategic-merge patch): containers/initContainers."""
    spec: V1Container

    @property
    def label(self) -> str:
        noun = "init container" if self.key == "initContainers" else "container"
        return f"{noun} {self.spec.name}"


def container_patch(containers: list[Container], fields: dict[str, Any]) -> dict[str, Any]:
    """Strategic-merge patch of a pod spec: containers merge by name."""
    patch: dict[str, Any] = {}
    for c in containers:
        patch.setdefault(c.key, []).append({"name": c.spec.name, **fields})
    return patch


def labels(containers: list[Container]) -> str:
    return ", ".join(c.label for c in containers)


@dataclass(frozen=True)
class Workload:
    """A pod template (of a Deployment, StatefulSet, DaemonSet, Job or CronJob) or a bare pod."""

    context: str
    kind: str
    namespace: str
    name: str
    spec: V1PodSpec

    @property
    def resource(self) -> str:
        return f"{self.namespace}/{self.kind}/{self.name}"

    @property
    def location(self) -> str:
        return f"{self.context}/{self.namespace}"

    @property
    def label(self) -> str:
        """`Deployment prod/checkout`, as evidence names it."""
        return f"{self.kind} {self.namespace}/{self.name}"

    def containers(self) -> list[Container]:
        """Init containers, then containers (ephemeral debug containers are not the spec's)."""
        init = [Container("initContainers", c) for c in self.spec.init_containers or []]
        return init + [Container("containers", c) for c in self.spec.containers]

    def kubectl(self, args: str) -> str:
        return kubectl(self.context, self.namespace, args)

    def fix(self, pod_spec_patch: dict[str, Any], what: str) -> str:
        """A strategic-merge patch of the pod template; pods and Jobs are immutable there, so
        for them: export, edit, replace."""
        path = _TEMPLATE_PATH.get(self.kind)
        if path is None:
            noun = self.kind.lower()
            return self.kubectl(
                f"get {noun} {self.name} -o yaml > {self.name}.yaml  # {what}, then: "
                f"kubectl replace --force -f {self.name}.yaml"
            )
        body: dict[str, Any] = {"spec": pod_spec_patch}
        for key in reversed(path):
            body = {key: body}
        patch = json.dumps(body, separators=(",", ":"))
        return self.kubectl(f"patch {self.kind.lower()} {self.name} -p {shlex.quote(patch)}")


async def workloads(ctx: SweepContext, context: str) -> list[Workload]:
    """Every pod template in scope once: a pod is judged only when no judged template owns it
    (directly, or through a Deployment's ReplicaSet or a CronJob's Job)."""
    kinds = ("deployments", "statefulsets", "daemonsets", "cronjobs", "jobs", "replicasets", "pods")
    listed = await asyncio.gather(*(dataset(ctx, context, kind) for kind in kinds))
    deploys, stss, dss, cronjobs, jobs, rss, pods = listed
    found: list[Workload] = []
    judged: set[str] = set()

    def judge(kind: str, obj: Any, spec: V1PodSpec | None) -> None:
        if spec is not None and obj.metadata is not None:
            meta: V1ObjectMeta = obj.metadata
            found.append(Workload(context, kind, meta.namespace or "", meta.name or "", spec))
            judged.add(meta.uid or "")

    for kind, objs in (("Deployment", deploys), ("StatefulSet", stss), ("DaemonSet", dss)):
        for obj in objs:
            judge(kind, obj, obj.spec.template.spec if obj.spec else None)
    for obj in cronjobs:
        template = obj.spec.job_template.spec if obj.spec and obj.spec.job_template else None
        judge("CronJob", obj, template.template.spec if template else None)
    for obj in jobs:
        if controller_uid(obj.metadata) in judged:
            judged.add(obj.metadata.uid)  # a CronJob's run: its template is the CronJob's
        else:
            judge("Job", obj, obj.spec.template.spec if obj.spec else None)
    judged |= {rs.metadata.uid for rs in rss if controller_uid(rs.metadata) in judged}
    for obj in pods:
        if controller_uid(obj.metadata) not in judged:
            judge("Pod", obj, obj.spec)
    return found


@dataclass(frozen=True)
class Issue:
    evidence: str
    cli: str
    severity: Severity | None = None
    """Set when this finding is more (or less) severe than the rule's default; the evidence
    says why."""

    def finding(self, meta: RuleMeta, w: Workload) -> Finding:
        return finding(
            meta,
            resource=w.resource,
            location=w.location,
            evidence=self.evidence,
            cli=self.cli,
            severity=self.severity,
        )


@dataclass
class TemplateRule:
    """A judgement over every pod template (and bare pod) in scope, once each."""

    meta: RuleMeta
    judge: Callable[[Workload], Issue | None]

    async def evaluate(self, ctx: SweepContext) -> list[Finding]:
        findings: list[Finding] = []
        for context in await contexts(ctx):
            for w in await workloads(ctx, context):
                if issue := self.judge(w):
                    findings.append(issue.finding(self.meta, w))
        return findings


def kubectl(context: str, namespace: str, args: str) -> str:
    return f"kubectl --context {shlex.quote(context)} -n {namespace} {args}"


def controller_uid(meta: V1ObjectMeta | None) -> str | None:
    for ref in (meta.owner_references if meta else None) or []:
        if ref.controller:
            return ref.uid
    return None


def finding(
    meta: RuleMeta,
    *,
    resource: str,
    location: str,
    evidence: str,
    cli: str | None,
    severity: Severity | None = None,
    title: str | None = None,
    savings: float | None = None,
) -> Finding:
    return Finding(
        rule=meta.id,
        kind=meta.kind,
        severity=severity or meta.severity,
        title=title or meta.title,
        resource=resource,
        location=location,
        evidence=evidence,
        remediation=meta.remediation,
        remediation_cli=cli,
        est_monthly_savings_usd=savings,
    )
