"""What people read when a model was involved: triage lines, the investigation message, the
cost block appended to a message.

Pure functions over model outputs; the rules' own message (`daemon.notify.render`) stays the
core of every notification, these only add to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from daemon.ai.reports import CostBlock, cost_text
from daemon.engine.rca import RcaOutput
from daemon.engine.triage import TriageDecision, TriageReport
from daemon.models import Incident, Message, Severity
from daemon.notify.payload import RcaSection, TriageSection
from daemon.util.text import untrusted


def triage_section(decision: TriageDecision, report: TriageReport) -> TriageSection:
    return TriageSection(
        by=report.label,
        deterministic=report.deterministic,
        summary=decision.summary,
        severity=decision.severity.value,
        raised_from=decision.raised_from.value if decision.raised_from else None,
        escalate=decision.escalate,
        reason=decision.reason,
        correlations=list(report.correlations),
    )


def rca_section(
    rca: RcaOutput, model: str | None, reason: str, dropped: Sequence[str]
) -> RcaSection:
    return RcaSection(
        root_cause=rca.root_cause,
        confidence=rca.confidence,
        evidence=list(rca.evidence),
        blast_radius=list(rca.blast_radius),
        next_steps=list(rca.next_steps),
        model=model,
        reason=reason,
        dropped=list(dropped),
    )


def with_triage(message: Message, decision: TriageDecision, report: TriageReport) -> Message:
    label = report.label
    lines = [f"**Triage** ({untrusted(label)}): {untrusted(decision.summary)}"]
    if decision.raised_from is not None:
        lines.append(
            f"Severity raised by triage from {decision.raised_from.value} to "
            f"{decision.severity.value}."
        )
    if decision.escalate:
        lines.append(f"Escalating for root-cause analysis: {untrusted(decision.reason)}")
    if report.correlations:
        lines.append("Correlations: " + "; ".join(untrusted(c) for c in report.correlations[:3]))
    title = message.title
    if decision.raised_from is not None:
        title = title.replace(
            f"[{decision.raised_from.value.upper()}]", f"[{decision.severity.value.upper()}]", 1
        )
    return replace(message, title=title, body=message.body + "\n\n" + "\n".join(lines))


def with_costs(message: Message, block: CostBlock) -> Message:
    return replace(message, body=message.body + "\n\n" + cost_text(block))


def with_note(message: Message, note: str) -> Message:
    """`note` is untrusted (it may quote a provider's error)."""
    return replace(message, body=message.body + "\n\n" + untrusted(note))


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
        f"**Root cause** ({model}, confidence {rca.confidence}): {untrusted(rca.root_cause)}",
    ]
    if rca.evidence:
        lines.append("**Evidence:**")
        lines += [f"- {untrusted(e)}" for e in rca.evidence]
    radius = rca.blast_radius or incident.blast_radius
    if radius:
        lines.append(f"**Blast radius:** {untrusted(', '.join(radius))}")
    if rca.next_steps:
        lines.append("**Next steps** (suggested, never run by watchkeeper):")
        lines += [f"{n}) {untrusted(step)}" for n, step in enumerate(rca.next_steps, 1)]
    lines.append(f"Investigated because {untrusted(why)}.")
    if dropped:
        lines.append(f"Context trimmed to fit: {untrusted(', '.join(dropped))}.")
    lines.append(f"Incident #{incident.id} · opened {incident.opened_at:%H:%M} UTC")
    return Message(
        title=title,
        body="\n".join(lines),
        notify_type="failure" if severity >= Severity.HIGH else "warning",
    )


def rca_skipped(incident: Incident, reason: str) -> str:
    return f"RCA skipped for incident #{incident.id}: {untrusted(reason)}"
