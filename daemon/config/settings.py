"""The models of the config file: `[daemon]`, `[incidents]`, `[delivery]`, `[[notify]]`,
`[[checks]]` and the tables of `daemon.config.ai` and `daemon.config.sweeps`, under `Settings`.

Pure declarations and single-value validators; loading is `daemon.config.load`. Nothing here
resolves or prints a secret value (`secret:NAME` references stay references).
"""

from __future__ import annotations

import contextvars
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from daemon.config.ai import (
    BudgetSettings,
    DigestSettings,
    EscalationSettings,
    PriceConfig,
    ProviderConfig,
    RedactionSettings,
    RoutingSettings,
    TriageSettings,
)
from daemon.config.checks import AnyCheck
from daemon.config.cluster import ClusterSettings
from daemon.config.maintenance import MaintenanceWindow
from daemon.config.paths import default_state_dir
from daemon.config.store import StoreSettings
from daemon.config.sweeps import SweepConfig
from daemon.config.web import WebSettings
from daemon.models import EVENT_KINDS, Duration, Severity
from daemon.secrets import SECRET_PREFIX
from daemon.util.net import parse_listen
from jobs.base import CheckSpec

ENV_PREFIX = "WATCHKEEPER_"
ALL_NOTIFY_EVENTS: tuple[str, ...] = (*EVENT_KINDS, "report", "budget")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DaemonSettings(_Strict):
    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Where the SQLite state lives. Relative paths are relative to the config "
        "file. Default: $STATE_DIRECTORY, /var/lib/watchkeeper (root) or "
        "~/.local/state/watchkeeper.",
    )
    retention: Duration = Field(
        default=timedelta(days=14), description="How long check results are kept."
    )
    minute_rollups: Duration = Field(
        default=timedelta(days=35),
        description="How long per-check minute aggregates of the results (runs by status, "
        "latency p50/p95/p99/max) are kept: uptime and history read them once the raw "
        "results are pruned. The default covers a 30-day SLO window and any calendar month "
        "at minute resolution.",
    )
    hour_rollups: Duration = Field(
        default=timedelta(days=400),
        description="How long per-check hour aggregates are kept (the default: a year and a "
        "month, for year-over-year figures).",
    )
    max_concurrency: int = Field(
        default=32, ge=1, le=1000, description="Checks running at the same time, at most."
    )
    jitter: Duration = Field(
        default=timedelta(seconds=5),
        description="Checks that share an interval start spread evenly over this long "
        "(capped at a tenth of the interval); cron checks get a random delay up to it. So "
        "checks do not fire in lockstep.",
    )
    cycle_window: Duration = Field(
        default=timedelta(seconds=1),
        description="Results arriving within this window are evaluated as one cycle: one "
        "incident per dependency group, at most one triage call.",
    )
    drain_timeout: Duration = Field(
        default=timedelta(seconds=20),
        description="On SIGTERM, how long running checks may finish before being cancelled.",
    )
    stall_after: Duration | None = Field(
        default=None,
        description="Unhealthy (and the systemd watchdog withheld) when no cycle has been "
        "committed for this long. Default: three times the shortest check interval plus its "
        "timeout, at least 60s.",
    )
    health_listen: str | None = Field(
        default=None,
        description="host:port for a small HTTP endpoint serving GET /healthz (200 while the "
        "scheduler is healthy) — for load balancers, Kubernetes probes and self-checks.",
    )
    heartbeat_url: str | None = Field(
        default=None,
        description="Called (GET) after committed cycles, at most once per heartbeat_every: a "
        "healthchecks.io or Uptime Kuma push URL, or another watchkeeper's /ping/<token>. "
        "When cycles stop committing the calls stop, and that monitor pages. It carries a "
        "token: write it as secret:NAME; it is masked in every log line.",
    )
    heartbeat_fail_url: str | None = Field(
        default=None,
        description="Called (POST, the reason as plain text) once each time the daemon turns "
        "unhealthy (the /healthz reasons), so the outside monitor pages at once instead of "
        "after its grace period: e.g. the healthchecks.io URL + '/fail', or an Uptime Kuma "
        "push URL with '?status=down'. May be secret:NAME.",
    )
    heartbeat_every: Duration = Field(
        default=timedelta(seconds=60),
        description="At most one heartbeat call per this long, however often cycles commit.",
    )
    heartbeat_timeout: Duration = Field(
        default=timedelta(seconds=5),
        description="Time limit of one heartbeat call; a slow endpoint never delays checks.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: JSON when stdout is not a terminal (journald)."
    )

    @field_validator("heartbeat_url", "heartbeat_fail_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        problem = heartbeat_url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value.strip()

    @field_validator("heartbeat_every")
    @classmethod
    def _every(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 1:
            raise ValueError("heartbeat_every must be at least 1s")
        return value

    @field_validator("heartbeat_timeout")
    @classmethod
    def _heartbeat_timeout(cls, value: timedelta) -> timedelta:
        if not 0 < value.total_seconds() <= 60:
            raise ValueError("heartbeat_timeout must be more than 0s and at most 60s")
        return value

    @field_validator("health_listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parse_listen(value)  # ValueError: not host:port
        return value


def heartbeat_url_problem(value: str) -> str | None:
    """Why `value` cannot be a heartbeat URL, or None; `secret:NAME` is checked when used.
    Never quotes the URL: its path or query holds the monitor's token."""
    if value.startswith(SECRET_PREFIX):
        return None if value.removeprefix(SECRET_PREFIX).strip() else "write secret:NAME"
    try:
        parts = urlsplit(value.strip())
        _ = parts.port  # ValueError on a port that is not a number in range
    except ValueError:
        return "not a valid URL; write http(s)://host[:port]/path or secret:NAME"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host, or secret:NAME"
    return None


class IncidentSettings(_Strict):
    reminder_interval: Duration | None = Field(
        default=None, description="Re-notify open incidents this often. Default: off."
    )
    flap_window: Duration = Field(
        default=timedelta(minutes=30), description="Window in which state changes are counted."
    )
    flap_threshold: int = Field(
        default=4,
        ge=1,
        description="More state changes than this inside flap_window = flapping: one notice, "
        "then quiet until stable for a whole window.",
    )
    notify_acknowledged: bool = Field(
        default=True,
        description="Send a short 'acknowledged by …' notice when someone runs `watchkeeper "
        "ack` (targets may also leave 'acknowledged' out of their events).",
    )


class BaselineSettings(_Strict):
    """Soft anomalies from history: a passing check far off its usual figures is degraded."""

    enabled: bool = True
    window: Duration = Field(default=timedelta(days=7), description="History considered.")
    min_samples: int = Field(default=30, ge=5, description="History needed before judging.")
    min_ratio: float = Field(default=3.0, ge=1.0, description="How many times the median.")
    z_threshold: float = Field(default=6.0, gt=0, description="Robust z-score (median/MAD).")
    min_delta_ms: float = Field(
        default=50.0, ge=0, description="Latency rises smaller than this are never anomalies."
    )


class DeliverySettings(_Strict):
    timeout: Duration = Field(
        default=timedelta(seconds=30), description="Time limit for one delivery attempt."
    )
    retry_initial: Duration = Field(
        default=timedelta(seconds=15), description="First retry delay; doubles each attempt."
    )
    retry_max: Duration = Field(default=timedelta(minutes=15), description="Longest retry delay.")
    max_age: Duration = Field(
        default=timedelta(hours=24),
        description="A message still undelivered after this long is marked failed and logged.",
    )


def webhook_url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook URL, or None. Never quotes it: it may hold a token."""
    import httpx

    url = url.strip()
    try:
        parts = urlsplit(url)
        _ = parts.port  # ValueError on a port that is not a number in range
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return "not a valid URL; write http(s)://host[:port]/path"
    if parts.scheme.lower() not in ("http", "https"):
        shown = repr(parts.scheme) if _SCHEME.match(parts.scheme) else "none"
        return (
            f"a webhook URL must start with http:// or https:// (scheme {shown}); for an "
            'apprise URL such as json:// leave out kind = "webhook"'
        )
    if not parts.hostname:
        return "a webhook URL needs a host, e.g. https://hooks.example.com/watchkeeper"
    return None


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{0,31}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "user-agent", "transfer-encoding", "connection"}
)


NotifyKind = Literal["apprise", "webhook", "slack", "teams"]
_SLACK_CHANNEL = re.compile(r"^[#@]?[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")

# What an apprise URL that apprise cannot parse is missing, for the services people most
# often get wrong (their URLs carry tokens in the path); never quotes the URL.
APPRISE_HINTS = {
    "slack": "slack:// needs three tokens: slack://TokenA/TokenB/TokenC — "
    'or use kind = "slack" with a webhook URL',
    "msteams": "msteams:// needs the tokens of an Office 365 connector URL, and those "
    'connectors are retired — use kind = "teams" with a Workflows webhook URL',
}


def apprise_url_problem(url: str) -> str:
    """Why apprise refused `url`, as helpfully as its scheme allows. Never quotes it."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    hint = APPRISE_HINTS.get(scheme.lower())
    if hint is not None:
        return hint
    shown = repr(scheme) if _SCHEME.match(scheme) else "(none)"
    webhook = (
        'for a JSON POST to this address set kind = "webhook", or '
        if scheme.lower() in ("http", "https")
        else ""
    )
    return (
        f"apprise cannot use this URL (scheme {shown}); {webhook}see "
        "https://github.com/caronc/apprise/wiki for the URL of each service"
    )


def https_url_problem(url: str, what: str) -> str | None:
    """Why `url` cannot be `what`, which must be an https:// URL, or None. Never quotes it."""
    import httpx

    url = url.strip()
    try:
        parts = urlsplit(url)
        _ = parts.port  # ValueError on a port that is not a number in range
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return f"{what} is not a valid URL; write https://host/path"
    if parts.scheme.lower() != "https":
        return f"{what} must start with https://"
    if not parts.hostname:
        return f"{what} needs a host"
    return None


class NotifyTarget(_Strict):
    name: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Unique name, used by `notify test NAME` and in logs.",
    )
    kind: NotifyKind = Field(
        default="apprise",
        description="apprise: `url` is an apprise URL. webhook: a JSON POST of watchkeeper's "
        "documented payload to `url` (n8n, Zapier, your own receiver), optionally signed. "
        "slack: a Block Kit message to a Slack incoming-webhook `url`, or with a bot `token` "
        "to `channel`. teams: an Adaptive Card to a Microsoft Teams Workflows webhook `url`.",
    )
    url: str | None = Field(
        default=None,
        min_length=1,
        description="apprise: any apprise URL (slack://…, mailto://…, json://…); webhook: an "
        "http(s):// URL; slack: the incoming-webhook URL (https://hooks.slack.com/services/…); "
        "teams: the https:// URL of a Teams Workflows webhook. Or secret:NAME to read it from "
        "a systemd credential, the keyring or the environment. Required, except for a slack "
        "target with `token`.",
    )
    token: str | None = Field(
        default=None,
        description="slack only, instead of `url`: secret:NAME of a bot token (xoxb-…) with "
        "the chat:write scope; messages then go through chat.postMessage to `channel`. "
        "Never the token itself.",
    )
    channel: str | None = Field(
        default=None,
        description="slack with `token`: where to post, #name or a channel ID (C0123ABC); "
        "invite the bot to it first.",
    )
    api_url: str | None = Field(
        default=None,
        description="slack with `token`: the Slack Web API base URL. Default "
        "https://slack.com/api (GovSlack: https://slack-gov.com/api).",
    )
    signing_secret: str | None = Field(
        default=None,
        description="webhook only: secret:NAME of the HMAC-SHA256 key; each POST then carries "
        "X-Watchkeeper-Timestamp and X-Watchkeeper-Signature. Never the key itself.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="webhook only: extra request headers (e.g. Authorization); a value may be "
        "secret:NAME.",
    )
    min_severity: Severity = Field(
        default=Severity.INFO, description="Only incidents at or above this severity."
    )
    tags: list[str] = Field(
        default_factory=list, description="Only checks with at least one of these tags."
    )
    events: list[
        Literal[
            "opened",
            "changed",
            "reminder",
            "resolved",
            "flapping",
            "investigation",
            "acknowledged",
            "released",
            "report",
            "budget",
        ]
    ] = Field(
        default_factory=lambda: list(ALL_NOTIFY_EVENTS),  # type: ignore[arg-type]
        description="Which events to send.",
    )

    @field_validator("signing_secret", "token")
    @classmethod
    def _secret_reference(cls, value: str | None) -> str | None:
        # never echo the value: a literal here is most likely the key itself
        if value is not None and not (
            value.startswith(SECRET_PREFIX) and value.removeprefix(SECRET_PREFIX).strip()
        ):
            raise ValueError(
                "must be secret:NAME, never the key itself; store the key with `keyring set "
                "watchkeeper NAME`, LoadCredential=NAME:/path in the unit, or the environment "
                "variable NAME"
            )
        return value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid HTTP header name")
            lowered = name.lower()
            if lowered in _RESERVED_HEADERS or lowered.startswith("x-watchkeeper-"):
                raise ValueError(f"header {name!r} is set by watchkeeper; remove it")
            if any(c in text for c in "\r\n\0"):
                raise ValueError(f"the value of header {name!r} contains a line break or NUL")
        return value


NOTIFY_KEYS: dict[str, tuple[NotifyKind, ...]] = {
    "signing_secret": ("webhook",),
    "headers": ("webhook",),
    "token": ("slack",),
    "channel": ("slack",),
    "api_url": ("slack",),
}


def notify_target_problems(target: NotifyTarget) -> list[tuple[str, str]]:
    """(key, what is wrong) for each combination of keys `target.kind` does not take: a URL
    where it needs one, exactly one of url/token for Slack, keys of another kind. Checks no
    URL's content (secret:NAME is resolved only at delivery)."""
    problems: list[tuple[str, str]] = []
    for key, kinds in NOTIFY_KEYS.items():
        if getattr(target, key) and target.kind not in kinds:
            (kind,) = kinds
            problems.append(
                (key, f'only {kind} targets take this key; set kind = "{kind}" or remove it')
            )
    if target.kind == "slack":
        if target.url is not None and target.token is not None:
            problems.append(("token", "set url (an incoming webhook) or token, not both"))
        elif target.url is None and target.token is None:
            problems.append(
                ("url", "a slack target needs url (an incoming webhook) or token (a bot token)")
            )
        elif target.token is not None and not target.channel:
            problems.append(("channel", 'a bot token needs a channel to post to, e.g. "#ops"'))
        elif target.url is not None and (target.channel or target.api_url):
            key = "channel" if target.channel else "api_url"
            problems.append(
                (
                    key,
                    "an incoming webhook posts where it was created; remove this key, or "
                    "post with a bot token instead of url",
                )
            )
        if target.channel and not _SLACK_CHANNEL.match(target.channel):
            problems.append(("channel", "write #name or a channel ID such as C0123ABC"))
        if target.api_url:
            problem = https_url_problem(target.api_url, "api_url")
            if problem is not None:
                problems.append(("api_url", problem))
    elif target.url is None:
        problems.append(("url", f"a {target.kind} target needs a url"))
    return problems


toml_data: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "toml", default=None
)


class _TomlSource(PydanticBaseSettingsSource):
    """The parsed TOML file, lowest priority (environment variables win)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # pragma: no cover - __call__ is used instead

    def __call__(self) -> dict[str, Any]:
        return toml_data.get() or {}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    incidents: IncidentSettings = Field(default_factory=IncidentSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    notify: list[NotifyTarget] = Field(default_factory=list)
    checks: list[AnyCheck] = Field(default_factory=list)
    maintenance: list[MaintenanceWindow] = Field(
        default_factory=list,
        description="Planned windows in which matching checks do not page.",
    )
    providers: dict[str, ProviderConfig] = Field(
        default_factory=dict,
        description="Provider settings by name: the built-ins (ollama, anthropic, openai, "
        'google, cohere) or your own (api = "openai" for LM Studio, vLLM, llama.cpp).',
    )
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    prices: dict[str, PriceConfig] = Field(
        default_factory=dict,
        description='Price overrides by "provider/model", in USD per million tokens.',
    )
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    redaction: RedactionSettings = Field(default_factory=RedactionSettings)
    baselines: BaselineSettings = Field(default_factory=BaselineSettings)
    triage: TriageSettings = Field(default_factory=TriageSettings)
    escalation: EscalationSettings = Field(default_factory=EscalationSettings)
    digest: DigestSettings = Field(default_factory=DigestSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    sweeps: list[SweepConfig] = Field(
        default_factory=list,
        description="Nightly security and cost sweeps over AWS and Kubernetes ([[sweeps]]).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    def check(self, name: str) -> CheckSpec:
        for spec in self.checks:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def enabled_checks(self) -> list[CheckSpec]:
        return [c for c in self.checks if c.enabled]
