"""The contract every check type implements: a pydantic config model with an async `run`.

A check gets everything it needs from the `CheckContext`; it never reads globals, and it turns
every expected failure into a `CheckResult` with exact evidence — only bugs raise.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.models import CheckResult, ContextBlock, Duration, Ping, Severity, Status
from daemon.util.net import masked_url
from daemon.util.time import utcnow

if TYPE_CHECKING:
    import httpx


def http_url(value: str) -> httpx.URL:
    """A config URL that must be http(s) with a host and a real port, and no credentials;
    ValueError says what is wrong without ever quoting the URL whole (it may hold a token)."""
    import httpx

    shown = masked_url(value)
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"invalid url {shown}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"url must be http:// or https:// with a host, got {shown}")
    if url.port is not None and not 0 < url.port < 65536:
        raise ValueError(f"url port {url.port} is out of range (1-65535) in {shown}")
    if url.userinfo:
        raise ValueError(
            f"url must not hold credentials (user:password@ in {shown}): use basic_auth with "
            "secret:NAME, or a secret:NAME header"
        )
    return url


class BasicAuth(BaseModel):
    """HTTP basic auth; write the password (and, if you like, the user) as secret:NAME."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, description="User name; may be a 'secret:NAME'.")
    password: str = Field(description="Password; write it as a 'secret:NAME' reference.")


@dataclass
class CheckContext:
    """What a running check may use. Built once by the service; tests build their own."""

    http: httpx.AsyncClient
    """Shared client for checks that do not need their own TLS or redirect settings."""
    now: Callable[[], datetime] = utcnow
    resolve_secret: Callable[[str], str] = field(default=lambda ref: ref)
    """Turns a `secret:NAME` reference into its value (identity for plain strings)."""
    clients: dict[str, Any] = field(default_factory=dict)
    """Heavy API clients (Kubernetes, AWS) built once per configuration and reused across
    runs; each check module owns its keys (e.g. "kubernetes:<kubeconfig>:<context>")."""
    pings: Callable[[str], Awaitable[list[Ping]]] | None = None
    """The newest pings of a `heartbeat` check, newest first (from the state database)."""


_LOCATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class CheckSpec(BaseModel):
    """Fields shared by every `[[checks]]` entry. Subclasses add `type: Literal[...]` and
    their own options, and implement `run`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    type: str
    interval: Duration | None = Field(
        default=None, description="How often to run, e.g. '30s', '5m'. Default 60s unless cron."
    )
    cron: str | None = Field(default=None, description="Crontab schedule instead of interval.")
    timeout: Duration = Field(
        default=timedelta(seconds=10), description="Hard limit for one run of this check."
    )
    severity: Severity = Severity.HIGH
    failure_threshold: int = Field(default=2, ge=1, le=100)
    success_threshold: int = Field(default=1, ge=1, le=100)
    depends_on: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    enabled: bool = True
    slo: float | None = Field(
        default=None,
        gt=0,
        lt=100,
        description="Availability objective in percent, e.g. 99.9: `watchkeeper uptime` and "
        "the daily digest then show the error budget left (the downtime it allows in the "
        "measured time, minus what was spent) and its burn rate over the last 1h and 24h.",
    )

    locations: list[str] = Field(
        default_factory=list,
        max_length=16,
        description='Vantage points ([cluster] mode = "sharded"): run once from a node in each '
        'of these locations, e.g. ["eu-1", "us-1", "ap-1"], and fail only when `quorum` of '
        "them agree.",
    )
    quorum: int | None = Field(
        default=None,
        ge=1,
        description="How many locations' latest results must agree the check is failing "
        "before it counts as failing (default: a majority of `locations`).",
    )

    @model_validator(mode="after")
    def _vantage(self) -> CheckSpec:
        """Locations are names (unique); quorum needs locations and is at most their count."""
        for where in self.locations:
            if not _LOCATION.match(where):
                raise ValueError(
                    f"locations: {where[:64]!r} is not a location name (letters, digits, "
                    "'.', '_', '-'; at most 63)"
                )
        if len(set(self.locations)) != len(self.locations):
            raise ValueError("locations: each location may be listed once")
        if self.quorum is not None and not self.locations:
            raise ValueError("quorum needs locations (the vantage points that vote)")
        if self.quorum is not None and self.quorum > len(self.locations):
            raise ValueError(
                f"quorum {self.quorum} is more than the {len(self.locations)} locations listed"
            )
        return self

    @property
    def needed(self) -> int:
        """The quorum in force: the configured one, else a majority of the locations."""
        return self.quorum or len(self.locations) // 2 + 1

    @field_validator("interval")
    @classmethod
    def _interval_positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value.total_seconds() < 1:
            raise ValueError("interval must be at least 1s")
        return value

    @field_validator("timeout")
    @classmethod
    def _timeout_positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("timeout must be greater than 0")
        return value

    async def run(self, ctx: CheckContext) -> list[CheckResult]:
        raise NotImplementedError

    async def rca_context(
        self, ctx: CheckContext, results: list[CheckResult]
    ) -> list[ContextBlock]:
        """Extra evidence for root-cause analysis of a failure of this check: recent events,
        a bounded log tail. Called only when an incident is investigated. Default: none."""
        return []

    def result(
        self,
        status: Status,
        evidence: str,
        *,
        started_at: datetime,
        latency_ms: float | None = None,
        subject: str | None = None,
        values: dict[str, float | int | str | bool | None] | None = None,
    ) -> CheckResult:
        """Build a result for this check, labelled with its tags."""
        return CheckResult(
            check=self.name,
            status=status,
            evidence=evidence,
            started_at=started_at,
            latency_ms=None if latency_ms is None else round(latency_ms, 1),
            subject=subject,
            values=values or {},
            labels={"type": self.type, **{f"tag:{t}": "1" for t in self.tags}},
        )
