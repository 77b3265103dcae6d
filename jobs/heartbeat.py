"""The `heartbeat` check: a job checks in, and silence is the failure.

Cron jobs, backups and batch work ping `GET/POST /ping/<token>` on the daemon's listener (with
`/start`, `/fail` or `/<exit code>` appended when they want), or run `watchkeeper ping NAME` on
this machine. At each run the check reads the newest pings and judges them; it sends nothing
anywhere. Until the first ping arrives the check waits (ok, saying so): a new job is not late.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import Field, field_validator

from daemon.models import CheckResult, Duration, Ping, Status, format_duration
from daemon.util.text import clip
from jobs.base import CheckContext, CheckSpec


class HeartbeatCheck(CheckSpec):
    """A job must ping at least every `period` (plus `grace`)."""

    type: Literal["heartbeat"]
    period: Duration = Field(
        description="How often the job runs and pings, e.g. '1d' for a nightly backup."
    )
    grace: Duration = Field(
        default=timedelta(minutes=5),
        description="How late a ping may be, and how long a started run may take, before it "
        "counts as missed.",
    )
    token: str | None = Field(
        default=None,
        description="secret:NAME of the ping token (the URL is /ping/<token>). Without it, "
        "`watchkeeper heartbeat token NAME` generates one and shows it once.",
    )
    failure_threshold: int = Field(
        default=1, ge=1, le=100, description="A missed ping opens an incident at once."
    )

    @field_validator("token")
    @classmethod
    def _secret_reference(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("secret:") and value[7:].strip()):
            raise ValueError(
                "must be secret:NAME (a ping token is a credential), or leave it out and run "
                "`watchkeeper heartbeat token NAME`"
            )
        return value

    async def run(self, ctx: CheckContext) -> list[CheckResult]:
        now = ctx.now()
        if ctx.pings is None:
            return [
                self.result(
                    "error", "heartbeat check run without the state database", started_at=now
                )
            ]
        status, evidence = judge(await ctx.pings(self.name), now, self.period, self.grace)
        return [self.result(status, evidence, started_at=now)]


def judge(
    pings: list[Ping], now: datetime, period: timedelta, grace: timedelta
) -> tuple[Status, str]:
    """The verdict on the newest pings (newest first). Pure."""
    every = f"expected every {format_duration(period)}, grace {format_duration(grace)}"
    if not pings:
        return "ok", f"no ping yet: waiting for the first one ({every})"
    latest = pings[0]
    said = f": {clip(latest.message, 200)}" if latest.message else ""
    ago = format_duration(now - latest.at)
    if latest.kind == "fail" or (latest.exit_code not in (None, 0)):
        code = f" (exit {latest.exit_code})" if latest.exit_code is not None else ""
        return "failing", f"the job reported a failure {ago} ago{code}{said}"
    if latest.kind == "start":
        if now - latest.at > grace:
            return "failing", f"the job started {ago} ago and never finished ({every}){said}"
        return "ok", f"running since {ago} ago"
    if now - latest.at > period + grace:
        return "failing", f"last ping {ago} ago; {every}{said}"
    return "ok", f"last ping {ago} ago ({every}){said}"
