"""The container-settings rules of jobs.sweeps.k8s.security_workloads against the fake
Kubernetes API: for each rule a workload that fails and one that passes."""

from __future__ import annotations

import pytest

from daemon.models import Finding
from jobs.sweeps.base import SweepContext
from jobs.sweeps.k8s.security_workloads import RULES
from tests.jobs.sweeps.k8s.conftest import run_rule
from tests.peers.kubernetes import (
    FakeCluster,
    cronjob,
    deployment,
    job,
    pod,
    statefulset,
    with_container,
)

HARDENED = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}
LIMITS = {"limits": {"cpu": "500m", "memory": "256Mi"}}


async def evaluate(ctx: SweepContext, rule_id: str) -> list[Finding]:
    return await run_rule(RULES, ctx, rule_id)


def hardened(name: str) -> dict[str, object]:
    return with_container(
        deployment(name),
        securityContext=dict(HARDENED),
        resources=LIMITS,
        image="registry.example.com/shop/app:1.4.2",
    )


async def test_privilege_escalation(cluster: FakeCluster, sweep: SweepContext) -> None:
    cluster.add(hardened("safe"), with_container(deployment("loose"), resources=LIMITS))
    (found,) = await evaluate(sweep, "k8s.pod.privilege_escalation")
    assert found.resource == "prod/Deployment/loose"
    assert found.evidence == (
        "Deployment prod/loose: container app may escalate privileges "
        "(allowPrivilegeEscalation unset or true)"
    )
    assert found.remediation_cli == (
        "kubectl --context fake -n prod patch deployment loose -p "
        """'{"spec":{"template":{"spec":{"containers":[{"name":"app","""
        """"securityContext":{"allowPrivilegeEscalation":false}}]}}}}'"""
    )


async def test_writable_root_filesystem(cluster: FakeCluster, sweep: SweepContext) -> None:
    writable = with_container(
        deployment("writer"), securityContext={"readOnlyRootFilesystem": False}
    )
    cluster.add(hardened("safe"), writable)
    (found,) = await evaluate(sweep, "k8s.pod.writable_root_fs")
    assert found.resource == "prod/Deployment/writer"
    assert (
        found.evidence == "Deployment prod/writer: container app can write to its root filesystem"
    )


NO_LIMITS = "{'cpu':'<cpu>','memory':'<memory>'}".replace("'", '"')


@pytest.mark.parametrize(
    ("obj", "label", "command"),
    [
        (
            with_container(deployment("half"), resources={"limits": {"cpu": "1"}}),
            "Deployment prod/half: container app has no memory limit",
            # only the missing limit: an existing cpu limit is not overwritten
            "kubectl --context fake -n prod set resources deployment/half -c app "
            "--limits=memory=<memory>",
        ),
        (
            statefulset("db"),
            "StatefulSet prod/db: container app has no cpu or memory limit",
            "kubectl --context fake -n prod set resources statefulset/db -c app "
            "--limits=cpu=<cpu>,memory=<memory>",
        ),
        (
            cronjob("nightly-backup"),
            "CronJob prod/nightly-backup: container app has no cpu or memory limit",
            "kubectl --context fake -n prod patch cronjob nightly-backup -p "
            """'{"spec":{"jobTemplate":{"spec":{"template":{"spec":{"containers":"""
            f"""[{{"name":"app","resources":{{"limits":{NO_LIMITS}}}}}]}}}}}}}}}}}}'""",
        ),
        (
            job("migrate-42", failed=False),
            "Job prod/migrate-42: container app has no cpu or memory limit",
            "kubectl --context fake -n prod get job migrate-42 -o yaml  # a Job's pod template "
            "cannot change: set container app: resources.limits.cpu/memory in the manifest "
            "that creates it, for its next run",
        ),
        (
            pod("debug-shell"),
            "Pod prod/debug-shell: container app has no cpu or memory limit",
            "kubectl --context fake -n prod get pod debug-shell -o yaml > debug-shell.yaml  "
            "# a running pod's limits cannot be added: set container app: "
            "resources.limits.cpu/memory, then recreate it: kubectl replace --force -f "
            "debug-shell.yaml (better: run it under a Deployment)",
        ),
    ],
    ids=["deployment", "statefulset", "cronjob", "job", "bare-pod"],
)
async def test_missing_limits_remediation_fits_the_owner_kind(
    cluster: FakeCluster, sweep: SweepContext, obj: dict[str, object], label: str, command: str
) -> None:
    """`kubectl set resources` is right for Deployments, StatefulSets and DaemonSets only: a
    bare pod's resources and a Job's template are immutable, and a CronJob's template sits
    under its jobTemplate."""
    cluster.add(hardened("safe"), obj)
    (found,) = await evaluate(sweep, "k8s.pod.no_limits")
    assert found.evidence == label
    assert found.remediation_cli == command


@pytest.mark.parametrize(
    ("image", "why"),
    [
        ("nginx", "has no tag (latest)"),
        ("registry.example.com:5000/shop/app:latest", "uses :latest"),
    ],
)
async def test_unpinned_images(
    cluster: FakeCluster, sweep: SweepContext, image: str, why: str
) -> None:
    pinned = with_container(
        deployment("pinned"), image="registry.example.com/app@sha256:" + "a" * 64
    )
    cluster.add(hardened("safe"), pinned, with_container(deployment("floating"), image=image))
    (found,) = await evaluate(sweep, "k8s.pod.latest_image")
    assert found.resource == "prod/Deployment/floating"
    assert found.evidence == f"Deployment prod/floating: container app image {image} {why}"
    base = image.removesuffix(":latest")
    assert found.remediation_cli == (
        f"kubectl --context fake -n prod set image deployment/floating app={base}:<version>"
    )
