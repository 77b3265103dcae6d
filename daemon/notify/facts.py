"""What the chat cards (Slack, Teams) show, read from the structured payload: the incident's
facts, its evidence made readable once, the cost lines, and our Markdown as plain text.

Pure. Everything returned is still untrusted text where the payload's was (evidence, model
output): each card escapes it for its own format.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from daemon.ai.reports import TASK_LABEL
from daemon.models import format_duration
from daemon.util.money import format_usd
from daemon.util.text import clip, printable

SEVERITY_MARK = {
    "critical": "🔴",
    "high": "🟠",
    "medium": "🟡",
    "low": "🔵",
    "info": "⚪",
}
RESOLVED_MARK = "✅"
ACKNOWLEDGED_MARK = "👀"

# `…; body: "{\"status\": \"down\"}"` — how the http check quotes a body (a JSON string)
_QUOTED_BODY = re.compile(r'(?:[;,]\s*)?\bbody:\s*(?P<literal>"(?:[^"\\]|\\.)*")\s*$', re.S)
_MARKDOWN_TOKEN = re.compile(r"\\(.)|\*\*", re.S)


@dataclass(frozen=True)
class EvidenceView:
    """Evidence said once: the sentence, and the document it quoted (pretty JSON, or the
    body as it was) when there is one — never the same JSON escaped twice."""

    summary: str
    block: str | None = None
    json: bool = False


def evidence_view(evidence: str) -> EvidenceView:
    """Split `evidence` into its sentence and the document it carries, decoding a quoted body
    (`body: "{\\"a\\": 1}"`) and pretty-printing JSON. Control characters are made visible."""
    text = printable(evidence.strip())
    document = _as_json(text)
    if document is not None:
        return EvidenceView("", document, json=True)
    quoted = _QUOTED_BODY.search(text)
    if quoted is not None:
        try:
            body = json.loads(quoted.group("literal"))
        except ValueError:
            body = None
        if isinstance(body, str) and body.strip():
            head = text[: quoted.start()].rstrip(" ;,")
            document = _as_json(body.strip())
            if document is not None:
                return EvidenceView(head, document, json=True)
            return EvidenceView(head, printable(body.strip()))
    start = _json_start(text)
    if start is not None:
        return EvidenceView(text[:start].rstrip(" :;,"), _as_json(text[start:]), json=True)
    return EvidenceView(text)


def _as_json(text: str) -> str | None:
    """`text` pretty-printed when it is a JSON object or array, else None."""
    if not text.startswith(("{", "[")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict | list) or not value:
        return None
    return printable(json.dumps(value, indent=2, ensure_ascii=False))


def _json_start(text: str) -> int | None:
    """Where a JSON object or array that runs to the end of `text` begins, if one does."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", text):
        try:
            value, end = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if text[end:].strip() == "" and isinstance(value, dict | list) and value:
            return match.start()
    return None


def flat(value: Any, limit: int = 2000) -> str:
    """One untrusted piece (a summary, a step) on one line — line breaks become `; ` so it
    cannot draw a line of its own that looks like ours — controls visible, clipped."""
    lines = [line.strip() for line in str(value).splitlines() if line.strip()]
    return clip(printable("; ".join(lines)), limit)


def triage_text(triage: dict[str, Any]) -> str:
    """The triage's summary, a raised severity, the escalation and correlations: a line each."""
    lines = [flat(triage.get("summary", ""))]
    if triage.get("raised_from"):
        lines.append(f"Severity raised from {triage['raised_from']} to {triage.get('severity')}.")
    if triage.get("escalate"):
        lines.append(f"Escalating for root-cause analysis: {flat(triage.get('reason', ''))}")
    correlations = [flat(c, 300) for c in triage.get("correlations") or []][:3]
    if correlations:
        lines.append("Correlations: " + "; ".join(correlations))
    return "\n".join(lines)


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def clock(value: Any) -> str:
    """`14:02 UTC (2026-11-27)`, as in the Markdown message."""
    when = parse_time(value)
    return "unknown" if when is None else f"{when.astimezone(UTC):%H:%M} UTC ({when:%Y-%m-%d})"


def severity_text(payload: dict[str, Any]) -> str:
    incident = payload.get("incident") or {}
    severity = str(incident.get("severity", ""))
    previous = incident.get("previous_severity")
    triage = payload.get("triage") or {}
    raised = triage.get("raised_from")
    if previous and previous != severity:
        return f"{severity} (was {previous})"
    if raised:
        return f"{severity} (raised by triage from {raised})"
    return severity


def status_text(payload: dict[str, Any]) -> str:
    incident = payload.get("incident") or {}
    duration = incident.get("duration_s")
    age = "" if not duration else format_duration(timedelta(seconds=float(duration)))
    if incident.get("status") == "resolved":
        return f"resolved after {age}" if age else "resolved"
    kind = payload.get("event")
    word = {"flapping": "flapping", "reminder": "still open", "released": "still open"}.get(
        str(kind), "open"
    )
    return f"{word} for {age}" if age else word


def mark(payload: dict[str, Any]) -> str:
    """The emoji that leads a card's title: a colour per severity, a tick when resolved, eyes
    when someone acknowledged it."""
    incident = payload.get("incident") or {}
    if incident.get("status") == "resolved":
        return RESOLVED_MARK
    if payload.get("event") == "acknowledged":
        return ACKNOWLEDGED_MARK
    return SEVERITY_MARK.get(str(incident.get("severity")), "")


def cost_lines(costs: dict[str, Any] | None) -> list[str]:
    """`AI cost: triage $0.00 (…) · RCA $0.0236 (…)` and the totals line, from the payload."""
    if not costs:
        return []
    lines = []
    calls = costs.get("calls") or []
    if calls:
        lines.append("AI cost: " + " · ".join(_call_text(c) for c in calls))
    totals = [
        f"Incident total {_usd(costs.get('incident_total_usd'))}",
        f"today {_usd(costs.get('today_usd'))}",
        f"month {_usd(costs.get('month_usd'))}",
    ]
    saved = costs.get("local_triage_saved_today_usd")
    if saved and costs.get("savings_reference_model"):
        totals.append(f"local triage saved {_usd(saved)} today")
    lines.append(" · ".join(totals))
    return lines


def _call_text(call: dict[str, Any]) -> str:
    task = TASK_LABEL.get(str(call.get("task")), str(call.get("task")))
    where = "local" if call.get("local") else str(call.get("model", "")).split("/", 1)[0]
    tokens = (
        f"{int(call.get('input_tokens') or 0):,} in / {int(call.get('output_tokens') or 0):,} out"
    )
    outcome = str(call.get("outcome") or "ok")
    failed = "" if outcome == "ok" else f", {outcome.replace('_', ' ')}"
    return f"{task} {_usd(call.get('cost_usd'))} ({call.get('model')}: {tokens}, {where}{failed})"


def _usd(value: Any) -> str:
    return format_usd(None if value is None else Decimal(str(value)))


def plain(markdown: str) -> str:
    """Our own Markdown (bold markers, and `untrusted`'s backslash escapes) as the plain text
    it stands for: `**Checks:** a\\_b` → `Checks: a_b`. For cards that show text literally."""

    def one(match: re.Match[str]) -> str:
        return match.group(1) or ""

    return _MARKDOWN_TOKEN.sub(one, markdown)
