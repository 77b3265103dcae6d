"""What an investigation adds to its incident's timeline besides the `investigation` event:
one `tool_call` event per read-only look-up, so `incidents show` and the console's timeline
show what was looked up, in order, among the incident's other events.

The tool's name, its arguments (chosen by a model) and its result (from systems an attacker
may write to) are untrusted: each piece is flattened, clipped and made printable here, and
every renderer escapes again for its medium. These events are never notified.
"""

from __future__ import annotations

from daemon.models import Incident, IncidentEvent, Investigation, TrailStep
from daemon.util.money import format_usd
from daemon.util.text import clip, printable

ARGUMENTS_CHARS = 160
SUMMARY_CHARS = 200


def shown(text: str, limit: int) -> str:
    """Untrusted text as one printable line of at most `limit` characters."""
    return clip(printable(str(text)), limit)


def tool_detail(step: TrailStep, *, follow_up: bool = False) -> str:
    """One line: `look-up 2: k8s_get(kind=configmap, …) → ok: {…} · turn $0.0073 (model)`."""
    arguments = ", ".join(f"{k}={v}" for k, v in step.arguments.items())
    head = "follow-up look-up" if follow_up else "look-up"
    line = (
        f"{head} {step.step}: {shown(step.tool, 64)}({shown(arguments, ARGUMENTS_CHARS)}) → "
        f"{'ok' if step.ok else 'refused/failed'}: {shown(step.summary, SUMMARY_CHARS)}"
    )
    if step.model is not None:
        cost = "unknown" if step.turn_cost_usd is None else format_usd(step.turn_cost_usd)
        line += f" · turn {cost} ({shown(step.model, 80)})"
    return line


def tool_events(incident: Incident, record: Investigation) -> list[IncidentEvent]:
    """The `tool_call` events of `record`'s trail, in the order the look-ups ran."""
    return [
        IncidentEvent(
            incident_id=incident.id,
            kind="tool_call",
            at=step.at or record.at,
            check=incident.check,
            severity=incident.severity,
            evidence=incident.evidence,
            blast_radius=list(incident.blast_radius),
            opened_at=incident.opened_at,
            detail=tool_detail(step, follow_up=record.question is not None),
            tool=step,
        )
        for step in record.trail
    ]


def investigation_detail(record: Investigation) -> str:
    """The `investigation` event's line: the model (or why none answered), and for a
    follow-up the question it answered."""
    detail = record.model or f"skipped: {record.skipped}"
    if record.question is not None:
        return f"follow-up {shown(record.question, 120)!r}: {detail}"
    return detail
