"""The structured form of every message, for webhook receivers and scripts: built once per
event (or message) and documented key by key in `daemon.notify.webhook`.

Pure: JSON-native values only; `event_id` and `sent_at` are filled per delivery.
"""

from __future__ import annotations

from typing import Any

from daemon.models import IncidentEvent, Message, fingerprint
from daemon.notify.render import open_for, render_event
from daemon.util.time import iso_utc

EVENT_SCHEMA = "watchkeeper.event/1"


def event_payload(event: IncidentEvent) -> dict[str, Any]:
    """The structured form of one event as the rules see it; the pipeline and the
    investigator fill `triage`, `rca` and `costs` when a model was involved (else null)."""
    message = render_event(event)
    return {
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
        },
        "evidence": event.evidence,
        "detail": event.detail,
        "title": message.title,
        "text": message.body,
        "triage": None,
        "rca": None,
        "costs": None,
        "links": {},
        "sent_at": None,
    }


MESSAGE_SCHEMA = "watchkeeper.message/1"


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
