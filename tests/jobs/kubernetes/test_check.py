from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from daemon.models import CheckResult
from jobs.base import CheckContext
from jobs.kubernetes.check import KubernetesCheck
from jobs.kubernetes.metrics import parse_quantity
from tests import ROOT
from tests.jobs.conftest import assert_options_described
from tests.peers.kubernetes import (
    FakeCluster,
    FakeKubernetes,
    crashloop_pod,
    daemonset,
    deployment,
    healthy_pod,
    image_pull_pod,
    job,
    node,
    oomkilled_pod,
    pending_pod,
    pod,
    pod_metrics,
    pvc,
    restarting_pod,
    statefulset,
    warning_event,
    write_kubeconfig,
)


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
    return k8s.kubeconfig(tmp_path / "kubeconfig")


def check(kubeconfig: Path | str, **options: Any) -> KubernetesCheck:
    return KubernetesCheck.model_validate(
        {"name": "cluster", "type": "kubernetes", "kubeconfig": str(kubeconfig), **options}
    )


async def run_one(spec: KubernetesCheck, ctx: CheckContext) -> CheckResult:
    results = await spec.run(ctx)
    assert len(results) == 1, [r.evidence for r in results]
    return results[0]


def healthy_cluster(cluster: FakeCluster) -> None:
    cluster.add(
        healthy_pod("checkout-7d9c-x2x9k"),
        healthy_pod("checkout-7d9c-p4k2m"),
        healthy_pod("web-5b8f-9xk2q", "staging"),
        deployment("checkout", replicas=2, available=2),
        node("ip-10-0-1-5"),
        node("ip-10-0-2-7"),
    )


# --- configuration ------------------------------------------------------------------------------


def test_every_option_is_described() -> None:
    assert_options_described(KubernetesCheck)


def test_importing_the_check_does_not_import_the_kubernetes_client() -> None:
    code = (
        "import sys, jobs.kubernetes.check as k;"
        "k.KubernetesCheck.model_json_schema();"
        "k.KubernetesCheck.model_validate({'name': 'c', 'type': 'kubernetes'});"
        "print('kubernetes' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_in_cluster_with_a_kubeconfig_is_rejected() -> None:
    with pytest.raises(ValidationError, match="no effect with in_cluster"):
        check("/tmp/kubeconfig", in_cluster=True)


def test_namespaces_must_be_namespace_names() -> None:
    with pytest.raises(ValidationError, match="is not a namespace name"):
        check("/tmp/kubeconfig", namespaces=["Prod_1"])


def test_against_without_a_threshold_is_rejected() -> None:
    with pytest.raises(ValidationError, match="against needs"):
        check("/tmp/kubeconfig", against="limits")


# --- healthy ------------------------------------------------------------------------------------


async def test_healthy_cluster_is_one_ok_summary(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    healthy_cluster(cluster)
    result = await run_one(check(kubeconfig, namespaces=["prod", "staging"]), ctx)
    assert result.status == "ok"
    assert result.evidence.startswith("3 pods, 1 deployment, 2 nodes in prod, staging: all healthy")
    assert "no Warning events in the last 15m" in result.evidence
    assert result.subject is None
    assert result.values["pods"] == 3
    assert result.values["nodes"] == 2


async def test_namespaces_limit_what_is_listed(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(healthy_pod("checkout-7d9c-x2x9k"), crashloop_pod("batch-1", "staging"))
    result = await run_one(check(kubeconfig, namespaces=["prod"], nodes=False), ctx)
    assert result.status == "ok"
    assert result.evidence.startswith("1 pod in prod: all healthy")
    assert any(r.startswith("/api/v1/namespaces/prod/pods?") for r in cluster.requests)


async def test_label_selector_is_sent_to_the_api(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(healthy_pod("checkout-7d9c-x2x9k"), crashloop_pod("batch-6c8d-qwert"))
    result = await run_one(check(kubeconfig, label_selector="app=checkout"), ctx)
    assert result.status == "ok"
    assert "1 pod in all namespaces matching app=checkout" in result.evidence


async def test_client_is_built_once_and_kept_in_ctx_clients(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    healthy_cluster(cluster)
    spec = check(kubeconfig)
    await spec.run(ctx)
    key = f"kubernetes:{kubeconfig}:None:False"
    client = ctx.clients[key]
    await spec.run(ctx)
    assert ctx.clients[key] is client


async def test_kubeconfig_defaults_to_the_environment(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    healthy_cluster(cluster)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    spec = KubernetesCheck.model_validate({"name": "cluster", "type": "kubernetes"})
    result = await run_one(spec, ctx)
    assert result.status == "ok"


# --- pods ---------------------------------------------------------------------------------------


async def test_crash_loop_is_failing_with_restarts_and_last_exit(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(crashloop_pod("checkout-7d9c-x2x9k", restarts=7))
    result = await run_one(check(kubeconfig, warning_events=False), ctx)
    assert result.status == "failing"
    assert result.subject == "pod prod/checkout-7d9c-x2x9k"
    assert result.evidence.startswith(
        "pod prod/checkout-7d9c-x2x9k container app is in CrashLoopBackOff: restarted 7 times, "
        "last exit code 1 (Error) at "
    )
    assert result.values["restarts"] == 7
    assert result.values["exit_code"] == 1


async def test_image_pull_backoff_quotes_image_and_message(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(image_pull_pod(image="registry.example.com/shop/app:1.4.3"))
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "failing"
    assert (
        'container app cannot pull image "registry.example.com/shop/app:1.4.3" '
        "(ImagePullBackOff): Back-off pulling image" in result.evidence
    )
    assert "not found" in result.evidence
    assert result.values["reason"] == "ImagePullBackOff"


async def test_err_image_pull_is_failing(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(image_pull_pod(reason="ErrImagePull"))
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "failing"
    assert "(ErrImagePull)" in result.evidence


async def test_recent_oom_kill_is_failing_with_the_memory_limit(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(oomkilled_pod("worker-5f6b-abcde", minutes_ago=3))
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "failing"
    assert "pod prod/worker-5f6b-abcde container app was OOMKilled at " in result.evidence
    assert "(exit code 137, memory limit 256Mi); restarted 3 times" in result.evidence


async def test_oom_kill_older_than_the_event_window_is_history(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(oomkilled_pod(minutes_ago=90))
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "ok"


async def test_pod_pending_too_long_quotes_the_scheduler(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(pending_pod("batch-6c8d-qwert", minutes=20))
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "failing"
    assert result.evidence.startswith(
        "pod prod/batch-6c8d-qwert has been Pending for 20m (limit 10m): "
        "0/3 nodes are available: 3 Insufficient memory."
    )


async def test_recently_pending_pod_is_not_reported(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(pending_pod(minutes=3))
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "ok"


async def test_restart_count_increase_between_runs_is_degraded(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    spec = check(kubeconfig, restart_threshold=2)
    cluster.add(restarting_pod("api-59c7-zzt8p", restarts=2))
    first = await run_one(spec, ctx)
    assert first.status == "ok"  # nothing to compare with yet

    cluster.objects.clear()
    cluster.add(restarting_pod("api-59c7-zzt8p", restarts=5))
    second = await run_one(spec, ctx)
    assert second.status == "degraded"
    assert second.evidence.startswith(
        "pod prod/api-59c7-zzt8p container app restarted 3 times since the previous run "
        "(5 in total); last exit code 2 (Error) at "
    )
    assert second.values["restarts_since_last_run"] == 3


async def test_restart_increase_below_threshold_is_ok(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    spec = check(kubeconfig, restart_threshold=2)
    cluster.add(restarting_pod(restarts=2))
    await spec.run(ctx)
    cluster.objects.clear()
    cluster.add(restarting_pod(restarts=3))
    result = await run_one(spec, ctx)
    assert result.status == "ok"


# --- workloads, nodes, storage, jobs ------------------------------------------------------------


async def test_deployment_with_unavailable_replicas_is_failing(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(deployment("checkout", replicas=3, available=2))
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "failing"
    assert result.subject == "deployment prod/checkout"
    assert result.evidence == "deployment prod/checkout: 1 of 3 replicas unavailable"


async def test_statefulset_short_of_ready_replicas_is_failing(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(statefulset("db", replicas=3, ready=1))
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "failing"
    assert result.evidence == "statefulset prod/db: 2 of 3 replicas unavailable"


async def test_daemonset_with_unavailable_pods_is_failing(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(daemonset("fluent-bit", "logging", desired=3, ready=2))
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "failing"
    assert result.evidence == "daemonset logging/fluent-bit: 1 of 3 scheduled pods unavailable"


async def test_not_ready_node_is_failing(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(node("ip-10-0-1-5"), node("ip-10-0-2-7", ready=False))
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "failing"
    assert result.subject == "node ip-10-0-2-7"
    assert result.evidence.startswith("node ip-10-0-2-7 is NotReady since ")
    assert "(Ready=Unknown, NodeStatusUnknown): Kubelet stopped posting node status." in (
        result.evidence
    )


async def test_disk_pressure_is_degraded(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(node("ip-10-0-3-9", pressure="DiskPressure"))
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "degraded"
    assert result.evidence.startswith("node ip-10-0-3-9 has DiskPressure since ")
    assert result.evidence.endswith(": kubelet has disk pressure")


async def test_nodes_false_does_not_list_nodes(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(node("ip-10-0-2-7", ready=False))
    result = await run_one(check(kubeconfig, nodes=False), ctx)
    assert result.status == "ok"
    assert not any(r.startswith("/api/v1/nodes") for r in cluster.requests)


async def test_pvc_pending_is_failing(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(pvc("data-db-0", age_minutes=30))
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "failing"
    assert result.evidence == (
        "persistentvolumeclaim prod/data-db-0 has been Pending for 30m "
        "(storage class gp3, 10Gi requested)"
    )


async def test_failed_job_is_failing_with_its_reason(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(job("nightly-backup-28391"))
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "failing"
    assert result.evidence.startswith("job prod/nightly-backup-28391 failed at ")
    assert result.evidence.endswith(
        ": BackoffLimitExceeded: Job has reached the specified backoff limit (7 failed pods)"
    )


async def test_cronjob_failure_superseded_by_a_newer_success_is_ok(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(
        job("backup-1", cronjob="backup", failed=True, age_minutes=120),
        job("backup-2", cronjob="backup", failed=False, age_minutes=20),
    )
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "ok"


# --- events -------------------------------------------------------------------------------------


async def test_recent_warning_event_is_degraded(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(healthy_pod("web-1"), warning_event("Pod", "web-1", count=3))
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "degraded"
    assert result.subject == "pod prod/web-1"
    assert result.evidence.startswith("Warning FailedMount on pod prod/web-1 (3 times, last at ")
    assert result.evidence.endswith(
        ': MountVolume.SetUp failed for volume "config" : configmap "web-config" not found'
    )


async def test_warning_events_outside_the_window_are_ignored(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(warning_event("Pod", "web-1", minutes_ago=40))
    result = await run_one(check(kubeconfig, event_window="15m"), ctx)
    assert result.status == "ok"


async def test_warning_events_about_a_failing_object_are_not_repeated(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(
        crashloop_pod("checkout-7d9c-x2x9k"),
        warning_event(
            "Pod", "checkout-7d9c-x2x9k", reason="BackOff", message="Back-off restarting"
        ),
    )
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "failing"
    assert "CrashLoopBackOff" in result.evidence


async def test_an_event_storm_is_capped(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(*(warning_event("Pod", f"web-{i}", reason="Unhealthy") for i in range(25)))
    results = await check(kubeconfig).run(ctx)
    assert len(results) == 21
    assert results[-1].evidence == "5 more Warning events in the last 15m (reasons: Unhealthy)"


# --- CPU and memory -----------------------------------------------------------------------------


async def test_cpu_above_threshold_of_request_is_degraded(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(
        pod("worker-1", requests={"cpu": "1", "memory": "1Gi"}),
        pod_metrics("worker-1", app=("912m", "300Mi")),
    )
    result = await run_one(check(kubeconfig, cpu_threshold_percent=80), ctx)
    assert result.status == "degraded"
    assert result.evidence == (
        "pod prod/worker-1 container app uses 912m CPU = 91% of its 1000m request (threshold 80%)"
    )
    assert result.values["cpu_percent"] == 91.2


async def test_memory_above_threshold_of_limit_is_degraded(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(
        pod("worker-1", limits={"cpu": "2", "memory": "1Gi"}),
        pod_metrics("worker-1", app=("100m", "921Mi")),
    )
    spec = check(kubeconfig, memory_threshold_percent=85, against="limits")
    result = await run_one(spec, ctx)
    assert result.status == "degraded"
    assert result.evidence == (
        "pod prod/worker-1 container app uses 921Mi memory = 90% of its 1Gi limit (threshold 85%)"
    )


async def test_usage_below_thresholds_is_ok(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(
        pod("worker-1", requests={"cpu": "1", "memory": "1Gi"}),
        pod_metrics("worker-1", app=("250m", "300Mi")),
    )
    spec = check(kubeconfig, cpu_threshold_percent=80, memory_threshold_percent=90)
    result = await run_one(spec, ctx)
    assert result.status == "ok"
    assert result.evidence.endswith("; CPU/memory within thresholds for 1 container")
    assert result.values["containers_compared"] == 1


async def test_containers_without_requests_are_skipped_not_guessed(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.add(pod("worker-1"), pod_metrics("worker-1", app=("3900m", "14Gi")))
    result = await run_one(check(kubeconfig, cpu_threshold_percent=80), ctx)
    assert result.status == "ok"
    assert result.evidence.endswith(
        "; CPU/memory within thresholds for 0 containers (1 without requests not compared)"
    )


async def test_missing_metrics_server_is_said_plainly(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.metrics_available = False
    cluster.add(healthy_pod())
    results = await check(kubeconfig, cpu_threshold_percent=80).run(ctx)
    assert [r.status for r in results] == ["ok", "degraded"]
    assert results[1].evidence == (
        "metrics.k8s.io is not available (metrics-server not installed?): "
        "CPU/memory thresholds not checked"
    )


async def test_metrics_are_not_read_without_thresholds(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.metrics_available = False
    cluster.add(healthy_pod())
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "ok"
    assert not any("metrics.k8s.io" in r for r in cluster.requests)


def test_quantities_parse_as_kubernetes_writes_them() -> None:
    assert parse_quantity("250m") == Decimal("0.25")
    assert parse_quantity("1") == 1
    assert parse_quantity("1Gi") == 2**30
    assert parse_quantity("1500k") == 1_500_000
    assert parse_quantity("1e3") == 1000
    assert parse_quantity("12345678n") == Decimal("0.012345678")
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity("12 cores")


# --- errors -------------------------------------------------------------------------------------


async def test_unreachable_api_server_is_an_error(
    tmp_path: Path, closed_port: int, ctx: CheckContext
) -> None:
    server = f"https://127.0.0.1:{closed_port}"
    path = write_kubeconfig(tmp_path / "kubeconfig", server)
    result = await run_one(check(path), ctx)
    assert result.status == "error"
    assert result.evidence == f"cannot reach the Kubernetes API at {server}: connection refused"


async def test_rejected_credentials_are_an_error_and_drop_the_client(
    kubeconfig: Path, k8s: FakeKubernetes, ctx: CheckContext
) -> None:
    path = k8s.kubeconfig(kubeconfig, token="expired-token")
    result = await run_one(check(path), ctx)
    assert result.status == "error"
    assert result.evidence == (
        "the kubeconfig's credentials were rejected (401): refresh them, e.g. "
        "`aws eks update-kubeconfig` / `gcloud container clusters get-credentials`"
    )
    assert not any(key.startswith("kubernetes:") for key in ctx.clients)


async def test_rbac_forbidden_names_verb_resource_and_namespace(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.forbid("pods", "prod")
    result = await run_one(check(kubeconfig, namespaces=["prod"]), ctx)
    assert result.status == "error"
    assert result.evidence.startswith(
        "forbidden: cannot list pods in namespace prod "
        "(RBAC, as system:serviceaccount:wk:wk): grant list on pods"
    )


async def test_forbidden_cluster_wide_list_suggests_naming_namespaces(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.forbid("pods")
    result = await run_one(check(kubeconfig, nodes=False), ctx)
    assert result.status == "error"
    assert result.evidence.startswith("forbidden: cannot list pods in all namespaces (RBAC")
    assert result.evidence.endswith(", or list the namespaces to watch in `namespaces`")


async def test_forbidden_nodes_suggest_turning_node_checks_off(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    cluster.forbid("nodes")
    result = await run_one(check(kubeconfig, namespaces=["prod"]), ctx)
    assert result.status == "error"
    assert result.evidence.startswith("forbidden: cannot list nodes (RBAC")
    assert result.evidence.endswith(
        "grant list on nodes with a ClusterRole and ClusterRoleBinding, or set nodes = false"
    )


async def test_missing_kubeconfig_is_an_error(tmp_path: Path, ctx: CheckContext) -> None:
    path = tmp_path / "nowhere" / "config"
    result = await run_one(check(path), ctx)
    assert result.status == "error"
    assert result.evidence.startswith(f"kubeconfig {path} not found: set `kubeconfig`")


async def test_unknown_context_lists_the_known_ones(
    kubeconfig: Path, k8s: FakeKubernetes, ctx: CheckContext
) -> None:
    path = k8s.kubeconfig(kubeconfig, contexts=["prod-eu", "prod-us"])
    result = await run_one(check(path, context="staging"), ctx)
    assert result.status == "error"
    assert result.evidence == (
        f"context 'staging' is not in kubeconfig {path} (it has: prod-eu, prod-us)"
    )


async def test_missing_client_package_says_how_to_install_it(
    kubeconfig: Path, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "kubernetes", None)
    result = await run_one(check(kubeconfig), ctx)
    assert result.status == "error"
    assert result.evidence == (
        "the kubernetes package is not installed: install it: pip install 'watchkeeper[kubernetes]'"
    )


async def test_in_cluster_outside_a_pod_is_an_error(
    ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    spec = KubernetesCheck.model_validate({"name": "c", "type": "kubernetes", "in_cluster": True})
    result = await run_one(spec, ctx)
    assert result.status == "error"
    assert result.evidence.startswith(
        "in_cluster = true but KUBERNETES_SERVICE_HOST/PORT are not set"
    )


async def test_slow_api_server_times_out_as_an_error(
    cluster: FakeCluster, kubeconfig: Path, k8s: FakeKubernetes, ctx: CheckContext
) -> None:
    cluster.hang = threading.Event()
    result = await run_one(check(kubeconfig, timeout="0.5s"), ctx)
    assert result.status == "error"
    assert result.evidence == f"the Kubernetes API at {k8s.url} did not answer within 0.5 s"


# --- root-cause context -------------------------------------------------------------------------


async def test_rca_context_has_events_and_the_previous_log_tail(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    name = "checkout-7d9c-x2x9k"
    cluster.add(
        crashloop_pod(name),
        warning_event(
            "Pod", name, reason="BackOff", message="Back-off restarting failed container"
        ),
        warning_event("Pod", "other-pod", reason="BackOff", message="not about this pod"),
    )
    lines = [f"2026-01-01T14:02:{i:02d}Z INFO request {i}" for i in range(100)]
    cluster.set_log(
        "prod", name, "app", "\n".join([*lines, "panic: nil map"]) + "\n", previous=True
    )
    cluster.set_log("prod", name, "app", "starting up\n")
    spec = check(kubeconfig, log_tail_lines=5)
    failing = [r for r in await spec.run(ctx) if r.status == "failing"]

    blocks = await spec.rca_context(ctx, failing)
    assert [b.title for b in blocks] == [
        f"Kubernetes events for pod prod/{name}",
        f"last 5 log lines of pod prod/{name} container app "
        "(previous instance, before its last restart)",
    ]
    events, logs = blocks
    assert "Warning BackOff (3 times, kubelet): Back-off restarting failed container" in (
        events.text
    )
    assert "not about this pod" not in events.text
    assert logs.text.splitlines() == [*lines[-4:], "panic: nil map"]
    assert events.relevance > logs.relevance
    assert any("previous=true" in r and "tailLines=5" in r for r in cluster.requests)


async def test_rca_context_keeps_what_it_can_read(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    name = "checkout-7d9c-x2x9k"
    cluster.add(crashloop_pod(name))
    cluster.set_log("prod", name, "app", "panic: nil map\n", previous=True)
    spec = check(kubeconfig, warning_events=False)
    results = await spec.run(ctx)
    cluster.forbid("events")
    blocks = await spec.rca_context(ctx, results)
    assert [b.text for b in blocks] == ["panic: nil map"]


async def test_rca_log_tail_is_bounded_in_bytes(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    name = "checkout-7d9c-x2x9k"
    cluster.add(crashloop_pod(name))
    cluster.set_log("prod", name, "app", ("x" * 1000 + "\n") * 50, previous=True)
    spec = check(kubeconfig, log_tail_lines=50)
    blocks = await spec.rca_context(ctx, await spec.run(ctx))
    logs = blocks[-1]
    assert len(logs.text.encode()) <= 8 * 1024 + 10
    assert logs.text.startswith("[…]\n")


async def test_rca_context_is_empty_when_nothing_failed(
    cluster: FakeCluster, kubeconfig: Path, ctx: CheckContext
) -> None:
    healthy_cluster(cluster)
    spec = check(kubeconfig)
    assert await spec.rca_context(ctx, await spec.run(ctx)) == []
