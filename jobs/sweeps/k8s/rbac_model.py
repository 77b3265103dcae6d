"""Who may do what in a cluster, read from its RBAC objects: roles with their rules, bindings
with their subjects, and which subjects are the cluster's own. Pure functions over the typed
models the collector returns, so the judgements in `rbac` stay short and testable.

Which subjects are exempt, and why (CIS Kubernetes 5.1.1 and the tools that implement it):
- the group `system:masters` and every other `system:` user or group: the prefix is reserved
  for Kubernetes' own components (the API server's bootstrap policy binds them, and
  reconciles those bindings at each start); CIS says not to change them;
- never the `system:` groups that stand for *everyone*: `system:authenticated`,
  `system:unauthenticated`, `system:serviceaccounts` (and `system:serviceaccounts:<ns>`), nor
  the user `system:anonymous`: a role bound to them is the worst case, not a system one;
- ServiceAccounts in kube-system only where a rule says so (`secrets_access`: the cluster's
  controllers, CSI drivers and add-ons read Secrets from there by design), never for
  cluster-admin: no built-in controller needs it, and an add-on holding it there (Tiller was
  the classic) is exactly what CIS 5.1.1 asks to find.
Bindings are judged by their subjects, not their names: a `system:`-named binding that hands
cluster-admin to a person is reported (a name is free to choose; the subject is the grant).
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jobs.sweeps.base import SweepContext
from jobs.sweeps.k8s.collect import cluster_dataset, dataset

BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")
"""The label of the API server's bootstrap roles and bindings (cluster-admin, admin, edit …)."""

EVERYONE = {
    "system:authenticated": "every authenticated user and service account",
    "system:unauthenticated": "every anonymous request",
    "system:anonymous": "every anonymous request",
    "system:serviceaccounts": "every service account in the cluster",
}
READ_VERBS = frozenset({"get", "list", "watch", "*"})


@dataclass(frozen=True)
class Subject:
    kind: str
    name: str
    namespace: str | None = None

    @property
    def label(self) -> str:
        if self.kind == "ServiceAccount":
            return f"ServiceAccount {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"

    def everyone(self) -> str | None:
        """Whom a `system:` group standing for many principals means, else None."""
        if self.kind == "ServiceAccount":
            return None
        if self.name.startswith("system:serviceaccounts:"):
            return f"every service account in namespace {self.name.rsplit(':', 1)[1]}"
        return EVERYONE.get(self.name)

    def is_system(self, *, kube_system_accounts: bool = False) -> bool:
        """One of the cluster's own components (see the module docstring)."""
        if self.kind == "ServiceAccount":
            return kube_system_accounts and self.namespace == "kube-system"
        return self.name.startswith("system:") and self.everyone() is None


@dataclass(frozen=True)
class PolicyRule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    resource_names: tuple[str, ...]
    urls: tuple[str, ...]

    def grants_everything(self) -> bool:
        return "*" in self.verbs and "*" in self.resources and "*" in self.api_groups

    def wildcards(self) -> bool:
        return "*" in self.verbs + self.resources + self.api_groups

    def reads_secrets(self) -> bool:
        """Get/list/watch on Secrets, not narrowed to named ones by resourceNames."""
        return (
            not self.resource_names
            and bool(READ_VERBS.intersection(self.verbs))
            and bool({"", "*"}.intersection(self.api_groups))
            and bool({"secrets", "*"}.intersection(self.resources))
        )

    def describe(self) -> str:
        """`apiGroups: "", apps; resources: *; verbs: get, list` as in the object."""
        if self.urls:
            return f"nonResourceURLs: {', '.join(self.urls)}; verbs: {', '.join(self.verbs)}"
        groups = ", ".join(g if g else '""' for g in self.api_groups)
        names = f"; resourceNames: {', '.join(self.resource_names)}" if self.resource_names else ""
        return (
            f"apiGroups: {groups}; resources: {', '.join(self.resources)}{names}; "
            f"verbs: {', '.join(self.verbs)}"
        )


@dataclass(frozen=True)
class Named:
    """A role or binding: how evidence, findings and commands name it."""

    kind: str
    """ClusterRole, Role, ClusterRoleBinding or RoleBinding."""
    namespace: str | None
    """None: cluster-scoped."""
    name: str

    @property
    def label(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    @property
    def resource(self) -> str:
        if self.namespace:
            return f"{self.namespace}/{self.kind}/{self.name}"
        return f"{self.kind}/{self.name}"

    def kubectl(self, context: str, verb: str) -> str:
        """`kubectl --context C [-n NS] VERB KIND NAME`, names quoted for the shell."""
        where = f" -n {shlex.quote(self.namespace)}" if self.namespace else ""
        return (
            f"kubectl --context {shlex.quote(context)}{where} {verb} {self.kind.lower()} "
            f"{shlex.quote(self.name)}"
        )


@dataclass(frozen=True)
class Role(Named):
    rules: tuple[PolicyRule, ...]
    builtin: bool
    """Part of the bootstrap policy: named system:… or labelled as the bootstrap roles are."""
    aggregated: bool
    """Its rules are the aggregation controller's union of other ClusterRoles' rules."""

    def full_admin(self) -> bool:
        return (self.kind == "ClusterRole" and self.name == "cluster-admin") or any(
            r.grants_everything() for r in self.rules
        )


@dataclass(frozen=True)
class Binding(Named):
    role_kind: str
    role_name: str
    subjects: tuple[Subject, ...]

    def role_key(self) -> tuple[str, str | None, str]:
        namespace = self.namespace if self.role_kind == "Role" else None
        return (self.role_kind, namespace, self.role_name)

    def scope(self) -> str:
        """Where its grant applies, as evidence says it."""
        if self.kind == "ClusterRoleBinding":
            return "cluster-wide"
        return f"in namespace {self.namespace}"


@dataclass(frozen=True)
class Rbac:
    """A context's roles by (kind, namespace, name) and its bindings."""

    roles: dict[tuple[str, str | None, str], Role]
    bindings: list[Binding]

    def role_of(self, binding: Binding) -> Role | None:
        return self.roles.get(binding.role_key())

    def bindings_of(self, role: Role) -> list[Binding]:
        return [
            b
            for b in self.bindings
            if b.role_kind == role.kind
            and b.role_name == role.name
            and (role.kind == "ClusterRole" or b.namespace == role.namespace)
        ]


async def rbac(ctx: SweepContext, context: str) -> Rbac:
    """ClusterRoles and ClusterRoleBindings (cluster-wide), Roles and RoleBindings (in the
    scope's namespaces), each list read once per sweep."""
    cluster_roles, cluster_bindings, roles, bindings = await asyncio.gather(
        cluster_dataset(ctx, context, "clusterroles"),
        cluster_dataset(ctx, context, "clusterrolebindings"),
        dataset(ctx, context, "roles"),
        dataset(ctx, context, "rolebindings"),
    )
    found = [_role("ClusterRole", r) for r in cluster_roles] + [_role("Role", r) for r in roles]
    return Rbac(
        {(r.kind, r.namespace, r.name): r for r in found},
        [_binding("ClusterRoleBinding", b) for b in cluster_bindings]
        + [_binding("RoleBinding", b) for b in bindings],
    )


def _strings(values: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(values or ())


def _urls(rule: Any) -> list[str] | None:
    """nonResourceURLs: `non_resource_urls` in client 37+, `non_resource_ur_ls` before."""
    urls: list[str] | None = getattr(rule, "non_resource_urls", None)
    return urls if urls is not None else getattr(rule, "non_resource_ur_ls", None)


def _role(kind: str, obj: Any) -> Role:
    meta = obj.metadata
    name: str = meta.name or ""
    labels: dict[str, str] = meta.labels or {}
    key, value = BOOTSTRAP_LABEL
    rules = tuple(
        PolicyRule(
            _strings(r.verbs),
            _strings(r.api_groups),
            _strings(r.resources),
            _strings(r.resource_names),
            _strings(_urls(r)),
        )
        for r in obj.rules or []
    )
    return Role(
        kind,
        meta.namespace if kind == "Role" else None,
        name,
        rules,
        builtin=name.startswith("system:") or labels.get(key) == value,
        aggregated=getattr(obj, "aggregation_rule", None) is not None,
    )


def _binding(kind: str, obj: Any) -> Binding:
    meta = obj.metadata
    subjects = tuple(_subject(s.kind or "", s.name or "", s.namespace) for s in obj.subjects or [])
    return Binding(
        kind,
        meta.namespace if kind == "RoleBinding" else None,
        meta.name or "",
        obj.role_ref.kind,
        obj.role_ref.name,
        subjects,
    )


def _subject(kind: str, name: str, namespace: str | None) -> Subject:
    """A User named `system:serviceaccount:<ns>:<name>` is that ServiceAccount (its username),
    so it is judged as one, not exempted for its `system:` prefix."""
    prefix = "system:serviceaccount:"
    if kind == "User" and name.startswith(prefix) and name.count(":") == 3:
        account_namespace, account = name.removeprefix(prefix).split(":")
        return Subject("ServiceAccount", account, account_namespace)
    return Subject(kind, name, namespace)


def subjects_label(subjects: Iterable[Subject]) -> str:
    return ", ".join(s.label for s in subjects)
