"""What people read when a model was involved: triage lines, the investigation, cost blocks.

Pure functions over ledger rows and model outputs; the rules' own message (daemon.render)
stays the core of every notification, these only add to it. Unknown prices show as
"unknown", never as $0; local calls show $0.00 and say local.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from daemon.costs import format_usd
from daemon.escalation import RcaOutput
from daemon.ledger import LedgerRow
from daemon.models import Incident, Severity
from daemon.render import Message
from daemon.triage import TriageDecision, TriageReport

TASK_LABEL = {"triage": "triage", "rca": "RCA", "ask": "ask", "digest": "digest"}


@dataclass(frozen=True)
class CostBlock:
    calls: Sequence[LedgerRow]
    """The calls this message is about (answered or failed; skips are left out)."""
    incident_total: Decimal | None
    today: Decimal
    month: Decimal
    saved_today: Decimal | None = None
    reference: str | None = None


def _sum(rows: Sequence[LedgerRow]) -> Decimal | None:
    total = Decimal(0)
    for row in rows:
        if row.cost_usd is None:
            return None
        total += row.cost_usd
    return total


def billed(rows: Sequence[LedgerRow]) -> list[LedgerRow]:
    """Calls that reached a provider (skips for missing keys or budget cost nothing)."""
    return [r for r in rows if r.outcome not in ("missing_key", "budget", "skipped", "unreachable")]


def incident_total(rows: Sequence[LedgerRow]) -> Decimal | None:
    return _sum(billed(rows))


def call_text(row: LedgerRow) -> str:
    task = TASK_LABEL.get(row.task, row.task)
    where = "local" if row.local else row.provider
    tokens = f"{row.input_tokens:,} in / {row.output_tokens:,} out"
    failed = "" if row.outcome == "ok" else f", {row.outcome.replace('_', ' ')}"
    return (
        f"{task} {format_usd(row.cost_usd)} ({row.provider}/{row.model}: {tokens}, {where}{failed})"
    )


def cost_text(block: CostBlock) -> str:
    calls = billed(block.calls)
    lines = []
    if calls:
        lines.append("AI cost: " + " · ".join(call_text(r) for r in calls))
    totals = [
        f"Incident total {format_usd(block.incident_total)}",
        f"today {format_usd(block.today)}",
        f"month {format_usd(block.month)}",
    ]
    if block.saved_today and block.reference:
        totals.append(f"local triage saved {format_usd(block.saved_today)} today")
    lines.append(" · ".join(totals))
    return "\n".join(lines)


def costs_json(block: CostBlock) -> dict[str, object]:
    """The payload's `costs` section: numbers as numbers, unknown as null."""

    def usd(value: Decimal | None) -> float | None:
        return None if value is None else float(value)

    return {
        "calls": [
            {
                "task": r.task,
                "model": f"{r.provider}/{r.model}",
                "local": r.local,
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "cost_usd": usd(r.cost_usd),
                "outcome": r.outcome,
            }
            for r in billed(block.calls)
        ],
        "incident_total_usd": usd(block.incident_total),
        "today_usd": usd(block.today),
        "month_usd": usd(block.month),
        "local_triage_saved_today_usd": usd(block.saved_today),
        "savings_reference_model": block.reference,
    }


def triage_json(decision: TriageDecision, report: TriageReport) -> dict[str, object]:
    return {
        "by": report.label,
        "deterministic": report.deterministic,
        "summary": decision.summary,
        "severity": decision.severity.value,
        "raised_from": decision.raised_from.value if decision.raised_from else None,
        "escalate": decision.escalate,
        "reason": decision.reason,
        "correlations": report.correlations,
    }


def with_triage(message: Message, decision: TriageDecision, report: TriageReport) -> Message:
    label = report.label
    lines = [f"**Triage** ({label}): {decision.summary}"]
    if decision.raised_from is not None:
        lines.append(
            f"Severity raised by triage from {decision.raised_from.value} to "
            f"{decision.severity.value}."
        )
    if decision.escalate:
        lines.append(f"Escalating for root-cause analysis: {decision.reason}")
    if report.correlations:
        lines.append("Correlations: " + "; ".join(report.correlations[:3]))
    title = message.title
    if decision.raised_from is not None:
        title = title.replace(
            f"[{decision.raised_from.value.upper()}]", f"[{decision.severity.value.upper()}]", 1
        )
    return replace(message, title=title, body=message.body + "\n\n" + "\n".join(lines))


def with_costs(message: Message, block: CostBlock) -> Message:
    return replace(message, body=message.body + "\n\n" + cost_text(block))


def with_note(message: Message, note: str) -> Message:
    return replace(message, body=message.body + "\n\n" + note)


def investigation(
    incident: Incident,
    rca: RcaOutput,
    model: str,
    why: str,
    dropped: Sequence[str],
) -> Message:
    """The "investigation" follow-up to an incident's opened message."""
    severity = incident.severity
    title = f"[{severity.value.upper()}] {incident.check} — root cause (incident #{incident.id})"
    lines = [
        f"**Root cause** ({model}, confidence {rca.confidence}): {rca.root_cause}",
    ]
    if rca.evidence:
        lines.append("**Evidence:**")
        lines += [f"- {e}" for e in rca.evidence]
    radius = rca.blast_radius or incident.blast_radius
    if radius:
        lines.append(f"**Blast radius:** {', '.join(radius)}")
    if rca.next_steps:
        lines.append("**Next steps** (suggested, never run by watchkeeper):")
        lines += [f"{n}) {step}" for n, step in enumerate(rca.next_steps, 1)]
    lines.append(f"Investigated because {why}.")
    if dropped:
        lines.append(f"Context trimmed to fit: {', '.join(dropped)}.")
    lines.append(f"Incident #{incident.id} · opened {incident.opened_at:%H:%M} UTC")
    return Message(
        title=title,
        body="\n".join(lines),
        notify_type="failure" if severity >= Severity.HIGH else "warning",
    )


def rca_skipped(incident: Incident, reason: str) -> str:
    return f"RCA skipped for incident #{incident.id}: {reason}"
