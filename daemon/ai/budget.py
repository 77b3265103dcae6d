"""The budget step of a model call: hold an upper-bound estimate before a cloud call, settle
it with the real cost after, and tell people once per period when a cap is reached.

Local calls are never held (they cost $0). It never lets a call through on a cap it cannot
check without saying so, and never writes a key or a prompt anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import structlog

from daemon.ai import pricing
from daemon.ai.targets import Target
from daemon.llm.types import ModelRequest
from daemon.models import Message
from daemon.store.database import store_io
from daemon.store.ledger import BudgetDenied, BudgetLimits, Ledger, LedgerRow, Reservation

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Unpriced:
    """A cloud call refused because its price is unknown while a budget is set."""

    model: str

    @property
    def reason(self) -> str:
        return (
            f"the price of {self.model} is unknown, so a budget cannot bound it: add "
            f'[prices."{self.model}"] with input_per_mtok and output_per_mtok to the config'
        )


class Budget:
    """`[budget]` as the model runner applies it, over the ledger's reservations."""

    def __init__(
        self,
        ledger: Ledger,
        now: Callable[[], datetime],
        on_notice: Callable[[Message], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.now = now
        self.on_notice = on_notice
        self.limits: BudgetLimits | None = None
        self.overrides: Mapping[str, pricing.PriceOverride] = {}

    def apply(
        self, limits: BudgetLimits | None, overrides: Mapping[str, pricing.PriceOverride]
    ) -> None:
        self.limits, self.overrides = limits, overrides

    async def reserve(
        self, target: Target, request: ModelRequest
    ) -> Reservation | BudgetDenied | Unpriced | None:
        """Hold the most this call can cost; None when nothing needs holding (a local model,
        or no cap set). With a cap set, a cloud model whose price nobody knows is refused:
        nothing could bound what it spends."""
        if target.local or self.limits is None:
            return None
        estimate = pricing.estimate(
            request, target.ref, api=target.api, local=target.local, overrides=self.overrides
        )
        if estimate is None:
            refused = Unpriced(str(target.ref))
            log.warning("model refused: price unknown under a budget", why=refused.reason)
            return refused
        held = await store_io(
            self.ledger.reserve, target.ref.provider, estimate, self.limits, self.now()
        )
        if isinstance(held, BudgetDenied):
            await self.notice(held)
        return held

    async def headroom(self, provider: str) -> BudgetDenied | None:
        """Whether `provider` is already over a cap (a zero reservation, released at once)."""
        if self.limits is None:
            return None
        held = await store_io(self.ledger.reserve, provider, Decimal(0), self.limits, self.now())
        if isinstance(held, BudgetDenied):
            return held
        await store_io(self.ledger.release, held)
        return None

    async def settle(self, row: LedgerRow, reservation: Reservation | None) -> None:
        """Record the call's ledger row, replacing its reservation in the same transaction."""
        if reservation is None:
            await store_io(self.ledger.record, row)
        else:
            await store_io(self.ledger.settle, reservation, row)

    async def notice(self, denied: BudgetDenied) -> None:
        """ "AI budget reached", once per cap and period, restarts included."""
        period = self.now().strftime("%Y-%m" if "monthly" in denied.scope else "%Y-%m-%d")
        first = await store_io(
            self.ledger.claim_budget_notice, f"{denied.scope}:{denied.provider or 'all'}:{period}"
        )
        if first and self.on_notice is not None:
            self.on_notice(
                Message(
                    title=f"AI budget reached ({denied.scope})",
                    body=f"{denied.reason}.\n\nCloud calls fall back along each task's chain "
                    "(finally to the local model) or are skipped until the period ends; checks, "
                    "incidents and notifications carry on.",
                    notify_type="warning",
                )
            )
