"""The container and the Kubernetes manifests, checked with what runs here (the image itself
cannot be built on this machine: no container daemon, no registry). The Dockerfile is linted
for the properties the README promises; the manifests are parsed, their config is loaded by
watchkeeper's own loader, and the ClusterRole is compared with what the code reads."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from daemon.config.load import load_settings
from jobs.kubernetes.api import CLUSTER_RESOURCES, RESOURCES
from tests import ROOT

ELECTION = ROOT / "daemon" / "service" / "kube_lease.py"
CLIENT_VERBS = {"read": "get", "list": "list", "create": "create", "replace": "update"}
CLIENT_VERBS |= {"patch": "patch", "delete": "delete"}

DOCKERFILE = ROOT / "Dockerfile"
MANIFEST = ROOT / "deploy" / "kubernetes" / "watchkeeper.yaml"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for raw in text.splitlines():
        entry = raw.strip()
        if entry and not entry.startswith("#"):
            word, _, rest = entry.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_the_dockerfile_is_multi_stage_non_root_and_checks_healthz() -> None:
    steps = instructions()
    stages = [args for word, args in steps if word == "FROM"]
    assert len(stages) == 2
    for image in stages:
        name = image.split()[0]
        assert ":" in name and not name.endswith(":latest"), image
    final = steps[max(i for i, (w, _) in enumerate(steps) if w == "FROM") :]
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and not users[-1].startswith("0")
    health = [args for word, args in final if word == "HEALTHCHECK"]
    assert len(health) == 1 and "/healthz" in health[0]
    assert not any(word == "ADD" for word, _ in steps)  # COPY only: nothing fetched at build
    for word, args in steps:
        if word == "RUN" and "pip " in args:
            assert "--no-cache-dir" in args
        if word == "COPY" and "--from" not in args:
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for wanted in re.findall(r"\[([a-z,]+)\]", " ".join(a for w, a in steps if w == "RUN")):
        assert set(wanted.split(",")) <= set(extras), wanted
    env = " ".join(args for word, args in final if word == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env  # a read-only root file system stays unwritten


def documents() -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")) if d]
    return {d["kind"]: d for d in docs}


def code_reads() -> set[tuple[str, str, str]]:
    """(group, resource, verb) for everything the kubernetes check, its RCA and the k8s sweeps
    read: they list the resources (`list_calls`, `cluster_list_call`), nodes and pod metrics,
    and get pod logs."""
    reads = {(group, name, "list") for name, (_, group, _) in RESOURCES.items()}
    reads |= {(group, name, "list") for name, (_, group, _) in CLUSTER_RESOURCES.items()}
    reads |= {("", "nodes", "list"), ("", "pods/log", "get"), ("metrics.k8s.io", "pods", "list")}
    return reads


def test_the_cluster_role_is_read_only_and_exactly_what_the_code_reads() -> None:
    role = documents()["ClusterRole"]
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert {verb for _, _, verb in granted} <= {"get", "list"}
    assert granted == code_reads()
    binding = documents()["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == documents()["ServiceAccount"]["metadata"]["name"]


def test_the_deployment_runs_two_locked_down_replicas_probed_on_healthz(tmp_path: Path) -> None:
    docs = documents()
    deployment = docs["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == [
        "ALL"
    ]
    uid = next(a for w, a in instructions() if w == "USER").split(":")[0]
    assert str(pod["securityContext"]["runAsUser"]) == uid
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    # the config the ConfigMap mounts is valid, and serves health where the probes look
    config = tmp_path / "config.toml"
    config.write_text(docs["ConfigMap"]["data"]["config.toml"], encoding="utf-8")
    settings = load_settings(config)
    assert settings.daemon.health_listen is not None
    port = int(settings.daemon.health_listen.rsplit(":", 1)[1])
    assert container["ports"] == [{"name": "health", "containerPort": port}]
    assert settings.store.url is not None and settings.store.password is not None
    assert settings.store.password.startswith("secret:")  # from a Secret, never the ConfigMap
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CREDENTIALS_DIRECTORY"] == mounts["secrets"]
    assert env["WATCHKEEPER_CONFIG"].startswith(mounts["config"])
    assert str(settings.daemon.state_dir) == mounts["state"] and "tmp" in mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    secrets = [s["secret"]["name"] for s in volumes["secrets"]["projected"]["sources"]]
    assert secrets == ["watchkeeper-db", "watchkeeper-keys"]


def test_the_network_policy_limits_both_directions() -> None:
    policy = documents()["NetworkPolicy"]["spec"]
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    assert policy["ingress"] == [{"ports": [{"port": 8787, "protocol": "TCP"}]}]
    ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    assert ports == {53, 5432, 443, 6443}


def lease_calls() -> set[str]:
    """The RBAC verbs of the Lease calls the Kubernetes election makes (`<verb>_namespaced_lease`
    of the client), read from its source."""
    found = re.findall(r"\b([a-z]+)_namespaced_lease\b", ELECTION.read_text(encoding="utf-8"))
    return {CLIENT_VERBS[verb] for verb in found}


def test_the_lease_role_grants_what_the_election_calls_on_its_one_lease(tmp_path: Path) -> None:
    docs = documents()
    role, binding = docs["Role"], docs["RoleBinding"]
    config = tmp_path / "config.toml"
    config.write_text(docs["ConfigMap"]["data"]["config.toml"], encoding="utf-8")
    store = load_settings(config).store
    assert store.election == "kubernetes"
    assert role["metadata"]["namespace"] == docs["Deployment"]["metadata"]["namespace"]
    granted: set[str] = set()
    for rule in role["rules"]:
        assert rule["apiGroups"] == ["coordination.k8s.io"] and rule["resources"] == ["leases"]
        if rule.get("resourceNames") is None:
            assert rule["verbs"] == ["create"]  # the only verb a name cannot limit
        else:
            assert rule["resourceNames"] == [store.kubernetes.name]
        granted |= set(rule["verbs"])
    assert granted == lease_calls() == {"get", "create", "update"}
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    account = docs["ServiceAccount"]["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]
