"""Sweep reports for people and tools: Markdown, the JSON contract, SARIF 2.1.0, and the short
notification of what changed. Pure: no I/O, no clock.

Evidence is untrusted infrastructure text: it is escaped wherever it lands in Markdown, and a
muted or resolved finding is never counted as open.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from daemon.models import Finding, Message, NotifyType, Severity
from daemon.store.sweeps import SweepRunRecord, TrackedFinding
from daemon.sweeps.diff import Changes
from daemon.util.text import untrusted
from daemon.util.time import iso_utc

if TYPE_CHECKING:
    from jobs.sweeps.base import RuleMeta

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
MAX_LISTED = 15
"""Findings listed per section of a notification; the report has them all."""
SEVERITIES: tuple[Severity, ...] = tuple(Severity)  # critical first
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
"""SARIF `security-severity` (the CVSS-like score GitHub code scanning buckets)."""
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


def md(text: str) -> str:
    """Untrusted text (resource names, tags, evidence, model output) as one safe line."""
    return untrusted(text)


def usd(value: float) -> str:
    return f"${value:,.2f}"


def current(run: SweepRunRecord) -> list[TrackedFinding]:
    """What is (believed) present now and not muted: new, open, and not re-checked."""
    return [t for t in run.findings if t.state != "resolved" and not t.muted]


def rule_errors(run: SweepRunRecord) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = run.detail.get("rule_errors", [])
    return errors


def savings(findings: Iterable[TrackedFinding]) -> float:
    return round(sum((t.finding.est_monthly_savings_usd or 0.0 for t in findings), 0.0), 2)


def by_severity(findings: Iterable[TrackedFinding]) -> dict[str, int]:
    counts = {s.value: 0 for s in SEVERITIES}
    for t in findings:
        counts[t.finding.severity.value] += 1
    return counts


def _ordered(findings: Iterable[TrackedFinding]) -> list[TrackedFinding]:
    return sorted(
        findings,
        key=lambda t: (
            -t.finding.severity.rank,
            -(t.finding.est_monthly_savings_usd or 0.0),
            t.finding.id,
        ),
    )


# -- JSON -----------------------------------------------------------------------------------


def report_json(run: SweepRunRecord) -> dict[str, Any]:
    """The documented contract (`watchkeeper sweep --json`, `findings --json`, report.json).
    Muted findings are only counted; a finding whose rule failed this run stays `open`."""
    listed = _ordered(t for t in run.findings if not t.muted)
    present = current(run)
    return {
        "sweep": {
            "name": run.sweep,
            "kind": run.kind,
            "run_id": run.id,
            "started_at": iso_utc(run.started_at),
            "finished_at": iso_utc(run.finished_at),
        },
        "findings": [
            {
                "id": t.finding.id,
                "rule": t.finding.rule,
                "severity": t.finding.severity.value,
                "title": t.finding.title,
                "resource": t.finding.resource,
                "location": t.finding.location,
                "evidence": t.finding.evidence,
                "remediation": t.finding.remediation,
                "est_monthly_savings_usd": t.finding.est_monthly_savings_usd,
                "state": "open" if t.state == "unknown" else t.state,
            }
            for t in listed
        ],
        "summary": {
            "by_severity": by_severity(present),
            "new": sum(t.state == "new" for t in listed),
            "resolved": sum(t.state == "resolved" for t in listed),
            "open": sum(t.state in ("open", "unknown") for t in listed),
            "muted": sum(t.muted for t in run.findings if t.state != "resolved"),
            "est_monthly_savings_usd": savings(present),
            "rule_errors": [{"rule": e["rule"], "error": e["error"]} for e in rule_errors(run)],
        },
    }


# -- Markdown -------------------------------------------------------------------------------


def report_markdown(run: SweepRunRecord) -> str:
    """The full report: every finding with evidence and remediation, grouped by state."""
    present = current(run)
    counts = by_severity(present)
    lines = [
        f"# {run.kind.capitalize()} sweep {md(run.sweep)} — {_clock(run.started_at)}",
        "",
        f"Run `{run.id}` · {run.detail.get('rules_run', 0)} rules · "
        f"{_clock(run.started_at)} → {_clock(run.finished_at)} · status {run.status}",
    ]
    if run.detail.get("summary"):
        lines += ["", str(run.detail["summary"])]
    lines += [
        "",
        "## Summary",
        "",
        "| " + " | ".join(s.value for s in SEVERITIES) + " | total |",
        "|" + "---|" * (len(SEVERITIES) + 1),
        "| " + " | ".join(str(counts[s.value]) for s in SEVERITIES) + f" | {len(present)} |",
        "",
        f"- New {_count(run, 'new')} · open {_count(run, 'open')} · resolved "
        f"{_count(run, 'resolved')} · not re-checked {_count(run, 'unknown')} · muted "
        f"{sum(t.muted for t in run.findings if t.state != 'resolved')}",
    ]
    if run.kind == "cost":
        lines.append(f"- Estimated monthly savings: {usd(savings(present))}")
    errors = rule_errors(run)
    if errors:
        lines += ["", "## Rule errors", ""]
        lines += [f"- `{e['rule']}`: {md(e['error'])}" for e in errors]
    sections = [
        ("New findings", [t for t in present if t.state == "new"]),
        ("Open findings", [t for t in present if t.state == "open"]),
        (
            "Not re-checked (their rule failed this run)",
            [t for t in present if t.state == "unknown"],
        ),
    ]
    for heading, items in sections:
        if items:
            lines += ["", f"## {heading}"]
            for t in _ordered(items):
                lines += ["", *_finding_block(t)]
    resolved = [t for t in run.findings if t.state == "resolved"]
    if resolved:
        lines += ["", "## Resolved since the last run", ""]
        lines += [f"- {_line(t.finding)}" for t in _ordered(resolved)]
    muted = [t for t in run.findings if t.muted and t.state != "resolved"]
    if muted:
        lines += ["", "## Muted", ""]
        lines += [f"- {_line(t.finding)} — {md(t.mute or '')}" for t in _ordered(muted)]
    if not run.findings:
        lines += ["", "No findings."]
    return "\n".join(lines) + "\n"


def _finding_block(t: TrackedFinding) -> list[str]:
    f = t.finding
    block = [
        f"### [{f.severity.value.upper()}] {md(f.title)}",
        "",
        f"- Rule: `{f.rule}`",
        f"- Resource: {md(f.resource)}",
        f"- Location: {md(f.location)}" + (f" (account {md(f.account)})" if f.account else ""),
        f"- Evidence: {md(f.evidence)}",
        f"- Remediation: {md(f.remediation)}",
    ]
    if f.remediation_cli:
        block.append(f"- Command: {md(f.remediation_cli)}")
    if f.est_monthly_savings_usd is not None:
        block.append(f"- Estimated savings: {usd(f.est_monthly_savings_usd)}/month")
    block.append(f"- First seen: {_clock(t.first_seen)}" + (f" · {t.change}" if t.change else ""))
    return block


def _line(f: Finding) -> str:
    saving = f" — {usd(f.est_monthly_savings_usd)}/month" if f.est_monthly_savings_usd else ""
    return (
        f"[{f.severity.value.upper()}] {md(f.title)} — {md(f.resource)} "
        f"({md(f.location)}, `{f.rule}`){saving}"
    )


def _count(run: SweepRunRecord, state: str) -> int:
    return sum(t.state == state and not t.muted for t in run.findings)


def _clock(value: datetime) -> str:
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return f"{utc:%Y-%m-%d %H:%M} UTC"


# -- SARIF ----------------------------------------------------------------------------------


def report_sarif(
    run: SweepRunRecord, metas: Mapping[str, RuleMeta], version: str
) -> dict[str, Any]:
    """SARIF 2.1.0: rules with their remediation as help, one result per finding present now
    (the resource as a logical location: there are no files); muted ones as suppressed."""
    present = _ordered(t for t in run.findings if t.state != "resolved")
    rule_ids = sorted({t.finding.rule for t in present} | set(metas))
    rules = [_sarif_rule(rule, metas.get(rule), present) for rule in rule_ids]
    index = {rule: i for i, rule in enumerate(rule_ids)}
    errors = rule_errors(run)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "watchkeeper",
                        "version": version,
                        "informationUri": "https://github.com/watchkeeper",
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": f"watchkeeper/{run.sweep}/{run.id}"},
                "invocations": [
                    {
                        "executionSuccessful": run.status != "failed",
                        "startTimeUtc": iso_utc(run.started_at),
                        "endTimeUtc": iso_utc(run.finished_at),
                        "toolExecutionNotifications": [
                            {
                                "level": "error",
                                "message": {"text": e["error"]},
                                "descriptor": {"id": e["rule"]},
                            }
                            for e in errors
                        ],
                    }
                ],
                "results": [_sarif_result(t, index[t.finding.rule]) for t in present],
            }
        ],
    }


def _sarif_rule(
    rule: str, meta: RuleMeta | None, present: Sequence[TrackedFinding]
) -> dict[str, Any]:
    sample = next((t.finding for t in present if t.finding.rule == rule), None)
    title = meta.title if meta else sample.title if sample else rule
    severity = meta.severity if meta else sample.severity if sample else Severity.MEDIUM
    remediation = meta.remediation if meta else sample.remediation if sample else ""
    cli = meta.remediation_cli if meta else sample.remediation_cli if sample else None
    help_text = remediation + (f"\nCommand: {cli}" if cli else "")
    entry: dict[str, Any] = {
        "id": rule,
        "name": "".join(part.capitalize() for part in re.split(r"[._:-]", rule) if part),
        "shortDescription": {"text": title},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": _LEVEL[severity]},
        "properties": {
            "security-severity": _SECURITY_SEVERITY[severity],
            "tags": ["security", *([meta.service] if meta and meta.service else [])],
        },
    }
    if meta is not None and meta.risk:
        entry["fullDescription"] = {"text": meta.risk}
    return entry


def _sarif_result(t: TrackedFinding, rule_index: int) -> dict[str, Any]:
    f = t.finding
    result: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": rule_index,
        "level": _LEVEL[f.severity],
        "message": {"text": f.evidence},
        "locations": [
            {
                "logicalLocations": [
                    {"name": f.resource, "fullyQualifiedName": f.resource, "kind": "resource"}
                ],
                "properties": {"location": f.location},
            }
        ],
        "partialFingerprints": {"watchkeeperFindingId/v1": f.id},
        "baselineState": "new" if t.state == "new" else "updated" if t.change else "unchanged",
        "properties": {
            "security-severity": _SECURITY_SEVERITY[f.severity],
            "state": t.state,
            "firstSeen": iso_utc(t.first_seen),
        },
    }
    if t.mute is not None:
        result["suppressions"] = [{"kind": "external", "justification": t.mute}]
    return result


# -- the notification -----------------------------------------------------------------------


def notification(
    run: SweepRunRecord, changes: Changes, report_path: str | None, cost_lines: Sequence[str]
) -> Message:
    """Only what changed, with totals; the summary line (model or its absence) opens it."""
    counts = _tally(changes.new)
    head = [f"{len(changes.new)} new", f"{len(changes.resolved)} resolved"]
    if changes.changed:
        head.insert(1, f"{len(changes.changed)} changed")
    title = f"[{run.kind.upper()}] {run.sweep}: " + ", ".join(head)
    if counts:
        title += f" ({counts})"
    body: list[str] = []
    if run.detail.get("summary"):
        body += [str(run.detail["summary"]), ""]
    body += _section("New", changes.new)
    body += _section("Changed", changes.changed, show_change=True)
    body += _section("Resolved", changes.resolved)
    errors = rule_errors(run)
    if changes.errors_changed:
        if errors:
            body.append(f"**Rule errors ({len(errors)}):**")
            body += [f"- {md(e['rule'])}: {md(e['error'])}" for e in errors[:MAX_LISTED]]
        else:
            body.append("Every rule ran again (the previous rule errors are gone).")
        body.append("")
    present = current(run)
    totals = f"Now: {len(present)} open ({_tally(present) or 'none'})"
    muted = sum(t.muted for t in run.findings if t.state != "resolved")
    totals += f" · {muted} muted" if muted else ""
    if run.kind == "cost":
        totals += f" · est. savings {usd(savings(present))}/month"
        new_savings = savings(changes.new)
        if new_savings:
            title += f", {usd(new_savings)}/month to save"
    body.append(totals)
    if report_path:
        body.append(f"Full report: {report_path}")
    if cost_lines:
        body += ["", *cost_lines]
    return Message(title=title, body="\n".join(body), notify_type=_notify_type(changes))


def _section(name: str, items: Sequence[TrackedFinding], *, show_change: bool = False) -> list[str]:
    if not items:
        return []
    lines = [f"**{name} ({len(items)}):**"]
    ordered = _ordered(items)
    for t in ordered[:MAX_LISTED]:
        extra = f" — {t.change}" if show_change and t.change else ""
        lines.append(f"- {_line(t.finding)}{extra}")
    if len(ordered) > MAX_LISTED:
        lines.append(f"- … and {len(ordered) - MAX_LISTED} more in the full report")
    return [*lines, ""]


def _tally(findings: Sequence[TrackedFinding]) -> str:
    counts = by_severity(findings)
    return " · ".join(f"{n} {s}" for s, n in counts.items() if n)


def _notify_type(changes: Changes) -> NotifyType:
    raised = changes.new + changes.changed
    if any(t.finding.severity >= Severity.HIGH for t in raised):
        return "failure"
    if raised or changes.errors_changed:
        return "warning"
    return "success"
