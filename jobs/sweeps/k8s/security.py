"""Kubernetes security sweep: pod templates and bare pods judged for privilege, host access,
root users, literal secrets and token exposure; LoadBalancer Services for open source ranges.

Each workload is judged once (pods owned by a judged template are skipped). Evidence names
variables, paths and fields — never the value of an environment variable.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from daemon.models import Severity
from jobs.sweeps.base import Rule, SweepContext
from jobs.sweeps.k8s.collect import dataset
from jobs.sweeps.k8s.rule import CONTEXT, each_workload, security_meta
from jobs.sweeps.k8s.workloads import Workload, container_patch, kubectl, labels, workloads
from jobs.sweeps.rule import Hit, rule

if TYPE_CHECKING:
    from kubernetes.client import V1Container, V1PodSecurityContext, V1SecurityContext

PSS = "https://kubernetes.io/docs/concepts/security/pod-security-standards/"
"""The Pod Security Standards: what the privileged, host and root rules measure against."""

# --- pod templates ---------------------------------------------------------------------------


@rule(
    security_meta(
        "k8s.pod.privileged",
        "Privileged container",
        Severity.HIGH,
        "A privileged container is root on the node: escaping it is trivial.",
        "Remove securityContext.privileged; grant only the capabilities the process needs "
        "(securityContext.capabilities.add) and enforce the baseline Pod Security Standard.",
        reference=PSS,
        controls=("cis-k8s:5.2.2", "soc2:CC6.1", "hipaa:164.312(a)(1)"),
    ),
    CONTEXT,
)
@each_workload
def privileged(w: Workload) -> Hit | None:
    found = [
        c for c in w.containers() if c.spec.security_context and c.spec.security_context.privileged
    ]
    if not found:
        return None
    evidence = (
        f"{w.label}: {labels(found)} run{'s' if len(found) == 1 else ''} privileged "
        "(securityContext.privileged: true), "
        "i.e. as root on the node with every capability and the host's devices"
    )
    fields = {"securityContext": {"privileged": False}}
    return w.hit(
        evidence, w.fix(container_patch(found, fields), "set securityContext.privileged: false")
    )


_HOST_NAMESPACES = (
    ("hostNetwork", "host_network", "network"),
    ("hostPID", "host_pid", "process (PID)"),
    ("hostIPC", "host_ipc", "IPC"),
)


@rule(
    security_meta(
        "k8s.pod.host_namespaces",
        "Pod shares the node's network, PID or IPC namespace",
        Severity.HIGH,
        "Host namespaces let a container sniff node traffic, reach services bound to "
        "localhost, and see or signal every process on the node.",
        "Set hostNetwork, hostPID and hostIPC to false; expose ports through a Service "
        "instead of the node's network.",
        reference=PSS,
        controls=("cis-k8s:5.2.3", "cis-k8s:5.2.4", "cis-k8s:5.2.5", "soc2:CC6.1"),
    ),
    CONTEXT,
)
@each_workload
def host_namespaces(w: Workload) -> Hit | None:
    shared = [(field, noun) for field, attr, noun in _HOST_NAMESPACES if getattr(w.spec, attr)]
    if not shared:
        return None
    nouns = ", ".join(noun for _, noun in shared)
    fields = ", ".join(f"{field}: true" for field, _ in shared)
    evidence = (
        f"{w.label} shares the node's {nouns} namespace{'s' if len(shared) > 1 else ''} "
        f"({fields}): its containers see and can reach the node's other processes and traffic"
    )
    patch = {field: False for field, _ in shared}
    return w.hit(evidence, w.fix(patch, f"set {', '.join(f for f, _ in shared)} to false"))


def root_reason(pod: V1PodSecurityContext | None, own: V1SecurityContext | None) -> str | None:
    """Why a container runs (or may run) as root, or None: the container's setting wins over
    the pod's; runAsNonRoot: true makes the kubelet refuse to start it as root."""

    def pick(attr: str) -> tuple[Any, str]:
        if own is not None and getattr(own, attr) is not None:
            return getattr(own, attr), "container"
        if pod is not None and getattr(pod, attr) is not None:
            return getattr(pod, attr), "pod"
        return None, ""

    non_root, non_root_at = pick("run_as_non_root")
    user, user_at = pick("run_as_user")
    if non_root is True or user not in (None, 0):
        return None
    guard = (
        "runAsNonRoot unset at pod and container level"
        if non_root is None
        else f"runAsNonRoot: false at {non_root_at} level"
    )
    if user == 0:
        return f"runs as root (runAsUser: 0 at {user_at} level; {guard})"
    return (
        f"may run as root (runAsUser unset at pod and container level, so the image's USER "
        f"decides; {guard})"
    )


@rule(
    security_meta(
        "k8s.pod.run_as_root",
        "Container runs as root",
        Severity.MEDIUM,
        "Root in a container turns a runtime or kernel bug into node compromise, and can "
        "write anything the image or its volumes hold.",
        "Set securityContext.runAsNonRoot: true and a non-zero runAsUser (pod or container "
        "level), and build the image with a non-root USER.",
        reference=PSS,
        controls=("cis-k8s:5.2.7", "soc2:CC6.1"),
    ),
    CONTEXT,
)
@each_workload
def run_as_root(w: Workload) -> Hit | None:
    if w.spec.os is not None and w.spec.os.name == "windows":
        return None  # runAsUser/runAsNonRoot are Linux settings
    reasons = [
        (c, reason)
        for c in w.containers()
        if (reason := root_reason(w.spec.security_context, c.spec.security_context))
    ]
    if not reasons:
        return None
    evidence = f"{w.label}: " + "; ".join(f"{c.label} {reason}" for c, reason in reasons)
    fields = {"securityContext": {"runAsNonRoot": True, "runAsUser": 10001}}
    what = "set securityContext.runAsNonRoot: true and a non-zero runAsUser"
    return w.hit(evidence, w.fix(container_patch([c for c, _ in reasons], fields), what))


_RUNTIME_SOCKETS = ("/var/run", "/run", "/var/run/docker.sock", "/var/run/crio/crio.sock")
_SENSITIVE_PATHS = dict.fromkeys(_RUNTIME_SOCKETS, "the container runtime socket") | {
    "/": "the node's whole filesystem",
    "/etc": "the node's configuration",
    "/proc": "every process on the node",
    "/var/lib/kubelet": "the kubelet's credentials and every pod's volumes",
    "/run/containerd/containerd.sock": "the container runtime socket",
}


@rule(
    security_meta(
        "k8s.pod.host_path",
        "hostPath volume",
        Severity.MEDIUM,
        "A hostPath volume gives the container the node's files; writable or sensitive "
        "paths are a direct route to the node.",
        "Replace hostPath volumes with emptyDir, PersistentVolumeClaims or CSI volumes; if "
        "one is unavoidable, mount it readOnly and as narrow a path as possible.",
        reference=PSS,
        controls=("cis-k8s:5.2.12", "soc2:CC6.1"),
    ),
    CONTEXT,
)
@each_workload
def host_path(w: Workload) -> Hit | None:
    volumes = [(v.name, v.host_path.path) for v in w.spec.volumes or [] if v.host_path]
    if not volumes:
        return None
    parts, risky = [], []
    for name, path in volumes:
        users = [
            c.spec.name
            for c in w.containers()
            if name in {m.name for m in c.spec.volume_mounts or []}
        ]
        used = f", mounted by {', '.join(users)}" if users else ""
        parts.append(f"hostPath {path} (volume {name}{used})")
        if reason := _SENSITIVE_PATHS.get(path.rstrip("/") or "/"):
            risky.append(f"{path} exposes {reason}")
    evidence = f"{w.label} mounts the node's filesystem: {'; '.join(parts)}"
    severity = None
    if risky:
        evidence += f" — high: {'; '.join(risky)}, enough to take over the node"
        severity = Severity.HIGH
    patch: dict[str, Any] = {
        "volumes": [{"name": n, "hostPath": None, "emptyDir": {}} for n, _ in volumes]
    }
    what = "replace each hostPath volume with an emptyDir, a PersistentVolumeClaim or a CSI volume"
    return w.hit(evidence, w.fix(patch, what), severity)


SECRET_NAME = re.compile(
    r"PASSW(OR)?D|PASSPHRASE|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|SIGNING_?KEY"
    r"|CREDENTIAL|AUTH_?KEY|(^|_)PWD$"
)
NOT_SECRET = re.compile(
    r"_(FILE|PATH|DIR|URL|URI|ENDPOINT|HOST|PORT|NAME|ID|REF|TTL|EXPIRY|TIMEOUT|LENGTH|TYPE|"
    r"HEADER|ENABLED|MODE)$"
)
_REFERENCE = re.compile(r"\$\([A-Za-z_][A-Za-z0-9_.-]*\)")


def literal_secret_names(container: V1Container) -> list[str]:
    """Env vars whose name looks secret and whose value is written in the spec (not valueFrom,
    not empty, not just a `$(OTHER_VAR)` reference). Names only: values never leave here."""
    found = []
    for var in container.env or []:
        name = var.name.upper()
        if not var.value or var.value_from is not None or _REFERENCE.fullmatch(var.value):
            continue
        if SECRET_NAME.search(name) and not NOT_SECRET.search(name):
            found.append(var.name)
    return found


@rule(
    security_meta(
        "k8s.pod.secret_env_literal",
        "Secret as a literal environment variable",
        Severity.HIGH,
        "A literal value in a pod spec is readable by anyone who can read the workload, "
        "and it lands in manifests, Git and kubectl output.",
        "Move the value into a Secret (or an external secret store) and reference it with "
        "env.valueFrom.secretKeyRef; rotate it, since it has been exposed.",
        reference="https://kubernetes.io/docs/concepts/configuration/secret/",
        controls=("cis-k8s:5.4.1", "soc2:CC6.1", "hipaa:164.312(a)(2)(iv)"),
    ),
    CONTEXT,
)
@each_workload
def secret_env(w: Workload) -> Hit | None:
    found = [(c, names) for c in w.containers() if (names := literal_secret_names(c.spec))]
    if not found:
        return None
    count = sum(len(names) for _, names in found)
    listed = "; ".join(f"{c.label} sets {', '.join(names)}" for c, names in found)
    evidence = (
        f"{w.label}: {listed} as {'a literal value' if count == 1 else 'literal values'} in the "
        f"spec instead of valueFrom a Secret (values not shown): anyone who can read the "
        f"{w.kind} can read {'it' if count == 1 else 'them'}"
    )
    if w.kind == "Pod" or w.kind == "Job":
        return w.hit(evidence, w.fix({}, "move these variables to valueFrom.secretKeyRef"))
    secret = f"{w.name}-env"
    every = [n for _, names in found for n in names]
    literals = " ".join(f'--from-literal={n}="${n}"' for n in every)
    steps = [w.kubectl(f"create secret generic {secret} {literals}")]
    steps += [
        w.kubectl(
            f"set env {w.kind.lower()}/{w.name} -c {c.spec.name} --from=secret/{secret} "
            f"--keys={','.join(names)}"
        )
        for c, names in found
    ]
    return w.hit(evidence, " && ".join(steps))


# --- service accounts and services ----------------------------------------------------------


@rule(
    security_meta(
        "k8s.pod.default_sa_token",
        "Default ServiceAccount token mounted",
        Severity.LOW,
        "Every pod on the default ServiceAccount shares one identity, and a mounted token "
        "lets a compromised container call the API with whatever it has been granted.",
        "Set automountServiceAccountToken: false on the namespace's default ServiceAccount; "
        "give pods that call the API their own ServiceAccount with minimal RBAC.",
        "k8s:serviceaccounts",
        reference=(
            "https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/"
        ),
        controls=("cis-k8s:5.1.5", "cis-k8s:5.1.6", "soc2:CC6.3"),
    ),
    CONTEXT,
)
async def default_sa_token(ctx: SweepContext, context: str) -> list[Hit]:
    """Pods running as their namespace's `default` ServiceAccount with its token mounted."""
    found = await workloads(ctx, context)
    accounts = {
        (a.metadata.namespace, a.metadata.name): a.automount_service_account_token
        for a in await dataset(ctx, context, "serviceaccounts")
        if a.metadata is not None
    }
    return [hit for w in found if (hit := default_token(w, accounts))]


def default_token(w: Workload, accounts: dict[tuple[str, str], bool | None]) -> Hit | None:
    account = w.spec.service_account_name or w.spec.service_account or "default"
    if account != "default":
        return None
    on_pod = w.spec.automount_service_account_token
    on_account = accounts.get((w.namespace, "default"))
    if on_pod is False or (on_pod is None and on_account is False):
        return None  # the pod's setting wins over the account's; both default to true
    sa = f"ServiceAccount {w.namespace}/default"
    if on_pod:
        why = "automountServiceAccountToken: true on the pod"
        cli = w.fix(
            {"automountServiceAccountToken": False}, "set automountServiceAccountToken: false"
        )
    else:
        if (w.namespace, "default") not in accounts:
            why = f"automountServiceAccountToken unset on the pod, and {sa} was not found"
        elif on_account:
            why = f"automountServiceAccountToken unset on the pod and true on {sa}"
        else:
            why = f"automountServiceAccountToken unset on the pod and on {sa}"
        patch: str = "'{\"automountServiceAccountToken\":false}'"
        cli = w.kubectl(f"patch serviceaccount default -p {patch}")
    evidence = (
        f"{w.label} runs as the default ServiceAccount with its API token mounted ({why}): "
        "whatever RBAC grants that account is one file read away for a compromised container"
    )
    return w.hit(evidence, cli)


_SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
_INTERNAL_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": ("true", "0.0.0.0/0"),
    "service.beta.kubernetes.io/aws-load-balancer-scheme": ("internal",),
    "service.beta.kubernetes.io/azure-load-balancer-internal": ("true",),
    "networking.gke.io/load-balancer-type": ("internal",),
    "cloud.google.com/load-balancer-type": ("internal",),
}


@rule(
    security_meta(
        "k8s.service.lb_open",
        "LoadBalancer Service open to any address",
        Severity.MEDIUM,
        "Without loadBalancerSourceRanges the cloud load balancer accepts connections "
        "from the whole internet.",
        "Set spec.loadBalancerSourceRanges to the CIDRs that need access, or put the "
        "Service behind an Ingress/gateway with authentication.",
        "k8s:services",
        reference=(
            "https://kubernetes.io/docs/tasks/access-application-cluster/configure-cloud-provider-firewall/"
        ),
        controls=("soc2:CC6.6", "hipaa:164.312(a)(1)"),
    ),
    CONTEXT,
)
async def lb_open(ctx: SweepContext, context: str) -> list[Hit]:
    """Services of type LoadBalancer that accept any source address."""
    hits = []
    for svc in await dataset(ctx, context, "services"):
        if svc.spec is None or svc.metadata is None or svc.spec.type != "LoadBalancer":
            continue
        annotations: dict[str, str] = svc.metadata.annotations or {}
        ranges = svc.spec.load_balancer_source_ranges
        if not ranges and not annotations.get(_SOURCE_RANGES_ANNOTATION):
            hits.append(_open_service(context, svc.metadata, svc.spec, annotations))
    return hits


def _open_service(context: str, meta: Any, spec: Any, annotations: dict[str, str]) -> Hit:
    namespace, name = meta.namespace or "", meta.name or ""
    ports = ", ".join(f"{p.port}/{p.protocol or 'TCP'}" for p in spec.ports or []) or "no ports"
    internal = [
        f"{key}: {annotations[key]}"
        for key, values in _INTERNAL_ANNOTATIONS.items()
        if annotations.get(key, "").lower() in values
    ]
    evidence = (
        f"Service {namespace}/{name} is type LoadBalancer without loadBalancerSourceRanges: "
        f"{ports} accept connections from any address"
    )
    severity = None
    if internal:
        evidence += (
            f" — low: an internal load balancer ({internal[0]}), so any address in the network"
        )
        severity = Severity.LOW
    patch = '\'{"spec":{"loadBalancerSourceRanges":["203.0.113.0/24"]}}\''
    return Hit(
        f"{namespace}/Service/{name}",
        evidence,
        command=kubectl(context, namespace, f"patch service {name} -p {patch}"),
        severity=severity,
        location=f"{context}/{namespace}",
    )


RULES: list[Rule] = [
    privileged,
    host_namespaces,
    run_as_root,
    host_path,
    lb_open,
    secret_env,
    default_sa_token,
]
