"""The daily digest's uptime section: who was not at 100 % over the digest's window, and every
SLO's error budget over 30 days with its burn rate. Figures come from the stored results only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from daemon.models import format_duration
from daemon.store import Store
from daemon.util.text import untrusted
from daemon.util.uptime import (
    Figures,
    Target,
    UptimeReport,
    Window,
    bounds,
    build,
    percent,
    window_name,
)

SLO_WINDOW = timedelta(days=30)
"""Error budgets in the digest are over 30 days (the SRE workbook's usual window)."""
UPTIME_SHOWN = 5


def uptime_report(
    store: Store,
    targets: Sequence[Target],
    since: datetime,
    until: datetime,
    retention: timedelta | None,
) -> UptimeReport:
    """The window's availability; over SLO_WINDOW too when a check has an SLO (its budget)."""
    windows = [Window(window_name(until - since), since, until)]
    if any(t.slo is not None for t in targets):
        windows.append(Window(window_name(SLO_WINDOW), until - SLO_WINDOW, until))
    exact = [t.name for t in targets if not t.single_result]
    counts = store.results.run_counts(bounds(windows, until), until, exact=exact)
    return build(
        targets,
        windows,
        counts,
        now=until,
        stored_since=store.results.oldest(),
        retention=retention,
        tags=(),
    )


def uptime_lines(report: UptimeReport) -> list[str]:
    """Who was not at 100 % over the window (lowest first), then every SLO's budget."""
    day = report.windows[0]
    measured = [(c, c.figures[0]) for c in report.checks if c.figures[0].availability is not None]
    if not measured:
        return [f"**Uptime ({day.name}):** no runs measured"]
    below = sorted(
        ((c, f) for c, f in measured if f.down_s > 0),
        key=lambda cf: (cf[1].availability or 0.0, cf[0].target.name),
    )
    checks = f"{len(measured)} check{'' if len(measured) == 1 else 's'}"
    line = f"**Uptime ({day.name}):** {len(measured) - len(below)} of {checks} at 100%"
    if below:
        lowest = [
            f"{untrusted(c.target.name)} {percent(f.availability)} "
            f"(down {format_duration(timedelta(seconds=f.down_s))})"
            for c, f in below[:UPTIME_SHOWN]
        ]
        more = f" and {len(below) - UPTIME_SHOWN} more" if len(below) > UPTIME_SHOWN else ""
        line += " · below: " + ", ".join(lowest) + more
    lines = [line]
    slos = [c for c in report.checks if c.target.slo is not None and len(c.figures) > 1]
    if slos:
        span = report.stored_span(report.windows[1])
        note = f" (stored results cover {format_duration(span)})" if span is not None else ""
        lines.append(f"SLOs, budget left over {report.windows[1].name}{note}:")
        lines += [_slo_line(c.target, c.figures[1], c.burn.get("24h")) for c in slos]
    return lines


def _slo_line(target: Target, figures: Figures, burn: float | None) -> str:
    assert target.slo is not None
    budget = figures.budget(target.slo)
    pct = budget.remaining_pct
    if pct is None:
        left = "nothing measured"
    elif budget.remaining_s >= 0:
        left = f"{pct:.1f}% left ({format_duration(timedelta(seconds=budget.remaining_s))})"
    else:
        over = format_duration(timedelta(seconds=-budget.remaining_s))
        left = f"overspent by {over} ({pct:.1f}%)"
    rate = "—" if burn is None else f"{burn:.2f}"
    return (
        f"- {untrusted(target.name)} {target.slo:g}%: {percent(figures.availability)}, "
        f"{left}, burn rate 24h {rate}"
    )
