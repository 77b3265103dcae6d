"""Where a model reference goes: its API module, base URL, whether it is local, its price
overrides and the budget limits — all derived from the config and the providers' own facts.

Pure: no I/O, and no key is looked at here (that is `daemon.ai.keys`).
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.ai.pricing import PriceOverride
from daemon.config.ai import ProviderConfig, provider_api
from daemon.config.settings import Settings
from daemon.llm import provider_info
from daemon.llm.base import ProviderOptions
from daemon.llm.types import Think
from daemon.models import ModelRef
from daemon.store.ledger import BudgetLimits


@dataclass(frozen=True)
class Target:
    """A model reference resolved against config: which module, where, local or not."""

    ref: ModelRef
    api: str
    local: bool
    options: ProviderOptions
    think: Think | None = None
    """The configured thinking for this model (Ollama `think`), None: not sent."""


def resolve_target(ref: ModelRef, providers: dict[str, ProviderConfig]) -> Target:
    """ValueError for a provider that is neither built in nor declared."""
    api = provider_api(ref.provider, providers)
    if api is None:
        raise ValueError(f"unknown provider {ref.provider!r}")
    info = provider_info(api)
    config = providers.get(ref.provider) or ProviderConfig()
    local = config.local if config.local is not None else info.local
    options = ProviderOptions(
        name=ref.provider,
        base_url=config.base_url or info.default_base_url,
        local=local,
        timeout_s=config.timeout.total_seconds(),
        max_retries=config.max_retries,
        keep_alive=config.keep_alive,
        num_ctx=config.num_ctx,
    )
    return Target(ref, api, local, options, config.think_for(ref.model))


def cloud_references(settings: Settings) -> list[tuple[ModelRef, str]]:
    """The `rca` chain's non-local models with their API, in order: what "local triage saved"
    is priced against (messages and the digest alike)."""
    found = []
    for text in settings.routing.chain("rca"):
        ref = ModelRef.parse(text)
        try:
            target = resolve_target(ref, settings.providers)
        except ValueError:
            continue
        if not target.local:
            found.append((ref, target.api))
    return found


def price_overrides(settings: Settings) -> dict[str, PriceOverride]:
    return {
        ref: PriceOverride(p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok)
        for ref, p in settings.prices.items()
    }


def budget_limits(settings: Settings) -> BudgetLimits | None:
    """The `[budget]` caps, or None when no cap is set."""
    budget = settings.budget
    providers = {n: (b.daily_usd, b.monthly_usd) for n, b in budget.providers.items()}
    if budget.daily_usd is None and budget.monthly_usd is None and not providers:
        return None
    return BudgetLimits(budget.daily_usd, budget.monthly_usd, providers)
