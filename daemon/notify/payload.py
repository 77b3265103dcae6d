"""The structured form of every message — for webhook receivers, scripts and the console:
one typed builder for incident events (with their triage, root-cause and cost sections) and
one for other messages. The wire format is documented key by key in `daemon.notify.webhook`.

Pure: JSON-native values only; `event_id` and `sent_at` are filled per delivery.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from daemon.ai.reports import CostBlock, billed
from daemon.models import IncidentEvent, Message, fingerprint
from daemon.notify.render import open_for, render_event
from daemon.util.time import iso_utc

EVENT_SCHEMA = "watchkeeper.event/1"
MESSAGE_SCHEMA = "watchkeeper.message/1"


@dataclass(frozen=True)
class TriageSection:
    """What the local triage said about this incident (or that the rules stood alone)."""

    by: str
    """`ollama/gemma4:27b, local`, or `deterministic: <why no model was used>`."""
    deterministic: bool
    summary: str
    severity: str
    raised_from: str | None
    escalate: bool
    reason: str
    correlations: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RcaSection:
    """A root-cause analysis as the model gave it (validated), and why it was run."""

    root_cause: str
    confidence: str
    evidence: list[str]
    blast_radius: list[str]
    next_steps: list[str]
    model: str | None
    reason: str
    dropped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CallCost:
    task: str
    model: str
    local: bool
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    outcome: str


@dataclass(frozen=True)
class CostsSection:
    """The itemised AI cost of a message: its calls, then incident, day and month totals;
    an unknown cost is null, never 0."""

    calls: list[CallCost]
    incident_total_usd: float | None
    today_usd: float | None
    month_usd: float | None
    local_triage_saved_today_usd: float | None
    savings_reference_model: str | None

    @classmethod
    def from_block(cls, block: CostBlock) -> CostsSection:
        return cls(
            calls=[
                CallCost(
                    task=r.task,
                    model=f"{r.provider}/{r.model}",
                    local=r.local,
                    input_tokens=r.input_tokens,
                    output_tokens=r.output_tokens,
                    cost_usd=_usd(r.cost_usd),
                    outcome=r.outcome,
                )
                for r in billed(block.calls)
            ],
            incident_total_usd=_usd(block.incident_total),
            today_usd=_usd(block.today.usd),
            month_usd=_usd(block.month.usd),
            local_triage_saved_today_usd=_usd(block.saved_today),
            savings_reference_model=block.reference,
        )


@dataclass(frozen=True)
class Sections:
    """What a model added to an incident event; every field may be absent (null)."""

    triage: TriageSection | None = None
    rca: RcaSection | None = None
    rca_skipped: str | None = None
    """Why no root-cause analysis answered, on an `investigation` event."""
    costs: CostsSection | None = None
    ai_note: str | None = None
    """The one line people read about an AI step that did not run (`AI off: …`)."""
    ai_off: bool = False
    """No model could take part although one was wanted: the note stands in for the triage
    (and the RCA)."""


def event_payload(
    event: IncidentEvent, message: Message | None = None, sections: Sections | None = None
) -> dict[str, Any]:
    """The payload of one incident event: the rules' facts, the message people read (default:
    the rules' own), and the model sections (null where no model was involved)."""
    message = message or render_event(event)
    sections = sections or Sections()
    payload = {
        "schema": EVENT_SCHEMA,
        "event": event.kind,
        "event_id": None,
        "at": iso_utc(event.at),
        "incident": {
            "id": event.incident_id,
            "fingerprint": fingerprint(event.check),
            "check": event.check,
            "severity": event.severity.value,
            "previous_severity": (
                None if event.previous_severity is None else event.previous_severity.value
            ),
            "status": "resolved" if event.kind == "resolved" else "open",
            "opened_at": iso_utc(event.opened_at),
            "duration_s": round(open_for(event).total_seconds(), 3),
            "blast_radius": list(event.blast_radius),
            "acknowledged_by": event.acknowledged_by,
        },
        "evidence": event.evidence,
        "detail": event.detail,
        "title": message.title,
        "text": message.body,
        "triage": _section(sections.triage),
        "rca": _section(sections.rca),
        "costs": _section(sections.costs),
        "ai_off": sections.ai_off,
        "ai_note": sections.ai_note,
        "links": {},
        "sent_at": None,
    }
    if event.kind == "investigation":  # only an investigation can have been skipped
        payload = {**payload, "rca_skipped": sections.rca_skipped}
    return payload


def message_payload(message: Message, kind: str) -> dict[str, Any]:
    """The payload of a message outside incidents (report, budget notice, test)."""
    return {
        "schema": MESSAGE_SCHEMA,
        "event": kind,
        "title": message.title,
        "text": message.body,
        "notify_type": message.notify_type,
        "links": {},
        "sent_at": None,
    }


def _section(value: TriageSection | RcaSection | CostsSection | None) -> dict[str, Any] | None:
    return None if value is None else asdict(value)


def _usd(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
