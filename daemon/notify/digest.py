"""The daily digest: one message with the last 24 h of checks, incidents and AI spend.

Every figure comes from the store and the ledger; a model may only prepend a labelled summary,
never change a figure, and an unknown cost is shown as unknown, never as $0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

from daemon.ai.pricing import PriceOverride, price_rows
from daemon.ai.reports import GroupRow, group, sent, skips
from daemon.ai.runner import AI, AIResult
from daemon.ai.targets import cloud_references, price_overrides
from daemon.config.settings import Settings
from daemon.llm.types import ModelRequest
from daemon.models import (
    STATUS_RANK,
    Incident,
    IncidentEvent,
    Message,
    ModelRef,
    Status,
    format_duration,
    worst_status,
)
from daemon.notify.routing import route_message
from daemon.notify.uptime import uptime_lines, uptime_report
from daemon.store import Store
from daemon.store.database import store_io
from daemon.store.ledger import LedgerRow
from daemon.util.money import format_usd
from daemon.util.text import untrusted
from daemon.util.uptime import Target, UptimeReport

DAY = timedelta(hours=24)
STATUSES: tuple[Status, ...] = ("ok", "degraded", "failing", "error")
SUMMARY_MAX_TOKENS = 200
MAX_OPEN_SHOWN = 10
NOISY_MIN = 2
"""A check is "noisy" from this many incidents opened in the window (top 3 shown)."""
SUMMARY_SYSTEM = (
    "You open watchkeeper's daily operations digest for an on-call team. Write 2-3 plain "
    "sentences (no Markdown, no lists, no greeting) on what mattered in this period: incidents, "
    "checks that are not ok, and AI spend. Use only the figures given; never invent causes or "
    "numbers."
)


@dataclass(frozen=True)
class CheckFigures:
    results: dict[str, int]
    """Results recorded in the window per status (every status present, 0 included)."""
    checks_seen: int
    not_ok: list[tuple[str, Status]]
    """(check, status) of the checks seen whose latest run is not ok, worst first."""

    @property
    def total(self) -> int:
        return sum(self.results.values())


@dataclass(frozen=True)
class IncidentFigures:
    opened: list[Incident]
    resolved: list[Incident]
    still_open: list[Incident]
    """Every open incident, whenever it opened."""
    mean_to_resolve: timedelta | None
    max_to_resolve: timedelta | None
    noisiest: list[tuple[str, int]]
    held: list[IncidentEvent] = field(default_factory=list)
    """Events a silence or maintenance window held back (recorded, not sent)."""


@dataclass(frozen=True)
class AIFigures:
    """Calls that were sent; `not_sent` counts the skips by reason (no key, budget,
    unreachable, …)."""

    total: GroupRow
    cloud: GroupRow
    by_task: list[GroupRow]
    by_model: list[GroupRow]
    local_models: frozenset[str]
    served_local: int
    served_cloud: int
    failed: int
    not_sent: dict[str, int]
    reference_model: str | None = None
    local_triage_calls: int = 0
    triage_saved_usd: Decimal | None = None
    """What the local triage calls would have cost on `reference_model`; None = unknown."""


@dataclass(frozen=True)
class DigestData:
    """Every figure of one digest over [since, until), rendered in `until`'s time zone."""

    since: datetime
    until: datetime
    checks: CheckFigures
    incidents: IncidentFigures
    ai: AIFigures
    uptime: UptimeReport | None = None
    """Availability over the window (and 30 d for checks with an SLO); None without targets."""


def collect(
    store: Store,
    now: datetime,
    window: timedelta = DAY,
    reference_model: str | None = None,
    reference_api: str | None = None,
    overrides: Mapping[str, PriceOverride] | None = None,
    targets: Sequence[Target] = (),
    retention: timedelta | None = None,
) -> DigestData:
    """Read the figures for [now - window, now). `reference_api` prices `reference_model`
    (default: its provider name); `overrides` are the user's `[prices]`; `targets` are the
    checks whose uptime to report (`retention`: how long results are kept). Blocking I/O."""
    until = _aware(now)
    since = until - window
    checks, incidents = _check_figures(store, since, until), _incident_figures(store, since, until)
    ai = _ai_figures(
        store.ledger.calls(since, until), reference_model, reference_api, overrides or {}
    )
    uptime = uptime_report(store, targets, since, until, retention) if targets else None
    return DigestData(since, until, checks, incidents, ai, uptime)


def _check_figures(store: Store, since: datetime, until: datetime) -> CheckFigures:
    counts = store.results.counts(since, until)
    results: dict[str, int] = dict.fromkeys(STATUSES, 0)
    for per_status in counts.values():
        for status, count in per_status.items():
            results[status] = results.get(status, 0) + count
    latest = {c: worst_status(runs) for c, runs in store.results.latest().items() if c in counts}
    not_ok: list[tuple[str, Status]] = [(c, s) for c, s in latest.items() if s != "ok"]
    not_ok.sort(key=lambda cs: (-STATUS_RANK[cs[1]], cs[0]))
    return CheckFigures(results, len(counts), not_ok)


def _incident_figures(store: Store, since: datetime, until: datetime) -> IncidentFigures:
    incidents = store.incidents.between(since, until)
    opened = [i for i in incidents if since <= _aware(i.opened_at) < until]
    resolved = [i for i in incidents if i.resolved_at and since <= _aware(i.resolved_at) < until]
    durations = [i.duration for i in resolved if i.duration is not None]
    noisy = [(c, n) for c, n in Counter(i.check for i in opened).items() if n >= NOISY_MIN]
    return IncidentFigures(
        opened=opened,
        resolved=resolved,
        still_open=[i for i in incidents if i.status == "open"],
        mean_to_resolve=sum(durations, timedelta()) / len(durations) if durations else None,
        max_to_resolve=max(durations, default=None),
        noisiest=sorted(noisy, key=lambda cn: (-cn[1], cn[0]))[:3],
        held=store.incidents.held_events(since, until),
    )


def _ai_figures(
    rows: list[LedgerRow],
    reference: str | None,
    api: str | None,
    overrides: Mapping[str, PriceOverride],
) -> AIFigures:
    went = [r for r in rows if sent(r)]
    served = [r for r in went if r.outcome == "ok"]
    total, cloud = GroupRow("total"), GroupRow("cloud")
    for row in went:
        for tally in (total,) if row.local else (total, cloud):
            tally.add(row)
    # Triage calls that used tokens, priced one by one so tiered prices apply as they would.
    triage = [
        r for r in went if r.local and r.task == "triage" and r.input_tokens + r.output_tokens
    ]
    saved: Decimal | None = None
    if reference is not None and triage:
        ref = ModelRef.parse(reference)
        saved = price_rows(triage, ref, api=api or ref.provider, overrides=overrides)
    return AIFigures(
        total=total,
        cloud=cloud,
        by_task=group(went, "task"),
        by_model=group(went, "model"),
        local_models=frozenset(f"{r.provider}/{r.model}" for r in went if r.local),
        served_local=sum(r.local for r in served),
        served_cloud=sum(not r.local for r in served),
        failed=len(went) - len(served),
        not_sent=skips(rows),
        reference_model=reference,
        local_triage_calls=len(triage),
        triage_saved_usd=saved,
    )


# -- rendering ------------------------------------------------------------------------------------


def render_digest(data: DigestData) -> Message:
    """Deterministic Markdown, one fact per line."""
    tz = data.until.tzinfo
    window = f"{_when(data.since, tz)} → {_when(data.until, tz)} {data.until.tzname()}"
    body = [f"Window: {window}", ""]
    body += _check_lines(data.checks)
    body += uptime_lines(data.uptime) if data.uptime is not None else []
    body += ["", *_incident_lines(data.incidents, data.until)]
    span = data.until - data.since
    period = "today" if span == DAY else f"in {format_duration(span)}"
    body += ["", *_ai_lines(data.ai, period)]
    return Message(title=_title(data), body="\n".join(body), notify_type="info")


def _title(data: DigestData) -> str:
    day = f"{data.until.day} {data.until:%b}"
    opened, still_open = len(data.incidents.opened), len(data.incidents.still_open)
    incidents = f"{_n(opened, 'incident')} ({still_open} open)"
    if not opened and not still_open:
        incidents = "no incidents"
    checks = _n(data.checks.total, "check")
    return f"watchkeeper daily digest — {day}: {incidents}, {checks}, AI {data.ai.total.cost_text}"


def _check_lines(data: CheckFigures) -> list[str]:
    if not data.total:
        return ["**Checks:** no results recorded"]
    statuses = " · ".join(f"{data.results[s]:,} {s}" for s in STATUSES if data.results.get(s))
    head = f"**Checks:** {_n(data.total, 'result')} from {_n(data.checks_seen, 'check')}"
    if not data.not_ok:
        return [f"{head}: {statuses}", "All checks ok at their latest run"]
    not_ok = ", ".join(f"{untrusted(c)} ({s})" for c, s in data.not_ok)
    return [f"{head}: {statuses}", f"Not ok now: {not_ok}"]


def _incident_lines(data: IncidentFigures, until: datetime) -> list[str]:
    opened, resolved, still_open = len(data.opened), len(data.resolved), len(data.still_open)
    if not (opened or resolved or still_open):
        return ["**Incidents:** none"]
    lines = [f"**Incidents:** {opened} opened · {resolved} resolved · {still_open} still open"]
    if data.mean_to_resolve is not None and data.max_to_resolve is not None:
        mean, worst = format_duration(data.mean_to_resolve), format_duration(data.max_to_resolve)
        lines.append(f"Time to resolve: mean {mean} · max {worst}")
    if data.noisiest:
        lines.append("Noisiest: " + ", ".join(f"{untrusted(c)} ({n})" for c, n in data.noisiest))
    if data.still_open:
        shown = [_open_for(i, until) for i in data.still_open[:MAX_OPEN_SHOWN]]
        more = len(data.still_open) - MAX_OPEN_SHOWN
        lines.append("Open now: " + ", ".join(shown) + (f" and {more} more" if more > 0 else ""))
    return lines + _held_lines(data.held, until.tzinfo)


def _held_lines(events: list[IncidentEvent], tz: tzinfo | None) -> list[str]:
    """What happened while paging was held, one line per incident: its events and why."""
    by_incident: dict[int, list[IncidentEvent]] = {}
    for event in events:
        by_incident.setdefault(event.incident_id, []).append(event)
    if not by_incident:
        return []
    lines = [f"Held by silences and maintenance windows ({len(by_incident)}):"]
    for incident_id, held in by_incident.items():
        what = ", ".join(f"{e.kind} {_aware(e.at).astimezone(tz):%H:%M}" for e in held)
        why = held[0].held or ""
        lines.append(f"- #{incident_id} {untrusted(held[0].check)}: {what} — {untrusted(why)}")
    return lines


def _open_for(incident: Incident, until: datetime) -> str:
    age = format_duration(until - _aware(incident.opened_at))
    return f"#{incident.id} {untrusted(incident.check)} ({incident.severity.value}, {age})"


def _ai_lines(data: AIFigures, period: str) -> list[str]:
    total = data.total
    reasons = ", ".join(f"{why} {n}" for why, n in data.not_sent.items())
    skipped = f"{sum(data.not_sent.values())} not sent ({reasons})"
    if not total.calls:
        return ["**AI:** no model calls" + (f" · {skipped}" if data.not_sent else "")]
    cloud = f"cloud {data.cloud.cost_text}" if data.cloud.calls else "no cloud calls"
    lines = [f"**AI:** {_n(total.calls, 'call')} · {_tokens(total)} · {total.cost_text} · {cloud}"]
    served = data.served_local + data.served_cloud
    parts = ["none"]
    if served:
        local, remote = data.served_local, data.served_cloud
        parts = [f"{local} local ({local / served:.0%})", f"{remote} cloud ({remote / served:.0%})"]
    parts += [f"{data.failed} failed"] if data.failed else []
    parts += [skipped] if data.not_sent else []
    lines.append("Served: " + " · ".join(parts))
    lines.append("By task:")
    lines += [f"- {untrusted(g.key)}: {_group(g)}" for g in data.by_task]
    lines.append("By model:")
    for g in data.by_model:
        where = " (local)" if g.key in data.local_models else ""
        lines.append(f"- {untrusted(g.key)}{where}: {_group(g)}")
    return lines + _savings_lines(data, period)


def _savings_lines(data: AIFigures, period: str) -> list[str]:
    if data.reference_model is None or not data.local_triage_calls:
        return []
    ref, calls = untrusted(data.reference_model), _n(data.local_triage_calls, "call")
    if data.triage_saved_usd is None:
        return [f"Local triage savings vs {ref}: unknown ({ref} has no known price)"]
    saved = format_usd(data.triage_saved_usd)
    return [f"Local triage saved {saved} {period} vs {ref} ({calls} at list price)"]


def _group(g: GroupRow) -> str:
    return f"{_n(g.calls, 'call')}, {_tokens(g)}, {g.cost_text}"


def _tokens(g: GroupRow) -> str:
    return f"{g.input_tokens:,} in / {g.output_tokens:,} out"


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _when(value: datetime, tz: tzinfo | None) -> str:
    local = _aware(value).astimezone(tz or UTC)
    return f"{local.day:02d} {local:%b %H:%M}"


def _aware(value: datetime) -> datetime:
    """A naive datetime is taken to be UTC (as in daemon.store.database)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# -- with a model summary -------------------------------------------------------------------------


def summary_request(message: Message) -> ModelRequest:
    """The `digest` task: 2-3 plain sentences over the rendered figures."""
    return ModelRequest.ask(
        f"{message.title}\n\n{message.body}",
        system=SUMMARY_SYSTEM,
        max_output_tokens=SUMMARY_MAX_TOKENS,
    )


async def digest(
    store: Store,
    ai: AI | None,
    now: datetime,
    *,
    window: timedelta = DAY,
    reference_model: str | None = None,
    reference_api: str | None = None,
    overrides: Mapping[str, PriceOverride] | None = None,
    targets: Sequence[Target] = (),
    retention: timedelta | None = None,
) -> tuple[Message, AIResult | None]:
    """The digest message, opened by a labelled model summary when a `digest` model answers.
    The summary call is recorded at the AI clock's time (>= `now`), so tomorrow's window
    counts it: back-to-back windows count every call once."""
    data = await store_io(
        collect, store, now, window, reference_model, reference_api, overrides, targets, retention
    )
    message = render_digest(data)
    result = None if ai is None else await ai.run("digest", summary_request(message))
    line = "(no model summary: AI is not configured)" if result is None else _summary_line(result)
    return replace(message, body=f"{line}\n\n{message.body}"), result


def _summary_line(result: AIResult) -> str:
    response = result.response
    if response is None:
        return f"(no model summary: {untrusted(result.reason or 'no model in the digest chain')})"
    text = " ".join(response.text.split())
    if not text:
        return f"(no model summary: {result.ref} returned an empty reply)"
    where = "local" if result.local else f"cloud {format_usd(result.cost_usd)}"
    return f"Summary ({result.ref}, {where}): {untrusted(text)}"


async def build_digest(settings: Settings, store: Store, ai: AI, now: datetime) -> Message:
    """The last 24 h digest, in `[digest] timezone`, with the messages' savings comparison."""
    references = cloud_references(settings)  # the same comparison the messages' cost blocks use
    reference, api = (str(references[0][0]), references[0][1]) if references else (None, None)
    message, _ = await digest(
        store,
        ai,
        now.astimezone(ZoneInfo(settings.digest.timezone)),
        reference_model=reference,
        reference_api=api,
        overrides=price_overrides(settings),
        targets=[Target.of(spec) for spec in settings.enabled_checks],
        retention=settings.daemon.retention,
    )
    return message


async def queue_digest(settings: Settings, store: Store, ai: AI, now: datetime) -> Message:
    """Build the digest and queue it for every target that wants `report`."""
    message = await build_digest(settings, store, ai, now)
    items = route_message(message, settings.notify, "report")
    await store_io(store.outbox.enqueue, items)
    return message
