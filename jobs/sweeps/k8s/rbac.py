"""Kubernetes RBAC sweep (CIS Kubernetes 5.1): full administrators who are not the cluster's
own components, roles written with wildcards, and who may read Secrets.

The model and the exemptions (which subjects count as the cluster's own, and why) are in
`rbac_model`; these judgements only turn it into findings. Built-in roles are never reported
for their own wildcards: the API server rewrites them at each start.
"""

from __future__ import annotations

from daemon.models import Severity
from jobs.sweeps.base import Rule, SweepContext
from jobs.sweeps.k8s.rbac_model import (
    READ_VERBS,
    Binding,
    Named,
    PolicyRule,
    Rbac,
    Role,
    Subject,
    rbac,
    subjects_label,
)
from jobs.sweeps.k8s.rule import CONTEXT, security_meta
from jobs.sweeps.rule import Hit, rule

RBAC_PRACTICES = "https://kubernetes.io/docs/concepts/security/rbac-good-practices/"
SERVICE = "k8s:rbac"
_CLUSTER_ADMIN = ("ClusterRole", None, "cluster-admin")


def _hit(context: str, on: Named, evidence: str, command: str, severity: Severity | None) -> Hit:
    """A finding on a binding or role, located in its namespace when it has one."""
    where = f"{context}/{on.namespace}" if on.namespace else context
    return Hit(on.resource, evidence, command=command, severity=severity, location=where)


def _everyone(subjects: list[Subject]) -> str:
    """' — critical: Group system:authenticated is every authenticated user …', or ''."""
    broad = [f"{s.label} is {who}" for s in subjects if (who := s.everyone())]
    return f": {'; '.join(broad)}" if broad else ""


# --- cluster-admin ------------------------------------------------------------------------------


@rule(
    security_meta(
        "k8s.rbac.cluster_admin",
        "Full cluster administrator bound to a non-system subject",
        Severity.HIGH,
        "A subject with every verb on every resource can read every Secret, run privileged "
        "pods on any node and grant itself anything: one stolen token or compromised pod "
        "owns the cluster.",
        "Bind the narrowest role that does the job (the built-in admin/edit/view per "
        "namespace with a RoleBinding, or a role listing the verbs and resources needed), "
        "then delete the binding to cluster-admin. Keep break-glass access in system:masters "
        "credentials stored offline.",
        SERVICE,
        reference=RBAC_PRACTICES,
        controls=("cis-k8s:5.1.1", "soc2:CC6.3", "hipaa:164.312(a)(1)"),
    ),
    CONTEXT,
)
async def cluster_admin(ctx: SweepContext, context: str) -> list[Hit]:
    """Bindings of cluster-admin, or of any role granting `*` on `*` in `*`, to subjects that
    are not the cluster's own (see rbac_model: system:masters and system: users and groups)."""
    found = await rbac(ctx, context)
    hits = []
    for binding in found.bindings:
        role = found.role_of(binding)
        admin = role.full_admin() if role else binding.role_key() == _CLUSTER_ADMIN
        people = [s for s in binding.subjects if not s.is_system()]
        if admin and people:
            hits.append(_admin_hit(context, binding, role, people))
    return hits


def _admin_hit(context: str, binding: Binding, role: Role | None, people: list[Subject]) -> Hit:
    what = f"{binding.role_kind} {binding.role_name}"
    grant = "every verb on every resource in every API group"
    if binding.kind == "RoleBinding":
        grant += f" of namespace {binding.namespace}, its Secrets and RoleBindings included"
    evidence = (
        f"{binding.label} binds {what} ({grant}) to {subjects_label(people)} {binding.scope()}"
    )
    if role is None:
        evidence += f" ({what} was not found: judged by its name)"
    broad = _everyone(people)
    cluster_wide = binding.kind == "ClusterRoleBinding"
    if broad:
        severity = Severity.CRITICAL if cluster_wide else Severity.HIGH
        evidence += f" — {severity.value}{broad}"
    else:
        severity = Severity.HIGH if cluster_wide else Severity.MEDIUM
    command = (
        f"{binding.kubectl(context, 'delete')}  # after binding "
        f"{'its subjects' if len(people) > 1 else 'the subject'} to a narrower role"
    )
    return _hit(context, binding, evidence, command, severity)


# --- wildcards ----------------------------------------------------------------------------------


@rule(
    security_meta(
        "k8s.rbac.wildcard",
        "Role grants wildcard verbs, resources or API groups",
        Severity.MEDIUM,
        "A `*` grants what exists today and whatever is added later (new resources, new "
        "CRDs, new verbs such as escalate and impersonate), so nobody can say what the role "
        "allows.",
        "List the verbs, resources and API groups the role's subjects use (`kubectl auth "
        "can-i --list --as=<subject>` and the audit log show them) instead of `*`.",
        SERVICE,
        reference=RBAC_PRACTICES,
        controls=("cis-k8s:5.1.3", "soc2:CC6.3"),
    ),
    CONTEXT,
)
async def wildcard(ctx: SweepContext, context: str) -> list[Hit]:
    """Roles and ClusterRoles with `*` in verbs, resources or apiGroups. Built-in roles are
    left out (rewritten by the API server), and so are aggregated ClusterRoles: their rules
    are copies of the roles aggregated into them, which are judged themselves."""
    found = await rbac(ctx, context)
    return [
        hit
        for role in found.roles.values()
        if not role.builtin and not role.aggregated and (hit := _wildcard_hit(context, found, role))
    ]


def _wildcard_hit(context: str, found: Rbac, role: Role) -> Hit | None:
    wild = [(i, r) for i, r in enumerate(role.rules, 1) if r.wildcards()]
    if not wild:
        return None
    rules = "; ".join(f"rule {i} ({r.describe()})" for i, r in wild)
    bindings = found.bindings_of(role)
    subjects = [s for b in bindings for s in b.subjects]
    if subjects:
        via = ", ".join(b.label for b in bindings)
        bound = f"bound to {subjects_label(subjects)} (by {via})"
        severity = None
    else:
        bound = "not bound to anyone yet — low until a binding uses it"
        severity = Severity.LOW
    evidence = f"{role.label} grants wildcards: {rules}; {bound}"
    command = (
        f"{role.kubectl(context, 'edit')}  # replace each * with the verbs, resources and API "
        "groups used"
    )
    return _hit(context, role, evidence, command, severity)


# --- Secrets ------------------------------------------------------------------------------------


@rule(
    security_meta(
        "k8s.rbac.secrets_access",
        "Non-system subject may read Secrets",
        Severity.MEDIUM,
        "get, list or watch on Secrets reads every credential they hold (database passwords, "
        "cloud keys, service account tokens), in one call for list and watch.",
        "Give workloads the Secrets they need as mounted volumes or env references (which "
        "need no RBAC), and narrow any role that must read Secrets to named ones with "
        "resourceNames; bind people to view rather than edit or admin where they only read.",
        SERVICE,
        reference=RBAC_PRACTICES,
        controls=("cis-k8s:5.1.2", "soc2:CC6.1", "hipaa:164.312(a)(1)"),
    ),
    CONTEXT,
)
async def secrets_access(ctx: SweepContext, context: str) -> list[Hit]:
    """Bindings that let a non-system subject get/list/watch Secrets not narrowed by
    resourceNames. kube-system ServiceAccounts (the cluster's controllers and add-ons) are
    exempt here, and bindings of full-admin roles are left to `k8s.rbac.cluster_admin`."""
    found = await rbac(ctx, context)
    hits = []
    for binding in found.bindings:
        role = found.role_of(binding)
        if role is None or role.full_admin():
            continue
        readers = [s for s in binding.subjects if not s.is_system(kube_system_accounts=True)]
        grants = [r for r in role.rules if r.reads_secrets()]
        if readers and grants:
            hits.append(_secrets_hit(context, binding, role, readers, grants))
    return hits


def _secrets_hit(
    context: str, binding: Binding, role: Role, readers: list[Subject], grants: list[PolicyRule]
) -> Hit:
    verbs = sorted({v for r in grants for v in r.verbs} & READ_VERBS)
    cluster_wide = binding.kind == "ClusterRoleBinding"
    where = "every namespace" if cluster_wide else f"namespace {binding.namespace}"
    evidence = (
        f"{binding.label} lets {subjects_label(readers)} {'/'.join(verbs)} Secrets in {where} "
        f"through {role.label}"
    )
    broad = _everyone(readers)
    severity = Severity.HIGH if cluster_wide else None
    if broad:
        severity = Severity.CRITICAL if cluster_wide else Severity.HIGH
        evidence += f" — {severity.value}{broad}"
    if role.builtin:
        command = f"{binding.kubectl(context, 'delete')}  # after binding a role without Secrets"
        command += " (view)"
    else:
        command = f"{role.kubectl(context, 'edit')}  # drop Secrets, or name the ones needed"
        command += " in resourceNames"
    return _hit(context, binding, evidence, command, severity)


RULES: list[Rule] = [cluster_admin, wildcard, secrets_access]
