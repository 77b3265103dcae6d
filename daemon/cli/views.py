"""What commands show, as blocks for `daemon.cli._output` (tables, key/value blocks, lines)
and as JSON. Pure functions over models: no printing, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.cli._blocks import BLANK, Block, Column, Fields, Lines, Table, flat, line
from daemon.models import (
    CheckResult,
    Incident,
    IncidentEvent,
    Investigation,
    format_duration,
    worst_status,
)
from daemon.report.status import StatusView, investigation_json, status_json

__all__ = [
    "StatusView",
    "daemon_line",
    "investigation_json",
    "status_blocks",
    "status_json",
]

if TYPE_CHECKING:
    from daemon.ai.runner import AIResult
    from daemon.notify.delivery import DeliveryReport
    from daemon.report.cluster import ClusterView
    from daemon.service.once import OnceReport
    from daemon.store.lease import Lease


def _latency(result: CheckResult) -> str:
    return "-" if result.latency_ms is None else f"{result.latency_ms:.0f} ms"


RESULT_COLUMNS = (
    Column("CHECK"),
    Column("STATUS", coloured=True),
    Column("LATENCY", align="right"),
    Column("EVIDENCE", free=True),
)


def results_table(results: Iterable[CheckResult]) -> Table:
    rows = [
        [
            r.check + (f" ({r.subject})" if r.subject else ""),
            r.status.upper(),
            _latency(r),
            r.evidence,
        ]
        for r in results
    ]
    return Table(RESULT_COLUMNS, rows, empty="no checks ran (none enabled)")


def event_lines(events: Iterable[IncidentEvent]) -> Lines:
    return Lines(
        [
            f"incident #{e.incident_id} {e.kind}: [{e.severity.value.upper()}] {e.check} — "
            + flat(e.evidence)
            for e in events
        ]
    )


def delivery_lines(report: DeliveryReport) -> Lines:
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
    return Lines(lines)


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


# -- status --------------------------------------------------------------------------------------


def daemon_line(holder: int | None, last_cycle: datetime | None) -> str:
    cycle = f"last cycle {last_cycle:%Y-%m-%d %H:%M:%S} UTC" if last_cycle else "no cycle yet"
    if holder is None:
        return f"daemon: not running · {cycle}"
    pid = f"pid {holder}" if holder else "pid unknown"
    return f"daemon: running ({pid}) · {cycle}"


def active_line(lease: Lease | None, now: datetime) -> str:
    """Which process of several sharing the database is active (`[store] url`)."""
    from daemon.util.text import printable

    if lease is None:
        return "active: none yet (no watchkeeper has taken the leader lease)"
    node = printable(lease.node)
    if lease.expired(now):
        return (
            f"active: none (the lease of {node} ran out {lease.expires_at:%H:%M:%S} UTC; "
            "a standby takes over)"
        )
    return (
        f"active: {node} (epoch {lease.epoch}, since {lease.acquired_at:%Y-%m-%d %H:%M:%S} "
        f"UTC, lease renewed {lease.renewed_at:%H:%M:%S} UTC)"
    )


def members_blocks(view: ClusterView) -> list[Block]:
    """Sharded mode: a row per member, and a line per listed location with no live member."""
    from daemon.util.text import printable

    rows = [
        [
            printable(m.node) + (" (active)" if m.node == view.leader else ""),
            printable(m.location or "-"),
            "live" if view.live(m) else "gone",
            f"{format_duration(view.now - m.heartbeat_at)} ago",
            str(m.owned),
        ]
        for m in view.members
    ]
    columns = [
        Column("NODE"),
        Column("LOCATION"),
        Column("STATE"),
        Column("HEARTBEAT", align="right"),
        Column("CHECKS", align="right"),
    ]
    blocks: list[Block] = [BLANK, Table(columns, rows, empty="no members yet", indent=2)]
    for where, checks in sorted(view.unstaffed.items()):
        names = ", ".join(checks[:5]) + (f" and {len(checks) - 5} more" if len(checks) > 5 else "")
        blocks.append(line(f"no live node in location {where}: {names} cannot run from there"))
    return blocks


def status_blocks(view: StatusView) -> list[Block]:
    rows = []
    for name in view.configured:
        results = view.last.get(name)
        note = view.note(name)
        if not results:
            rows.append([name, "-", "-", "-", "no result yet", note])
            continue
        first = results[0]
        rows.append(
            [
                name,
                worst_status(results).upper(),
                first.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                _latency(first),
                "; ".join(r.evidence for r in results if not r.ok) or first.evidence,
                note,
            ]
        )
    columns = [
        Column("CHECK"),
        Column("STATUS", coloured=True),
        Column("LAST RUN (UTC)"),
        Column("LATENCY", align="right"),
        Column("EVIDENCE", free=True),
    ]
    if any(row[-1] for row in rows):
        columns.append(Column("NOTE", coloured=True))
    else:
        rows = [row[:-1] for row in rows]
    blocks: list[Block] = [
        line(daemon_line(view.holder, view.last_cycle)),
        *([line(active_line(*view.lease))] if view.lease is not None else []),
        *(members_blocks(view.cluster) if view.cluster is not None else []),
        BLANK,
        Table(columns, rows, empty="no checks configured"),
        BLANK,
    ]
    flapping = view.flapping()
    if flapping:
        blocks.append(
            line(
                f"flapping: {', '.join(flapping)} (one notice sent; quiet until stable for "
                "a whole flap_window)"
            )
        )
    blocks.append(line(f"open incidents: {len(view.open_incidents)}"))
    if view.open_incidents:
        blocks.append(
            Table(
                [Column("ID"), Column("SEVERITY", coloured=True), Column("CHECK"), Column("SINCE")],
                [
                    [f"#{i.id}", i.severity.value.upper(), i.check, _when(i)]
                    for i in view.open_incidents
                ],
                indent=2,
            )
        )
    pending = view.outbox.get("pending", 0)
    failed = view.outbox.get("failed", 0)
    blocks.append(line(f"notifications: {pending} pending, {failed} failed"))
    return blocks


# -- incidents -------------------------------------------------------------------------------------


def _when(incident: Incident) -> str:
    return incident.opened_at.strftime("%Y-%m-%d %H:%M UTC")


def incidents_table(rows: list[Incident]) -> Table:
    """Open incidents show their latest evidence; resolved ones the failure that opened them
    (their latest evidence is the recovery: "200 OK")."""
    lines = []
    for inc in rows:
        if inc.status == "open":
            state, evidence = "OPEN", inc.evidence
        else:
            duration = inc.duration
            state = "resolved" + (f" after {format_duration(duration)}" if duration else "")
            evidence = inc.first_evidence or inc.evidence
        lines.append(
            [f"#{inc.id}", inc.severity.value.upper(), inc.check, _when(inc), state, evidence]
        )
    columns = [
        Column("ID"),
        Column("SEVERITY", coloured=True),
        Column("CHECK"),
        Column("OPENED"),
        Column("STATE", coloured=True),
        Column("EVIDENCE", free=True),
    ]
    return Table(columns, lines, empty="no incidents")


def incident_detail(
    incident: Incident,
    events: list[IncidentEvent],
    investigations: Iterable[Investigation] = (),
) -> list[Block]:
    fields = [("opened", _when(incident))]
    if incident.resolved_at and incident.duration is not None:
        fields.append(
            (
                "resolved",
                f"{incident.resolved_at.strftime('%Y-%m-%d %H:%M UTC')} "
                f"(after {format_duration(incident.duration)})",
            )
        )
    fields.append(("fingerprint", incident.fingerprint))
    if incident.blast_radius:
        fields.append(("blast radius", ", ".join(incident.blast_radius)))
    fields.append(("first evidence", incident.first_evidence))
    fields.append(("latest evidence", incident.evidence))
    blocks: list[Block] = [
        line(
            f"incident #{incident.id} [{incident.severity.value.upper()}] {incident.check} "
            f"— {incident.status}",
            style="bold",
        ),
        Fields(fields),
        line("events:"),
        Table(
            [Column("AT (UTC)"), Column("EVENT"), Column("SEVERITY"), Column("DETAIL", free=True)],
            [
                [e.at.strftime("%Y-%m-%d %H:%M:%S"), e.kind, e.severity.value, e.detail]
                for e in events
            ],
            empty="(none)",
            indent=2,
        ),
    ]
    for inv in investigations:
        blocks += [BLANK, Lines(investigation_lines(inv))]
    return blocks


def investigation_lines(inv: Investigation) -> list[str]:
    """A stored investigation in full: what it concluded, on what, with which model and at
    what cost — read again for free."""
    from daemon.util.money import format_usd

    head = f"investigation {inv.at.strftime('%Y-%m-%d %H:%M:%S UTC')} ({inv.reason})"
    if inv.question is not None:
        head += f"\n  question: {inv.question}"
    if inv.rca is None:
        return [head, f"  no analysis: {inv.skipped or 'no model answered'}"]
    rca = inv.rca
    label = "answer" if inv.question is not None else "root cause"
    lines = [
        head,
        f"  {label} ({rca.get('confidence', '?')} confidence): {rca.get('root_cause', '')}",
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
    if inv.trail:
        lines.append("  trail (read-only look-ups):")
        for step in inv.trail:
            args = ", ".join(f"{k}={v}" for k, v in step.arguments.items())
            mark = "" if step.ok else " [refused/failed]"
            lines.append(f"    {step.step}. {step.tool}({args}){mark}: {step.summary}")
    if inv.limit:
        lines.append(f"  partial answer: {inv.limit}")
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
