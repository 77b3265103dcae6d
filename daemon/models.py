"""The data that crosses module boundaries: severities, check results, incidents, events.

Plain pydantic models with no behaviour beyond ordering and (de)serialisation; nothing here
does I/O, and nothing here may hold a secret value.
"""

from __future__ import annotations

import enum
import fnmatch
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer


class Severity(enum.StrEnum):
    """`critical > high > medium > low > info`, everywhere."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank

    def lower(self) -> Severity:
        """One step down, bottoming out at `info`."""
        order = list(Severity)  # critical first
        return order[min(order.index(self) + 1, len(order) - 1)]


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}

Status = Literal["ok", "degraded", "failing", "error"]
"""`ok`; `degraded` (up but slow or near a limit); `failing` (the target is wrong);
`error` (the check itself could not run: bad credentials, bad config at run time)."""

STATUS_RANK: dict[str, int] = {"ok": 0, "degraded": 1, "failing": 2, "error": 3}

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_MAX_SECONDS = 3650 * 86400.0
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> timedelta:
    """`"500ms"`, `"30s"`, `"5m"`, `"2h"`, `"1d"`, or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '30s', '5m' or '1h'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        if value > _MAX_SECONDS or value != value:  # NaN never equals itself
            raise ValueError(f"{value!r} seconds is not a usable duration (at most 3650 days)")
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            if seconds > _MAX_SECONDS:
                raise ValueError(f"{value!r} is too long: at most 3650 days")
            return timedelta(seconds=seconds)
    raise ValueError(
        f"{value!r} is not a duration: use a number with a unit, "
        "e.g. '500ms', '30s', '5m', '1h', '1d'"
    )


def format_duration(value: timedelta) -> str:
    """Compact human form: `45s`, `3m`, `2h 5m`, `1d 3h`."""
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def _serialize_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    if seconds and seconds < 1:
        return f"{round(seconds * 1000)}ms"
    return f"{seconds:g}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(_serialize_duration, return_type=str, when_used="json"),
]
"""A config duration: accepts `"30s"`, `"5m"`, seconds as a number; serialises as `"30s"`."""


NotifyType = Literal["failure", "warning", "success", "info"]
"""How a message looks in the receiver (apprise's notify types)."""


@dataclass(frozen=True)
class Message:
    """What people read: a title and a Markdown body, one fact per line."""

    title: str
    body: str
    notify_type: NotifyType


@dataclass(frozen=True)
class ModelRef:
    """`provider/model`, split at the first `/` (`ollama/gemma4:27b`, `openai/gpt-5.4`)."""

    provider: str
    model: str

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        provider, sep, model = text.strip().partition("/")
        if not sep or not provider or not model or " " in text.strip():
            raise ValueError(
                f"{text!r} is not a model reference; write provider/model, "
                "e.g. 'ollama/gemma4:27b' or 'anthropic/claude-opus-4-6'"
            )
        return cls(provider, model)

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


class CheckResult(BaseModel):
    """One run of one check (a check may yield several, one per subject it looked at)."""

    model_config = ConfigDict(extra="forbid")

    check: str
    status: Status
    evidence: str
    """An exact sentence a person can act on: what was asked, what came back, what was expected."""
    started_at: datetime
    latency_ms: float | None = None
    subject: str | None = None
    """What was looked at when it is not the whole check (a pod, a series, an address)."""
    values: dict[str, float | int | str | bool | None] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    location: str | None = None
    """The vantage point that ran it ([cluster] location), when the node has one."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class ContextBlock:
    """Extra evidence a check type supplies for root-cause analysis (events, a log tail).

    Untrusted infrastructure text: it is redacted before it leaves for a cloud model and is
    never treated as instructions. `relevance` orders what is dropped first under a budget.
    """

    title: str
    text: str
    relevance: int = 50


def worst_status(results: list[CheckResult]) -> Status:
    if not results:
        return "error"
    worst = max(results, key=lambda r: STATUS_RANK[r.status])
    return worst.status


def fingerprint(check: str) -> str:
    """Stable identity of the incident a check's failure belongs to, across restarts."""
    return hashlib.sha256(f"check:{check}".encode()).hexdigest()[:16]


EventKind = Literal[
    "opened",
    "changed",
    "reminder",
    "resolved",
    "flapping",
    "investigation",
    "acknowledged",
    "released",
    "tool_call",
]
EVENT_KINDS: tuple[EventKind, ...] = (
    "opened",
    "changed",
    "reminder",
    "resolved",
    "flapping",
    "investigation",
    "acknowledged",
    "released",
)
"""The events a notification target can ask for. `acknowledged`: someone said "I'm on it"
(`watchkeeper ack`). `released`: a silence or maintenance window that held an incident's
notifications ended while it is still open. (`tool_call`, one read-only look-up of the
investigator, is on the incident's timeline only: never notified, so not listed here.)"""


class CheckState(BaseModel):
    """What the incident engine remembers about one check between cycles."""

    consecutive_failures: int = 0
    consecutive_successes: int = 0
    failing: bool = False
    """The rule-level state: set once `failure_threshold` non-ok results arrive in a row,
    cleared after `success_threshold` ok results."""
    last_status: Status | None = None
    hard_failure_in_streak: bool = False
    """A `failing` or `error` result was seen since the last ok one (degraded-only streaks
    open incidents one severity lower)."""
    last_result_at: datetime | None = None
    last_evidence: str = ""
    changes: list[datetime] = Field(default_factory=list)
    """When `failing` flipped, kept for the flapping window."""
    flapping: bool = False
    incident_id: int | None = None
    """The open incident this check belongs to: its own, or its failing dependency's."""


class Incident(BaseModel):
    id: int
    fingerprint: str
    check: str
    """The root check: the deepest failing dependency of the group."""
    severity: Severity
    status: Literal["open", "resolved"] = "open"
    opened_at: datetime
    resolved_at: datetime | None = None
    last_notified_at: datetime | None = None
    last_reminder_at: datetime | None = None
    evidence: str = ""
    """The latest evidence of the root check."""
    first_evidence: str = ""
    blast_radius: list[str] = Field(default_factory=list)
    """Checks that depend (transitively) on the root check and were failing with it."""
    flapping: bool = False
    severity_floor: Severity | None = None
    """Set when triage raised the severity: the rules never take it back below this."""
    last_status: Status | None = None
    """The root check's latest status (degraded, failing, error, ok)."""
    held: str | None = None
    """Why its notifications are being held (a silence, a maintenance window): set when an
    event was held, cleared by the `released` event once the quiet ends."""

    @property
    def duration(self) -> timedelta | None:
        if self.resolved_at is None:
            return None
        return self.resolved_at - self.opened_at


class IncidentEvent(BaseModel):
    """Something about an incident that people should hear about once."""

    incident_id: int
    kind: EventKind
    at: datetime
    check: str
    severity: Severity
    evidence: str
    blast_radius: list[str] = Field(default_factory=list)
    previous_severity: Severity | None = None
    status: Status | None = None
    """The root check's status when the event happened."""
    opened_at: datetime
    duration_s: float | None = None
    """Set on `resolved`: how long the incident was open."""
    detail: str = ""
    """One extra human line: why it changed, that it is flapping, and so on."""
    acknowledged_by: str | None = None
    """Who acknowledged the incident (`watchkeeper ack`), when someone has."""
    held: str | None = None
    """Why this event was recorded but not notified (a silence or maintenance window)."""
    tool: TrailStep | None = None
    """On a `tool_call` event: the look-up (tool, arguments, what it showed, its turn's cost)."""


class InvestigationCall(BaseModel):
    """One model request of an investigation, as the ledger recorded it."""

    model: str
    """provider/model"""
    host: str
    local: bool
    outcome: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal | None = None
    """None when the price is unknown; local calls are a real 0."""


class TrailStep(BaseModel):
    """One look-up the investigator made: which read-only tool, with what, and what it showed
    (redacted and size-capped). Tool output is observed text, shown as data, never obeyed."""

    step: int
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    ok: bool
    """False: refused (not on the allow-list, bad arguments) or the look-up failed."""
    summary: str
    """The first line of what it showed (or why it was refused)."""
    output_bytes: int = 0
    at: datetime | None = None
    """When it ran (None on a step stored before this was kept)."""
    model: str | None = None
    """The model whose turn asked for it (provider/model)."""
    turn_cost_usd: Decimal | None = None
    """What that model turn cost (shared by the turn's calls); None: unknown or not kept."""


class Investigation(BaseModel):
    """One root-cause analysis of an incident (or the record that it was skipped, and why)."""

    id: int | None = None
    incident_id: int
    at: datetime
    reason: str
    """Why it was investigated: "severity high ≥ high", "blast radius grew: …", "on demand"."""
    severity: Severity
    blast_radius: list[str] = Field(default_factory=list)
    model: str | None = None
    rca: dict[str, Any] | None = None
    """The validated RcaOutput, when a model answered."""
    skipped: str | None = None
    """Why no model answered (no key, budget reached, timeout…)."""
    dropped: list[str] = Field(default_factory=list)
    calls: list[InvestigationCall] = Field(default_factory=list)
    """The model requests it made (skips left out): what it used and cost, so reading it
    again never needs a second, paid, investigation. Empty in records before 2026-12."""
    trail: list[TrailStep] = Field(default_factory=list)
    """The read-only look-ups the model made before answering, in order."""
    question: str | None = None
    """A follow-up (`investigate ID --ask`): the operator's question; `rca` is the answer."""
    limit: str | None = None
    """The limit that ended the look-ups early (steps, dollars, wall time): the answer is
    then labelled partial, the best the model could say with what it had."""

    @property
    def cost(self) -> Decimal | None:
        """Known total of `calls`; None when any price is unknown."""
        total = Decimal(0)
        for call in self.calls:
            if call.cost_usd is None:
                return None
            total += call.cost_usd
        return total


SweepKind = Literal["security", "cost"]


class Finding(BaseModel):
    """One sweep result: a security or cost issue on one resource."""

    model_config = ConfigDict(extra="forbid")

    rule: str
    """The rule id, e.g. `aws.sg.open_ssh`, `k8s.pod.privileged`, `aws.ebs.unattached`."""
    kind: SweepKind
    severity: Severity
    title: str
    resource: str
    """ARN, or `namespace/kind/name` (cluster-scoped: `kind/name`), or an account-level id."""
    location: str
    """Region (`eu-west-1`), or Kubernetes `context/namespace`."""
    evidence: str
    remediation: str
    remediation_cli: str | None = None
    est_monthly_savings_usd: float | None = None
    """Cost findings: what fixing it saves per month, in USD (estimates say where from)."""
    account: str | None = None

    @property
    def id(self) -> str:
        """Stable across sweeps: rule + resource."""
        return f"{self.rule}:{self.resource}"


class EngineState(BaseModel):
    """Everything the incident engine needs to carry from one cycle to the next."""

    checks: dict[str, CheckState] = Field(default_factory=dict)
    incidents: dict[int, Incident] = Field(default_factory=dict)
    """Open incidents, by id. Resolved ones live only in the store."""
    next_incident_id: int = 1
    results_cursor: int | None = None
    """Sharded mode: the id of the last stored check result the leader evaluated (None: not
    sharded yet). Committed with the state, so a new leader resumes exactly there."""


SilenceMatcher = Literal["check", "tag", "match"]


@dataclass(frozen=True)
class Silence:
    """`watchkeeper silence add`: hold the notifications of matching checks until `ends_at`.
    Checks keep running and incidents keep opening and resolving; only paging waits."""

    id: int
    matcher: SilenceMatcher
    """`check`: a check name; `tag`: a tag; `match`: a shell-style glob over check names."""
    pattern: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime
    expired_at: datetime | None = None
    """Set by `silence expire`: it ended early, at that moment."""

    @property
    def until(self) -> datetime:
        return self.ends_at if self.expired_at is None else min(self.ends_at, self.expired_at)

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.until

    def matches(self, check: str, tags: Iterable[str]) -> bool:
        if self.matcher == "check":
            return check == self.pattern
        if self.matcher == "tag":
            return self.pattern in tags
        return fnmatch.fnmatchcase(check, self.pattern)

    @property
    def label(self) -> str:
        """`silence #3 (--tag db: schema migration)`."""
        return f"silence #{self.id} (--{self.matcher} {self.pattern}: {self.reason})"


@dataclass(frozen=True)
class Acknowledgement:
    """`watchkeeper ack`: someone is on it. Reminders stop; changes and resolution still page."""

    incident_id: int
    by: str
    at: datetime
    note: str = ""


PingKind = Literal["start", "success", "fail"]


@dataclass(frozen=True)
class Ping:
    """A job checking in on a `heartbeat` check: `GET/POST /ping/<token>[/start|/fail|/<code>]`
    or `watchkeeper ping NAME`."""

    check: str
    at: datetime
    kind: PingKind
    exit_code: int | None = None
    message: str = ""
    """The first line of what the job sent (at most 200 characters), untrusted text."""
    source: str = ""
    """Where it came from: `http 10.0.0.7` or `cli alice`."""
