"""Run a task on the first usable model of its chain, and put every attempt in the ledger.

Usable = key present, reachable (Ollama: the model is pulled), within budget. Prompts for
non-local providers are redacted first. This module never lets a provider error escape: the
caller gets an `AIResult` that says what answered, or why nothing did.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

import httpx
import structlog

from daemon import costs
from daemon.aiconfig import ProviderConfig, provider_api
from daemon.config import Settings
from daemon.keys import KeyInfo, missing_key_hint, resolve_key
from daemon.ledger import BudgetDenied, BudgetLimits, Ledger, LedgerRow, Reservation
from daemon.llm import provider_class
from daemon.llm.base import Provider, ProviderOptions
from daemon.llm.types import (
    ChatMessage,
    ModelRef,
    ModelRequest,
    ModelResponse,
    ProviderError,
    Usage,
)
from daemon.redaction import PromptRedactor
from daemon.render import Message

log = structlog.get_logger(__name__)

UNKNOWN_COST_OUTCOMES = frozenset({"timeout", "bad_response"})
"""Failures after the provider may have done (and billed) the work, with no usage to price:
their cost is unknown, never $0. Refusals (auth, 429, 4xx) and connection failures cost 0."""


@dataclass
class AIResult:
    task: str
    response: ModelResponse | None = None
    ref: ModelRef | None = None
    local: bool = False
    calls: list[LedgerRow] = field(default_factory=list)
    """Every ledger row this run wrote: skips, failures and the answer."""

    @property
    def ok(self) -> bool:
        return self.response is not None

    @property
    def cost_usd(self) -> Decimal | None:
        """Known total; None when any call's price is unknown."""
        total = Decimal(0)
        for row in self.calls:
            if row.cost_usd is None:
                return None
            total += row.cost_usd
        return total

    @property
    def reason(self) -> str:
        """Why no model answered: each model's outcome, in chain order."""
        return "; ".join(f"{r.provider}/{r.model}: {r.detail or r.outcome}" for r in self.calls)


@dataclass(frozen=True)
class Target:
    """A model reference resolved against config: which module, where, local or not."""

    ref: ModelRef
    api: str
    local: bool
    options: ProviderOptions


def resolve_target(ref: ModelRef, providers: dict[str, ProviderConfig]) -> Target:
    api = provider_api(ref.provider, providers)
    if api is None:
        raise ValueError(f"unknown provider {ref.provider!r}")
    config = providers.get(ref.provider) or ProviderConfig()
    local = config.local if config.local is not None else api == "ollama"
    options = ProviderOptions(
        name=ref.provider,
        base_url=config.base_url or provider_class(api).default_base_url,
        local=local,
        timeout_s=config.timeout.total_seconds(),
        max_retries=config.max_retries,
        keep_alive=config.keep_alive,
        num_ctx=config.num_ctx,
    )
    return Target(ref, api, local, options)


def budget_limits(settings: Settings) -> BudgetLimits | None:
    budget = settings.budget
    providers = {n: (b.daily_usd, b.monthly_usd) for n, b in budget.providers.items()}
    if budget.daily_usd is None and budget.monthly_usd is None and not providers:
        return None
    return BudgetLimits(budget.daily_usd, budget.monthly_usd, providers)


def make_redactor(settings: Settings) -> PromptRedactor:
    from daemon.redaction import ExtraPattern

    config = settings.redaction
    return PromptRedactor(
        extra=[ExtraPattern(p.name, p.regex) for p in config.patterns],
        emails=config.emails,
        ips=config.ips,
        hostnames=config.hostnames,
    )


class AI:
    """The model layer as the pipeline sees it: `await ai.run(task, request)`."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        client: httpx.AsyncClient,
        *,
        now: Callable[[], datetime],
        on_budget_notice: Callable[[Message], None] | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.client = client
        self.now = now
        self.on_budget_notice = on_budget_notice
        self.redactor = make_redactor(settings)

    def reconfigure(self, settings: Settings) -> None:
        self.settings = settings
        self.redactor = make_redactor(settings)

    def register_keys(self) -> None:
        """Look up every provider's key once, so each is masked in logs and redacted from
        every cloud prompt — also a key pasted into a question for another provider."""
        from daemon.aiconfig import BUILTIN_PROVIDERS

        for name in dict.fromkeys([*BUILTIN_PROVIDERS, *self.settings.providers]):
            resolve_key(name, self.settings.providers)

    async def chain(self, task: str) -> list[str]:
        """A runtime override (`watchkeeper route set`) wins over `[routing]`."""
        overrides = await asyncio.to_thread(self.ledger.routes)
        return overrides.get(task) or self.settings.routing.chain(task)

    async def run(
        self,
        task: str,
        request: ModelRequest,
        *,
        models: list[str] | None = None,
        incident_id: int | None = None,
        sweep_id: str | None = None,
        timeout_s: float | None = None,
    ) -> AIResult:
        """`timeout_s` bounds the whole chain: each model gets what is left of it."""
        result = AIResult(task)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for text in models or await self.chain(task):
            ref = ModelRef.parse(text)
            call = _Call(self, result, ref, incident_id, sweep_id, deadline)
            response = await call.attempt(request)
            if response is not None:
                result.response, result.ref, result.local = response, ref, call.local
                return result
        if result.calls:
            log.warning("no model answered", task=task, why=result.reason)
        return result

    async def preflight(self, task: str) -> tuple[str | None, str]:
        """The first model of `task`'s chain that looks usable now — key present, local model
        pulled, cloud budget not already spent — or None and why not. Calls no model."""
        reasons: list[str] = []
        limits = budget_limits(self.settings)
        for text in await self.chain(task):
            ref = ModelRef.parse(text)
            try:
                target = resolve_target(ref, self.settings.providers)
            except ValueError as exc:
                reasons.append(f"{text}: {exc}")
                continue
            key, info = await asyncio.to_thread(resolve_key, ref.provider, self.settings.providers)
            if info.needed and key is None:
                reasons.append(f"{text}: no key")
                continue
            if target.local:
                provider = provider_class(target.api)(target.options, key, self.client)
                usable, why = await provider.probe(ref.model)
                if usable is False:
                    reasons.append(f"{text}: {why}")
                    continue
            elif limits is not None:
                held = await asyncio.to_thread(
                    self.ledger.reserve, ref.provider, Decimal(0), limits, self.now()
                )
                if isinstance(held, BudgetDenied):
                    reasons.append(f"{text}: {held.reason}")
                    continue
                await asyncio.to_thread(self.ledger.release, held)
            return text, ""
        return None, "; ".join(reasons) or f"no model configured for {task}"

    def prepare(self, request: ModelRequest, local: bool) -> ModelRequest:
        """Local models see the data as it is; anything leaving the machine is redacted."""
        if local:
            return request
        system = self.redactor.redact(request.system).text if request.system else None
        messages = tuple(
            ChatMessage(m.role, self.redactor.redact(m.content).text) for m in request.messages
        )
        return replace(request, system=system, messages=messages)

    def price(self, usage: Usage, target: Target) -> Decimal | None:
        overrides = price_overrides(self.settings)
        return costs.price(
            usage, target.ref, api=target.api, local=target.local, overrides=overrides
        )

    async def budget_notice(self, denied: BudgetDenied) -> None:
        period = self.now().strftime("%Y-%m" if "monthly" in denied.scope else "%Y-%m-%d")
        first = await asyncio.to_thread(
            self.ledger.claim_budget_notice, f"{denied.scope}:{denied.provider or 'all'}:{period}"
        )
        if first and self.on_budget_notice is not None:
            self.on_budget_notice(
                Message(
                    title=f"AI budget reached ({denied.scope})",
                    body=f"{denied.reason}.\n\nCloud calls fall back along each task's chain "
                    "(finally to the local model) or are skipped until the period ends; checks, "
                    "incidents and notifications carry on.",
                    notify_type="warning",
                )
            )


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


def price_overrides(settings: Settings) -> dict[str, costs.PriceOverride]:
    return {
        ref: costs.PriceOverride(p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok)
        for ref, p in settings.prices.items()
    }


class _Call:
    """One model of the chain: check it is usable, call it, record the outcome."""

    def __init__(
        self,
        ai: AI,
        result: AIResult,
        ref: ModelRef,
        incident_id: int | None,
        sweep_id: str | None,
        deadline: float | None = None,
    ) -> None:
        self.deadline = deadline
        self.ai = ai
        self.result = result
        self.ref = ref
        self.incident_id = incident_id
        self.sweep_id = sweep_id
        self.local = False
        self.host = ""
        self.key_info = KeyInfo(ref.provider, "missing", True, "")

    async def attempt(self, request: ModelRequest) -> ModelResponse | None:
        try:
            target = resolve_target(self.ref, self.ai.settings.providers)
        except ValueError as exc:
            await self.record("skipped", str(exc))
            return None
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0.05:
                await self.record("timeout", "no time left in this task's deadline")
                return None
            target = replace(
                target,
                options=replace(target.options, timeout_s=min(target.options.timeout_s, left)),
            )
        self.local = target.local
        self.host = target.options.base_url.split("://", 1)[-1].split("/", 1)[0]
        key, self.key_info = await asyncio.to_thread(
            resolve_key, self.ref.provider, self.ai.settings.providers
        )
        if self.key_info.needed and key is None:
            await self.record("missing_key", missing_key_hint(self.ref.provider))
            return None
        provider = provider_class(target.api)(target.options, key, self.ai.client)
        self.host = provider.host
        usable, why = await provider.probe(self.ref.model)
        if usable is False:
            await self.record("unreachable", why)
            return None
        reservation = await self.reserve(request, target)
        if isinstance(reservation, BudgetDenied):
            await self.record("budget", reservation.reason)
            await self.ai.budget_notice(reservation)
            return None
        return await self.call(provider, target, request, reservation)

    async def reserve(
        self, request: ModelRequest, target: Target
    ) -> Reservation | BudgetDenied | None:
        limits = budget_limits(self.ai.settings)
        if target.local or limits is None:
            return None
        estimate = costs.estimate(
            request.prompt_chars(),
            request.max_output_tokens,
            target.ref,
            api=target.api,
            local=target.local,
            overrides=price_overrides(self.ai.settings),
        )
        if estimate is None:
            log.warning("price unknown: the budget cannot bound this call", model=str(self.ref))
            return None
        return await asyncio.to_thread(
            self.ai.ledger.reserve, self.ref.provider, estimate, limits, self.ai.now()
        )

    async def call(
        self,
        provider: Provider,
        target: Target,
        request: ModelRequest,
        reservation: Reservation | None,
    ) -> ModelResponse | None:
        prepared = self.ai.prepare(request, target.local)
        try:
            response = await provider.complete(self.ref.model, prepared)
        except ProviderError as exc:
            row = self.row(exc.outcome, str(exc), exc.usage, target, None, exc.request_bytes)
            await self.settle(row, reservation)
            log.warning("model call failed", model=str(self.ref), outcome=exc.outcome, why=str(exc))
            return None
        row = self.row(
            "ok", "", response.usage, target, response.latency_ms, response.request_bytes
        )
        await self.settle(row, reservation)
        return response

    def row(
        self,
        outcome: str,
        detail: str,
        usage: Usage,
        target: Target | None,
        latency_ms: float | None,
        request_bytes: int,
    ) -> LedgerRow:
        spent = usage.input_tokens or usage.output_tokens
        cost: Decimal | None = Decimal(0)
        if target is not None and spent:
            cost = self.ai.price(usage, target)
        elif target is not None and not target.local and outcome in UNKNOWN_COST_OUTCOMES:
            cost = None  # the request reached the provider and may have been billed
        return LedgerRow(
            ts=self.ai.now(),
            task=self.result.task,
            incident_id=self.incident_id,
            sweep_id=self.sweep_id,
            provider=self.ref.provider,
            model=self.ref.model,
            host=self.host,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost_usd=cost,
            latency_ms=latency_ms,
            outcome=outcome,
            request_bytes=request_bytes,
            key_source=self.key_info.source if self.key_info.source != "not needed" else "none",
            detail=detail[:500],
            local=self.local,
        )

    async def record(self, outcome: str, detail: str) -> None:
        row = self.row(outcome, detail, Usage(), None, None, 0)
        await asyncio.to_thread(self.ai.ledger.record, row)
        self.result.calls.append(row)

    async def settle(self, row: LedgerRow, reservation: Reservation | None) -> None:
        if reservation is None:
            await asyncio.to_thread(self.ai.ledger.record, row)
        else:
            await asyncio.to_thread(self.ai.ledger.settle, reservation, row)
        self.result.calls.append(row)
