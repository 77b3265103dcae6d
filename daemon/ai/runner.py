"""Run a task on the first usable model of its chain, and put every attempt in the ledger.

Each model of the chain goes through the same steps: where it is (`targets`), its key
(`keys`), whether it answers (a local model must be pulled), the budget hold (`budget`), the
redaction of anything leaving the machine, the call, and its ledger line. This module never
lets a provider error escape: the caller gets an `AIResult` that says what answered, or why
nothing did.
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

from daemon.ai import modes, pricing
from daemon.ai.budget import Budget, Unpriced
from daemon.ai.keys import KeyInfo, missing_key_hint, resolve_key
from daemon.ai.targets import Target, budget_limits, price_overrides, resolve_target
from daemon.config.ai import BUILTIN_PROVIDERS
from daemon.config.settings import Settings
from daemon.llm import provider_class
from daemon.llm.base import Provider
from daemon.llm.types import ModelRequest, ModelResponse, ProviderError, Usage
from daemon.models import Message, ModelRef
from daemon.redaction import ExtraPattern, PromptRedactor
from daemon.store import Store
from daemon.store.database import store_io
from daemon.store.ledger import BudgetDenied, LedgerRow, Reservation
from daemon.util.text import printable

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
    request: ModelRequest | None = None
    """What was asked (before redaction), so a caller can price it on other models."""

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


def make_redactor(settings: Settings) -> PromptRedactor:
    config = settings.redaction
    return PromptRedactor(
        extra=[ExtraPattern(p.name, p.regex) for p in config.patterns],
        emails=config.emails,
        ips=config.ips,
        hostnames=config.hostnames,
    )


def prepare(request: ModelRequest, *, local: bool, redactor: PromptRedactor) -> ModelRequest:
    """The redaction step: a local model sees the data as it is; anything leaving the machine
    is redacted first."""
    if local:
        return request
    system = redactor.redact(request.system).text if request.system else None
    messages = tuple(replace(m, content=redactor.redact(m.content).text) for m in request.messages)
    return replace(request, system=system, messages=messages)


class AI:
    """The model layer as the rest of the daemon sees it: `await ai.run(task, request)`."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        client: httpx.AsyncClient,
        *,
        now: Callable[[], datetime],
        on_budget_notice: Callable[[Message], None] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.now = now
        self.budget = Budget(store.ledger, now, on_budget_notice)
        self.observers: list[Callable[[AIResult], None]] = []
        """Called with every finished run (the demo's bill listens here)."""
        self.apply(settings)

    def apply(self, settings: Settings) -> None:
        """A reload: routing, providers, prices, budgets and redaction as configured now."""
        self.settings = settings
        self.redactor = make_redactor(settings)
        self.budget.apply(budget_limits(settings), price_overrides(settings))

    def register_keys(self) -> None:
        """Look up every provider's key once, so each is masked in logs and redacted from
        every cloud prompt — also a key pasted into a question for another provider."""
        for name in dict.fromkeys([*BUILTIN_PROVIDERS, *self.settings.providers]):
            resolve_key(name, self.settings.providers)

    async def chain(self, task: str) -> list[str]:
        """A runtime override (`watchkeeper route set`) wins over `[routing]`."""
        overrides = await store_io(self.store.routes.all)
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
        result = AIResult(task, request=request)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for text in models or await self.chain(task):
            ref = ModelRef.parse(text)
            call = _Call(self, result, ref, incident_id, sweep_id, deadline)
            response = await call.attempt(request)
            if response is not None:
                result.response, result.ref, result.local = response, ref, call.local
                break
        else:
            if result.calls:
                log.warning("no model answered", task=task, why=result.reason)
        for observer in self.observers:
            observer(result)
        return result

    async def preflight(self, task: str) -> tuple[str | None, str]:
        """The first model of `task`'s chain that looks usable now — key present, local model
        pulled, cloud budget not already spent — or None and why not. Calls no model."""
        reasons: list[str] = []
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
                usable, why = await self.provider(target, key).probe(ref.model)
                if usable is False:
                    reasons.append(f"{text}: {why}")
                    continue
            else:
                denied = await self.budget.headroom(ref.provider)
                if denied is not None:
                    reasons.append(f"{text}: {denied.reason}")
                    continue
            return text, ""
        return None, "; ".join(reasons) or f"no model configured for {task}"

    def provider(self, target: Target, key: str | None) -> Provider:
        return provider_class(target.api)(target.options, key, self.client)

    def price(self, usage: Usage, target: Target) -> Decimal | None:
        return pricing.price(
            usage,
            target.ref,
            api=target.api,
            local=target.local,
            overrides=self.budget.overrides,
        )


class _Call:
    """One model of the chain: the steps above, then the outcome in the ledger."""

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
        self.base_url = ""
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
                await self.record("no_time", "no time left in this task's deadline")
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
        provider = self.ai.provider(target, key)
        self.host = provider.host
        usable, why = await provider.probe(self.ref.model)
        if usable is False:
            await self.record("unreachable", why)
            return None
        reservation = await self.ai.budget.reserve(target, request)
        if isinstance(reservation, BudgetDenied | Unpriced):
            await self.record("budget", reservation.reason)
            return None
        if target.think is not None:
            request = replace(request, think=target.think)
        self.base_url = target.options.base_url
        request = await modes.known(self.ai.store, self.ref, request, self.ai.now(), self.base_url)
        prepared = prepare(request, local=target.local, redactor=self.ai.redactor)
        return await self.call(provider, target, prepared, reservation)

    async def call(
        self,
        provider: Provider,
        target: Target,
        request: ModelRequest,
        reservation: Reservation | None,
    ) -> ModelResponse | None:
        try:
            response = await provider.complete(self.ref.model, request)
        except ProviderError as exc:
            row = self.row(exc.outcome, str(exc), exc.usage, target, None, exc.request_bytes)
            await self.settle(row, reservation)
            await modes.learn(
                self.ai.store, self.ref, request, None, exc.refused, self.ai.now(), self.base_url
            )
            log.warning("model call failed", model=str(self.ref), outcome=exc.outcome, why=str(exc))
            return None
        detail = f"stepped down: refused {', '.join(response.refused)}" if response.refused else ""
        row = self.row(
            "ok", detail, response.usage, target, response.latency_ms, response.request_bytes
        )
        await self.settle(row, reservation)
        await modes.learn(
            self.ai.store,
            self.ref,
            request,
            response,
            response.refused,
            self.ai.now(),
            self.base_url,
        )
        if response.thinking:  # never shown: only with `log_level = "debug"`
            shown = printable(response.thinking[:4000])
            log.debug("model thinking", model=str(self.ref), thinking=shown)
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
        await self.settle(self.row(outcome, detail, Usage(), None, None, 0), None)

    async def settle(self, row: LedgerRow, reservation: Reservation | None) -> None:
        await self.ai.budget.settle(row, reservation)
        self.result.calls.append(row)
