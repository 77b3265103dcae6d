"""Sweep reports from hand-built runs: the JSON contract, Markdown, and the notification of what
changed (SARIF: test_sarif.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from markdown_it import MarkdownIt

from daemon.models import Severity
from daemon.store.sweeps import FindingState, SweepRunRecord, TrackedFinding
from daemon.sweeps.diff import Changes
from daemon.sweeps.reports import (
    MAX_LISTED,
    notification,
    report_json,
    report_markdown,
)
from tests.jobs.sweeps.fake_rules import finding

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
SG = "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-"


def tracked(
    resource: str,
    state: FindingState,
    *,
    rule: str = "aws.sg.open_ssh",
    severity: Severity = Severity.HIGH,
    mute: str | None = None,
    change: str | None = None,
    savings: float | None = None,
    evidence: str | None = None,
) -> TrackedFinding:
    kind = "cost" if savings is not None else "security"
    f = finding(rule, resource, severity=severity, kind=kind, savings=savings, evidence=evidence)
    return TrackedFinding(f, state, NOW - timedelta(days=3), mute, change)


def run_of(*findings: TrackedFinding, kind: Any = "security", **detail: Any) -> SweepRunRecord:
    return SweepRunRecord(
        id="nightly-20261127T020000Z-abc123",
        sweep="nightly",
        kind=kind,
        started_at=NOW,
        finished_at=NOW + timedelta(seconds=73),
        status="partial" if detail.get("rule_errors") else "ok",
        notified=True,
        findings=findings,
        detail={"rules_run": 12, "rule_errors": [], **detail},
    )


ERROR = {"rule": "aws.iam.root_keys", "error": "AccessDenied on iam:GetAccountSummary"}
MIXED = run_of(
    tracked(SG + "1", "new", severity=Severity.CRITICAL),
    tracked(SG + "2", "open"),
    tracked(SG + "3", "resolved", severity=Severity.MEDIUM),
    tracked(SG + "4", "unknown", rule="aws.iam.root_keys"),
    tracked(SG + "5", "open", mute="bastion (SEC-12)"),
    rule_errors=[ERROR],
)


# -- JSON ----------------------------------------------------------------------------------------


def test_json_follows_the_contract_exactly() -> None:
    doc = report_json(MIXED)
    assert list(doc) == ["sweep", "findings", "summary"]
    assert doc["sweep"] == {
        "name": "nightly",
        "kind": "security",
        "run_id": "nightly-20261127T020000Z-abc123",
        "started_at": "2026-11-27T02:00:00Z",
        "finished_at": "2026-11-27T02:01:13Z",
    }
    first = doc["findings"][0]
    assert first == {
        "id": f"aws.sg.open_ssh:{SG}1",
        "rule": "aws.sg.open_ssh",
        "severity": "critical",
        "title": f"aws.sg.open_ssh on {SG}1",
        "resource": SG + "1",
        "location": "eu-west-1",
        "evidence": f"{SG}1 is exposed",
        "remediation": "fix aws.sg.open_ssh",
        "est_monthly_savings_usd": None,
        "state": "new",
        "controls": ["cis-aws:5.2", "cis-aws:5.3", "soc2:CC6.6", "hipaa:164.312(a)(1)"],
    }
    assert doc["summary"] == {
        "by_severity": {"critical": 1, "high": 2, "medium": 0, "low": 0, "info": 0},
        "new": 1,
        "resolved": 1,
        "open": 2,
        "muted": 1,
        "est_monthly_savings_usd": 0.0,
        "rule_errors": [ERROR],
        "scope_errors": [],
    }


def test_json_lists_resolved_keeps_not_rechecked_open_and_leaves_muted_out() -> None:
    states = {f["resource"]: f["state"] for f in report_json(MIXED)["findings"]}
    assert states == {SG + "1": "new", SG + "2": "open", SG + "3": "resolved", SG + "4": "open"}


def test_json_adds_up_savings_of_what_is_still_there() -> None:
    run = run_of(
        tracked("vol-1", "new", savings=12.346, rule="aws.ebs.unattached"),
        tracked("vol-2", "open", savings=100.0, rule="aws.ebs.unattached"),
        tracked("vol-3", "resolved", savings=999.0, rule="aws.ebs.unattached"),
        tracked("vol-4", "open", savings=50.0, rule="aws.ebs.unattached", mute="keep"),
        kind="cost",
    )
    summary = report_json(run)["summary"]
    assert summary["est_monthly_savings_usd"] == 112.35


# -- Markdown ------------------------------------------------------------------------------------


def test_markdown_groups_findings_by_state_with_evidence_and_remediation() -> None:
    text = report_markdown(MIXED)
    assert text.startswith("# Security sweep nightly — 2026-11-27 02:00 UTC\n")
    order = [
        "## Summary",
        "| 1 | 2 | 0 | 0 | 0 | 3 |",
        "## Rule errors",
        "- `aws.iam.root_keys`: AccessDenied on iam:GetAccountSummary",
        "## New findings",
        "### [CRITICAL] aws.sg.open\\_ssh on " + SG + "1",
        "## Open findings",
        "## Not re-checked (their rule failed this run)",
        "## Resolved since the last run",
        "## Muted",
        "— bastion (SEC-12)",
    ]
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions)
    assert "- Remediation: fix aws.sg.open\\_ssh" in text
    assert "- First seen: 2026-11-24 02:00 UTC" in text
    assert "- New 1 · open 1 · resolved 1 · not re-checked 1 · muted 1" in text


def test_markdown_escapes_untrusted_evidence() -> None:
    hostile = "see [click](http://evil.example) <script>x</script> # heading"
    text = report_markdown(run_of(tracked(SG + "1", "new", evidence=hostile)))
    assert (
        "- Evidence: see \\[click\\](http://evil.example) \\<script\\>x\\</script\\> \\# heading"
        in text
    )


def command_item(markdown: str) -> list[tuple[str, str]]:
    """The inline parts (type, content) of the report's `- Command: …` item, as a CommonMark
    parser sees them."""
    tokens = MarkdownIt("commonmark").parse(markdown)
    [item] = [t for t in tokens if t.type == "inline" and t.content.startswith("Command: ")]
    return [(child.type, child.content) for child in item.children or []]


@pytest.mark.parametrize(
    "bucket",
    ["my_bucket*[x]", "odd`name", "``fenced", "tail`", " spaced ", "back\\slash<b>@here"],
)
def test_a_remediation_command_is_a_code_span_holding_exactly_the_command(bucket: str) -> None:
    command = f"aws s3api put-public-access-block --bucket {bucket} --block"
    found = finding("aws.s3.public", f"arn:aws:s3:::{bucket}")
    found = found.model_copy(update={"remediation_cli": command})
    text = report_markdown(run_of(TrackedFinding(found, "new", NOW)))
    assert command_item(text) == [("text", "Command: "), ("code_inline", command)]


def test_a_line_break_in_a_command_stays_inside_its_code_span() -> None:
    command = "kubectl delete pod evil\n# Heading\n- item `x`"
    found = finding("k8s.pod.privileged", "prod/Pod/evil")
    found = found.model_copy(update={"remediation_cli": command})
    text = report_markdown(run_of(TrackedFinding(found, "new", NOW)))
    shown = "kubectl delete pod evil\\x0a# Heading\\x0a- item `x`"
    assert command_item(text) == [("text", "Command: "), ("code_inline", shown)]
    tokens = MarkdownIt("commonmark").parse(text)
    assert [t.tag for t in tokens if t.type == "heading_open"].count("h1") == 1


SCRAMBLED = [
    ("aws.b", "r1", Severity.LOW),
    ("aws.z", "r2", Severity.CRITICAL),
    ("aws.b", "r3", Severity.HIGH),
    ("aws.a", "r9", Severity.HIGH),
    ("aws.a", "r1", Severity.CRITICAL),
]
SORTED = ["aws.a:r1", "aws.z:r2", "aws.a:r9", "aws.b:r3", "aws.b:r1"]
"""Most severe first, then by rule, then by resource."""


def scrambled() -> list[TrackedFinding]:
    return [tracked(resource, "new", rule=rule, severity=s) for rule, resource, s in SCRAMBLED]


def test_findings_come_most_severe_first_then_by_rule_and_resource() -> None:
    items = scrambled()
    run = run_of(*items)
    assert [f["id"] for f in report_json(run)["findings"]] == SORTED
    markdown = report_markdown(run)
    headings = [line for line in markdown.splitlines() if line.startswith("### ")]
    assert [h.split(" on ", 1)[1] for h in headings] == [i.split(":", 1)[1] for i in SORTED]
    assert [h.split("] ", 1)[1].split(" on ")[0] for h in headings] == [
        i.split(":", 1)[0] for i in SORTED
    ]
    body = notification(run, Changes(new=items), None, []).body
    listed = [line for line in body.splitlines() if line.startswith("- [")]
    assert [line.split("`")[1] + ":" + line.split(" — ")[1].split(" (")[0] for line in listed] == (
        SORTED
    )


def test_a_scope_that_could_not_be_swept_is_reported_once_with_the_rules_it_held_back() -> None:
    failure = {"scope": "AWS", "error": "no AWS credentials found", "rules": ["aws.a", "aws.b"]}
    run = run_of(tracked(SG + "1", "unknown"), scope_errors=[failure])
    markdown = report_markdown(run)
    assert markdown.count("no AWS credentials found") == 1
    assert "## Could not sweep AWS" in markdown and "2 rules did not run" in markdown
    assert "· 12 of 14 rules ran ·" in markdown
    message = notification(run, Changes(errors_changed=True), None, [])
    assert message.title == "[SECURITY] nightly: 0 new, 0 resolved — could not sweep AWS"
    body = message.body
    assert body.count("no AWS credentials found") == 1
    assert "**Could not sweep AWS:** no AWS credentials found (2 rules did not run)" in body
    assert report_json(run)["summary"]["scope_errors"] == [failure]


def test_markdown_of_a_clean_cost_run_says_so() -> None:
    text = report_markdown(run_of(kind="cost"))
    assert "- Estimated monthly savings: $0.00" in text and text.endswith("No findings.\n")


# -- the notification ----------------------------------------------------------------------------


def test_the_notification_lists_only_changes_with_totals_and_the_report() -> None:
    new = [tracked(SG + "1", "new", severity=Severity.CRITICAL)]
    resolved = [tracked(SG + "3", "resolved", severity=Severity.MEDIUM)]
    run = run_of(
        *MIXED.findings, rule_errors=[ERROR], summary="(no model summary: AI is not configured)"
    )
    message = notification(run, Changes(new=new, resolved=resolved), "/state/r.md", [])
    assert message.title == "[SECURITY] nightly: 1 new, 1 resolved (1 critical)"
    assert message.notify_type == "failure"
    lines = message.body.splitlines()
    assert lines[0] == "(no model summary: AI is not configured)"
    assert "**New (1):**" in lines and "**Resolved (1):**" in lines
    assert "Rule errors" not in message.body  # unchanged since the last notification
    assert f"{SG}2" not in message.body  # open and unchanged: not told again
    assert "Now: 3 open (1 critical · 2 high) · 1 muted" in lines
    assert lines[-1] == "Full report: /state/r.md"


def test_a_long_list_is_cut_and_points_to_the_report() -> None:
    new = [tracked(f"{SG}{i}", "new") for i in range(MAX_LISTED + 3)]
    message = notification(run_of(*new), Changes(new=new), "/r.md", [])
    assert "- … and 3 more in the full report" in message.body
    assert message.body.count("\n- [HIGH]") == MAX_LISTED


def test_a_cost_notification_says_what_there_is_to_save() -> None:
    new = [tracked("vol-1", "new", savings=40.0, rule="aws.ebs.unattached", severity=Severity.LOW)]
    run = run_of(*new, kind="cost")
    message = notification(run, Changes(new=new), None, ["AI cost: cost $0.00 (…)"])
    assert message.title == "[COST] nightly: 1 new, 0 resolved (1 low), $40.00/month to save"
    assert message.notify_type == "warning"
    assert "Now: 1 open (1 low) · est. savings $40.00/month" in message.body
    assert message.body.endswith("\n\nAI cost: cost $0.00 (…)")


def test_rule_errors_that_went_away_are_told() -> None:
    message = notification(run_of(), Changes(errors_changed=True), None, [])
    assert "Every rule ran again" in message.body
