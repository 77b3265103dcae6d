"""Plain-text and JSON views for the command line. Pure functions over models."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.models import (
    CheckResult,
    Incident,
    IncidentEvent,
    Investigation,
    format_duration,
    worst_status,
)
from daemon.util.tables import table
from daemon.util.text import clip

if TYPE_CHECKING:
    from daemon.ai.runner import AIResult
    from daemon.notify.delivery import DeliveryReport
    from daemon.service.once import OnceReport

EVIDENCE_WIDTH = 96


def _latency(result: CheckResult) -> str:
    return "-" if result.latency_ms is None else f"{result.latency_ms:.0f} ms"


def results_table(results: Iterable[CheckResult]) -> str:
    rows = [
        [
            r.check + (f" ({r.subject})" if r.subject else ""),
            r.status.upper(),
            _latency(r),
            clip(r.evidence, EVIDENCE_WIDTH),
        ]
        for r in results
    ]
    if not rows:
        return "no checks ran (none enabled)"
    return table(["CHECK", "STATUS", "LATENCY", "EVIDENCE"], rows)


def event_lines(events: Iterable[IncidentEvent]) -> list[str]:
    return [
        f"incident #{e.incident_id} {e.kind}: [{e.severity.value.upper()}] {e.check} — "
        + clip(e.evidence, 80)
        for e in events
    ]


def delivery_lines(report: DeliveryReport) -> list[str]:
    lines = []
    if report.delivered:
        lines.append(f"notifications delivered: {report.delivered}")
    if report.retried:
        lines.append(
            f"notifications not delivered yet: {report.retried} (queued for retry; "
            "`watchkeeper status` shows the outbox, the log says why)"
        )
    if report.failed:
        lines.append(f"notifications given up after max_age: {report.failed}")
    return lines


def once_summary(report: OnceReport, state_dir: Path) -> str:
    counts: dict[str, int] = {}
    for r in report.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    parts = [f"{n} {status}" for status, n in sorted(counts.items())]
    return f"{len(report.results)} results ({', '.join(parts) or 'none'}); state in {state_dir}"


def once_json(report: OnceReport) -> dict[str, Any]:
    return {
        "results": [r.model_dump(mode="json") for r in report.results],
        "events": [e.model_dump(mode="json") for e in report.events],
        "delivery": {
            "delivered": report.delivery.delivered,
            "retried": report.delivery.retried,
            "failed": report.delivery.failed,
        },
    }


def status_text(
    configured: list[str],
    last: Mapping[str, list[CheckResult]],
    open_incidents: list[Incident],
    outbox: Mapping[Any, int],
) -> str:
    rows = []
    for name in configured:
        results = last.get(name)
        if not results:
            rows.append([name, "-", "-", "-", "no result yet"])
            continue
        first = results[0]
        rows.append(
            [
                name,
                worst_status(results).upper(),
                first.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                _latency(first),
                clip(
                    "; ".join(r.evidence for r in results if not r.ok) or first.evidence,
                    EVIDENCE_WIDTH,
                ),
            ]
        )
    text = table(["CHECK", "STATUS", "LAST RUN (UTC)", "LATENCY", "EVIDENCE"], rows)
    text += f"\n\nopen incidents: {len(open_incidents)}"
    for inc in open_incidents:
        text += f"\n  #{inc.id} [{inc.severity.value.upper()}] {inc.check} since {_when(inc)}"
    pending = outbox.get("pending", 0)
    failed = outbox.get("failed", 0)
    text += f"\nnotifications: {pending} pending, {failed} failed"
    return text


def status_json(
    configured: list[str],
    last: Mapping[str, list[CheckResult]],
    open_incidents: list[Incident],
    outbox: Mapping[Any, int],
) -> dict[str, Any]:
    return {
        "checks": {
            name: {
                "status": worst_status(last[name]) if last.get(name) else None,
                "results": [r.model_dump(mode="json") for r in last.get(name, [])],
            }
            for name in configured
        },
        "open_incidents": [i.model_dump(mode="json") for i in open_incidents],
        "outbox": dict(outbox),
    }


def _when(incident: Incident) -> str:
    return incident.opened_at.strftime("%Y-%m-%d %H:%M UTC")


def incidents_table(rows: list[Incident]) -> str:
    if not rows:
        return "no incidents"
    lines = []
    for inc in rows:
        if inc.status == "open":
            state = "OPEN"
        else:
            duration = inc.duration
            state = "resolved" + (f" after {format_duration(duration)}" if duration else "")
        lines.append(
            [
                f"#{inc.id}",
                inc.severity.value.upper(),
                inc.check,
                _when(inc),
                state,
                clip(inc.evidence, 70),
            ]
        )
    return table(["ID", "SEVERITY", "CHECK", "OPENED", "STATE", "EVIDENCE"], lines)


def incident_detail(
    incident: Incident,
    events: list[IncidentEvent],
    investigations: Iterable[Investigation] = (),
) -> str:
    lines = [
        f"incident #{incident.id} [{incident.severity.value.upper()}] {incident.check} "
        f"— {incident.status}",
        f"opened:      {_when(incident)}",
    ]
    if incident.resolved_at and incident.duration is not None:
        lines.append(
            f"resolved:    {incident.resolved_at.strftime('%Y-%m-%d %H:%M UTC')} "
            f"(after {format_duration(incident.duration)})"
        )
    lines.append(f"fingerprint: {incident.fingerprint}")
    if incident.blast_radius:
        lines.append(f"blast radius: {', '.join(incident.blast_radius)}")
    lines.append(f"first evidence: {incident.first_evidence}")
    lines.append(f"latest evidence: {incident.evidence}")
    lines.append("events:")
    for e in events:
        extra = f" — {e.detail}" if e.detail else ""
        lines.append(f"  {e.at.strftime('%Y-%m-%d %H:%M:%S')} {e.kind} [{e.severity.value}]{extra}")
    for inv in investigations:
        lines += ["", *investigation_lines(inv)]
    return "\n".join(lines)


def investigation_lines(inv: Investigation) -> list[str]:
    """A stored investigation in full: what it concluded, on what, with which model and at
    what cost — read again for free."""
    from daemon.util.money import format_usd

    head = f"investigation {inv.at.strftime('%Y-%m-%d %H:%M:%S UTC')} ({inv.reason})"
    if inv.rca is None:
        return [head, f"  no analysis: {inv.skipped or 'no model answered'}"]
    rca = inv.rca
    lines = [
        head,
        f"  root cause ({rca.get('confidence', '?')} confidence): {rca.get('root_cause', '')}",
    ]
    for title, key in (
        ("evidence", "evidence"),
        ("blast radius", "blast_radius"),
        ("next steps", "next_steps"),
    ):
        items = rca.get(key) or []
        if items:
            lines.append(f"  {title}:")
            lines += [f"    - {item}" for item in items]
    if inv.dropped:
        lines.append(f"  context left out to fit: {', '.join(inv.dropped)}")
    for call in inv.calls:
        where = "local" if call.local else call.host
        lines.append(
            f"  model {call.model} ({where}) · {call.input_tokens:,} in / "
            f"{call.output_tokens:,} out · {format_usd(call.cost_usd)}"
            + ("" if call.outcome == "ok" else f" · {call.outcome.replace('_', ' ')}")
        )
    if not inv.calls:
        lines.append(f"  model {inv.model} (tokens and cost not recorded for this older entry)")
    elif len(inv.calls) > 1:
        lines.append(f"  total {format_usd(inv.cost)}")
    return lines


def investigation_json(inv: Investigation) -> dict[str, Any]:
    """The `incidents show --json` form: costs as JSON numbers (null when unknown)."""
    data = inv.model_dump(mode="json")
    for call, raw in zip(data["calls"], inv.calls, strict=True):
        call["cost_usd"] = None if raw.cost_usd is None else float(raw.cost_usd)
    cost = inv.cost if inv.calls else None
    data["cost_usd"] = None if cost is None else float(cost)
    return data


def cost_line(result: AIResult) -> str:
    """`ollama/gemma4:27b (local) · 1,204 in / 151 out · $0.00`, plus skipped models."""
    from daemon.util.money import format_usd

    parts = []
    for row in result.calls:
        ref = f"{row.provider}/{row.model}"
        if row.outcome == "ok":
            where = "local" if row.local else row.host
            parts.append(
                f"{ref} ({where}) · {row.input_tokens:,} in / {row.output_tokens:,} out · "
                f"{format_usd(row.cost_usd)}"
            )
        else:
            parts.append(f"{ref} skipped ({row.outcome}): {row.detail}")
    total = result.cost_usd
    return "\n".join(parts) + f"\nAI cost: {format_usd(total)}"


def ledger_json(result: AIResult) -> list[dict[str, Any]]:
    from daemon.ai.reports import row_json

    return [row_json(row) for row in result.calls]
