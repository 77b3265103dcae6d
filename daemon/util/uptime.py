"""Availability from stored check results: windows, run counts, error budgets, burn rates.

Pure arithmetic over the counts the store returns: it never reads the clock or the database.

The definition (the README says the same): a *run* is one execution of a check (every result
sharing its `started_at`), with the status of its worst result, `failing` over `error`. A run
is *up* when ok or degraded (degraded is up but slow: shown apart), *down* when failing, and
neither when `error` (the check could not look: watchkeeper's problem, not the target's).
Availability over a window = up runs / (up + down runs) — counted, as Gatus and Uptime Kuma do,
so a gap with no runs (the daemon stopped, the check added later, results pruned after
`retention`) is unknown time, never up or down. Time figures are runs x the check's period.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

RUN_RANK: dict[str, int] = {"ok": 0, "degraded": 1, "error": 2, "failing": 3}
"""A run's status is its worst result's; `failing` outranks `error` (the target is down even
if another part of the run could not be judged)."""
SINGLE_RESULT_TYPES = frozenset({"http", "tcp", "tls", "dns", "command", "ping", "heartbeat"})
"""Types whose every run stores exactly one result, so rows are runs (counted fast from the
index). Any other type is counted run by run: a type missing here costs time, never accuracy."""
DEFAULT_WINDOWS = "24h,7d,30d,month"
BURN_WINDOWS = ("1h", "24h")
"""The SRE workbook's multiwindow idea: a short window that reacts and a long one that is sure."""
_WINDOW = re.compile(r"^(\d{1,4})([hd])$")


@dataclass(frozen=True)
class RunCounts:
    """Runs of one check in one window, by status."""

    ok: int = 0
    degraded: int = 0
    error: int = 0
    failing: int = 0

    @property
    def up(self) -> int:
        return self.ok + self.degraded

    @property
    def down(self) -> int:
        return self.failing

    @property
    def measured(self) -> int:
        return self.up + self.down

    @property
    def total(self) -> int:
        return self.measured + self.error

    def add(self, status: str, runs: int = 1) -> RunCounts:
        return replace(self, **{status: getattr(self, status) + runs})

    def plus(self, other: RunCounts) -> RunCounts:
        """Both windows' runs together (raw results and rollups of adjacent periods)."""
        return RunCounts(
            self.ok + other.ok,
            self.degraded + other.degraded,
            self.error + other.error,
            self.failing + other.failing,
        )


@dataclass(frozen=True)
class Window:
    """[since, until): a rolling `24h`/`7d`, or `month`, the calendar month so far (UTC)."""

    name: str
    since: datetime
    until: datetime

    @property
    def seconds(self) -> float:
        return (self.until - self.since).total_seconds()


def window(name: str, now: datetime) -> Window:
    """`24h`, `7d`, `30d`, `month`; ValueError says what is accepted."""
    text = name.strip().lower()
    if text == "month":
        start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return Window("month", start, now)
    match = _WINDOW.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{name!r} is not a window: use e.g. 24h, 7d, 30d or month")
    amount, unit = int(match.group(1)), match.group(2)
    span = timedelta(hours=amount) if unit == "h" else timedelta(days=amount)
    return Window(text, now - span, now)


def window_name(span: timedelta) -> str:
    """`24h`, `30d`, `90m`: how a window of this length is written (days from two on)."""
    seconds = int(span.total_seconds())
    if seconds % 86400 == 0 and seconds >= 2 * 86400:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def windows(names: str, now: datetime) -> list[Window]:
    """`24h,7d,30d,month` → the windows, in that order, duplicates dropped."""
    seen: dict[str, Window] = {}
    for part in names.split(","):
        if part.strip():
            found = window(part, now)
            seen.setdefault(found.name, found)
    if not seen:
        raise ValueError("no window given: use e.g. 24h,7d,30d,month")
    return list(seen.values())


class SpecLike(Protocol):
    """What uptime needs of a `[[checks]]` entry (jobs.base.CheckSpec fits)."""

    name: str
    type: str
    interval: timedelta | None
    cron: str | None
    tags: list[str]
    slo: float | None


@dataclass(frozen=True)
class Target:
    """A check as uptime sees it: how long one run stands for, its SLO, its tags."""

    name: str
    period_s: float
    slo: float | None = None
    tags: tuple[str, ...] = ()
    single_result: bool = True

    @classmethod
    def of(cls, spec: SpecLike) -> Target:
        return cls(
            name=spec.name,
            period_s=period_s(spec.interval, spec.cron),
            slo=spec.slo,
            tags=tuple(spec.tags),
            single_result=spec.type in SINGLE_RESULT_TYPES,
        )


def period_s(interval: timedelta | None, cron: str | None) -> float:
    """How long one run stands for: the interval (default 60 s), or a cron schedule's mean
    gap between runs over its next 1,000 (at most 35 days ahead)."""
    if not cron:
        return (interval or timedelta(seconds=60)).total_seconds()
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(cron, timezone=UTC)
    start = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday: the schedule, not today, decides
    first = last = trigger.get_next_fire_time(None, start)
    fires = 0
    while last is not None and fires < 1000 and last - start < timedelta(days=35):
        upcoming = trigger.get_next_fire_time(last, last + timedelta(microseconds=1))
        if upcoming is None:
            break
        last, fires = upcoming, fires + 1
    if first is None or last is None or fires == 0:
        return 86400.0
    return float((last - first).total_seconds()) / fires


@dataclass(frozen=True)
class Budget:
    """The error budget over a window: the downtime the SLO allows in the measured time."""

    slo: float
    allowed_s: float
    spent_s: float

    @property
    def remaining_s(self) -> float:
        return self.allowed_s - self.spent_s

    @property
    def remaining_pct(self) -> float | None:
        """Negative once overspent; None when nothing was measured (nothing allowed)."""
        return None if self.allowed_s <= 0 else 100.0 * self.remaining_s / self.allowed_s


@dataclass(frozen=True)
class Figures:
    """One check (or a tag's checks together) over one window."""

    window: Window
    runs: RunCounts
    up_s: float
    down_s: float
    degraded_s: float
    error_s: float
    checks: int = 1

    @classmethod
    def of(cls, window: Window, runs: RunCounts, period: float) -> Figures:
        return cls(
            window,
            runs,
            up_s=runs.up * period,
            down_s=runs.down * period,
            degraded_s=runs.degraded * period,
            error_s=runs.error * period,
        )

    @property
    def measured_s(self) -> float:
        return self.up_s + self.down_s

    @property
    def availability(self) -> float | None:
        """Percent up of the measured time; None when nothing was measured."""
        return None if self.measured_s <= 0 else 100.0 * self.up_s / self.measured_s

    @property
    def coverage(self) -> float:
        """The share of the window (per check) that was measured, 0..1."""
        whole = self.window.seconds * self.checks
        return 0.0 if whole <= 0 else min(1.0, self.measured_s / whole)

    def budget(self, slo: float) -> Budget:
        return Budget(slo, (1 - slo / 100) * self.measured_s, self.down_s)

    def burn_rate(self, slo: float) -> float | None:
        """How fast the budget burns: 1 spends exactly the budget by the window's end, 14.4
        over 1 h spends 2 % of a 30-day budget (the SRE workbook's page threshold)."""
        if self.measured_s <= 0 or slo >= 100:
            return None
        return (self.down_s / self.measured_s) / (1 - slo / 100)


def combine(window: Window, parts: Sequence[Figures]) -> Figures:
    """Several checks as one (a tag): their measured time pooled, so a 10 s check does not
    outweigh a 5 min one thirty times."""
    runs = RunCounts()
    for part in parts:
        for status in RUN_RANK:
            runs = runs.add(status, getattr(part.runs, status))
    return Figures(
        window,
        runs,
        up_s=sum(p.up_s for p in parts),
        down_s=sum(p.down_s for p in parts),
        degraded_s=sum(p.degraded_s for p in parts),
        error_s=sum(p.error_s for p in parts),
        checks=len(parts),
    )


@dataclass(frozen=True)
class CheckUptime:
    target: Target
    figures: list[Figures]
    """One per requested window, in order."""
    burn: dict[str, float | None] = field(default_factory=dict)
    """Burn rate per BURN_WINDOWS name; empty without an SLO."""


@dataclass(frozen=True)
class TagUptime:
    tag: str
    checks: list[str]
    figures: list[Figures]


@dataclass(frozen=True)
class UptimeReport:
    now: datetime
    windows: list[Window]
    stored_since: datetime | None
    """The oldest stored result: before it, retention pruned (or nothing ran yet)."""
    retention: timedelta | None
    checks: list[CheckUptime]
    tags: list[TagUptime]

    def stored_span(self, window: Window) -> timedelta | None:
        """How much of `window` stored results can cover, when less than all of it."""
        if self.stored_since is None:
            return timedelta(0)
        if self.stored_since <= window.since:
            return None
        return max(timedelta(0), window.until - self.stored_since)


def bounds(report_windows: Sequence[Window], now: datetime) -> list[datetime]:
    """Every window start the store must count from: the report's, then the burn windows'."""
    return [w.since for w in report_windows] + [window(b, now).since for b in BURN_WINDOWS]


def build(
    targets: Iterable[Target],
    report_windows: list[Window],
    counts: dict[str, list[RunCounts]],
    *,
    now: datetime,
    stored_since: datetime | None,
    retention: timedelta | None,
    tags: Iterable[str] | None = None,
) -> UptimeReport:
    """The report from the store's counts (one RunCounts per `bounds(...)` entry per check).
    `tags`: which tags to total (default: every tag of the targets)."""
    burn_windows = [window(b, now) for b in BURN_WINDOWS]
    empty = [RunCounts()] * (len(report_windows) + len(burn_windows))
    checks = []
    for target in targets:
        got = counts.get(target.name, empty)
        figures = [
            Figures.of(w, c, target.period_s) for w, c in zip(report_windows, got, strict=False)
        ]
        burn: dict[str, float | None] = {}
        if target.slo is not None:
            for w, c in zip(burn_windows, got[len(report_windows) :], strict=True):
                burn[w.name] = Figures.of(w, c, target.period_s).burn_rate(target.slo)
        checks.append(CheckUptime(target, figures, burn))
    wanted = sorted({t for c in checks for t in c.target.tags} if tags is None else set(tags))
    totals = []
    for tag in wanted:
        members = [c for c in checks if tag in c.target.tags]
        if members:
            figures = [
                combine(w, [m.figures[i] for m in members]) for i, w in enumerate(report_windows)
            ]
            totals.append(TagUptime(tag, [m.target.name for m in members], figures))
    return UptimeReport(now, report_windows, stored_since, retention, checks, totals)


def percent(value: float | None) -> str:
    """`99.931%`: truncated, never rounded up to a 100% that was not; `—` for no data."""
    if value is None:
        return "—"
    if value >= 100:
        return "100%"
    return f"{int(value * 1000) / 1000:.3f}%"
