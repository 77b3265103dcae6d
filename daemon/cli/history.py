"""`watchkeeper history NAME`: what one check did over a window — its status changes with how
long each lasted (not every result: a week at 60 s is 10,080 of them), its incidents, its
availability, and its latest results in full."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    from daemon.models import CheckResult, Incident
    from daemon.store.results import Run
    from daemon.util.uptime import Figures, Target

NO_RESULTS = "no results"
GAP_PERIODS = 2.0
"""A pause longer than this many periods between two runs is shown as a span of its own."""
SPANS_SHOWN = 40


@dataclass
class Span:
    """Consecutive runs with one status, or a gap without runs (`no results`)."""

    status: str
    start: datetime
    end: datetime
    runs: int
    evidence: str

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def spans(runs: Sequence[Run], period_s: float, until: datetime) -> list[Span]:
    """Status changes: each run stands until the next one, or for one period (at most until
    `until`) when the next is more than GAP_PERIODS periods away — that pause is a span of its
    own. Evidence is the first run's of each span. A rolled-up bucket (`Run.of`) stands for
    its runs, and for at least its own length."""
    out: list[Span] = []
    for i, run in enumerate(runs):
        period = timedelta(seconds=max(period_s, run.length_s))
        following = runs[i + 1].started_at if i + 1 < len(runs) else None
        if following is not None and following - run.started_at <= period * GAP_PERIODS:
            end = following
        else:
            end = min(run.started_at + period, max(until, run.started_at))
        last = out[-1] if out else None
        if last is not None and last.status == run.status and last.end == run.started_at:
            last.end, last.runs = end, last.runs + run.runs
        else:
            out.append(Span(run.status, run.started_at, end, run.runs, run.evidence))
        if following is not None and end < following:
            out.append(Span(NO_RESULTS, end, following, 0, ""))
    return out


@click.command()
@click.argument("name", shell_complete=_complete.complete_checks)
@click.option("--since", default="7d", show_default=True, help="How far back, e.g. 24h, 7d.")
@click.option(
    "--last",
    default=5,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="How many of the latest results to show in full.",
)
@config_option
@json_option
@handle_errors
def history(name: str, since: str, last: int, config_path: Path | None, as_json: bool) -> None:
    """One check's status changes (with durations), incidents and latest results."""
    from daemon.models import parse_duration
    from daemon.store.results import Run
    from daemon.util.time import utcnow
    from daemon.util.uptime import Figures, RunCounts, Target, Window

    _, settings = load(config_path)
    try:
        spec = settings.check(name)
    except KeyError:
        known = ", ".join(sorted(c.name for c in settings.checks)) or "none"
        raise click.UsageError(f"no check named {name!r}; configured: {known}") from None
    try:
        span = parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    now = utcnow()
    window = Window(since, now - span, now)
    target = Target.of(spec)
    store = open_store(settings)
    try:
        rolled = store.rollups.history(name, window.since, now)
        runs = store.results.runs(name, window.since, now)
        incidents = [
            i
            for i in store.incidents.between(window.since, now)
            if i.check == name or name in i.blast_radius
        ]
        latest = store.results.recent(name, limit=last) if last else []
    finally:
        store.close()
    counts = RunCounts()
    for bucket in rolled:  # before the raw results: their minute and hour rollups
        counts = counts.plus(bucket.runs)
    for run in runs:
        counts = counts.add(run.status if run.status in ("ok", "degraded", "error") else "failing")
    figures = Figures.of(window, counts, target.period_s)
    found = spans([*(Run.of(b) for b in rolled), *runs], target.period_s, now)
    if as_json:
        emit_json(as_dict(target, figures, found, incidents, latest))
    else:
        echo(render(target, figures, found, incidents, latest))


def render(
    target: Target,
    figures: Figures,
    found: list[Span],
    incidents: list[Incident],
    latest: list[CheckResult],
) -> str:
    from daemon.models import format_duration
    from daemon.util.tables import table
    from daemon.util.time import clock
    from daemon.util.uptime import percent

    window = figures.window
    head = (
        f"{target.name} since {clock(window.since)} ({window.name}): "
        f"{figures.runs.total:,} run{'' if figures.runs.total == 1 else 's'} · "
        f"availability {percent(figures.availability)}"
    )
    if figures.down_s:
        head += f" · down {format_duration(timedelta(seconds=figures.down_s))}"
    if target.slo is not None:
        pct = figures.budget(target.slo).remaining_pct
        left = "—" if pct is None else f"{pct:.1f}%"
        head += f" · SLO {target.slo:g}%, budget left {left}"
    lines = [head]
    if not found:
        lines.append("no results in this window")
    else:
        shown = found[-SPANS_SHOWN:]
        if len(found) > len(shown):
            lines.append(f"({len(found) - len(shown)} earlier spans not shown; --json has them)")
        rows = [
            [
                clock(s.start),
                clock(s.end),
                s.status,
                format_duration(s.duration),
                f"{s.runs:,}",
                "" if s.status in ("ok", NO_RESULTS) else s.evidence,
            ]
            for s in shown
        ]
        lines.append(
            table(["from", "until", "status", "lasted", "runs", "evidence"], rows, "lllrrl")
        )
    if incidents:
        lines.append(f"incidents ({len(incidents)}):")
        for i in incidents:
            lasted = format_duration((i.resolved_at or window.until) - i.opened_at)
            root = "" if i.check == target.name else f" (root: {i.check})"
            how = "lasted" if i.resolved_at else "open for"
            lines.append(
                f"  #{i.id} {i.status} {i.severity.value}{root}, opened {clock(i.opened_at)}, "
                f"{how} {lasted}: {i.first_evidence or i.evidence}"
            )
    if latest:
        lines.append("latest results:")
        lines += [f"  {clock(r.started_at)}  {r.status}  {r.evidence}" for r in latest]
    return "\n".join(lines)


def as_dict(
    target: Target,
    figures: Figures,
    found: list[Span],
    incidents: list[Incident],
    latest: list[CheckResult],
) -> dict[str, Any]:
    """The `--json` contract: spans are every status change of the window."""
    from daemon.cli.uptime import figures_json

    def stamp(value: datetime) -> str:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

    return {
        "check": target.name,
        "since": stamp(figures.window.since),
        "until": stamp(figures.window.until),
        "period_s": target.period_s,
        "slo": target.slo,
        "uptime": figures_json(figures, target.slo),
        "spans": [
            {
                "status": s.status,
                "from": stamp(s.start),
                "until": stamp(s.end),
                "duration_s": s.duration.total_seconds(),
                "runs": s.runs,
                "evidence": s.evidence,
            }
            for s in found
        ],
        "incidents": [i.model_dump(mode="json") for i in incidents],
        "latest": [r.model_dump(mode="json") for r in latest],
    }
