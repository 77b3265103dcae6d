"""The security sweep as OCSF 1.8.0 findings: every emitted object valid against the official
schema of its class (generated from github.com/ocsf/ocsf-schema at tag 1.8.0, vendored in
data/ocsf/ with its source), for hand-built runs with every state and for a real sweep against
moto; the fields a SIEM keys on (uid, status, severity, resource, compliance) mean what they say."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from daemon.store import Store
from daemon.store.sweeps import TrackedFinding
from daemon.sweeps.ocsf import as_json_lines, ocsf_findings, resource_type
from jobs.sweeps import rules
from tests.daemon.sweeps.moto_sweeps import (
    open_to_the_internet,
    report,
    security_settings,
    sweep_now,
)
from tests.daemon.sweeps.test_reports import MIXED, NOW, SG, run_of, tracked
from tests.jobs.sweeps.fake_rules import meta
from tests.peers.aws import ACCOUNT, REGION, Aws

pytest_plugins = ["tests.peers.aws_fixtures", "tests.jobs.sweeps.aws.fixtures"]

DATA = Path(__file__).parent / "data" / "ocsf"
VALIDATORS = {
    uid: Draft202012Validator(json.loads((DATA / f"{name}-1.8.0.schema.json").read_text()))
    for uid, name in ((2003, "compliance_finding"), (2004, "detection_finding"))
}
CONTROLLED = replace(
    meta("aws.sg.open_ssh"),
    controls=("cis-aws:5.2", "soc2:CC6.6"),
    reference="https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html",
)
METAS = {"aws.sg.open_ssh": CONTROLLED, "aws.iam.root_keys": meta("aws.iam.root_keys")}


def schema_errors(finding: dict[str, Any]) -> list[str]:
    validator = VALIDATORS[finding["class_uid"]]
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(finding)
    ]


def by_resource(findings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["resources"][0]["uid"]: f for f in findings}


def test_every_state_is_a_valid_finding_of_its_class() -> None:
    found = ocsf_findings(MIXED, METAS, "1.2.3")
    assert len(found) == len(MIXED.findings) == 5
    for finding in found:
        assert schema_errors(finding) == [], finding["finding_info"]["uid"]
    one = by_resource(found)
    new, still, resolved, unknown, muted = (one[SG + str(i)] for i in range(1, 6))
    assert [new["status"], still["status"], resolved["status"], muted["status"]] == [
        "New",
        "New",
        "Resolved",
        "Suppressed",
    ]
    assert [new["status_id"], resolved["status_id"], muted["status_id"]] == [1, 4, 3]
    assert [new["activity_id"], still["activity_id"], resolved["activity_id"]] == [1, 2, 3]
    assert new["type_uid"] == 200301 and resolved["type_uid"] == 200303
    assert muted["status_detail"] == "bastion (SEC-12)"
    assert new["severity_id"] == 5 and new["severity"] == "Critical"
    assert resolved["severity_id"] == 3
    # the compliance object, from the rule's mapped controls
    assert new["class_uid"] == 2003 and new["class_name"] == "Compliance Finding"
    assert new["compliance"]["control"] == "aws.sg.open_ssh"
    assert new["compliance"]["requirements"] == ["cis-aws:5.2", "soc2:CC6.6"]
    assert new["compliance"]["standards"][0].startswith("CIS Amazon Web Services Foundations")
    assert (new["compliance"]["status"], resolved["compliance"]["status"]) == ("Fail", "Pass")
    # a rule with no mapped control is a Detection Finding, without a compliance object
    assert unknown["class_uid"] == 2004 and "compliance" not in unknown
    assert unknown["type_uid"] == 200402


def test_identity_time_product_and_resource() -> None:
    found = by_resource(ocsf_findings(MIXED, METAS, "1.2.3"))
    first = found[SG + "1"]
    assert first["finding_info"]["uid"] == f"aws.sg.open_ssh:{SG}1"
    assert first["finding_info"]["first_seen_time"] == int(
        (NOW - timedelta(days=3)).timestamp() * 1000
    )
    assert first["finding_info"]["last_seen_time"] == int(NOW.timestamp() * 1000)
    assert "last_seen_time" not in found[SG + "3"]["finding_info"]  # not seen this run
    assert first["time"] == int((NOW + timedelta(seconds=73)).timestamp() * 1000)
    assert first["metadata"]["version"] == "1.8.0"
    assert first["metadata"]["product"] == {
        "name": "watchkeeper",
        "vendor_name": "watchkeeper",
        "version": "1.2.3",
    }
    assert first["cloud"] == {"provider": "AWS", "region": "eu-west-1"}  # no account known
    resource = first["resources"][0]
    assert resource["type"] == "ec2:security-group"
    assert resource["name"] == "sg-1" and resource["region"] == "eu-west-1"
    assert resource["cloud_partition"] == "aws"
    assert first["remediation"] == {
        "desc": "fix aws.sg.open_ssh",
        "references": [CONTROLLED.reference],
    }


def test_the_uid_is_stable_from_run_to_run() -> None:
    tonight = ocsf_findings(run_of(tracked(SG + "1", "new")), METAS, "1")
    tomorrow = ocsf_findings(run_of(tracked(SG + "1", "open")), METAS, "1")
    assert tonight[0]["finding_info"]["uid"] == tomorrow[0]["finding_info"]["uid"]
    assert tonight[0]["metadata"]["uid"] != "" and tonight[0]["activity_id"] == 1
    assert tomorrow[0]["activity_id"] == 2


def test_untrusted_names_stay_text_and_secrets_never_reach_the_output() -> None:
    hostile = SG + '9\x1b]0;pwned\x07\n{"class_uid": 1}'
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    leaked = f"key AKIAIOSFODNN7EXAMPLE in the user data: aws_secret_access_key={secret}"
    run = run_of(tracked(hostile, "new", evidence=f"tag Name={hostile}; {leaked}"))
    found = ocsf_findings(run, METAS, "1")
    assert schema_errors(found[0]) == []
    text = json.dumps(found, ensure_ascii=False)
    assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b" in found[0]["resources"][0]["uid"]
    assert secret not in text
    assert "AKIAIOSFODNN7EXAMPLE" not in text
    lines = as_json_lines(found).splitlines()
    assert len(lines) == 1  # the newline in the name cannot start a second object
    assert json.loads(lines[0])["finding_info"]["uid"] == found[0]["finding_info"]["uid"]


def test_cost_runs_have_no_ocsf_findings() -> None:
    run = run_of(tracked(SG + "1", "new", savings=12.0), kind="cost")
    assert ocsf_findings(run, METAS, "1") == []


@pytest.mark.parametrize(
    ("resource", "kind"),
    [
        ("arn:aws:s3:::logs", "s3"),
        ("arn:aws:rds:eu-west-1:111122223333:db:orders", "rds:db"),
        ("arn:aws:lambda:eu-west-1:111122223333:function:f", "lambda:function"),
        ("arn:aws:iam::111122223333:user/alice", "iam:user"),
        ("payments/Pod/api-0", "k8s:Pod"),
        ("111122223333", "account"),
    ],
)
def test_resource_types(resource: str, kind: str) -> None:
    assert resource_type(resource) == kind


async def test_a_real_sweep_writes_valid_ocsf_beside_the_other_reports(
    aws: Aws, account_hosts: None, tmp_path: Path
) -> None:
    group = open_to_the_internet(aws, "ssh-open", 22)
    settings = security_settings(tmp_path)
    with Store.open(settings.daemon.state_dir) as store:
        run = await sweep_now(settings, store)
    assert not run.record.detail.get("rule_errors"), run.record.detail["rule_errors"]
    found = json.loads(report(run, "ocsf.json"))
    folder = Path(run.record.detail["reports"]["ocsf.json"]).parent
    assert (folder / "latest.ocsf.json").read_text() == report(run, "ocsf.json")
    assert len(found) == len(run.record.findings) > 0
    for finding in found:
        assert schema_errors(finding) == [], finding["finding_info"]["uid"]
    metas = {r.meta.id: r.meta for r in rules("security")}
    for finding in found:
        rule = finding["finding_info"]["analytic"]["uid"]
        assert finding["class_uid"] == (2003 if metas[rule].controls else 2004)
        assert finding["cloud"]["provider"] == "AWS"
    ssh = [f for f in found if group in f["resources"][0]["uid"]]
    assert ssh, [f["finding_info"]["uid"] for f in found]
    assert all(f["cloud"]["account"]["uid"] == ACCOUNT for f in ssh)
    assert all(f["cloud"]["region"] == REGION for f in ssh)
    assert any("cis-aws:5.2" in f["compliance"]["requirements"] for f in ssh)


def test_a_kubernetes_finding_names_its_cluster_object() -> None:
    pod = tracked("payments/Pod/api-0", "new", rule="k8s.pod.privileged").finding.model_copy(
        update={"location": "prod/payments"}
    )
    run = run_of(TrackedFinding(pod, "new", NOW))
    [found] = ocsf_findings(run, METAS, "1")
    assert schema_errors(found) == []
    assert found["cloud"] == {"provider": "Kubernetes"}
    assert found["resources"] == [
        {"uid": "payments/Pod/api-0", "type": "k8s:Pod", "name": "api-0", "namespace": "payments"}
    ]
