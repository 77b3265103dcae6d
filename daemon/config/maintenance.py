"""`[[maintenance]]`: planned windows in which matching checks do not page.

A window starts at each time of its schedule — a crontab expression, or weekly days at a time —
in its timezone, and lasts `duration`. Checks keep running and recording; incidents open and
resolve in the store; their notifications are held, and when the window ends an incident still
open is notified once (the `released` event). Ad hoc windows are silences (`watchkeeper
silence add`).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.models import Duration

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
MAX_DURATION = timedelta(days=7)
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class MaintenanceWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=120,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
        description="Shown in held notifications and the digest, e.g. 'nightly-db-backup'.",
    )
    checks: list[str] = Field(default_factory=list, description="Check names it covers.")
    tags: list[str] = Field(default_factory=list, description="Checks with any of these tags.")
    match: str | None = Field(
        default=None, description="A shell-style glob over check names, e.g. 'db-*' ('*': all)."
    )
    cron: str | None = Field(
        default=None,
        description="When it starts, as a crontab expression in `timezone`, e.g. '0 2 * * sun'. "
        "Or use `days` and `at`.",
    )
    days: list[Weekday] = Field(
        default_factory=list, description="Weekly: the days it starts, e.g. ['sat', 'sun']."
    )
    at: str | None = Field(default=None, description="Weekly: the start time, 'HH:MM'.")
    duration: Duration = Field(description="How long it lasts from each start, e.g. '2h'.")
    timezone: str = Field(
        default="UTC", description="IANA timezone of the schedule, e.g. 'Europe/Berlin'."
    )
    reason: str = Field(default="", max_length=300, description="Why: shown with held notices.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}; use an IANA name like 'UTC'") from None
        return value

    @field_validator("at")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None and not _CLOCK.match(value):
            raise ValueError(f"{value!r} is not a time of day; use 'HH:MM', e.g. '02:30'")
        return value

    @field_validator("duration")
    @classmethod
    def _sane_duration(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0) or value > MAX_DURATION:
            raise ValueError("must be more than 0 and at most 7d")
        return value

    @model_validator(mode="after")
    def _one_schedule_and_a_selector(self) -> MaintenanceWindow:
        weekly = bool(self.days) or self.at is not None
        if (self.cron is None) == (not weekly):
            raise ValueError("give either cron, or days and at")
        if weekly and not (self.days and self.at):
            raise ValueError("a weekly window needs both days and at")
        if not (self.checks or self.tags or self.match):
            raise ValueError("name the checks it covers: checks, tags or match ('*' for all)")
        return self

    @property
    def crontab(self) -> str:
        """The schedule as one crontab expression (weekly ones too)."""
        if self.cron is not None:
            return self.cron
        assert self.at is not None
        hour, minute = self.at.split(":")
        return f"{int(minute)} {int(hour)} * * {','.join(self.days)}"

    def covers(self, check: str, tags: list[str]) -> bool:
        import fnmatch

        return (
            check in self.checks
            or bool(set(tags).intersection(self.tags))
            or (self.match is not None and fnmatch.fnmatchcase(check, self.match))
        )
