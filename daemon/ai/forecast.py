"""`costs --forecast`: this estate's expected monthly AI spend, from its own ledger.

Per task, the history gives the rate (calls a day; for `rca`, investigations a day — distinct
incidents — and the model turns each took) and the tokens. Each model of the task's chain is
then priced on those very calls at list price (each call on its own, so tiered prices apply),
scaled from the window to 30 days. Beside it, the design watchkeeper avoids: every cycle's
results sent to each cloud model of the chains. Pure over its inputs; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from daemon.ai.pricing import price_rows
from daemon.ai.targets import price_overrides, resolve_target
from daemon.config.settings import Settings
from daemon.models import ModelRef
from daemon.store.ledger import LedgerRow
from daemon.util.money import format_usd

MONTH_DAYS = 30
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TASKS = ("triage", "rca", "digest", "ask")


@dataclass(frozen=True)
class ModelForecast:
    model: str
    local: bool
    monthly_usd: Decimal | None
    """None when the model's price is unknown."""


@dataclass(frozen=True)
class TaskForecast:
    task: str
    calls: int
    """Model calls that answered in the window."""
    runs: int
    """Calls (triage) or investigations — distinct incidents — (rca) in the window."""
    per_day: Decimal
    input_tokens_per_run: Decimal
    output_tokens_per_run: Decimal
    steps_per_run: Decimal
    models: tuple[ModelForecast, ...]


@dataclass(frozen=True)
class Forecast:
    days: Decimal
    tasks: tuple[TaskForecast, ...]
    every_cycle: tuple[ModelForecast, ...]
    cycles_per_month: int


def forecast(
    settings: Settings,
    rows: Sequence[LedgerRow],
    days: Decimal,
    *,
    every_cycle_tokens: int | None,
    cycles_per_month: int,
    chains: dict[str, list[str]] | None = None,
) -> Forecast:
    """`rows`: the ledger of the last `days`; `every_cycle_tokens`: the input tokens of one
    cycle's every-result request (None: nothing to compare with)."""
    chains = chains or {task: settings.routing.chain(task) for task in TASKS}
    overrides = price_overrides(settings)
    scale = Decimal(MONTH_DAYS) / days
    tasks = []
    for task in TASKS:
        done = [r for r in rows if r.task == task and r.outcome == "ok"]
        if not done:
            continue
        runs = (
            len({r.incident_id for r in done if r.incident_id is not None}) or len(done)
            if task == "rca"
            else len(done)
        )
        models = []
        for text in chains.get(task) or []:
            ref = ModelRef.parse(text)
            try:
                target = resolve_target(ref, settings.providers)
            except ValueError:
                continue
            cost = (
                Decimal(0)
                if target.local
                else price_rows(done, ref, api=target.api, overrides=overrides)
            )
            models.append(ModelForecast(text, target.local, None if cost is None else cost * scale))
        tasks.append(
            TaskForecast(
                task=task,
                calls=len(done),
                runs=runs,
                per_day=Decimal(runs) / days,
                input_tokens_per_run=Decimal(sum(r.input_tokens for r in done)) / runs,
                output_tokens_per_run=Decimal(sum(r.output_tokens for r in done)) / runs,
                steps_per_run=Decimal(len(done)) / runs,
                models=tuple(models),
            )
        )
    every: list[ModelForecast] = []
    if every_cycle_tokens:
        cloud = dict.fromkeys(m for t in ("triage", "rca") for m in chains.get(t) or [])
        for text in cloud:
            ref = ModelRef.parse(text)
            try:
                target = resolve_target(ref, settings.providers)
            except ValueError:
                continue
            if target.local:
                continue
            one = LedgerRow(
                ts=EPOCH,
                task="every cycle",
                provider=ref.provider,
                model=ref.model,
                host="",
                input_tokens=every_cycle_tokens,
                cost_usd=None,
                outcome="ok",
            )
            cost = price_rows([one], ref, api=target.api, overrides=overrides)
            every.append(
                ModelForecast(text, False, None if cost is None else cost * cycles_per_month)
            )
    return Forecast(days, tuple(tasks), tuple(every), cycles_per_month)


def forecast_json(f: Forecast) -> dict[str, Any]:
    def money(value: Decimal | None) -> float | None:
        return None if value is None else float(value)

    return {
        "window_days": float(f.days),
        "tasks": [
            {
                "task": t.task,
                "calls": t.calls,
                "runs": t.runs,
                "runs_per_day": float(t.per_day),
                "input_tokens_per_run": float(t.input_tokens_per_run),
                "output_tokens_per_run": float(t.output_tokens_per_run),
                "steps_per_run": float(t.steps_per_run),
                "monthly_usd": {m.model: money(m.monthly_usd) for m in t.models},
            }
            for t in f.tasks
        ],
        "every_cycle": {
            "cycles_per_month": f.cycles_per_month,
            "monthly_usd": {m.model: money(m.monthly_usd) for m in f.every_cycle},
        },
    }


def forecast_text(f: Forecast) -> str:
    lines = [f"Expected monthly AI spend, from the last {f.days:g} days of this estate's ledger"]
    if not f.tasks:
        lines.append("  no model calls in the window: nothing to forecast from")
    for t in f.tasks:
        unit = "investigations" if t.task == "rca" else "calls"
        lines.append(
            f"  {t.task}: {t.per_day:.2f} {unit}/day · {t.input_tokens_per_run:,.0f} in / "
            f"{t.output_tokens_per_run:,.0f} out tokens"
            + (f" · {t.steps_per_run:.1f} steps" if t.task == "rca" else "")
            + " each"
        )
        for m in t.models:
            shown = "$0.00 (local)" if m.local else format_usd(m.monthly_usd)
            lines.append(f"    {m.model}: {shown} a month")
    if f.every_cycle:
        lines.append(
            f"  every cycle to the cloud instead ({f.cycles_per_month:,} cycles a month, "
            "input alone):"
        )
        for m in f.every_cycle:
            lines.append(f"    {m.model}: {format_usd(m.monthly_usd)} a month")
    return "\n".join(lines)
