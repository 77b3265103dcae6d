"""Sweep reports for people and tools: Markdown, the JSON contract, and the short notification
of what changed (SARIF is in `sarif`). Pure: no I/O, no clock.

Evidence is untrusted infrastructure text: it is escaped wherever it lands in Markdown, except
inside a code span, where a backslash would be literal: there it only decides the fence. A
muted or resolved finding is never counted as open.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from daemon.models import Finding, Message, NotifyType, Severity
from daemon.store.sweeps import SweepRunRecord, TrackedFinding
from daemon.sweeps.diff import Changes
from daemon.util.text import printable, untrusted
from daemon.util.time import iso_utc
from jobs.sweeps.compliance import rule_controls

MAX_LISTED = 15
"""Findings listed per section of a notification; the report has them all."""
SEVERITIES: tuple[Severity, ...] = tuple(Severity)  # critical first
_BACKTICKS = re.compile("`+")


def md(text: str) -> str:
    """Untrusted text (resource names, tags, evidence, model output) as one safe line."""
    return untrusted(text)


def code_span(text: str) -> str:
    """`text` as an inline code span whose content is exactly `text`, to copy and paste: no
    Markdown escaping inside (a backslash there is literal), a fence of more backticks than any
    run in it, one space of padding where it starts or ends with a backtick or a space
    (CommonMark strips one), and line breaks and controls shown as escapes so it stays on one
    line and cannot end the list item it is in."""
    flat = printable(text).replace("\n", "\\x0a")
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(flat)), default=0) + 1)
    pad = " " if flat.strip(" ") and (flat[0] in "` " or flat[-1] in "` ") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def code_fence(text: str) -> str:
    """`text` as a fenced code block: a fence longer than any run of backticks inside."""
    fence = "`" * max(3, max((len(run) for run in _BACKTICKS.findall(text)), default=0) + 1)
    return f"{fence}\n{printable(text)}\n{fence}"


def usd(value: float) -> str:
    return f"${value:,.2f}"


def current(run: SweepRunRecord) -> list[TrackedFinding]:
    """What is (believed) present now and not muted: new, open, and not re-checked."""
    return [t for t in run.findings if t.state != "resolved" and not t.muted]


def rule_errors(run: SweepRunRecord) -> list[dict[str, str]]:
    """The rules that failed on their own: `{"rule", "error"}`."""
    errors: list[dict[str, str]] = run.detail.get("rule_errors", [])
    return errors


def scope_errors(run: SweepRunRecord) -> list[dict[str, Any]]:
    """Scopes that could not be swept at all (no AWS credentials), each reported once:
    `{"scope", "error", "rules"}` with the rules it kept from running."""
    errors: list[dict[str, Any]] = run.detail.get("scope_errors", [])
    return errors


def not_run(failure: dict[str, Any]) -> str:
    count = len(failure["rules"])
    return f"{count} rule{'' if count == 1 else 's'} did not run"


def savings(findings: Iterable[TrackedFinding]) -> float:
    return round(sum((t.finding.est_monthly_savings_usd or 0.0 for t in findings), 0.0), 2)


def by_severity(findings: Iterable[TrackedFinding]) -> dict[str, int]:
    counts = {s.value: 0 for s in SEVERITIES}
    for t in findings:
        counts[t.finding.severity.value] += 1
    return counts


def ordered(findings: Iterable[TrackedFinding]) -> list[TrackedFinding]:
    """The one order of findings everywhere (reports, notifications, the CLI): most severe
    first, then (cost) the largest saving, then by rule and resource."""
    return sorted(findings, key=lambda t: finding_order(t.finding))


def finding_order(f: Finding) -> tuple[int, float, str, str]:
    return (-f.severity.rank, -(f.est_monthly_savings_usd or 0.0), f.rule, f.resource)


def change_counts(changes: Changes) -> list[str]:
    """`2 new`, `1 changed` (when any), `1 resolved`: the one count of what a run changed, shared
    by the notification's title and the CLI's summary so the two never disagree."""
    counts = [f"{len(changes.new)} new", f"{len(changes.resolved)} resolved"]
    if changes.changed:
        counts.insert(1, f"{len(changes.changed)} changed")
    return counts


# -- JSON -----------------------------------------------------------------------------------


def report_json(run: SweepRunRecord) -> dict[str, Any]:
    """The documented contract (`watchkeeper sweep --json`, `findings --json`, report.json).
    Muted findings are only counted; a finding whose rule failed this run stays `open`."""
    listed = ordered(t for t in run.findings if not t.muted)
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
                "controls": list(rule_controls(run.kind).get(t.finding.rule, ())),
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
            "scope_errors": [
                {"scope": e["scope"], "error": e["error"], "rules": list(e["rules"])}
                for e in scope_errors(run)
            ],
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
        f"Run `{run.id}` · {_rules_ran(run)} · "
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
    for failure in scope_errors(run):
        lines += ["", f"## Could not sweep {md(failure['scope'])}", ""]
        lines.append(f"{md(failure['error'])} — {not_run(failure)}:")
        lines += ["", ", ".join(f"`{rule}`" for rule in failure["rules"])]
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
            for t in ordered(items):
                lines += ["", *_finding_block(t)]
    resolved = [t for t in run.findings if t.state == "resolved"]
    if resolved:
        lines += ["", "## Resolved since the last run", ""]
        lines += [f"- {_line(t.finding)}" for t in ordered(resolved)]
    muted = [t for t in run.findings if t.muted and t.state != "resolved"]
    if muted:
        lines += ["", "## Muted", ""]
        lines += [f"- {_line(t.finding)} — {md(t.mute or '')}" for t in ordered(muted)]
    if not run.findings:
        lines += ["", "No findings."]
    return "\n".join(lines) + "\n"


def _rules_ran(run: SweepRunRecord) -> str:
    ran = run.detail.get("rules_run", 0)
    held = sum(len(e["rules"]) for e in scope_errors(run))
    return f"{ran} of {ran + held} rules ran" if held else f"{ran} rules"


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
        block.append(f"- Command: {code_span(f.remediation_cli)}")
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


# -- the notification -----------------------------------------------------------------------


def notification(
    run: SweepRunRecord, changes: Changes, report_path: str | None, cost_lines: Sequence[str]
) -> Message:
    """Only what changed, with totals; the summary line (model or its absence) opens it."""
    counts = _tally(changes.new)
    title = f"[{run.kind.upper()}] {run.sweep}: " + ", ".join(change_counts(changes))
    if counts:
        title += f" ({counts})"
    failures = scope_errors(run)
    if changes.errors_changed and failures:
        title += " — could not sweep " + ", ".join(f["scope"] for f in failures)
    body: list[str] = []
    if run.detail.get("summary"):
        body += [str(run.detail["summary"]), ""]
    body += _section("New", changes.new)
    body += _section("Changed", changes.changed, show_change=True)
    body += _section("Resolved", changes.resolved)
    errors = rule_errors(run)
    if changes.errors_changed:
        for failure in failures:
            body.append(
                f"**Could not sweep {md(failure['scope'])}:** {md(failure['error'])} "
                f"({not_run(failure)})"
            )
        if errors:
            body.append(f"**Rule errors ({len(errors)}):**")
            body += [f"- {md(e['rule'])}: {md(e['error'])}" for e in errors[:MAX_LISTED]]
        if not errors and not failures:
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
    listed = ordered(items)
    for t in listed[:MAX_LISTED]:
        extra = f" — {t.change}" if show_change and t.change else ""
        lines.append(f"- {_line(t.finding)}{extra}")
    if len(listed) > MAX_LISTED:
        lines.append(f"- … and {len(listed) - MAX_LISTED} more in the full report")
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
