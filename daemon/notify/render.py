"""Turn incident events into short, exact messages for people (title + Markdown body).

Pure: no I/O, no clock. A message carries only fields of the event it renders — never a
target URL, a secret or anything read from configuration — and every field that came from a
monitored system goes through `untrusted`: one line, no mention, link or escape it can forge.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from daemon.models import IncidentEvent, Message, NotifyType, Severity, fingerprint, format_duration
from daemon.util.text import untrusted
from daemon.util.time import as_utc


def render_event(event: IncidentEvent) -> Message:
    """One message for one event: `[HIGH] api-health failing — incident #42` and so on."""
    lines = [untrusted(event.evidence) or "(no evidence recorded)"]
    lines.append(_timeline(event))
    if event.blast_radius:
        names = ", ".join(event.blast_radius)
        lines.append(untrusted(f"Blast radius: {names} (depend on {event.check})"))
    if event.detail:
        lines.append(untrusted(event.detail))
    if event.acknowledged_by and event.kind != "acknowledged":
        lines.append(untrusted(f"Acknowledged by {event.acknowledged_by}."))
    lines.append(f"Incident #{event.incident_id} · fingerprint {fingerprint(event.check)}")
    return Message(title=_title(event), body="\n".join(lines), notify_type=_notify_type(event))


def render_test(target_name: str) -> Message:
    """What `watchkeeper notify test` sends: proof that the target is wired up."""
    return Message(
        title=f"[TEST] watchkeeper → {target_name}",
        body=untrusted(
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
        return f"[RESOLVED] {event.check} — {ref} after {format_duration(open_for(event))}"
    if event.kind == "flapping":
        return f"{tag} {event.check} flapping — {ref}"
    if event.kind == "reminder":
        age = format_duration(open_for(event))
        return f"{tag} {event.check} still {_state(event)} — {ref} (open {age})"
    if event.kind == "acknowledged":
        return f"{tag} {event.check} acknowledged by {event.acknowledged_by or '?'} — {ref}"
    if event.kind == "released":
        return f"{tag} {event.check} still {_state(event)} after a quiet period — {ref}"
    previous = event.previous_severity
    if previous is None or previous == event.severity:
        return f"{tag} {event.check} changed — {ref}"
    direction = "raised" if event.severity > previous else "lowered"
    return f"{tag} {event.check} severity {direction} from {previous.value} — {ref}"


def _timeline(event: IncidentEvent) -> str:
    if event.kind != "resolved":
        return f"Since: {_clock(event.opened_at)}"
    return (
        f"Open: {_clock(event.opened_at)} → {_clock(event.at)}, {format_duration(open_for(event))}"
    )


def _notify_type(event: IncidentEvent) -> NotifyType:
    if event.kind == "resolved":
        return "success"
    if event.kind == "acknowledged":
        return "info"
    if event.kind == "flapping":
        return "warning"
    return "failure" if event.severity >= Severity.HIGH else "warning"


def open_for(event: IncidentEvent) -> timedelta:
    if event.kind == "resolved" and event.duration_s is not None:
        return timedelta(seconds=event.duration_s)
    return as_utc(event.at) - as_utc(event.opened_at)


def _clock(value: datetime) -> str:
    """`14:02 UTC (2026-11-27)`."""
    utc = as_utc(value)
    return f"{utc:%H:%M} UTC ({utc:%Y-%m-%d})"
