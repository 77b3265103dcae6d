"""The RBAC rules of jobs.sweeps.k8s.rbac against the fake Kubernetes API, which serves the
bootstrap policy's cluster-admin binding, built-in roles with wildcards and system: subjects
in every test: for each rule what fails, what passes, and which subjects are exempt."""

from __future__ import annotations

import pytest

from daemon.models import Finding, Severity
from jobs.sweeps.base import CollectError, KubernetesScope, SweepContext
from jobs.sweeps.k8s.rbac import RULES
from tests.jobs.sweeps.k8s.conftest import run_rule
from tests.peers.kubernetes import (
    CLUSTER_ADMIN_RULES,
    FakeCluster,
    bootstrap_rbac,
    cluster_role,
    cluster_role_binding,
    policy_rule,
    role,
    role_binding,
    subject,
)

DEPLOYER = subject("ServiceAccount", "deployer", "ci")


@pytest.fixture(autouse=True)
def _bootstrap(cluster: FakeCluster) -> None:
    cluster.add(*bootstrap_rbac())


async def evaluate(ctx: SweepContext, rule_id: str) -> list[Finding]:
    return await run_rule(RULES, ctx, rule_id)


# --- cluster-admin ------------------------------------------------------------------------------


async def test_the_bootstrap_policy_alone_passes_every_rule(sweep: SweepContext) -> None:
    """cluster-admin bound to system:masters, system: controllers reading Secrets and the
    built-in roles' own wildcards are the cluster's, not findings."""
    for rule in RULES:
        assert await rule.evaluate(sweep) == [], rule.meta.id


async def test_cluster_admin_bound_to_a_service_account_is_high(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(
        cluster_role_binding(
            "ci-admin", "cluster-admin", [DEPLOYER, subject("Group", "system:masters")]
        )
    )
    (found,) = await evaluate(sweep, "k8s.rbac.cluster_admin")
    assert found.severity == Severity.HIGH
    assert found.resource == "ClusterRoleBinding/ci-admin"
    assert found.location == "fake"
    assert found.evidence == (
        "ClusterRoleBinding ci-admin binds ClusterRole cluster-admin (every verb on every "
        "resource in every API group) to ServiceAccount ci/deployer cluster-wide"
    )
    assert found.remediation_cli == (
        "kubectl --context fake delete clusterrolebinding ci-admin  # after binding the "
        "subject to a narrower role"
    )


async def test_a_custom_role_granting_everything_counts_as_cluster_admin(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    """Not only the role named cluster-admin: any ClusterRole with * on * in *. A
    system:-named binding is judged by its subject, not excused by its name."""
    cluster.add(
        cluster_role("god-mode", [policy_rule(["*"], ["*"], ["*"])]),
        cluster_role_binding("system:sneaky", "god-mode", [subject("User", "alice@example.com")]),
    )
    (found,) = await evaluate(sweep, "k8s.rbac.cluster_admin")
    assert found.resource == "ClusterRoleBinding/system:sneaky"
    assert "ClusterRole god-mode (every verb" in found.evidence
    assert "User alice@example.com cluster-wide" in found.evidence


async def test_cluster_admin_for_everyone_is_critical(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    """system:authenticated starts with system: but is every user: never exempt."""
    cluster.add(
        cluster_role_binding("oops", "cluster-admin", [subject("Group", "system:authenticated")])
    )
    (found,) = await evaluate(sweep, "k8s.rbac.cluster_admin")
    assert found.severity == Severity.CRITICAL
    assert found.evidence.endswith(
        " — critical: Group system:authenticated is every authenticated user and service account"
    )


async def test_cluster_admin_in_one_namespace_is_medium(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(
        role_binding(
            "dev-admin",
            "cluster-admin",
            [subject("User", "bob")],
            role_kind="ClusterRole",
        )
    )
    (found,) = await evaluate(sweep, "k8s.rbac.cluster_admin")
    assert found.severity == Severity.MEDIUM
    assert found.resource == "prod/RoleBinding/dev-admin"
    assert found.location == "fake/prod"
    assert found.evidence == (
        "RoleBinding prod/dev-admin binds ClusterRole cluster-admin (every verb on every "
        "resource in every API group of namespace prod, its Secrets and RoleBindings "
        "included) to User bob in namespace prod"
    )
    assert found.remediation_cli is not None
    assert found.remediation_cli.startswith(
        "kubectl --context fake -n prod delete rolebinding dev-admin"
    )


async def test_system_users_and_groups_are_exempt_but_kube_system_accounts_are_not(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(
        cluster_role_binding(
            "addons",
            "cluster-admin",
            [
                subject("User", "system:kube-scheduler"),
                subject("Group", "system:nodes"),
                subject("ServiceAccount", "tiller", "kube-system"),
            ],
        )
    )
    (found,) = await evaluate(sweep, "k8s.rbac.cluster_admin")
    assert "to ServiceAccount kube-system/tiller cluster-wide" in found.evidence
    assert "system:kube-scheduler" not in found.evidence


async def test_a_service_account_named_as_a_user_is_not_a_system_user(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    """`User system:serviceaccount:default:default` is that ServiceAccount's username: its
    system: prefix must not exempt it."""
    cluster.add(
        cluster_role_binding(
            "sa-as-user",
            "cluster-admin",
            [subject("User", "system:serviceaccount:default:default")],
        )
    )
    (found,) = await evaluate(sweep, "k8s.rbac.cluster_admin")
    assert "to ServiceAccount default/default cluster-wide" in found.evidence


# --- wildcards ----------------------------------------------------------------------------------


async def test_wildcard_role_bound_to_a_subject_is_medium(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(
        role(
            "deployer",
            rules=[
                policy_rule(["get", "list"], ["configmaps"]),
                policy_rule(["*"], ["deployments", "services"], ["apps", ""]),
            ],
        ),
        role_binding("deployer", "deployer", [DEPLOYER]),
    )
    (found,) = await evaluate(sweep, "k8s.rbac.wildcard")
    assert found.severity == Severity.MEDIUM
    assert found.resource == "prod/Role/deployer"
    assert found.location == "fake/prod"
    assert found.evidence == (
        'Role prod/deployer grants wildcards: rule 2 (apiGroups: apps, ""; resources: '
        "deployments, services; verbs: *); bound to ServiceAccount ci/deployer (by "
        "RoleBinding prod/deployer)"
    )
    assert found.remediation_cli == (
        "kubectl --context fake -n prod edit role deployer  # replace each * with the verbs, "
        "resources and API groups used"
    )


async def test_unbound_wildcard_cluster_role_is_low_and_explicit_roles_pass(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(
        cluster_role("crd-reader", [policy_rule(["get", "list"], ["*"], ["example.com"])]),
        cluster_role("pod-reader", [policy_rule(["get", "list", "watch"], ["pods"])]),
    )
    (found,) = await evaluate(sweep, "k8s.rbac.wildcard")
    assert found.resource == "ClusterRole/crd-reader"
    assert found.severity == Severity.LOW
    assert found.evidence.endswith("not bound to anyone yet — low until a binding uses it")


async def test_aggregated_roles_are_judged_through_their_sources(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    """An aggregated ClusterRole's rules are copies: the role they come from is reported,
    once, not every role it is aggregated into."""
    wild = [policy_rule(["*"], ["widgets"], ["example.com"])]
    cluster.add(
        cluster_role("widgets-admin", wild, aggregate_to="monitoring"),
        cluster_role(
            "monitoring",
            wild,
            aggregation={"rbac.authorization.k8s.io/aggregate-to-monitoring": "true"},
        ),
    )
    found = await evaluate(sweep, "k8s.rbac.wildcard")
    assert [f.resource for f in found] == ["ClusterRole/widgets-admin"]


async def test_namespaced_roles_follow_the_scope(cluster: FakeCluster, sweep: SweepContext) -> None:
    """Roles are listed in the scope's namespaces (prod here), or in all of them."""
    cluster.add(role("ops", "ci", rules=[policy_rule(["*"], ["pods"])]))
    assert await evaluate(sweep, "k8s.rbac.wildcard") == []
    assert sweep.kubernetes is not None
    everywhere = KubernetesScope(kubeconfig=sweep.kubernetes.kubeconfig)
    again = SweepContext(check=sweep.check, now=sweep.now, kubernetes=everywhere)
    (found,) = await evaluate(again, "k8s.rbac.wildcard")
    assert found.resource == "ci/Role/ops"


# --- Secrets ------------------------------------------------------------------------------------


async def test_reading_secrets_cluster_wide_is_high(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(
        cluster_role("secret-reader", [policy_rule(["get", "list"], ["secrets"])]),
        cluster_role_binding("ci-secrets", "secret-reader", [DEPLOYER]),
    )
    (found,) = await evaluate(sweep, "k8s.rbac.secrets_access")
    assert found.severity == Severity.HIGH
    assert found.evidence == (
        "ClusterRoleBinding ci-secrets lets ServiceAccount ci/deployer get/list Secrets in "
        "every namespace through ClusterRole secret-reader"
    )
    assert found.remediation_cli == (
        "kubectl --context fake edit clusterrole secret-reader  # drop Secrets, or name the "
        "ones needed in resourceNames"
    )


async def test_the_builtin_admin_role_in_a_namespace_reads_its_secrets(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(
        role_binding("team", "admin", [subject("Group", "shop-devs")], role_kind="ClusterRole")
    )
    (found,) = await evaluate(sweep, "k8s.rbac.secrets_access")
    assert found.severity == Severity.MEDIUM
    assert found.resource == "prod/RoleBinding/team"
    assert "Group shop-devs get/list/watch Secrets in namespace prod" in found.evidence
    assert found.remediation_cli == (
        "kubectl --context fake -n prod delete rolebinding team  # after binding a role "
        "without Secrets (view)"
    )


async def test_named_secrets_kube_system_accounts_and_admins_are_not_secret_findings(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(
        role(
            "tls-reader",
            rules=[policy_rule(["get"], ["secrets"], resource_names=["shop-tls"])],
        ),
        role_binding("ingress", "tls-reader", [subject("ServiceAccount", "ingress", "prod")]),
        cluster_role("csi-secrets", [policy_rule(["get", "list"], ["secrets"])]),
        cluster_role_binding(
            "csi", "csi-secrets", [subject("ServiceAccount", "csi-driver", "kube-system")]
        ),
        cluster_role("root", CLUSTER_ADMIN_RULES),
        cluster_role_binding("root", "root", [DEPLOYER]),
    )
    assert await evaluate(sweep, "k8s.rbac.secrets_access") == []
    (admin,) = await evaluate(sweep, "k8s.rbac.cluster_admin")  # reported there instead
    assert admin.resource == "ClusterRoleBinding/root"


async def test_forbidden_rbac_reads_say_which_list_failed(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.forbid("clusterrolebindings")
    with pytest.raises(CollectError) as caught:
        await evaluate(sweep, "k8s.rbac.cluster_admin")
    assert str(caught.value) == (
        "context fake: forbidden: cannot list clusterrolebindings.rbac.authorization.k8s.io "
        "(RBAC, as system:serviceaccount:wk:wk): grant list on "
        "clusterrolebindings.rbac.authorization.k8s.io with a ClusterRole and "
        "ClusterRoleBinding"
    )  # cluster-scoped: no advice to list namespaces instead
