"""The per-framework view of a run: pass/fail/not evaluated per control with its rules and
resources, in Markdown (untrusted resource names stay text) and in SARIF."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from daemon.models import Finding, Severity
from daemon.store.sweeps import SweepRunRecord, TrackedFinding
from daemon.sweeps.compliance import compliance, compliance_markdown
from daemon.sweeps.sarif import report_sarif
from jobs.sweeps.base import RuleMeta

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
META = {
    "aws.sg.open_ssh": RuleMeta(
        "aws.sg.open_ssh",
        "SSH open",
        "security",
        Severity.HIGH,
        "risk",
        "fix",
        controls=("cis-aws:5.2", "cis-aws:5.3", "soc2:CC6.6"),
    ),
    "aws.iam.root_mfa": RuleMeta(
        "aws.iam.root_mfa",
        "Root MFA",
        "security",
        Severity.CRITICAL,
        "risk",
        "fix",
        controls=("cis-aws:1.5", "soc2:CC6.1"),
    ),
    "aws.rds.public": RuleMeta(
        "aws.rds.public",
        "RDS public",
        "security",
        Severity.HIGH,
        "risk",
        "fix",
        controls=("cis-aws:2.3.3", "soc2:CC6.6"),
    ),
}


def tracked(rule: str, resource: str, *, mute: str | None = None) -> TrackedFinding:
    finding = Finding(
        rule=rule,
        kind="security",
        severity=Severity.HIGH,
        title=rule,
        resource=resource,
        location="eu-west-1",
        evidence="e",
        remediation="r",
    )
    return TrackedFinding(finding, "open", NOW - timedelta(days=1), mute, None)


def run_of(*findings: TrackedFinding, errors: list[dict[str, str]] = ()) -> SweepRunRecord:  # type: ignore[assignment]
    return SweepRunRecord(
        id="nightly-1",
        sweep="nightly",
        kind="security",
        started_at=NOW,
        finished_at=NOW,
        status="ok",
        notified=True,
        findings=findings,
        detail={"rules_run": 3, "rule_errors": list(errors)},
    )


def test_controls_fail_pass_or_are_not_evaluated() -> None:
    run = run_of(
        tracked("aws.sg.open_ssh", "sg-1"),
        tracked("aws.sg.open_ssh", "sg-2", mute="bastion"),
        errors=[{"rule": "aws.iam.root_mfa", "error": "AccessDenied"}],
    )
    result = compliance(run, META)
    assert list(result) == ["cis-aws", "soc2"]
    cis = {c["control"]: c for c in result["cis-aws"]["controls"]}
    assert [c["control"] for c in result["cis-aws"]["controls"]] == ["5.2", "5.3", "1.5", "2.3.3"]
    assert cis["5.2"] == {
        "control": "5.2",
        "title": "No security group admits 0.0.0.0/0 to administration ports",
        "status": "fail",
        "rules": ["aws.sg.open_ssh"],
        "resources": ["sg-1"],  # the muted one is accepted, not failing
    }
    assert cis["1.5"]["status"] == "not evaluated"
    assert cis["2.3.3"]["status"] == "pass"
    assert (result["cis-aws"]["failed"], result["cis-aws"]["passed"]) == (2, 1)
    soc2 = {c["control"]: c for c in result["soc2"]["controls"]}
    assert soc2["CC6.6"]["rules"] == ["aws.rds.public", "aws.sg.open_ssh"]
    assert soc2["CC6.6"]["status"] == "fail"


def test_the_markdown_section_keeps_resource_names_as_text() -> None:
    run = run_of(tracked("aws.sg.open_ssh", "sg-1 | PASS | [click](https://evil.example)"))
    text = compliance_markdown(run, META)
    assert "## Compliance" in text
    assert "### CIS Amazon Web Services Foundations Benchmark v3.0.0 — 2 failing, 2 passing" in text
    row = next(line for line in text.splitlines() if line.startswith("| 5.2 "))
    assert row.count(" | ") == 3  # the resource's pipes cannot add columns
    assert "[click](" not in row
    assert compliance_markdown(run_of(), {}) == ""


def test_sarif_rules_carry_their_controls() -> None:
    sarif = report_sarif(run_of(tracked("aws.sg.open_ssh", "sg-1")), META, "1.0")
    rules = {r["id"]: r for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    ssh = rules["aws.sg.open_ssh"]["properties"]
    assert ssh["compliance"] == ["cis-aws:5.2", "cis-aws:5.3", "soc2:CC6.6"]
    assert "compliance/cis-aws:5.2" in ssh["tags"]
