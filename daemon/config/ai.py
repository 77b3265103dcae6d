"""Config tables for the model layer: `[providers.*]`, `[routing]`, `[prices]`, `[budget]`,
`[redaction]`, and their cross-checks.

Keys are never written here: a provider key comes from a systemd credential, the keyring or
the environment; a user-declared provider may point at one with `key = "secret:NAME"`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from daemon.errors import ConfigProblem
from daemon.llm import PROVIDERS
from daemon.llm.types import THINK_LEVELS, Think
from daemon.models import Duration, Severity
from daemon.util.net import masked_url

TASKS: tuple[str, ...] = ("triage", "rca", "security", "cost", "digest", "ask")
BUILTIN_PROVIDERS: tuple[str, ...] = tuple(PROVIDERS)

LOCAL_DEFAULT = "ollama/gemma4:27b"
CLOUD_DEFAULTS = ["anthropic/claude-opus-4-6", "openai/gpt-5.4", "google/gemini-3.1-pro-preview"]
SUMMARY_DEFAULTS = [
    "anthropic/claude-sonnet-4-6",
    "openai/gpt-5.4-mini",
    "google/gemini-3-flash-preview",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProviderConfig(_Strict):
    api: str | None = Field(
        default=None,
        description="Which wire format this provider speaks. Built-in names imply it; a "
        "declared provider (LM Studio, vLLM, llama.cpp, a gateway) sets it, e.g. 'openai'.",
        json_schema_extra={"enum": [*PROVIDERS, None]},
    )
    base_url: str | None = Field(
        default=None,
        description="Override the endpoint, e.g. 'http://127.0.0.1:1234/v1' for LM Studio.",
    )
    local: bool | None = Field(
        default=None,
        description="Runs on your own hardware: priced at $0 and sent unredacted prompts. "
        "Default: true for ollama, false otherwise.",
    )
    key: str | None = Field(
        default=None,
        description="For declared providers that need a key: 'secret:NAME'. Never a literal "
        "key. Built-in providers find theirs via `watchkeeper keys`.",
    )
    timeout: Duration = Field(
        default=timedelta(seconds=60), description="Deadline for one call, retries included."
    )
    max_retries: int = Field(default=3, ge=0, le=10, description="On 429, 5xx and timeouts.")
    keep_alive: str | None = Field(
        default=None, description="Ollama: how long the model stays loaded, e.g. '10m'."
    )
    num_ctx: int | None = Field(default=None, ge=512, description="Ollama: context window.")
    think: dict[str, bool | str] = Field(
        default_factory=dict,
        description='Ollama: thinking per model name, e.g. {"qwen3:8b" = false, '
        '"gpt-oss:20b" = "low"}; "*" for every other model. true/false turn it on or off, '
        "low/medium/high set gpt-oss's level. Unset: the model's default. A model that does "
        "not support thinking refuses `think`; it is then left out (and remembered).",
    )

    def think_for(self, model: str) -> Think | None:
        """The thinking configured for `model` (exact name, else "*"), or None."""
        value = self.think.get(model, self.think.get("*"))
        return value if isinstance(value, bool) or value in THINK_LEVELS else None

    @field_validator("think")
    @classmethod
    def _think_values(cls, value: dict[str, bool | str]) -> dict[str, bool | str]:
        for model, think in value.items():
            if not isinstance(think, bool) and think not in THINK_LEVELS:
                raise ValueError(
                    f"{model} = {str(think)[:40]!r}: write true, false or one of "
                    f"{', '.join(THINK_LEVELS)} (gpt-oss's levels)"
                )
        return value

    @field_validator("api")
    @classmethod
    def _known_api(cls, value: str | None) -> str | None:
        if value is not None and value not in PROVIDERS:
            raise ValueError(f"{value!r} is not an API watchkeeper speaks; use one of {_apis()}")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        shown = masked_url(value)  # never the URL whole: it may carry a token
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"{shown} has a port out of range (1-65535)") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
            raise ValueError(f"{shown} is not an http(s) URL with a host")
        if "@" in parts.netloc:
            raise ValueError(
                f'{shown} holds credentials: a provider\'s key goes in key = "secret:NAME", '
                "never in its URL"
            )
        return value

    @field_validator("key")
    @classmethod
    def _secret_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("secret:"):
            raise ValueError(
                'write key = "secret:NAME" and store the key as a systemd credential, in the '
                "keyring or in the environment — never in this file"
            )
        return value


class RoutingSettings(_Strict):
    """Each task's ordered chain of `provider/model`; the first usable one wins."""

    triage: list[str] = Field(default_factory=lambda: [LOCAL_DEFAULT])
    rca: list[str] = Field(default_factory=lambda: [*CLOUD_DEFAULTS, LOCAL_DEFAULT])
    security: list[str] = Field(default_factory=lambda: [*SUMMARY_DEFAULTS, LOCAL_DEFAULT])
    cost: list[str] = Field(default_factory=lambda: [*SUMMARY_DEFAULTS, LOCAL_DEFAULT])
    digest: list[str] = Field(default_factory=lambda: [LOCAL_DEFAULT])
    ask: list[str] = Field(default_factory=lambda: [LOCAL_DEFAULT])

    def chain(self, task: str) -> list[str]:
        chain: list[str] = getattr(self, task)
        return chain


class PriceConfig(_Strict):
    input_per_mtok: Decimal = Field(ge=0, description="USD per million input tokens.")
    output_per_mtok: Decimal = Field(ge=0, description="USD per million output tokens.")
    cached_input_per_mtok: Decimal | None = Field(
        default=None, ge=0, description="USD per million cached input tokens."
    )


class ProviderBudget(_Strict):
    daily_usd: Decimal | None = Field(default=None, ge=0)
    monthly_usd: Decimal | None = Field(default=None, ge=0)


class BudgetSettings(_Strict):
    daily_usd: Decimal | None = Field(
        default=None, ge=0, description="Cloud AI spend per UTC day, at most. Default: none."
    )
    monthly_usd: Decimal | None = Field(
        default=None, ge=0, description="Cloud AI spend per UTC month, at most."
    )
    providers: dict[str, ProviderBudget] = Field(
        default_factory=dict, description="Per-provider limits, e.g. [budget.providers.openai]."
    )
    cloud_monthly_usd: Decimal | None = Field(
        default=None,
        ge=0,
        description="Your cloud bill's monthly budget (not AI spend): the cost sweep compares "
        "the month's forecast against it. Default: no comparison.",
    )


class ExtraPatternConfig(_Strict):
    name: str = Field(min_length=1, pattern=r"^[a-z0-9_]+$")
    regex: str = Field(min_length=1)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class RedactionSettings(_Strict):
    """Credentials are always redacted before a prompt leaves for a non-local provider;
    these add personal data for users under GDPR/HIPAA."""

    emails: bool = False
    ips: bool = False
    hostnames: bool = False
    patterns: list[ExtraPatternConfig] = Field(default_factory=list)


class TriageSettings(_Strict):
    enabled: bool = Field(default=True, description="Ask the `triage` chain about changes.")
    timeout: Duration = Field(
        default=timedelta(seconds=30),
        description="On timeout or bad output a deterministic summary is used, labelled.",
    )


class EscalationSettings(_Strict):
    enabled: bool = Field(default=True, description="Run cloud root-cause analysis.")
    min_severity: Severity = Field(
        default=Severity.HIGH,
        description="Investigate incidents at or above this severity (or when triage asks).",
    )
    timeout: Duration = Field(
        default=timedelta(minutes=2), description="Deadline for one investigation."
    )
    tools: bool = Field(
        default=True,
        description="Let an `rca` model that supports tool calling look things up (read-only: "
        "logs, Kubernetes objects, Prometheus series, check history) before it answers.",
    )
    max_steps: int = Field(
        default=8, ge=1, le=30, description="Model turns of look-ups in one investigation."
    )
    tool_output_bytes: int = Field(
        default=8192, ge=256, le=65536, description="What one look-up may return to the model."
    )
    max_usd: Decimal = Field(
        default=Decimal("0.25"),
        gt=0,
        description="Dollars one investigation may spend, look-ups and answer together: each "
        "step is held at its worst case, and the answer's worst case is kept in reserve.",
    )
    aws_tools: bool = Field(
        default=True,
        description="Offer the AWS look-ups (CloudWatch metrics and alarm history, allow-listed "
        "read-only describes) when the incident involves AWS checks, with those checks' own "
        "profile and region. false: no AWS call is ever made by the investigator.",
    )


class DigestSettings(_Strict):
    enabled: bool = True
    cron: str = Field(default="0 8 * * *", description="When the daily digest goes out.")
    timezone: str = Field(default="UTC", description="IANA zone for the cron, e.g. Europe/Berlin.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin'"
            ) from None
        return value


def _apis() -> str:
    return ", ".join(PROVIDERS)


def known_providers(providers: Mapping[str, ProviderConfig]) -> list[str]:
    """The built-in providers and the declared ones, sorted."""
    return sorted({*PROVIDERS, *providers})


def provider_api(name: str, providers: Mapping[str, ProviderConfig]) -> str | None:
    declared = providers.get(name)
    if declared is not None and declared.api is not None:
        return declared.api
    return name if name in BUILTIN_PROVIDERS else None


def _ref_problem(
    key: str, ref: str, providers: Mapping[str, ProviderConfig]
) -> ConfigProblem | None:
    provider, sep, model = ref.strip().partition("/")
    if not sep or not provider or not model or " " in ref.strip():
        return ConfigProblem(
            key, f"{ref!r} is not a model reference; write provider/model, e.g. '{LOCAL_DEFAULT}'"
        )
    if provider_api(provider, providers) is None:
        return ConfigProblem(
            key,
            f"unknown provider {provider!r} in {ref!r}; use one of "
            f"{', '.join(known_providers(providers))}, or "
            f'declare [providers.{provider}] with api = "openai" (or another API)',
        )
    return None


def ai_problems(
    providers: dict[str, ProviderConfig],
    routing: RoutingSettings,
    prices: dict[str, PriceConfig],
    budget: BudgetSettings,
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for name, config in providers.items():
        if name not in BUILTIN_PROVIDERS and config.api is None:
            problems.append(
                ConfigProblem(
                    f"providers.{name}.api",
                    f"a declared provider needs api = one of {_apis()} (LM Studio, vLLM and "
                    'llama.cpp speak "openai")',
                )
            )
        if config.think and provider_api(name, providers) not in ("ollama", None):
            problems.append(
                ConfigProblem(
                    f"providers.{name}.think",
                    "only Ollama's API takes `think`; other APIs do not have it",
                )
            )
        if name not in BUILTIN_PROVIDERS and config.api is not None and not config.base_url:
            problems.append(
                ConfigProblem(f"providers.{name}.base_url", "a declared provider needs base_url")
            )
    for task in TASKS:
        for index, ref in enumerate(routing.chain(task)):
            problem = _ref_problem(f"routing.{task}[{index}]", ref, providers)
            if problem:
                problems.append(problem)
    for ref in prices:
        problem = _ref_problem(f'prices."{ref}"', ref, providers)
        if problem:
            problems.append(problem)
    for name in budget.providers:
        if provider_api(name, providers) is None:
            problems.append(ConfigProblem(f"budget.providers.{name}", f"unknown provider {name!r}"))
    return problems
