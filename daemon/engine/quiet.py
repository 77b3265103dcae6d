"""Quiet periods: silences and maintenance windows that hold notifications.

Pure over its inputs (the silences in force, the configured windows, each check's tags and
`now`): which checks are quiet now, why, and until when; which held incidents to release.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from daemon.engine.incidents import event_for
from daemon.models import EngineState, IncidentEvent, Silence
from daemon.util.time import as_utc

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

    from daemon.config.maintenance import MaintenanceWindow


@dataclass(frozen=True)
class Quiet:
    reason: str
    """`silence #3 (--tag db: schema migration) until 14:00 UTC`."""
    until: datetime


def window_until(window: MaintenanceWindow, now: datetime) -> datetime | None:
    """When the occurrence of `window` that contains `now` ends, or None when none does."""
    trigger = _trigger(window.crontab, window.timezone)
    start = trigger.get_next_fire_time(None, now - window.duration)
    until = None
    while start is not None and start <= now:
        until = start + window.duration
        start = trigger.get_next_fire_time(start, start)
    return None if until is None or until <= now else as_utc(until)


@lru_cache(maxsize=256)
def _trigger(crontab: str, timezone: str) -> CronTrigger:
    from zoneinfo import ZoneInfo

    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger.from_crontab(crontab, timezone=ZoneInfo(timezone))


class Quietness:
    """What is quiet at one moment: `reason(check)` is None when the check may page."""

    def __init__(
        self,
        silences: Sequence[Silence],
        windows: Sequence[MaintenanceWindow],
        tags: Mapping[str, list[str]],
        now: datetime,
    ) -> None:
        self.silences = [s for s in silences if s.active(now)]
        self.windows: list[tuple[MaintenanceWindow, datetime]] = []
        for window in windows:
            until = window_until(window, now)
            if until is not None:
                self.windows.append((window, until))
        self.tags = tags
        self._cache: dict[str, Quiet | None] = {}

    def __bool__(self) -> bool:
        return bool(self.silences or self.windows)

    def of(self, check: str) -> Quiet | None:
        if check not in self._cache:
            self._cache[check] = self._find(check)
        return self._cache[check]

    def _find(self, check: str) -> Quiet | None:
        tags = self.tags.get(check, [])
        for silence in self.silences:
            if silence.matches(check, tags):
                return Quiet(f"{silence.label} until {_clock(silence.until)}", silence.until)
        for window, until in self.windows:
            if window.covers(check, tags):
                why = f": {window.reason}" if window.reason else ""
                return Quiet(f"maintenance {window.name}{why} until {_clock(until)}", until)
        return None


def hold(events: list[IncidentEvent], state: EngineState, quiet: Quietness) -> list[bool]:
    """Mark the events of quiet checks as held (and their incidents, while open); returns,
    per event, whether it may be notified. Mutates `events` and `state`."""
    sendable = []
    for event in events:
        found = quiet.of(event.check) if quiet else None
        if found is None or event.kind == "released":
            sendable.append(True)
            continue
        event.held = found.reason
        incident = state.incidents.get(event.incident_id)
        if incident is not None and event.kind != "resolved":
            incident.held = found.reason
        sendable.append(False)
    return sendable


def release(state: EngineState, quiet: Quietness, now: datetime) -> list[IncidentEvent]:
    """A `released` event for every open incident whose notifications were held and whose
    check is no longer quiet: told once that it is still open. Mutates `state`."""
    events = []
    for incident in sorted(state.incidents.values(), key=lambda i: i.id):
        if incident.held is None or (quiet and quiet.of(incident.check) is not None):
            continue
        detail = f"notifications were held ({incident.held}); it is still open"
        incident.held = None
        incident.last_notified_at = now
        events.append(event_for(incident, "released", now, detail))
    return events


def _clock(value: datetime) -> str:
    utc = as_utc(value)
    return f"{utc:%Y-%m-%d %H:%M} UTC"
