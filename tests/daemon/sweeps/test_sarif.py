"""The security sweep's SARIF as GitHub code scanning takes it: valid against the official SARIF
2.1.0 schema (vendored in data/, with its source), and meeting what code scanning checks on top
of the schema — for a real sweep against moto and for hand-built runs with every state."""

from __future__ import annotations

import importlib.metadata
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from jsonschema import Draft4Validator, FormatChecker

from daemon.models import Finding, Severity
from daemon.store import Store
from daemon.store.sweeps import SweepRunRecord, TrackedFinding
from daemon.sweeps.sarif import report_sarif, resource_uri
from tests.daemon.sweeps.moto_sweeps import (
    open_to_the_internet,
    sarif_of,
    security_settings,
    sweep_now,
)
from tests.daemon.sweeps.test_reports import MIXED, SG, run_of, tracked
from tests.jobs.sweeps.aws.helpers import root_account
from tests.jobs.sweeps.fake_rules import finding, meta
from tests.peers.aws import ACCOUNT, REGION, Aws

pytest_plugins = ["tests.peers.aws_fixtures", "tests.jobs.sweeps.aws.fixtures"]

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())
NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def schema_errors(document: dict[str, Any]) -> list[str]:
    """Every violation of the SARIF 2.1.0 schema, formats included (`uri`, `uri-reference`,
    `date-time`): GitHub's upload checks the formats too."""
    validator = Draft4Validator(SCHEMA, format_checker=FormatChecker())
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def code_scanning_problems(document: dict[str, Any]) -> list[str]:
    """What GitHub code scanning requires beyond the schema ("SARIF support for code
    scanning"): a rule has an id, a short and a full description (at most 1024 characters) and
    help; a result has a ruleId, a message text and at least one location with
    `physicalLocation.artifactLocation.uri` (otherwise: "locationFromSarifResult: expected
    artifact location"), which is relative (an absolute URI must share the checkout's scheme, or
    the upload is rejected), and a region; and a `primaryLocationLineHash` fingerprint, the
    only one code scanning reads to track an alert across runs."""
    problems: list[str] = []
    for run in document["runs"]:
        for rule in run["tool"]["driver"]["rules"]:
            where = f"rule {rule.get('id')}"
            if not rule.get("id"):
                problems.append(f"{where}: no id")
            for key in ("shortDescription", "fullDescription"):
                if not 0 < len(rule.get(key, {}).get("text", "")) <= 1024:
                    problems.append(f"{where}: {key}.text missing or over 1024 characters")
            if not rule.get("help", {}).get("text"):
                problems.append(f"{where}: no help.text")
            score = float(rule.get("properties", {}).get("security-severity", "-1"))
            if not 0.0 <= score <= 10.0:
                problems.append(f"{where}: security-severity {score} is not a 0-10 score")
        for index, result in enumerate(run["results"]):
            where = f"result {index}"
            if not result.get("ruleId"):
                problems.append(f"{where}: no ruleId")
            if not result.get("message", {}).get("text"):
                problems.append(f"{where}: no message.text")
            physical = [location.get("physicalLocation", {}) for location in result["locations"]]
            uris = [p.get("artifactLocation", {}).get("uri") for p in physical]
            regions = [p.get("region", {}) for p in physical]
            keys = ("startLine", "startColumn", "endLine", "endColumn")
            if not all(all(region.get(key, 0) >= 1 for key in keys) for region in regions):
                problems.append(f"{where}: a location without a full region")
            if not uris or not all(uris):
                problems.append(f"{where}: a location without physicalLocation.artifactLocation")
            problems += [
                f"{where}: {uri} is absolute" for uri in uris if uri and urlsplit(uri).scheme
            ]
            if not result.get("partialFingerprints", {}).get("primaryLocationLineHash"):
                problems.append(f"{where}: no partialFingerprints.primaryLocationLineHash")
    return problems


def project_url() -> str:
    urls = importlib.metadata.metadata("watchkeeper").get_all("Project-URL") or []
    return next(url.split(", ", 1)[1] for url in urls if url.startswith("Homepage, "))


# -- a real sweep against moto ---------------------------------------------------------------


async def test_a_real_sweep_writes_sarif_that_code_scanning_accepts(
    aws: Aws, account_hosts: None, tmp_path: Path
) -> None:
    group = open_to_the_internet(aws, "bastion", 22)
    root_account(mfa=False, access_keys=False)
    settings = security_settings(tmp_path)
    with Store.open(settings.daemon.state_dir) as store:
        run = await sweep_now(settings, store)
        document = sarif_of(run)
        assert schema_errors(document) == []
        assert code_scanning_problems(document) == []

        [sarif_run] = document["runs"]
        driver = sarif_run["tool"]["driver"]
        assert driver["informationUri"] == project_url()
        assert driver["informationUri"].startswith("https://")
        results = {r["ruleId"]: r for r in sarif_run["results"]}
        assert {"aws.sg.open_ssh", "aws.iam.root_mfa"} <= set(results)
        ssh = results["aws.sg.open_ssh"]
        arn = f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{group}"
        [location] = ssh["locations"]
        assert location["physicalLocation"]["artifactLocation"] == {
            "uri": f"aws/{ACCOUNT}/{REGION}/ec2/security-group/{group}",
            "uriBaseId": "RESOURCE",
        }
        assert location["logicalLocations"][0]["fullyQualifiedName"] == arn
        assert "RESOURCE" in sarif_run["originalUriBaseIds"]
        assert ssh["partialFingerprints"]["watchkeeperFindingId/v1"] == f"aws.sg.open_ssh:{arn}"
        hashes = [r["partialFingerprints"]["primaryLocationLineHash"] for r in results.values()]
        assert len(set(hashes)) == len(hashes)  # one alert per finding
        assert f"--group-id {group}" in ssh["message"]["text"]  # the exact command to run

        rules = {r["id"]: r for r in driver["rules"]}
        rule = rules["aws.sg.open_ssh"]
        assert driver["rules"][ssh["ruleIndex"]]["id"] == "aws.sg.open_ssh"
        assert rule["helpUri"].startswith("https://docs.aws.amazon.com/")
        assert "aws ec2 revoke-security-group-ingress" in rule["help"]["markdown"]
        assert rule["help"]["text"].startswith("Remove the rule, or narrow its source")
        assert rule["properties"]["security-severity"] == "8.0"
        assert {"security", "aws", "aws:ec2"} <= set(rule["properties"]["tags"])
        assert all(r.get("helpUri") for r in driver["rules"])  # every security rule has docs

        # the next night: the same finding keeps its location and fingerprint (one alert)
        again = sarif_of(await sweep_now(settings, store, datetime.now(UTC) + timedelta(days=1)))
    [kept] = [r for r in again["runs"][0]["results"] if r["ruleId"] == "aws.sg.open_ssh"]
    assert kept["locations"] == ssh["locations"]
    assert kept["partialFingerprints"] == ssh["partialFingerprints"]
    assert kept["baselineState"] == "unchanged"
    assert again["runs"][0]["automationDetails"]["id"].startswith("watchkeeper/nightly/")


# -- hand-built runs -------------------------------------------------------------------------


def record(*tracked: TrackedFinding, **detail: Any) -> SweepRunRecord:
    return SweepRunRecord(
        id="nightly-20261127T020000Z-abc123",
        sweep="nightly",
        kind="security",
        started_at=NOW,
        finished_at=NOW + timedelta(seconds=73),
        status="partial",
        notified=True,
        findings=tracked,
        detail={"rules_run": 3, "rule_errors": [], **detail},
    )


def test_every_state_errors_and_hostile_text_stay_valid() -> None:
    hostile = "open [click here](https://evil.example) \x1b[31m`rm -rf`\n@here"
    k8s = finding("k8s.pod.privileged", "prod/Pod/debug shell#1", evidence=hostile)
    k8s = k8s.model_copy(update={"location": "arn:aws:eks:eu-west-1:1:cluster/prod/prod"})
    run = record(
        TrackedFinding(
            finding("aws.sg.open_ssh", "arn:aws:ec2:eu-west-1:1:security-group/sg-1"), "new", NOW
        ),
        TrackedFinding(k8s, "open", NOW - timedelta(days=2), None, "severity raised from low"),
        TrackedFinding(finding("aws.iam.root_mfa", "arn:aws:iam::1:root"), "unknown", NOW),
        TrackedFinding(finding("aws.s3.public", "arn:aws:s3:::logs"), "open", NOW, "accepted"),
        TrackedFinding(finding("aws.s3.public", "arn:aws:s3:::old"), "resolved", NOW),
        rule_errors=[
            {"rule": "aws.iam.root_mfa", "error": "AccessDenied on iam:GetAccountSummary"}
        ],
        scope_errors=[{"scope": "AWS", "error": "no AWS credentials found", "rules": ["aws.x"]}],
    )
    metas = {m.id: m for m in (meta("aws.sg.open_ssh"), meta("k8s.pod.privileged"))}
    document = report_sarif(run, metas, "0.1.0", "https://example.org/watchkeeper")
    assert schema_errors(document) == []
    assert code_scanning_problems(document) == []
    results = document["runs"][0]["results"]
    assert len(results) == 4  # the resolved one is gone
    [pod] = [r for r in results if r["ruleId"] == "k8s.pod.privileged"]
    assert pod["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "k8s/arn%3Aaws%3Aeks%3Aeu-west-1%3A1%3Acluster%2Fprod/prod/Pod/debug%20shell%231"
    )
    assert "](" not in pod["message"]["text"]  # no embedded link to somewhere else
    assert "\x1b" not in pod["message"]["text"]
    [muted] = [r for r in results if r.get("suppressions")]
    assert muted["suppressions"] == [{"kind": "external", "justification": "accepted"}]
    notes = document["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert [n["message"]["text"] for n in notes] == [
        "AWS: no AWS credentials found (1 rule did not run)",
        "aws.iam.root_mfa: AccessDenied on iam:GetAccountSummary",
    ]


def test_a_rule_without_a_reference_or_findings_still_has_help() -> None:
    document = report_sarif(record(), {"aws.sg.open_ssh": meta("aws.sg.open_ssh")}, "0.1.0", None)
    assert schema_errors(document) == [] and code_scanning_problems(document) == []
    [rule] = document["runs"][0]["tool"]["driver"]["rules"]
    assert "helpUri" not in rule
    assert rule["help"]["markdown"] == (
        "fix aws.sg.open_ssh\n\nFrom the command line (each finding says which values go "
        "in the `{placeholders}`):\n\n```\nfixit aws.sg.open_ssh\n```"
    )
    assert "informationUri" not in document["runs"][0]["tool"]["driver"]


@pytest.mark.parametrize(
    ("resource", "location", "rule", "uri"),
    [
        (
            "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-0abc",
            "eu-west-1",
            "aws.sg.open_ssh",
            "aws/123456789012/eu-west-1/ec2/security-group/sg-0abc",
        ),
        (
            "arn:aws:s3:::my_bucket",
            "global",
            "aws.s3.public",
            "aws/111122223333/global/s3/my_bucket",
        ),
        (
            "arn:aws:iam::123456789012:root",
            "global",
            "aws.iam.root_mfa",
            "aws/123456789012/global/iam/root",
        ),
        (
            "arn:aws-cn:rds:cn-north-1:1:db:orders",
            "cn-north-1",
            "aws.rds.public",
            "aws-cn/1/cn-north-1/rds/db/orders",
        ),
        ("prod/Deployment/api", "ctx/prod", "k8s.pod.privileged", "k8s/ctx/prod/Deployment/api"),
        (
            "123456789012",
            "global",
            "aws.s3.account_public_access_block",
            "aws/111122223333/global/123456789012",
        ),
        ("../../etc/passwd", "..", "aws.odd", "aws/111122223333/%2E%2E/%2E%2E/%2E%2E/etc/passwd"),
    ],
)
def test_a_resource_becomes_a_relative_uri_that_names_it(
    resource: str, location: str, rule: str, uri: str
) -> None:
    found = Finding(
        rule=rule,
        kind="security",
        severity=Severity.HIGH,
        title="t",
        resource=resource,
        location=location,
        evidence="e",
        remediation="r",
        account="111122223333",
    )
    assert resource_uri(found) == uri
    assert FormatChecker().conforms(uri, "uri-reference") and not urlsplit(uri).scheme


def test_rules_results_and_suppressions_follow_the_run() -> None:
    metas = {
        "aws.sg.open_ssh": meta("aws.sg.open_ssh"),
        "aws.iam.root_keys": meta("aws.iam.root_keys"),
    }
    sarif = report_sarif(MIXED, metas, "0.1.0")
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-schema-2.1.0.json")
    [run] = sarif["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("watchkeeper", "0.1.0")
    rules = {r["id"]: r for r in driver["rules"]}
    assert set(rules) == {"aws.sg.open_ssh", "aws.iam.root_keys"}
    ssh = rules["aws.sg.open_ssh"]
    assert ssh["name"] == "AwsSgOpenSsh"
    assert ssh["shortDescription"] == {"text": "aws.sg.open_ssh title"}
    assert ssh["fullDescription"] == {"text": "aws.sg.open_ssh risk"}
    assert ssh["help"]["text"] == (
        "fix aws.sg.open_ssh\n\nFrom the command line:\nfixit aws.sg.open_ssh"
    )
    assert ssh["properties"]["security-severity"] == "8.0"
    results = run["results"]
    # resolved ones are gone; new, open, not re-checked and muted remain, most severe first
    # (then by rule and resource)
    assert [r["locations"][0]["logicalLocations"][0]["name"] for r in results] == [
        SG + "1",
        SG + "4",
        SG + "2",
        SG + "5",
    ]
    critical = results[0]
    assert critical["ruleId"] == "aws.sg.open_ssh"
    assert driver["rules"][critical["ruleIndex"]]["id"] == "aws.sg.open_ssh"
    assert critical["level"] == "error" and critical["baselineState"] == "new"
    assert critical["message"] == {"text": f"{SG}1 is exposed"}
    assert critical["properties"]["security-severity"] == "9.5"
    assert results[-1]["suppressions"] == [
        {"kind": "external", "justification": "bastion (SEC-12)"}
    ]
    [note] = run["invocations"][0]["toolExecutionNotifications"]
    assert note == {
        "level": "error",
        "message": {"text": "aws.iam.root_keys: AccessDenied on iam:GetAccountSummary"},
        "associatedRule": {"id": "aws.iam.root_keys", "index": 0},
    }
    assert schema_errors(sarif) == [] and code_scanning_problems(sarif) == []


def test_levels_follow_severity() -> None:
    run = run_of(*(tracked(f"{SG}{s.value}", "new", severity=s) for s in Severity))
    levels = {
        r["properties"]["security-severity"]: r["level"]
        for r in report_sarif(run, {}, "x")["runs"][0]["results"]
    }
    assert levels == {
        "9.5": "error",
        "8.0": "error",
        "5.5": "warning",
        "3.0": "note",
        "0.0": "note",
    }
