from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from daemon.models import Finding, Severity
from jobs.base import CheckContext
from jobs.sweeps.base import CollectError, KubernetesScope, SweepContext
from jobs.sweeps.k8s.security import RULES
from tests import ROOT
from tests.peers.kubernetes import (
    FakeCluster,
    FakeKubernetes,
    add_container,
    cronjob,
    daemonset,
    deployment,
    job,
    owned_by,
    pod,
    replicaset,
    service,
    service_account,
    with_container,
    with_pod_spec,
    write_kubeconfig,
)

SECRET_VALUE = "hunter2-Zq8vR3xT"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KUBECONFIG", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("all_proxy", raising=False)


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def k8s(cluster: FakeCluster) -> Iterator[FakeKubernetes]:
    server = FakeKubernetes(cluster).start()
    yield server
    server.stop()


@pytest.fixture
def kubeconfig(k8s: FakeKubernetes, tmp_path: Path) -> Path:
    return k8s.kubeconfig(tmp_path / "kubeconfig", contexts=("fake", "green"))


@pytest.fixture
async def sweep(kubeconfig: Path) -> AsyncIterator[SweepContext]:
    async with httpx.AsyncClient() as http:
        yield SweepContext(
            check=CheckContext(http=http),
            now=datetime.now(UTC),
            kubernetes=KubernetesScope(kubeconfig=str(kubeconfig), namespaces=("prod",)),
        )


async def evaluate(ctx: SweepContext, rule_id: str) -> list[Finding]:
    (rule,) = [r for r in RULES if r.meta.id == rule_id]
    found: list[Finding] = await rule.evaluate(ctx)
    return found


def safe_deployment(name: str = "checkout") -> dict[str, object]:
    """A Deployment that no security rule objects to."""
    return with_container(
        with_pod_spec(
            deployment(name),
            automountServiceAccountToken=False,
            securityContext={"runAsNonRoot": True, "runAsUser": 10001},
        ),
        env=[{"name": "LOG_LEVEL", "value": "info"}],
    )


# --- import hygiene ------------------------------------------------------------------------------


def test_importing_the_sweep_modules_does_not_import_the_kubernetes_client() -> None:
    code = (
        "import sys, jobs.sweeps.k8s.security as s, jobs.sweeps.k8s.cost as c;"
        "import jobs.sweeps.k8s.rbac, jobs.sweeps.k8s.network;"
        "import jobs.sweeps.k8s.collect;"
        "assert s.RULES and c.RULES;"
        "print('kubernetes' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_rule_ids_are_unique_and_security() -> None:
    ids = [r.meta.id for r in RULES]
    assert len(ids) == len(set(ids)) == 7
    assert {r.meta.kind for r in RULES} == {"security"}


# --- privileged ----------------------------------------------------------------------------------


async def test_privileged_container_is_high(cluster: FakeCluster, sweep: SweepContext) -> None:
    cluster.add(with_container(deployment("checkout"), securityContext={"privileged": True}))
    (found,) = await evaluate(sweep, "k8s.pod.privileged")
    assert found.severity == Severity.HIGH
    assert found.resource == "prod/Deployment/checkout"
    assert found.location == "fake/prod"
    assert "Deployment prod/checkout: container app runs privileged" in found.evidence
    assert found.remediation_cli == (
        "kubectl --context fake -n prod patch deployment checkout -p "
        """'{"spec":{"template":{"spec":{"containers":[{"name":"app","""
        """"securityContext":{"privileged":false}}]}}}}'"""
    )


async def test_unprivileged_container_passes(cluster: FakeCluster, sweep: SweepContext) -> None:
    cluster.add(with_container(safe_deployment(), securityContext={"privileged": False}))
    assert await evaluate(sweep, "k8s.pod.privileged") == []


# --- host namespaces -----------------------------------------------------------------------------


async def test_host_network_and_pid_are_named(cluster: FakeCluster, sweep: SweepContext) -> None:
    cluster.add(with_pod_spec(daemonset("node-exporter", "prod"), hostNetwork=True, hostPID=True))
    (found,) = await evaluate(sweep, "k8s.pod.host_namespaces")
    assert found.severity == Severity.HIGH
    assert found.resource == "prod/DaemonSet/node-exporter"
    assert "(hostNetwork: true, hostPID: true)" in found.evidence
    assert '"hostNetwork":false,"hostPID":false' in (found.remediation_cli or "")


async def test_pod_without_host_namespaces_passes(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(with_pod_spec(safe_deployment(), hostNetwork=False))
    assert await evaluate(sweep, "k8s.pod.host_namespaces") == []


# --- run as root ---------------------------------------------------------------------------------


async def test_root_says_which_setting_at_which_level(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    workload = add_container(deployment("api"), "sidecar", securityContext={"runAsUser": 0})
    cluster.add(workload)
    (found,) = await evaluate(sweep, "k8s.pod.run_as_root")
    assert found.severity == Severity.MEDIUM
    assert (
        "container app may run as root (runAsUser unset at pod and container level, so the "
        "image's USER decides; runAsNonRoot unset at pod and container level)" in found.evidence
    )
    assert "container sidecar runs as root (runAsUser: 0 at container level;" in found.evidence


async def test_run_as_non_root_at_pod_level_passes(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(
        safe_deployment(), with_pod_spec(deployment("web"), securityContext={"runAsUser": 1000})
    )
    assert await evaluate(sweep, "k8s.pod.run_as_root") == []


# --- hostPath ------------------------------------------------------------------------------------


async def test_host_path_names_the_path(cluster: FakeCluster, sweep: SweepContext) -> None:
    volume = {"name": "logs", "hostPath": {"path": "/var/log/app"}}
    workload = with_container(
        with_pod_spec(deployment("shipper"), volumes=[volume]),
        volumeMounts=[{"name": "logs", "mountPath": "/logs"}],
    )
    cluster.add(workload)
    (found,) = await evaluate(sweep, "k8s.pod.host_path")
    assert found.severity == Severity.MEDIUM
    assert "hostPath /var/log/app (volume logs, mounted by app)" in found.evidence


async def test_runtime_socket_host_path_is_raised_to_high(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    volume = {"name": "docker", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}}
    cluster.add(with_pod_spec(deployment("builder"), volumes=[volume]))
    (found,) = await evaluate(sweep, "k8s.pod.host_path")
    assert found.severity == Severity.HIGH
    assert "/var/run/docker.sock exposes the container runtime socket" in found.evidence


async def test_volumes_without_host_path_pass(cluster: FakeCluster, sweep: SweepContext) -> None:
    cluster.add(with_pod_spec(safe_deployment(), volumes=[{"name": "tmp", "emptyDir": {}}]))
    assert await evaluate(sweep, "k8s.pod.host_path") == []


# --- LoadBalancer source ranges ------------------------------------------------------------------


async def test_open_load_balancer_is_medium(cluster: FakeCluster, sweep: SweepContext) -> None:
    cluster.add(service("web", type_="LoadBalancer", ports=[(443, "TCP"), (80, "TCP")]))
    (found,) = await evaluate(sweep, "k8s.service.lb_open")
    assert found.severity == Severity.MEDIUM
    assert found.resource == "prod/Service/web"
    assert found.evidence == (
        "Service prod/web is type LoadBalancer without loadBalancerSourceRanges: 443/TCP, "
        "80/TCP accept connections from any address"
    )


async def test_internal_load_balancer_is_lowered(cluster: FakeCluster, sweep: SweepContext) -> None:
    annotations = {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}
    cluster.add(service("api", type_="LoadBalancer", annotations=annotations))
    (found,) = await evaluate(sweep, "k8s.service.lb_open")
    assert found.severity == Severity.LOW
    assert "internal load balancer" in found.evidence


async def test_restricted_or_cluster_ip_services_pass(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(
        service("web", type_="LoadBalancer", source_ranges=["203.0.113.0/24"]),
        service("internal"),
    )
    assert await evaluate(sweep, "k8s.service.lb_open") == []


# --- literal secrets in env ----------------------------------------------------------------------


async def test_literal_secret_env_names_the_variable_never_the_value(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    env = [
        {"name": "DB_PASSWORD", "value": SECRET_VALUE},
        {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
        {"name": "LOG_LEVEL", "value": "debug"},
        {"name": "PASSWORD_FILE", "value": "/run/secrets/db"},
    ]
    cluster.add(with_container(deployment("billing"), env=env))
    (found,) = await evaluate(sweep, "k8s.pod.secret_env_literal")
    assert found.severity == Severity.HIGH
    assert "container app sets DB_PASSWORD as a literal value" in found.evidence
    for word in ("API_TOKEN", "LOG_LEVEL", "PASSWORD_FILE"):
        assert word not in found.evidence
    assert SECRET_VALUE not in found.model_dump_json()
    assert "--from=secret/billing-env --keys=DB_PASSWORD" in (found.remediation_cli or "")


async def test_secrets_from_value_from_pass(cluster: FakeCluster, sweep: SweepContext) -> None:
    ref = {"secretKeyRef": {"name": "db", "key": "password"}}
    env = [
        {"name": "DB_PASSWORD", "valueFrom": ref},
        {"name": "DB_TOKEN", "value": "$(DB_PASSWORD)"},
    ]
    cluster.add(with_container(safe_deployment(), env=env))
    assert await evaluate(sweep, "k8s.pod.secret_env_literal") == []


# --- default service account token --------------------------------------------------------------


async def test_default_account_with_automounted_token_is_low(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(deployment("web"), service_account("default"))
    (found,) = await evaluate(sweep, "k8s.pod.default_sa_token")
    assert found.severity == Severity.LOW
    assert (
        "automountServiceAccountToken unset on the pod and on ServiceAccount prod/default"
        in found.evidence
    )
    assert found.remediation_cli == (
        "kubectl --context fake -n prod patch serviceaccount default "
        """-p '{"automountServiceAccountToken":false}'"""
    )


async def test_token_off_on_the_account_or_the_pod_passes(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(
        deployment("web"),
        service_account("default", automount=False),
        with_pod_spec(deployment("api"), serviceAccountName="api"),
    )
    assert await evaluate(sweep, "k8s.pod.default_sa_token") == []


# --- one finding per template --------------------------------------------------------------------


async def test_pods_of_judged_templates_are_not_judged_again(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    privileged = {"privileged": True}
    checkout = with_container(deployment("checkout", replicas=2), securityContext=privileged)
    rs = replicaset(checkout)
    backup = with_container(cronjob("backup"), securityContext=privileged)
    run = with_container(job("backup-2891", failed=False), securityContext=privileged)
    run = owned_by(run, backup)
    cluster.add(
        checkout,
        rs,
        backup,
        run,
        *(
            owned_by(with_container(pod(f"checkout-7d9c-{i}"), securityContext=privileged), rs)
            for i in ("a", "b")
        ),
        owned_by(with_container(pod("backup-2891-xk2"), securityContext=privileged), run),
        with_container(pod("debug-shell"), securityContext=privileged),
    )
    found = await evaluate(sweep, "k8s.pod.privileged")
    assert sorted(f.resource for f in found) == [
        "prod/CronJob/backup",
        "prod/Deployment/checkout",
        "prod/Pod/debug-shell",
    ]
    bare = next(f for f in found if f.resource == "prod/Pod/debug-shell")
    assert "replace --force -f debug-shell.yaml" in (bare.remediation_cli or "")


async def test_every_context_is_swept_and_named(kubeconfig: Path, cluster: FakeCluster) -> None:
    cluster.add(with_container(deployment("checkout"), securityContext={"privileged": True}))
    scope = KubernetesScope(kubeconfig=str(kubeconfig), contexts=("fake", "green"))
    async with httpx.AsyncClient() as http:
        ctx = SweepContext(check=CheckContext(http=http), now=datetime.now(UTC), kubernetes=scope)
        found = await evaluate(ctx, "k8s.pod.privileged")
    assert sorted(f.location for f in found) == ["fake/prod", "green/prod"]


# --- collection errors ---------------------------------------------------------------------------


async def test_forbidden_services_fail_only_the_rule_that_needs_them(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.forbid("services", "prod")
    cluster.add(with_container(deployment("checkout"), securityContext={"privileged": True}))
    with pytest.raises(CollectError) as caught:
        await evaluate(sweep, "k8s.service.lb_open")
    assert str(caught.value) == (
        "context fake: forbidden: cannot list services in namespace prod (RBAC, as "
        "system:serviceaccount:wk:wk): grant list on services in prod (a Role and RoleBinding)"
    )
    assert len(await evaluate(sweep, "k8s.pod.privileged")) == 1


async def test_each_dataset_is_listed_once_per_sweep(
    cluster: FakeCluster, sweep: SweepContext
) -> None:
    cluster.add(deployment("checkout"))
    for rule in RULES:
        await rule.evaluate(sweep)
    deployments = [r for r in cluster.requests if "/deployments" in r]
    assert len(deployments) == 1


async def test_rejected_credentials_drop_the_cached_client(
    k8s: FakeKubernetes, tmp_path: Path, sweep: SweepContext
) -> None:
    k8s.cluster.token = "rotated"
    with pytest.raises(CollectError, match=r"credentials were rejected \(401\)"):
        await evaluate(sweep, "k8s.pod.privileged")
    assert not [key for key in sweep.check.clients if key.startswith("kubernetes:")]


async def test_unreachable_api_is_a_collect_error(tmp_path: Path, closed_port: int) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{closed_port}")
    scope = KubernetesScope(kubeconfig=str(kubeconfig), namespaces=("prod",))
    async with httpx.AsyncClient() as http:
        ctx = SweepContext(check=CheckContext(http=http), now=datetime.now(UTC), kubernetes=scope)
        with pytest.raises(
            CollectError, match=r"cannot reach the Kubernetes API at .*: connection refused"
        ):
            await evaluate(ctx, "k8s.pod.privileged")


async def test_missing_kubeconfig_is_a_collect_error(tmp_path: Path) -> None:
    scope = KubernetesScope(kubeconfig=str(tmp_path / "nope"))
    async with httpx.AsyncClient() as http:
        ctx = SweepContext(check=CheckContext(http=http), now=datetime.now(UTC), kubernetes=scope)
        with pytest.raises(CollectError, match=r"kubeconfig .*nope not found"):
            await evaluate(ctx, "k8s.service.lb_open")
