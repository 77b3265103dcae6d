"""`watchkeeper sweep security|cost --json` as a user runs it: the real rules against moto's
AWS server and the fake Kubernetes API, then a second run that reports only what changed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli import run_cli
from tests.peers.aws import REGION, Aws
from tests.peers.kubernetes import (
    FakeCluster,
    FakeKubernetes,
    bootstrap_rbac,
    cluster_role_binding,
    pod,
    subject,
)
from tests.peers.receivers import WebhookReceiver

pytest_plugins = ["tests.peers.aws_fixtures", "tests.jobs.sweeps.aws.fixtures"]


@pytest.fixture(autouse=True)
def _moto_logs_stay_out_of_the_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's server thread logs its own errors (an API it does not implement, with a
    traceback) through werkzeug; run in process, those records would reach the command's
    captured stderr, where a separate process never saw them."""
    monkeypatch.setattr(logging.getLogger("werkzeug"), "disabled", True)


@pytest.fixture
def cluster() -> Iterator[tuple[FakeCluster, FakeKubernetes]]:
    state = FakeCluster()
    server = FakeKubernetes(state).start()
    yield state, server
    server.stop()


def privileged(name: str) -> dict[str, Any]:
    item = pod(name, "prod")
    container = item["spec"]["containers"][0]
    container["securityContext"] = {"privileged": True, "runAsNonRoot": True}
    item["spec"]["automountServiceAccountToken"] = False
    item["spec"]["securityContext"] = {"runAsNonRoot": True}
    return item


def sweep(config: Path, kind: str) -> dict[str, Any]:
    """`watchkeeper sweep KIND --json --notify`, in process (tests.cli)."""
    result = run_cli("sweep", kind, "--json", "--notify", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def write_config(tmp_path: Path, kubeconfig: Path, hook_url: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f"""
[daemon]
state_dir = "state"
[routing]
security = ["ollama/none"]
cost = ["ollama/none"]
[providers.ollama]
base_url = "http://127.0.0.1:9"
[[notify]]
name = "hook"
kind = "webhook"
url = "{hook_url}"
[[sweeps]]
name = "nightly-security"
kind = "security"
aws = {{ regions = ["{REGION}"] }}
kubernetes = {{ kubeconfig = "{kubeconfig}", namespaces = ["prod"] }}
[[sweeps]]
name = "nightly-cost"
kind = "cost"
aws = {{ regions = ["{REGION}"] }}
""")
    return config


def test_security_sweep_lists_findings_then_notifies_only_changes(
    aws: Aws,
    cluster: tuple[FakeCluster, FakeKubernetes],
    tmp_path: Path,
    webhook_receiver: WebhookReceiver,
) -> None:
    state, server = cluster
    state.add(privileged("debug-shell"))
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName="bastion", Description="b", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    kubeconfig = server.kubeconfig(tmp_path / "kubeconfig")
    config = write_config(
        tmp_path, kubeconfig, webhook_receiver.url().replace("json://", "http://")
    )

    first = sweep(config, "security")
    findings = {f["rule"]: f for f in first["findings"]}
    assert findings["aws.sg.open_ssh"]["severity"] == "high"
    assert findings["aws.sg.open_ssh"]["state"] == "new"
    assert "0.0.0.0/0" in findings["aws.sg.open_ssh"]["evidence"]
    assert findings["k8s.pod.privileged"]["severity"] == "high"
    assert findings["k8s.pod.privileged"]["resource"] == "prod/Pod/debug-shell"
    assert first["summary"]["new"] == len(first["findings"])
    assert "(no model summary" in webhook_receiver.wait_for(1)[0].json()["text"]

    ec2.revoke_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    second = sweep(config, "security")
    states = {f["rule"]: f["state"] for f in second["findings"]}
    assert states["aws.sg.open_ssh"] == "resolved"
    assert states["k8s.pod.privileged"] == "open"
    assert second["summary"]["resolved"] == 1 and second["summary"]["new"] == 0
    text = webhook_receiver.wait_for(2)[1].json()["text"]
    assert "aws.sg.open_ssh" in text or "bastion" in text  # what was fixed…
    assert "debug-shell" not in text  # …and not the whole list again


def test_cost_sweep_estimates_monthly_savings(
    aws: Aws,
    cluster: tuple[FakeCluster, FakeKubernetes],
    tmp_path: Path,
    webhook_receiver: WebhookReceiver,
) -> None:
    _, server = cluster
    ec2 = aws.client("ec2")
    ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=100, VolumeType="gp3")
    ec2.allocate_address(Domain="vpc")
    ec2.run_instances(ImageId="ami-12345678", InstanceType="m4.large", MinCount=1, MaxCount=1)
    config = write_config(
        tmp_path,
        server.kubeconfig(tmp_path / "kubeconfig"),
        webhook_receiver.url().replace("json://", "http://"),
    )
    data = sweep(config, "cost")
    findings = {f["rule"]: f for f in data["findings"]}
    # gp3 at $0.08/GiB-month x 100 GiB = $8.00; an idle Elastic IP $0.005/h x 730 h = $3.65
    assert findings["aws.ebs.unattached"]["est_monthly_savings_usd"] == pytest.approx(8.0)
    assert findings["aws.eip.unassociated"]["est_monthly_savings_usd"] == pytest.approx(3.65)
    assert data["summary"]["est_monthly_savings_usd"] >= 11.65
    # m4.large $0.10/h → m6i.large $0.096/h; its 8 GiB gp2 root volume as gp3: 8 x $0.02.
    moved = findings["aws.ec2.previous_generation"]
    assert moved["est_monthly_savings_usd"] == pytest.approx(0.004 * 730)
    assert findings["aws.ebs.gp2"]["est_monthly_savings_usd"] == pytest.approx(0.16)
    new_rules = {"aws.ebs.gp2", "aws.ec2.previous_generation", "aws.rds.idle", "aws.nat.idle"}
    assert not [e for e in data["summary"]["rule_errors"] if e["rule"] in new_rules]


def test_findings_by_framework_and_the_compliance_report(
    aws: Aws,
    account_hosts: None,
    cluster: tuple[FakeCluster, FakeKubernetes],
    tmp_path: Path,
    webhook_receiver: WebhookReceiver,
) -> None:
    state, server = cluster
    state.add(privileged("debug-shell"), *bootstrap_rbac())
    state.add(cluster_role_binding("ci", "cluster-admin", [subject("User", "ci-bot")]))
    aws.client("iam").update_account_password_policy(MinimumPasswordLength=8)
    config = write_config(
        tmp_path,
        server.kubeconfig(tmp_path / "kubeconfig"),
        webhook_receiver.url().replace("json://", "http://"),
    )
    data = sweep(config, "security")
    errors = data["summary"]["rule_errors"]
    assert errors == [], errors  # every rule reads what moto serves
    rules = {f["rule"] for f in data["findings"]}
    assert {"aws.iam.password_policy", "aws.cloudtrail.multi_region", "k8s.pod.privileged"} <= rules
    policy = next(f for f in data["findings"] if f["rule"] == "aws.iam.password_policy")
    assert policy["controls"] == ["cis-aws:1.8", "cis-aws:1.9", "soc2:CC6.1", "hipaa:164.312(d)"]

    listed = run_cli("findings", "--framework", "cis-aws", "--json", "--config", str(config))
    [document] = [d for d in json.loads(listed.stdout) if d["sweep"]["kind"] == "security"]
    assert document["findings"]
    assert all(any(c.startswith("cis-aws:") for c in f["controls"]) for f in document["findings"])
    assert "k8s.pod.privileged" not in {f["rule"] for f in document["findings"]}
    text = run_cli("findings", "--framework", "cis-aws", "--config", str(config)).stdout
    assert "(cis-aws 1.8, 1.9)" in text
    listed = run_cli("findings", "--framework", "cis-k8s", "--json", "--config", str(config))
    [document] = [d for d in json.loads(listed.stdout) if d["sweep"]["kind"] == "security"]
    admin = next(f for f in document["findings"] if f["rule"] == "k8s.rbac.cluster_admin")
    assert admin["resource"] == "ClusterRoleBinding/ci"
    assert admin["controls"] == ["cis-k8s:5.1.1", "soc2:CC6.3", "hipaa:164.312(a)(1)"]

    folder = tmp_path / "state" / "reports" / "nightly-security"
    markdown = (folder / "latest.md").read_text(encoding="utf-8")
    assert "## Compliance" in markdown
    assert "| 1.8 Password policy: minimum length 14 | FAIL | `aws.iam.password_policy` |" in (
        markdown
    )
    audit = json.loads((folder / "latest.json").read_text(encoding="utf-8"))["compliance"]
    assert audit["cis-aws"]["failed"] >= 1
