"""The pod templates the Kubernetes security rules judge: every Deployment, StatefulSet,
DaemonSet, CronJob and Job template, and each bare pod, once, with how to patch each.

Built from the collector's datasets; never calls the API itself and never reads a Secret.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from daemon.models import Severity
from jobs.sweeps.base import SweepContext
from jobs.sweeps.k8s.collect import dataset
from jobs.sweeps.rule import Hit

if TYPE_CHECKING:
    from kubernetes.client import V1Container, V1ObjectMeta, V1PodSpec

_TEMPLATE_PATH: dict[str, tuple[str, ...]] = {
    # kind -> where its pod template sits; pods and Jobs have none that can be patched
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


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

    def hit(self, evidence: str, command: str, severity: Severity | None = None) -> Hit:
        """A finding on this workload, located in its context and namespace."""
        return Hit(
            self.resource, evidence, command=command, severity=severity, location=self.location
        )

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


def kubectl(context: str, namespace: str, args: str) -> str:
    return f"kubectl --context {shlex.quote(context)} -n {namespace} {args}"


def controller_uid(meta: V1ObjectMeta | None) -> str | None:
    for ref in (meta.owner_references if meta else None) or []:
        if ref.controller:
            return ref.uid
    return None
