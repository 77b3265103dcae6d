"""`watchkeeper uptime`: availability per check and per tag over 24 h, 7 d, 30 d and the month,
with each SLO's error budget and burn rate — read from the stored results."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from daemon.cli import _complete
from daemon.cli._common import (
    config_option,
    echo,
    emit_json,
    handle_errors,
    json_option,
    load,
    open_store,
)

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.util.uptime import Figures, UptimeReport, Window

BUDGET_WINDOW = "30d"
"""The error budget shown in the table: over 30 days (the SRE workbook's usual window) when it
is among the windows, else over the longest one."""
LOW_COVERAGE = 0.9
NOTES_MAX = 5


@click.command()
@click.argument("names", nargs=-1, shell_complete=_complete.complete_checks)
@click.option(
    "--window",
    "window_names",
    default="24h,7d,30d,month",
    show_default=True,
    help="Comma-separated windows: Nh or Nd (rolling, up to now) or month (the calendar "
    "month so far, UTC).",
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    shell_complete=_complete.complete_tags,
    help="Only checks with this tag, and the tag's total (repeatable).",
)
@config_option
@json_option
@handle_errors
def uptime(
    names: tuple[str, ...],
    window_names: str,
    tags: tuple[str, ...],
    config_path: Path | None,
    as_json: bool,
) -> None:
    """Availability of every check (or NAMES) and every tag, from the stored results.

    A run counts as up when ok or degraded, as down when failing; error runs (the check could
    not look) and gaps without runs are not counted either way. With `slo = 99.9` on a check:
    the error budget left and the burn rate over the last 1h and 24h.
    """
    from daemon.util.time import utcnow
    from daemon.util.uptime import windows

    _, settings = load(config_path)
    now = utcnow()
    try:
        report_windows = windows(window_names, now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--window") from None
    report = collect(settings, report_windows, now, names=names, tags=tags)
    if as_json:
        emit_json(as_dict(report))
    else:
        echo(render(report))


def collect(
    settings: Settings,
    report_windows: list[Window],
    now: datetime,
    *,
    names: tuple[str, ...] = (),
    tags: tuple[str, ...] = (),
) -> UptimeReport:
    """The report for the configured checks (NAMES and tags narrow it; unknown ones are a
    usage error). Disabled checks appear only when they have results in a window."""
    from daemon.report.uptime import collect_from

    known = {spec.name: spec for spec in settings.checks}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.UsageError(
            f"no check named {', '.join(map(repr, unknown))}; configured: "
            + (", ".join(sorted(known)) or "none")
        )
    specs = [known[n] for n in names] if names else list(known.values())
    if tags:
        specs = [s for s in specs if set(tags) & set(s.tags)]
    store = open_store(settings)
    try:
        return collect_from(store, settings, specs, report_windows, now, tags=tags)
    finally:
        store.close()


# -- text -----------------------------------------------------------------------------------------


def render(report: UptimeReport) -> str:
    """The table, then what a reader must know to trust it (retention, coverage)."""
    from daemon.util.tables import table
    from daemon.util.time import clock
    from daemon.util.uptime import percent

    budget_at = _budget_index(report)
    slo = any(c.target.slo is not None for c in report.checks)
    header = ["check", *(w.name + _mark(report, w) for w in report.windows)]
    if slo:
        header += ["SLO", f"budget left ({report.windows[budget_at].name})", "burn 1h", "burn 24h"]
    rows = []
    for check in report.checks:
        row = [check.target.name, *(percent(f.availability) for f in check.figures)]
        if slo:
            row += _slo_cells(check.target.slo, check.figures[budget_at], check.burn)
        rows.append(row)
    for tag in report.tags:
        row = [
            f"tag {tag.tag} ({len(tag.checks)})",
            *(percent(f.availability) for f in tag.figures),
        ]
        rows.append(row + (["", "", "", ""] if slo else []))
    if not rows:
        return "no checks configured"
    align = "l" + "r" * len(report.windows) + ("rlrr" if slo else "")
    lines = [
        f"Uptime at {clock(report.now)}: up = ok or degraded runs, down = failing runs; "
        "error runs and gaps without runs count neither way",
        table(header, rows, align),
    ]
    return "\n".join(lines + _notes(report))


def _budget_index(report: UptimeReport) -> int:
    names = [w.name for w in report.windows]
    if BUDGET_WINDOW in names:
        return names.index(BUDGET_WINDOW)
    return max(range(len(names)), key=lambda i: report.windows[i].seconds)


def _slo_cells(slo: float | None, figures: Figures, burn: dict[str, float | None]) -> list[str]:
    from datetime import timedelta

    from daemon.models import format_duration

    if slo is None:
        return ["", "", "", ""]
    budget = figures.budget(slo)
    pct = budget.remaining_pct
    if pct is None:
        left = "—"
    elif budget.remaining_s >= 0:
        left = f"{pct:.1f}% ({format_duration(timedelta(seconds=budget.remaining_s))} left)"
    else:
        over = format_duration(timedelta(seconds=-budget.remaining_s))
        left = f"{pct:.1f}% (overspent by {over})"
    rates = [burn.get(name) for name in ("1h", "24h")]
    return [f"{slo:g}%", left, *("—" if r is None else f"{r:.2f}" for r in rates)]


def _mark(report: UptimeReport, window: Window) -> str:
    return "*" if report.stored_span(window) is not None else ""


def _notes(report: UptimeReport) -> list[str]:
    from daemon.models import format_duration
    from daemon.util.time import clock

    notes = []
    for window in report.windows:
        span = report.stored_span(window)
        if span is None:
            continue
        if report.stored_since is None:
            notes.append(f"* {window.name}: no results stored yet")
            continue
        keep = f", retention {format_duration(report.retention)}" if report.retention else ""
        notes.append(
            f"* {window.name}: covers only {format_duration(span)} of stored results (the "
            f"oldest is from {clock(report.stored_since)}{keep}); older results were pruned "
            "or never recorded, and count neither way"
        )
    low = [
        f"{c.target.name} {f.window.name} {f.coverage:.0%}"
        for c in report.checks
        for f in c.figures
        if f.runs.total and f.coverage < LOW_COVERAGE and report.stored_span(f.window) is None
    ]
    if low:
        more = f" and {len(low) - NOTES_MAX} more" if len(low) > NOTES_MAX else ""
        notes.append(
            "measured for less of the window than its interval implies (stopped, added "
            f"later, errors): {', '.join(low[:NOTES_MAX])}{more}"
        )
    return notes


# -- JSON -----------------------------------------------------------------------------------------


def as_dict(report: UptimeReport) -> dict[str, Any]:
    """The `--json` contract (README, "Uptime and SLOs")."""

    def stamp(value: datetime) -> str:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

    def stored(window: Window) -> float | None:
        span = report.stored_span(window)
        return None if span is None else span.total_seconds()

    return {
        "generated_at": stamp(report.now),
        "definition": "availability = up runs (ok or degraded) / measured runs (up or failing); "
        "error runs and gaps without runs are unknown; seconds = runs x the check's period",
        "stored_since": None if report.stored_since is None else stamp(report.stored_since),
        "retention_s": None if report.retention is None else report.retention.total_seconds(),
        "windows": [
            {
                "name": w.name,
                "since": stamp(w.since),
                "until": stamp(w.until),
                "stored_s": stored(w),
            }
            for w in report.windows
        ],
        "checks": [
            {
                "check": c.target.name,
                "period_s": c.target.period_s,
                "tags": list(c.target.tags),
                "slo": c.target.slo,
                "windows": {f.window.name: figures_json(f, c.target.slo) for f in c.figures},
                "burn_rate": {k: None if v is None else round(v, 3) for k, v in c.burn.items()},
            }
            for c in report.checks
        ],
        "tags": [
            {
                "tag": t.tag,
                "checks": t.checks,
                "windows": {f.window.name: figures_json(f, None) for f in t.figures},
            }
            for t in report.tags
        ],
    }


def figures_json(f: Figures, slo: float | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "availability_pct": None if f.availability is None else round(f.availability, 4),
        "runs": {
            "ok": f.runs.ok,
            "degraded": f.runs.degraded,
            "failing": f.runs.failing,
            "error": f.runs.error,
        },
        "up_s": f.up_s,
        "down_s": f.down_s,
        "degraded_s": f.degraded_s,
        "error_s": f.error_s,
        "coverage": round(f.coverage, 4),
    }
    if slo is not None:
        budget = f.budget(slo)
        pct = budget.remaining_pct
        data["budget"] = {
            "allowed_s": round(budget.allowed_s, 1),
            "spent_s": round(budget.spent_s, 1),
            "remaining_s": round(budget.remaining_s, 1),
            "remaining_pct": None if pct is None else round(pct, 2),
        }
    return data
