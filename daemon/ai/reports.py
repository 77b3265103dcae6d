"""Reports over ledger rows: cost tables by day/model/task/provider, the audit of where
prompts went, and the cost block every AI-assisted message carries.

Pure over rows (the cost block reads the ledger through the store). An unknown cost is shown
as `unknown` — never as $0.00 — and a local call is a real $0.00 that says "local".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from daemon.ai.pricing import price_rows
from daemon.ai.targets import cloud_references, price_overrides
from daemon.config.settings import Settings
from daemon.store.ledger import Ledger, LedgerRow
from daemon.util.money import format_usd
from daemon.util.tables import table
from daemon.util.time import clock

GroupBy = Literal["day", "model", "task", "provider"]
GROUP_KEYS: Mapping[GroupBy, Callable[[LedgerRow], str]] = {
    "day": lambda r: r.ts.astimezone(UTC).strftime("%Y-%m-%d"),
    "model": lambda r: f"{r.provider}/{r.model}",
    "task": lambda r: r.task,
    "provider": lambda r: r.provider,
}

# Outcomes where no request left the machine: skips, not calls, and no destination.
NOT_SENT = frozenset({"budget", "missing_key", "skipped", "unreachable", "no_time"})
SKIP_LABEL = {
    "missing_key": "no key",
    "budget": "budget",
    "skipped": "not usable",
    "unreachable": "unreachable",
    "no_time": "no time left",
}


def sent(row: LedgerRow) -> bool:
    """True when the call's request left this machine: only those are calls, cost money (or
    may have) and had a destination. A skip (no key, budget, unreachable, no time left) is
    recorded too, but is not a call."""
    return row.outcome not in NOT_SENT


def skips(rows: Iterable[LedgerRow]) -> dict[str, int]:
    """How many attempts were skipped, by reason (`no key`, `budget`, …), most first."""
    counts: dict[str, int] = {}
    for row in rows:
        if not sent(row):
            label = SKIP_LABEL.get(row.outcome, row.outcome.replace("_", " "))
            counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def skips_text(rows: Iterable[LedgerRow]) -> str:
    """`skipped, never sent: 3 (no key 2, unreachable 1)`, or "" when nothing was skipped."""
    counts = skips(rows)
    if not counts:
        return ""
    detail = ", ".join(f"{label} {n}" for label, n in counts.items())
    return f"skipped, never sent: {sum(counts.values())} ({detail})"


@dataclass
class GroupRow:
    key: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    """Known costs only; see `unknown_cost_calls`."""
    unknown_cost_calls: int = 0

    def add(self, row: LedgerRow) -> None:
        self.calls += 1
        self.input_tokens += row.input_tokens
        self.output_tokens += row.output_tokens
        if row.cost_usd is None:
            self.unknown_cost_calls += 1
        else:
            self.cost_usd += row.cost_usd

    @property
    def cost_text(self) -> str:
        """`$0.12`, `$0.12 + unknown`, or `unknown` when no call's price is known."""
        if not self.unknown_cost_calls:
            return format_usd(self.cost_usd)
        if self.unknown_cost_calls == self.calls:
            return "unknown"
        return f"{format_usd(self.cost_usd)} + unknown"


def group(rows: Iterable[LedgerRow], by: GroupBy) -> list[GroupRow]:
    """Totals per day (oldest first) or per model/task/provider (costliest first)."""
    key_of = GROUP_KEYS[by]
    groups: dict[str, GroupRow] = {}
    for row in rows:
        key = key_of(row)
        groups.setdefault(key, GroupRow(key)).add(row)
    if by == "day":
        return sorted(groups.values(), key=lambda g: g.key)
    return sorted(groups.values(), key=lambda g: (-g.cost_usd, g.key))


def _total(rows: Iterable[LedgerRow]) -> GroupRow:
    total = GroupRow("total")
    for row in rows:
        total.add(row)
    return total


def row_json(r: LedgerRow) -> dict[str, Any]:
    """One call as in `costs --json` (cost a JSON number, or null when unknown)."""
    return {
        "ts": r.ts.isoformat(),
        "task": r.task,
        "provider": r.provider,
        "model": r.model,
        "host": r.host,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "cached_input_tokens": r.cached_input_tokens,
        "reasoning_tokens": r.reasoning_tokens,
        "cost_usd": None if r.cost_usd is None else float(r.cost_usd),
        "latency_ms": r.latency_ms,
        "outcome": r.outcome,
        "incident_id": r.incident_id,
    }


def costs_json(rows: Sequence[LedgerRow], since: datetime) -> dict[str, Any]:
    """The `costs --json` document. Decimals become JSON numbers only here; an unknown cost is
    null, and `total_usd` (known costs) comes with `unknown_cost_calls`. `calls` are the
    requests that left the machine; `skipped` the attempts that never did."""
    calls = [r for r in rows if sent(r)]
    total = _total(calls)
    return {
        "since": since.isoformat(),
        "total_usd": float(total.cost_usd),
        "unknown_cost_calls": total.unknown_cost_calls,
        "calls": [row_json(r) for r in calls],
        "skipped": [{**row_json(r), "reason": r.detail} for r in rows if not sent(r)],
        "by_model": [
            {
                "model": g.key,
                "calls": g.calls,
                "input_tokens": g.input_tokens,
                "output_tokens": g.output_tokens,
                # null as soon as one call's price is unknown: never a silent undercount
                "cost_usd": None if g.unknown_cost_calls else float(g.cost_usd),
            }
            for g in group(calls, "model")
        ],
    }


def costs_text(rows: Sequence[LedgerRow], since: datetime, by: GroupBy = "model") -> str:
    """A table of calls, tokens and cost per group, with a total line; skips counted apart."""
    title = f"AI cost since {clock(since)}, by {by}"
    calls = [r for r in rows if sent(r)]
    skipped = skips_text(rows)
    if not calls:
        return "\n".join(line for line in (title, "no model calls were sent", skipped) if line)
    body = [
        [g.key, f"{g.calls:,}", f"{g.input_tokens:,}", f"{g.output_tokens:,}", g.cost_text]
        for g in [*group(calls, by), _total(calls)]
    ]
    text = f"{title}\n" + table([by, "calls", "input", "output", "cost"], body, "lrrrr")
    return f"{text}\n{skipped}" if skipped else text


@dataclass
class AuditRow:
    """Every model request one destination host received."""

    host: str
    calls: int
    bytes_sent: int
    key_sources: list[str]
    providers: list[str]
    first_ts: datetime
    last_ts: datetime


def audit(rows: Iterable[LedgerRow]) -> list[AuditRow]:
    """Per destination host, sorted by host. Only requests that left the machine count (a
    refused connection, a missing key or a budget skip reached nobody); a request that went
    out and then failed still does."""
    hosts: dict[str, AuditRow] = {}
    for row in rows:
        if not sent(row):
            continue
        host = row.host or "(unknown host)"
        entry = hosts.get(host)
        if entry is None:
            entry = hosts[host] = AuditRow(host, 0, 0, [], [], row.ts, row.ts)
        entry.calls += 1
        entry.bytes_sent += row.request_bytes
        entry.key_sources = sorted({*entry.key_sources, row.key_source})
        entry.providers = sorted({*entry.providers, row.provider})
        entry.first_ts = min(entry.first_ts, row.ts)
        entry.last_ts = max(entry.last_ts, row.ts)
    return sorted(hosts.values(), key=lambda a: a.host)


def audit_json(rows: Iterable[LedgerRow], since: datetime) -> dict[str, Any]:
    return {
        "since": since.isoformat(),
        "hosts": [
            {
                "host": a.host,
                "calls": a.calls,
                "bytes_sent": a.bytes_sent,
                "key_sources": a.key_sources,
                "providers": a.providers,
                "first_ts": a.first_ts.isoformat(),
                "last_ts": a.last_ts.isoformat(),
            }
            for a in audit(rows)
        ],
    }


def audit_text(rows: Iterable[LedgerRow], since: datetime) -> str:
    title = f"Model requests by destination since {clock(since)}"
    entries = audit(rows)
    if not entries:
        return f"{title}\nno model requests were sent"
    header = ["host", "calls", "bytes sent", "providers", "key sources", "first", "last"]
    body = [
        [
            a.host,
            f"{a.calls:,}",
            f"{a.bytes_sent:,}",
            ", ".join(a.providers),
            ", ".join(a.key_sources),
            clock(a.first_ts),
            clock(a.last_ts),
        ]
        for a in entries
    ]
    return f"{title}\n" + table(header, body, "lrrllll")


# -- the cost block of a message ---------------------------------------------------------

TASK_LABEL = {"triage": "triage", "rca": "RCA", "ask": "ask", "digest": "digest"}


@dataclass(frozen=True)
class Total:
    """A sum of calls' costs that keeps the unknown ones apart: never a silent $0.00."""

    known: Decimal = Decimal(0)
    unknown: int = 0
    """Calls whose cost nobody knows."""

    @classmethod
    def of(cls, rows: Iterable[LedgerRow]) -> Total:
        known, unknown = Decimal(0), 0
        for row in rows:
            if row.cost_usd is None:
                unknown += 1
            else:
                known += row.cost_usd
        return cls(known, unknown)

    @property
    def text(self) -> str:
        """`$0.12`; `$0.12 + unknown`; `unknown` when nothing known was spent."""
        if not self.unknown:
            return format_usd(self.known)
        return f"{format_usd(self.known)} + unknown" if self.known else "unknown"

    @property
    def usd(self) -> Decimal | None:
        """The total when every cost is known, else None."""
        return None if self.unknown else self.known


@dataclass(frozen=True)
class CostBlock:
    calls: Sequence[LedgerRow]
    """The calls this message is about (answered or failed; skips are left out)."""
    incident_total: Decimal | None
    today: Total
    month: Total
    saved_today: Decimal | None = None
    reference: str | None = None


def _sum(rows: Sequence[LedgerRow]) -> Decimal | None:
    total = Decimal(0)
    for row in rows:
        if row.cost_usd is None:
            return None
        total += row.cost_usd
    return total


def billed(rows: Sequence[LedgerRow]) -> list[LedgerRow]:
    """Calls whose request left the machine (skips cost nothing and are not calls)."""
    return [r for r in rows if sent(r)]


def incident_total(rows: Sequence[LedgerRow]) -> Decimal | None:
    return _sum(billed(rows))


def call_text(row: LedgerRow) -> str:
    task = TASK_LABEL.get(row.task, row.task)
    where = "local" if row.local else row.provider
    tokens = f"{row.input_tokens:,} in / {row.output_tokens:,} out"
    failed = "" if row.outcome == "ok" else f", {row.outcome.replace('_', ' ')}"
    return (
        f"{task} {format_usd(row.cost_usd)} ({row.provider}/{row.model}: {tokens}, {where}{failed})"
    )


def cost_text(block: CostBlock) -> str:
    calls = billed(block.calls)
    lines = []
    if calls:
        lines.append("AI cost: " + " · ".join(call_text(r) for r in calls))
    totals = [
        f"Incident total {format_usd(block.incident_total)}",
        f"today {block.today.text}",
        f"month {block.month.text}",
    ]
    if block.saved_today and block.reference:
        totals.append(f"local triage saved {format_usd(block.saved_today)} today")
    lines.append(" · ".join(totals))
    return "\n".join(lines)


def cost_block(
    ledger: Ledger,
    settings: Settings,
    incident_id: int | None,
    calls: Sequence[LedgerRow],
    now: datetime,
) -> CostBlock:
    """Ledger figures for a message: this incident, today, this month, local savings.
    Blocking (reads the ledger)."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    rows = ledger.calls(month)
    incident_rows = [r for r in rows if incident_id is not None and r.incident_id == incident_id]
    today = Total.of(r for r in rows if r.ts >= day)
    spent = Total.of(rows)
    saved, reference = local_savings(settings, [r for r in rows if r.ts >= day])
    return CostBlock(
        calls=calls,
        incident_total=incident_total(incident_rows),
        today=today,
        month=spent,
        saved_today=saved,
        reference=reference,
    )


def local_savings(
    settings: Settings, rows: Sequence[LedgerRow]
) -> tuple[Decimal | None, str | None]:
    """What today's local triage calls would have cost on the first cloud model of `rca`
    whose price is known."""
    local_triage = [r for r in rows if r.task == "triage" and r.local and r.outcome == "ok"]
    if not local_triage:
        return None, None
    overrides = price_overrides(settings)
    for ref, api in cloud_references(settings):
        total = price_rows(local_triage, ref, api=api, overrides=overrides)
        if total is not None:
            return total, str(ref)
    return None, None


def month_forecast(
    rows: Iterable[LedgerRow], now: datetime, monthly_limit: Decimal | None
) -> dict[str, Any]:
    """This UTC month's cloud AI spend so far and, at the pace of the month so far, where it
    ends: month-to-date / elapsed share of the month. A straight line, stated as such; calls
    of unknown cost are counted apart (the forecast is then a floor). Pure."""
    import calendar

    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days = calendar.monthrange(now.year, now.month)[1]
    elapsed = (now - start).total_seconds() / 86_400
    month = [r for r in rows if sent(r) and not r.local and r.ts >= start]
    total = _total(month)
    projected = total.cost_usd * Decimal(days) / Decimal(str(max(elapsed, 1 / 24)))
    return {
        "month": f"{now:%Y-%m}",
        "so_far_usd": float(total.cost_usd),
        "unknown_cost_calls": total.unknown_cost_calls,
        "days_elapsed": round(elapsed, 2),
        "days_in_month": days,
        "projected_usd": float(round(projected, 4)),
        "method": "linear: month-to-date spend over the elapsed share of the month; a floor "
        "when calls of unknown cost exist",
        "limit_usd": None if monthly_limit is None else float(monthly_limit),
        "projected_over_limit": None if monthly_limit is None else projected > monthly_limit,
    }
