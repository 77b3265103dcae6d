"""Kubernetes security rules over container settings the Pod Security Standards' restricted
profile and the CIS Kubernetes Benchmark ask for: no privilege escalation, a read-only root
filesystem, resource limits, and images pinned to a version rather than `:latest`.

Each workload is judged once (see `workloads`); evidence names containers and images only.
"""

from __future__ import annotations

from daemon.models import Severity
from jobs.sweeps.base import Rule
from jobs.sweeps.k8s.rule import CONTEXT, each_workload, security_meta
from jobs.sweeps.k8s.workloads import Container, Workload, container_patch, labels
from jobs.sweeps.rule import Hit, rule

PSS = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"
RESOURCES = "https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/"
IMAGES = "https://kubernetes.io/docs/concepts/containers/images/#image-names"


def _workload_ref(w: Workload) -> str:
    return f"{w.kind.lower()}/{w.name}"


@rule(
    security_meta(
        "k8s.pod.privilege_escalation",
        "Container allows privilege escalation",
        Severity.MEDIUM,
        "A setuid binary or file capability in the image can give the process more privileges "
        "than it started with.",
        "Set securityContext.allowPrivilegeEscalation: false on every container.",
        reference=PSS,
        controls=("cis-k8s:5.2.6", "soc2:CC6.1"),
    ),
    CONTEXT,
)
@each_workload
def privilege_escalation(w: Workload) -> Hit | None:
    found = [
        c
        for c in w.containers()
        if c.spec.security_context is None
        or c.spec.security_context.allow_privilege_escalation is not False
    ]
    if not found:
        return None
    evidence = (
        f"{w.label}: {labels(found)} may escalate privileges (allowPrivilegeEscalation unset "
        "or true)"
    )
    fields = {"securityContext": {"allowPrivilegeEscalation": False}}
    what = "set securityContext.allowPrivilegeEscalation: false"
    return w.hit(evidence, w.fix(container_patch(found, fields), what))


@rule(
    security_meta(
        "k8s.pod.writable_root_fs",
        "Container root filesystem is writable",
        Severity.LOW,
        "An intruder can drop tools and change binaries inside the container.",
        "Set securityContext.readOnlyRootFilesystem: true; mount an emptyDir where the "
        "process must write.",
        reference=PSS,
        controls=("cis-k8s:5.7.3", "soc2:CC6.1"),
    ),
    CONTEXT,
)
@each_workload
def writable_root_fs(w: Workload) -> Hit | None:
    found = [
        c
        for c in w.containers()
        if c.spec.security_context is None
        or c.spec.security_context.read_only_root_filesystem is not True
    ]
    if not found:
        return None
    evidence = f"{w.label}: {labels(found)} can write to its root filesystem"
    fields = {"securityContext": {"readOnlyRootFilesystem": True}}
    what = "set securityContext.readOnlyRootFilesystem: true"
    return w.hit(evidence, w.fix(container_patch(found, fields), what))


def _missing_limits(c: Container) -> list[str]:
    limits = (c.spec.resources.limits if c.spec.resources else None) or {}
    return [kind for kind in ("cpu", "memory") if kind not in limits]


@rule(
    security_meta(
        "k8s.pod.no_limits",
        "Container has no CPU or memory limit",
        Severity.LOW,
        "One runaway or attacked container can starve everything else on its node.",
        "Set resources.limits.memory (and cpu where throttling is acceptable) from the "
        "container's observed use.",
        reference=RESOURCES,
        controls=("soc2:CC6.1",),
    ),
    CONTEXT,
)
@each_workload
def no_limits(w: Workload) -> Hit | None:
    found = [(c, missing) for c in w.containers() if (missing := _missing_limits(c))]
    if not found:
        return None
    evidence = f"{w.label}: " + "; ".join(
        f"{c.label} has no {' or '.join(missing)} limit" for c, missing in found
    )
    return w.hit(evidence, limits_fix(w, found))


def limits_fix(w: Workload, found: list[tuple[Container, list[str]]]) -> str:
    """The command that adds the missing limits, for what owns the pod template:
    - Deployment, StatefulSet, DaemonSet: `kubectl set resources` (a rollout follows), one
      command per container, naming only the limits it lacks;
    - CronJob: a strategic-merge patch of its job template (the next run gets it);
    - a Job: its pod template is immutable, so the manifest that creates it changes;
    - a bare Pod: container resources cannot be added in place (limits change the pod's QoS
      class, which an in-place resize may not), so the pod is recreated with them."""
    if w.kind in ("Deployment", "StatefulSet", "DaemonSet"):
        return " && ".join(
            w.kubectl(
                f"set resources {_workload_ref(w)} -c {c.spec.name} --limits="
                + ",".join(f"{kind}=<{kind}>" for kind in missing)
            )
            for c, missing in found
        )
    if w.kind == "CronJob":
        patch = {
            key: [
                {"name": c.spec.name, "resources": {"limits": {k: f"<{k}>" for k in missing}}}
                for c, missing in found
                if c.key == key
            ]
            for key in dict.fromkeys(c.key for c, _ in found)
        }
        return w.fix(patch, "")
    what = "; ".join(f"{c.label}: resources.limits.{'/'.join(m)}" for c, m in found)
    if w.kind == "Job":
        return w.kubectl(
            f"get job {w.name} -o yaml  # a Job's pod template cannot change: set {what} in "
            "the manifest that creates it, for its next run"
        )
    return w.kubectl(
        f"get pod {w.name} -o yaml > {w.name}.yaml  # a running pod's limits cannot be added: "
        f"set {what}, then recreate it: kubectl replace --force -f {w.name}.yaml "
        "(better: run it under a Deployment)"
    )


def _unpinned(image: str) -> str | None:
    """Why `image` is not pinned: `:latest`, or no tag at all (which means latest)."""
    if "@sha256:" in image:
        return None
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return "has no tag (latest)"
    if name.rsplit(":", 1)[1] == "latest":
        return "uses :latest"
    return None


@rule(
    security_meta(
        "k8s.pod.latest_image",
        "Container image is not pinned",
        Severity.LOW,
        "What runs changes whenever the tag moves: an unreviewed (or poisoned) image can "
        "arrive with the next restart, and a rollback has nothing to go back to.",
        "Pin the image to a version tag, better to a digest (image@sha256:…).",
        reference=IMAGES,
        controls=("soc2:CC7.1",),
    ),
    CONTEXT,
)
@each_workload
def latest_image(w: Workload) -> Hit | None:
    found = [(c, why) for c in w.containers() if (why := _unpinned(c.spec.image or ""))]
    if not found:
        return None
    evidence = f"{w.label}: " + "; ".join(
        f"{c.label} image {c.spec.image} {why}" for c, why in found
    )
    first = found[0][0].spec
    image = first.image or ""
    base = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    command = w.kubectl(f"set image {_workload_ref(w)} {first.name}={base}:<version>")
    return w.hit(evidence, command)


RULES: list[Rule] = [privilege_escalation, writable_root_fs, no_limits, latest_image]
