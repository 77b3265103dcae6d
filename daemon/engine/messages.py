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
from daemon.models import Incident, Message, Severity, TrailStep
from daemon.notify.payload import RcaSection, TriageSection
from daemon.store.ledger import LedgerRow
from daemon.util.text import untrusted

AI_OFF = "AI off: no model reachable — run `watchkeeper models`"
"""What a notification says when no model could take part although one was wanted: one line,
not a paragraph per provider. The detail stays in `watchkeeper models`, the ledger's skips,
the payload's `triage.by` and the stored investigation."""
TRIAGE_OFF = "Triage off: no model reachable — run `watchkeeper models`"
"""The same when only triage was wanted (the incident is below `[escalation] min_severity`)."""
RCA_OFF = "RCA skipped: no model usable for rca — run `watchkeeper models`"
"""When triage answered (or failed for another reason) but no rca model was usable."""

# Skips that mean "there is no model here" (none configured, no key, not reachable or not
# pulled) — not a budget spent or a deadline passed, which say something else.
_NO_MODEL = frozenset({"missing_key", "unreachable", "skipped"})


def no_model(calls: Sequence[LedgerRow]) -> bool:
    """True when every model of a chain was skipped for want of a usable model (or the chain
    was empty): nothing answered because nothing could be asked."""
    return all(row.outcome in _NO_MODEL for row in calls)


def ai_note(report: TriageReport | None, rca_skipped: bool) -> tuple[str | None, bool]:
    """The one line about AI an incident message carries, and whether it stands in for the
    triage line (`ai_off`). `report` is the triage of this incident (None: none ran);
    `rca_skipped`: its RCA was due but no rca model was usable."""
    triage_off = (
        report is not None
        and report.deterministic
        and report.result is not None
        and no_model(report.result.calls)
    )
    if rca_skipped:
        return (AI_OFF, True) if report is None or triage_off else (RCA_OFF, False)
    return (TRIAGE_OFF, True) if triage_off else (None, False)


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


def with_line(message: Message, line: str) -> Message:
    """`line` is ours (`AI_OFF`): Markdown as written."""
    return replace(message, body=message.body + "\n\n" + line)


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


def rca_skipped(incident: Incident, reason: str, *, off: bool = False) -> str:
    """Why an investigation has no root cause: `AI_OFF` when no model could be asked (the
    reason, one clause per model, stays in the stored investigation), else the reason."""
    if off:
        return AI_OFF
    return f"RCA skipped for incident #{incident.id}: {untrusted(reason)}"


def trail_text(trail: Sequence[TrailStep], limit: str | None) -> str:
    """The short "trail" of an investigation's look-ups (tool outputs are untrusted)."""
    lines = ["**Trail** (read-only look-ups):"]
    for step in trail[:12]:
        args = ", ".join(f"{k}={v}" for k, v in step.arguments.items())
        mark = "" if step.ok else " ✗"
        lines.append(
            f"- {step.step}. {untrusted(step.tool)}({untrusted(args)}){mark}: "
            f"{untrusted(step.summary)}"
        )
    if len(trail) > 12:
        lines.append(f"- … {len(trail) - 12} more")
    if limit:
        lines.append(f"**Partial answer**: {untrusted(limit)}.")
    return "\n".join(lines)
