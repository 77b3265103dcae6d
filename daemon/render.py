"""Turn incident events into short, exact messages for people (title + Markdown body).

Pure: no I/O, no clock. A message carries only fields of the event it renders — never a
target URL, a secret or anything read from configuration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.models import IncidentEvent, Severity, fingerprint, format_duration
from daemon.store import NotifyType

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    """Markdown; one fact per line (apprise turns newlines into line breaks)."""
    notify_type: NotifyType


def render_event(event: IncidentEvent) -> Message:
    """One message for one event: `[HIGH] api-health failing — incident #42` and so on."""
    lines = [_escape(event.evidence) or "(no evidence recorded)"]
    lines.append(_timeline(event))
    if event.blast_radius:
        names = ", ".join(event.blast_radius)
        lines.append(_escape(f"Blast radius: {names} (depend on {event.check})"))
    if event.detail:
        lines.append(_escape(event.detail))
    lines.append(f"Incident #{event.incident_id} · fingerprint {fingerprint(event.check)}")
    return Message(title=_title(event), body="\n".join(lines), notify_type=_notify_type(event))


EVENT_SCHEMA = "watchkeeper.event/1"


def event_payload(event: IncidentEvent) -> dict[str, Any]:
    """The structured form of one event, for webhook receivers (documented key by key in
    `daemon.webhook`). JSON-native values only; `event_id` and `sent_at` stay None here and are
    filled per delivery. `triage`, `rca` and `costs` are reserved (None) so the shape is
    stable before those sections exist."""
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
            "duration_s": round(_open_for(event).total_seconds(), 3),
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


def iso_utc(value: datetime) -> str:
    """`2026-11-27T14:02:00Z`: RFC 3339, UTC, whole seconds (a naive value is taken as UTC)."""
    return _utc(value).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def render_test(target_name: str) -> Message:
    """What `watchkeeper notify test` sends: proof that the target is wired up."""
    return Message(
        title=f"[TEST] watchkeeper → {target_name}",
        body=_escape(
            f"Test notification for target {target_name}. If you can read this, "
            "watchkeeper can reach you here; nothing is wrong."
        ),
        notify_type="info",
    )


def _state(event: IncidentEvent) -> str:
    """`failing` unless the rules saw only `degraded` (slow, near a limit) or an `error`."""
    return {"degraded": "degraded", "error": "cannot be checked"}.get(event.status or "", "failing")


def _title(event: IncidentEvent) -> str:
    tag = f"[{event.severity.value.upper()}]"
    ref = f"incident #{event.incident_id}"
    if event.kind == "opened":
        return f"{tag} {event.check} {_state(event)} — {ref}"
    if event.kind == "resolved":
        return f"[RESOLVED] {event.check} — {ref} after {format_duration(_open_for(event))}"
    if event.kind == "flapping":
        return f"{tag} {event.check} flapping — {ref}"
    if event.kind == "reminder":
        open_for = format_duration(_open_for(event))
        return f"{tag} {event.check} still {_state(event)} — {ref} (open {open_for})"
    previous = event.previous_severity
    if previous is None or previous == event.severity:
        return f"{tag} {event.check} changed — {ref}"
    direction = "raised" if event.severity > previous else "lowered"
    return f"{tag} {event.check} severity {direction} from {previous.value} — {ref}"


def _timeline(event: IncidentEvent) -> str:
    if event.kind != "resolved":
        return f"Since: {_clock(event.opened_at)}"
    return (
        f"Open: {_clock(event.opened_at)} → {_clock(event.at)}, {format_duration(_open_for(event))}"
    )


def _notify_type(event: IncidentEvent) -> NotifyType:
    if event.kind == "resolved":
        return "success"
    if event.kind == "flapping":
        return "warning"
    return "failure" if event.severity >= Severity.HIGH else "warning"


def _open_for(event: IncidentEvent) -> timedelta:
    if event.kind == "resolved" and event.duration_s is not None:
        return timedelta(seconds=event.duration_s)
    return _utc(event.at) - _utc(event.opened_at)


def _clock(value: datetime) -> str:
    """`14:02 UTC (2026-11-27)`."""
    utc = _utc(value)
    return f"{utc:%H:%M} UTC ({utc:%Y-%m-%d})"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _escape(text: str) -> str:
    """Evidence is untrusted infrastructure text: it must not turn into links, HTML or
    emphasis in the receiver's Markdown. A leading `#` would become a heading."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text.strip())
    return "\\" + escaped if escaped.startswith("#") else escaped
