"""What each page shows, read from an open `Store` (blocking: called through `store_io`).

The JSON forms are `daemon.report`'s and `daemon.ai.reports`' — the CLI's `--json` shapes;
the page forms add only presentation (sparklines, chart bars, uptime percentages).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.models import worst_status
from daemon.report.status import load_incident, load_status
from daemon.report.status import status_json as _status_json
from daemon.util.time import utcnow
from daemon.web import charts

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.store import Store
    from daemon.store.ledger import LedgerRow
    from jobs.base import CheckSpec

SPARK_RUNS = 30
CSV_COLUMNS = (
    "ts",
    "task",
    "provider",
    "model",
    "host",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_ms",
    "outcome",
    "incident_id",
)


def now() -> datetime:
    return utcnow()


def _since(text: str | None, default: str = "30d") -> datetime | None:
    from daemon.models import parse_duration

    try:
        span: timedelta = parse_duration(text or default)
    except ValueError:
        return None
    return utcnow() - span


# -- overview ----------------------------------------------------------------------------------


def overview(store: Store, settings: Settings, pid: int) -> dict[str, Any]:
    """Every configured check (failing first) with status, evidence, sparkline and 24 h
    uptime; open incidents; the outbox."""
    from daemon.report.uptime import collect_from
    from daemon.util.uptime import window

    specs = list(settings.checks)
    view = load_status(store, settings, pid)
    moment = utcnow()
    uptime = collect_from(store, settings, specs, [window("24h", moment)], moment)
    availability = {c.target.name: c.figures[0].availability for c in uptime.checks}
    rows = []
    for spec in specs:
        results = view.last.get(spec.name) or []
        recent = store.results.recent(spec.name, SPARK_RUNS)
        latencies = [r.latency_ms if r.ok or r.latency_ms else None for r in reversed(recent)]
        rows.append(
            {
                "name": spec.name,
                "type": spec.type,
                "enabled": spec.enabled,
                "status": worst_status(results) if results else None,
                "last_run": results[0].started_at if results else None,
                "latency_ms": results[0].latency_ms if results else None,
                "evidence": "; ".join(r.evidence for r in results if not r.ok)
                or (results[0].evidence if results else ""),
                "marks": view.marks(spec.name),
                "spark": charts.sparkline(latencies),
                "uptime_24h": availability.get(spec.name),
            }
        )
    rank = {"failing": 0, "error": 1, "degraded": 2, "ok": 3}
    rows.sort(key=lambda r: (rank.get(str(r["status"]), 4), str(r["name"])))
    return {
        "checks": rows,
        "open_incidents": view.open_incidents,
        "outbox": dict(view.outbox),
        "flapping": view.flapping(),
        "last_cycle_stored": view.last_cycle,
        "pid": pid,
    }


def status_json(store: Store, settings: Settings) -> dict[str, Any]:
    """`watchkeeper status --json`, from inside the running daemon (so: running, this pid)."""
    import os

    return _status_json(load_status(store, settings, os.getpid()))


def incidents_json(store: Store, include_resolved: bool) -> list[dict[str, Any]]:
    """`watchkeeper incidents [--all] --json`."""
    return [i.model_dump(mode="json") for i in store.incidents.recent(include_resolved)]


# -- incident ------------------------------------------------------------------------------------


def incident(store: Store, incident_id: int) -> dict[str, Any] | None:
    """The incident, its timeline, its investigations in full, and its blast-radius graph."""
    found = store.incidents.get(incident_id)
    if found is None:
        return None
    record, events = found
    investigations = store.incidents.investigations(incident_id)
    rows = store.ledger.calls(record.opened_at - timedelta(minutes=5))
    mine = [r for r in rows if r.incident_id == incident_id]
    total = sum((r.cost_usd for r in mine if r.cost_usd is not None), Decimal(0))
    return {
        "incident": record,
        "events": events,
        "investigations": investigations,
        "calls": mine,
        "notifications": store.outbox.for_incident(incident_id),
        "cost_usd": total if all(r.cost_usd is not None for r in mine) else None,
        "graph": charts.radius_graph(record.check, record.blast_radius),
        "json": load_incident(store, incident_id),
    }


# -- AI spend and audit ---------------------------------------------------------------------------


def ledger_rows(store: Store, since: str | None) -> tuple[datetime, list[dict[str, Any]]] | None:
    from daemon.ai.reports import row_json, sent

    start = _since(since)
    if start is None:
        return None
    return start, [row_json(r) for r in store.ledger.calls(start) if sent(r)]


def costs_json(store: Store, since: str | None) -> dict[str, Any] | None:
    """`watchkeeper costs --since … --json`."""
    from daemon.ai.reports import costs_json as build

    start = _since(since, "7d")
    return None if start is None else build(store.ledger.calls(start), start)


def month_pace_json(store: Store, settings: Settings) -> dict[str, Any]:
    """This month's cloud AI spend so far and its straight-line forecast, with the budget."""
    from daemon.ai.reports import month_forecast

    now = utcnow()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return month_forecast(store.ledger.calls(start), now, settings.budget.monthly_usd)


def audit_json(store: Store, since: str | None) -> dict[str, Any] | None:
    """`watchkeeper audit --since … --json`."""
    from daemon.ai.reports import audit_json as build

    start = _since(since)
    return None if start is None else build(store.ledger.calls(start), start)


def _bars(rows: Sequence[LedgerRow], by: str) -> list[charts.Bar]:
    from daemon.ai.reports import group

    return [
        charts.Bar(g.key, float(g.cost_usd), g.unknown_cost_calls)
        for g in group(rows, by)  # type: ignore[arg-type]
    ]


def spend(store: Store, settings: Settings, since: str) -> dict[str, Any] | None:
    """Cost by day, model, task and provider; local vs cloud; what local triage saved;
    budget use per period against its limit. Unknown costs stay unknown."""
    from daemon.ai.reports import local_savings, sent

    start = _since(since)
    if start is None:
        return None
    rows = [r for r in store.ledger.calls(start) if sent(r)]
    local = [r for r in rows if r.local]
    cloud = [r for r in rows if not r.local]
    saved, reference = local_savings(settings, rows)
    moment = utcnow()
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    limits: list[tuple[str, str | None, datetime, Decimal | None]] = [
        ("today", None, day, settings.budget.daily_usd),
        ("this month", None, month, settings.budget.monthly_usd),
    ]
    for name, own in sorted(settings.budget.providers.items()):
        limits += [
            ("today", name, day, own.daily_usd),
            ("this month", name, month, own.monthly_usd),
        ]
    budgets = []
    for period, provider, start_at, limit in limits:
        if provider is not None and limit is None:
            continue
        used = store.ledger.spent(start_at, provider)
        budgets.append(
            {
                "period": period,
                "provider": provider,
                "spent": used,
                "limit": limit,
                "share": None if not limit else min(1.0, float(used / limit)),
            }
        )
    known = [r.cost_usd for r in rows if r.cost_usd is not None]
    return {
        "since": since,
        "start": start,
        "calls": len(rows),
        "total": sum(known, Decimal(0)),
        "unknown": sum(r.cost_usd is None for r in rows),
        "local_calls": len(local),
        "cloud_calls": len(cloud),
        "cloud_total": _known(cloud),
        "saved": saved,
        "saved_reference": reference,
        "budgets": budgets,
        "charts": {
            "where": charts.bar_chart(
                [
                    charts.Bar(f"local ({_calls(len(local))})", float(_known(local))),
                    charts.Bar(
                        f"cloud ({_calls(len(cloud))})",
                        float(_known(cloud)),
                        sum(r.cost_usd is None for r in cloud),
                    ),
                ],
                title="Local vs cloud",
            ),
            "day": charts.bar_chart(_bars(rows, "day"), title="Cost by day (UTC)"),
            "model": charts.bar_chart(_bars(rows, "model"), title="Cost by model"),
            "task": charts.bar_chart(_bars(rows, "task"), title="Cost by task"),
            "provider": charts.bar_chart(_bars(rows, "provider"), title="Cost by provider"),
        },
    }


def _known(rows: Sequence[LedgerRow]) -> Decimal:
    """The sum of the known costs (unknown ones are counted apart, never as 0)."""
    return sum((r.cost_usd for r in rows if r.cost_usd is not None), Decimal(0))


def _calls(n: int) -> str:
    return f"{n} call" if n == 1 else f"{n} calls"


def audit(store: Store, since: str) -> dict[str, Any] | None:
    from daemon.ai.reports import audit as hosts

    start = _since(since)
    if start is None:
        return None
    return {"since": since, "start": start, "hosts": hosts(store.ledger.calls(start))}


# -- sweeps ---------------------------------------------------------------------------------------


def sweeps_json(store: Store) -> list[dict[str, Any]]:
    """`watchkeeper findings --json` (every configured sweep's latest run)."""
    from daemon.sweeps.reports import report_json

    return [report_json(record) for record in store.sweeps.latest_runs()]


def sweeps(store: Store) -> list[dict[str, Any]]:
    documents = sweeps_json(store)
    for document in documents:
        document["findings"].sort(key=lambda f: _SEVERITY_RANK.get(f["severity"], 9))
    return documents


def report_path(store: Store, settings: Settings, sweep: str, ext: str) -> Path | None:
    """The report file of `sweep`'s latest run, as recorded by the run itself, if it is
    still there and inside the state directory's reports/."""
    if ext not in ("md", "json", "sarif", "ocsf.json"):
        return None
    run = next((r for r in store.sweeps.latest_runs() if r.sweep == sweep), None)
    recorded = (run.detail.get("reports") or {}).get(ext) if run is not None else None
    if not isinstance(recorded, str):
        return None
    path = Path(recorded).resolve()
    reports = (settings.daemon.state_dir / "reports").resolve()
    if not path.is_relative_to(reports) or not path.is_file():
        return None
    return path


_SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


# -- the public status page -----------------------------------------------------------------------


def public_specs(settings: Settings) -> list[tuple[str, list[CheckSpec]]]:
    """The groups the config marks public, in its order: a `tag:NAME` entry is a group of
    every check with that tag; plain names gather into "Services"."""
    by_name = {s.name: s for s in settings.checks if s.enabled}
    groups: list[tuple[str, list[CheckSpec]]] = []
    loose: list[CheckSpec] = []
    for entry in settings.web.status.checks:
        if entry.startswith("tag:"):
            tag = entry.removeprefix("tag:")
            members = [s for s in by_name.values() if tag in s.tags]
            if members:
                groups.append((tag, members))
        elif entry in by_name:
            loose.append(by_name[entry])
    if loose:
        groups.insert(0, ("Services", loose))
    return groups


def public_status(store: Store, settings: Settings) -> dict[str, Any]:
    """Only names, states, uptime and public incident titles: never evidence, hosts, costs
    or anything else about the internals."""
    from daemon.report.uptime import collect_from
    from daemon.util.uptime import window

    moment = utcnow()
    groups = public_specs(settings)
    specs = [s for _, members in groups for s in members]
    names = {s.name for s in specs}
    latest = store.results.latest()
    windows = [window(w, moment) for w in ("24h", "7d", "30d")]
    uptime = collect_from(store, settings, specs, windows, moment)
    figures = {c.target.name: [f.availability for f in c.figures] for c in uptime.checks}
    incidents = [
        i for i in store.incidents.between(moment - timedelta(days=30), moment) if i.check in names
    ]
    shown = []
    for title, members in groups:
        rows = []
        for spec in members:
            results = latest.get(spec.name) or []
            state = worst_status(results) if results else None
            rows.append(
                {
                    "name": spec.name,
                    "state": _PUBLIC_STATE.get(state or "", "unknown"),
                    "uptime": figures.get(spec.name, [None, None, None]),
                }
            )
        shown.append({"title": title, "checks": rows})
    overall = "operational"
    states = {row["state"] for _, rows in _rows(shown) for row in rows}
    if "down" in states:
        overall = "major outage"
    elif "degraded" in states:
        overall = "degraded performance"
    return {
        "groups": shown,
        "overall": overall,
        "incidents": [
            {
                "title": f"{i.check} {'unavailable' if i.status == 'open' else 'was unavailable'}",
                "opened_at": i.opened_at.astimezone(UTC),
                "resolved_at": i.resolved_at,
                "open": i.status == "open",
            }
            for i in sorted(incidents, key=lambda i: i.opened_at, reverse=True)
        ],
    }


def _rows(shown: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    return [(group["title"], group["checks"]) for group in shown]


_PUBLIC_STATE = {"ok": "operational", "degraded": "degraded", "failing": "down", "error": "down"}
