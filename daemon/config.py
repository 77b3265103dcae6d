"""Load and validate configuration: one TOML file plus `WATCHKEEPER_*` environment overrides.

Every problem comes back as `file: dotted.key: what is wrong, what to do`; nothing here
resolves or prints secret values (`secret:NAME` references stay references).
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import sys
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from daemon.aiconfig import (
    BudgetSettings,
    DigestSettings,
    EscalationSettings,
    PriceConfig,
    ProviderConfig,
    RedactionSettings,
    RoutingSettings,
    TriageSettings,
    ai_problems,
)
from daemon.errors import ConfigError, ConfigProblem
from daemon.models import EVENT_KINDS, Duration, EventKind, Severity
from daemon.secrets import SECRET_PREFIX
from daemon.sweepconfig import SweepConfig, sweep_problems
from jobs import all_check_classes
from jobs.base import CheckSpec

ENV_PREFIX = "WATCHKEEPER_"
NotifyEvent = EventKind | Literal["report", "budget", "test"]
ALL_NOTIFY_EVENTS: tuple[str, ...] = (*EVENT_KINDS, "report", "budget")


def default_state_dir() -> Path:
    """`$STATE_DIRECTORY` under systemd, `/var/lib/watchkeeper` for root, else XDG state."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/watchkeeper")
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "watchkeeper"


def default_config_paths() -> list[Path]:
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path(xdg) / "watchkeeper" / "config.toml", Path("/etc/watchkeeper/config.toml")]


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
    max_concurrency: int = Field(
        default=32, ge=1, le=1000, description="Checks running at the same time, at most."
    )
    jitter: Duration = Field(
        default=timedelta(seconds=5),
        description="Random delay added to each scheduled run, at most this long (capped at "
        "a tenth of the check's interval), so checks do not fire in lockstep.",
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
    health_listen: str | None = Field(
        default=None,
        description="host:port for a small HTTP endpoint serving GET /healthz (200 while the "
        "scheduler is healthy) — for load balancers, Kubernetes probes and self-checks.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: JSON when stdout is not a terminal (journald)."
    )

    @field_validator("health_listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r} is not host:port, e.g. '127.0.0.1:8787'")
        return value


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

    def policy(self) -> BaselinePolicy:
        from daemon.baselines import BaselinePolicy

        return BaselinePolicy(
            window=self.window,
            min_samples=self.min_samples,
            min_ratio=self.min_ratio,
            z_threshold=self.z_threshold,
            min_delta_ms=self.min_delta_ms,
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


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "user-agent", "transfer-encoding", "connection"}
)


class NotifyTarget(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: Literal["apprise", "webhook"] = Field(
        default="apprise",
        description="apprise: `url` is an apprise URL. webhook: a JSON POST of watchkeeper's "
        "documented payload to `url` (n8n, Zapier, your own receiver), optionally signed.",
    )
    url: str = Field(
        min_length=1,
        description="apprise: any apprise URL (slack://…, mailto://…, json://…); webhook: an "
        "http(s):// URL. Or secret:NAME to read it from a systemd credential, the keyring or "
        "the environment.",
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
            "report",
            "budget",
        ]
    ] = Field(
        default_factory=lambda: list(ALL_NOTIFY_EVENTS),  # type: ignore[arg-type]
        description="Which events to send.",
    )

    @field_validator("signing_secret")
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


if TYPE_CHECKING:
    from daemon.baselines import BaselinePolicy

    AnyCheck = CheckSpec
else:
    AnyCheck = Annotated[
        Union[tuple(all_check_classes().values())],  # noqa: UP007 - built from the registry
        Field(discriminator="type"),
    ]

_toml_data: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "toml", default=None
)


class _TomlSource(PydanticBaseSettingsSource):
    """The parsed TOML file, lowest priority (environment variables win)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # pragma: no cover - __call__ is used instead

    def __call__(self) -> dict[str, Any]:
        return _toml_data.get() or {}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    incidents: IncidentSettings = Field(default_factory=IncidentSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    notify: list[NotifyTarget] = Field(default_factory=list)
    checks: list[AnyCheck] = Field(default_factory=list)
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


def find_config(explicit: str | os.PathLike[str] | None) -> Path:
    """`--config`, else `$WATCHKEEPER_CONFIG`, else the platform defaults."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(str(path), [ConfigProblem("", "file not found")])
        return path
    env = os.environ.get("WATCHKEEPER_CONFIG")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(
                str(path), [ConfigProblem("", "file not found (from $WATCHKEEPER_CONFIG)")]
            )
        return path
    for candidate in default_config_paths():
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(p) for p in default_config_paths())
    raise ConfigError(
        "watchkeeper",
        [
            ConfigProblem(
                "",
                f"no config file found (looked in {looked}); pass --config PATH or set "
                "WATCHKEEPER_CONFIG — config.example.toml is a working start",
            )
        ],
    )


def load_settings(path: Path) -> Settings:
    """Parse, validate and cross-check one config file. Raises ConfigError with every problem."""
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(source, [ConfigProblem("", f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [ConfigProblem("", "not UTF-8 text")]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [ConfigProblem("", f"invalid TOML: {exc}")]) from exc
    token = _toml_data.set(data)
    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(source, _problems_from_validation(exc, data)) from None
    finally:
        _toml_data.reset(token)
    state_dir = settings.daemon.state_dir.expanduser()
    if not state_dir.is_absolute():
        state_dir = (path.parent / state_dir).resolve()
    settings.daemon.state_dir = state_dir
    problems = cross_check(settings)
    if problems:
        raise ConfigError(source, problems)
    return settings


def _problems_from_validation(exc: ValidationError, data: dict[str, Any]) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for error in exc.errors(include_url=False):
        key = _dotted(error["loc"], data)
        problems.append(ConfigProblem(key, _explain(error)))
    return problems


def _dotted(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """`("checks", 0, "http", "url")` → `checks[api-health].url` (name when it has one)."""
    parts: list[str] = []
    node: Any = data
    index = 0
    while index < len(loc):
        item = loc[index]
        if isinstance(item, int) and isinstance(node, list):
            entry = node[item] if item < len(node) else None
            label = entry.get("name") if isinstance(entry, dict) else None
            shown = _key_text(label) if isinstance(label, str) and label else str(item)
            parts[-1:] = [f"{parts[-1] if parts else ''}[{shown}]"]
            node = entry
            # discriminated unions add the tag after the index: skip it
            if (
                isinstance(entry, dict)
                and index + 1 < len(loc)
                and loc[index + 1] == entry.get("type")
            ):
                index += 1
        else:
            parts.append(_key_text(str(item)))
            node = node.get(item) if isinstance(node, dict) else None
        index += 1
    return ".".join(parts)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_.:-]+$")


def _key_text(key: str) -> str:
    """A key as TOML would write it: bare when it can be, else quoted — so a key holding a
    line break or a colon can never break the one-problem-per-line format."""
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _explain(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return (
            "unknown key; remove it or check its spelling "
            "(`watchkeeper config schema` lists every key)"
        )
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        types = ", ".join(sorted(all_check_classes()))
        return f"unknown check type {error['ctx']['tag']!r}; use one of: {types}"
    if kind == "union_tag_not_found":
        return 'missing `type`; every check needs one, e.g. type = "http"'
    message = str(error["msg"]).removeprefix("Value error, ")
    return message


def cross_check(settings: Settings) -> list[ConfigProblem]:
    """Rules that span entries: unique names, dependencies, schedules, notification URLs."""
    problems: list[ConfigProblem] = []
    problems += _unique([c.name for c in settings.checks], "checks")
    problems += _unique([n.name for n in settings.notify], "notify")
    names = {c.name for c in settings.checks}
    for spec in settings.checks:
        for dep in spec.depends_on:
            if dep not in names:
                problems.append(
                    ConfigProblem(
                        f"checks[{spec.name}].depends_on",
                        f"{dep!r} is not a configured check; fix the name or add that check",
                    )
                )
            elif dep == spec.name:
                problems.append(
                    ConfigProblem(
                        f"checks[{spec.name}].depends_on", "a check cannot depend on itself"
                    )
                )
        problems += _schedule_problems(spec)
    problems += _cycle_problems(settings.checks)
    problems += _crontab_problem("digest.cron", settings.digest.cron)
    problems += _notify_problems(settings.notify)
    problems += ai_problems(settings.providers, settings.routing, settings.prices, settings.budget)
    problems += sweep_problems(settings.sweeps, {t.name: t.events for t in settings.notify})
    return problems


def _unique(names: list[str], table: str) -> list[ConfigProblem]:
    seen: set[str] = set()
    problems: list[ConfigProblem] = []
    for name in names:
        if name in seen:
            problems.append(
                ConfigProblem(f"{table}[{name}].name", "duplicate name; names must be unique")
            )
        seen.add(name)
    return problems


def _schedule_problems(spec: CheckSpec) -> list[ConfigProblem]:
    key = f"checks[{spec.name}]"
    if spec.interval is not None and spec.cron is not None:
        return [ConfigProblem(f"{key}.cron", "set either interval or cron, not both")]
    if spec.cron is not None:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(spec.cron)
        except ValueError as exc:
            return [
                ConfigProblem(
                    f"{key}.cron",
                    f"{spec.cron!r} is not a crontab expression ({exc}); "
                    "use five fields, e.g. '*/5 * * * *'",
                )
            ]
    return []


def _crontab_problem(key: str, expression: str) -> list[ConfigProblem]:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expression)
    except ValueError as exc:
        return [ConfigProblem(key, f"{expression!r} is not a crontab expression ({exc})")]
    return []


def _cycle_problems(checks: list[CheckSpec]) -> list[ConfigProblem]:
    graph = {c.name: [d for d in c.depends_on if d != c.name] for c in checks}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in graph.get(node, []):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep] if dep in path else [node, dep]
            if dep in graph and state.get(dep) is None:
                found = visit(dep, [*path, dep])
                if found:
                    return found
        state[node] = 2
        return None

    for name in graph:
        if state.get(name) is None:
            cycle = visit(name, [name])
            if cycle:
                return [
                    ConfigProblem(
                        f"checks[{cycle[0]}].depends_on",
                        "dependency cycle " + " → ".join(cycle) + "; remove one of these links",
                    )
                ]
    return []


def _apprise_accepts(apprise: Any, url: str) -> bool:
    """Whether apprise can parse `url` — with apprise's own logging muted meanwhile: it logs an
    unparseable URL verbatim, and a notification URL usually carries a token."""
    import logging

    logger = logging.getLogger("apprise")
    previous = logger.disabled
    logger.disabled = True
    try:
        return bool(apprise.Apprise().add(url))
    finally:
        logger.disabled = previous


def _notify_problems(targets: list[NotifyTarget]) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for target in targets:
        if target.kind == "webhook":
            problems += _webhook_problems(target)
            continue
        for key in ("signing_secret", "headers"):
            if getattr(target, key):
                problems.append(
                    ConfigProblem(
                        f"notify[{target.name}].{key}",
                        'only webhook targets take this key; set kind = "webhook" or remove it',
                    )
                )
    plain = [t for t in targets if t.kind == "apprise" and not t.url.startswith(SECRET_PREFIX)]
    if not plain:
        return problems
    import apprise

    for target in plain:
        if not _apprise_accepts(apprise, target.url):
            scheme = target.url.split("://", 1)[0] if "://" in target.url else "(none)"
            hint = (
                'for a JSON POST to this address set kind = "webhook", or '
                if scheme.lower() in ("http", "https")
                else ""
            )
            problems.append(
                ConfigProblem(
                    f"notify[{target.name}].url",
                    f"apprise cannot use this URL (scheme {scheme!r}); {hint}see "
                    "https://github.com/caronc/apprise/wiki for the URL of each service",
                )
            )
    return problems


def _webhook_problems(target: NotifyTarget) -> list[ConfigProblem]:
    if target.url.startswith(SECRET_PREFIX):
        return []  # resolved (and checked the same way) at delivery
    from daemon.webhook import url_problem

    problem = url_problem(target.url)
    return [] if problem is None else [ConfigProblem(f"notify[{target.name}].url", problem)]


def json_schema() -> dict[str, Any]:
    """JSON Schema of the config file, for editors (taplo, Even Better TOML)."""
    schema = Settings.model_json_schema()
    schema["title"] = "watchkeeper configuration"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def check_state_dir(path: Path) -> list[ConfigProblem]:
    """The state directory must exist (or be creatable) and be writable by us."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return [
            ConfigProblem(
                "daemon.state_dir",
                f"cannot write to {path}: {reason}; choose a writable directory "
                "(under systemd, StateDirectory= provides one)",
            )
        ]
    return []


def is_tty() -> bool:
    return sys.stdout.isatty()
