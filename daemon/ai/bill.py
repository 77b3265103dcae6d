"""The bill: what the AI work of an incident cost — or would have cost on each model of the
configured chains — and a month of an estate watched by local triage against sending every
cycle to a cloud model.

Prices are list prices (genai-prices, or `[prices]`). When a request was built but no model
ran, its input is estimated from the prompt actually built (≈ 4 characters a token, schema
included) and its output is bounded by the request's own cap, so a figure is "at most" for
an incident and "at least" (input alone) for the every-cycle alternative: the comparison
never flatters watchkeeper.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from daemon.ai.pricing import MESSAGE_FRAMING_TOKENS, price
from daemon.ai.reports import sent
from daemon.ai.targets import price_overrides, resolve_target
from daemon.config.settings import Settings
from daemon.llm.types import ModelRequest, Usage
from daemon.models import ModelRef
from daemon.store.ledger import LedgerRow
from daemon.util.money import format_usd
from daemon.util.tables import table

CHARS_PER_TOKEN = 4
"""The usual rule of thumb for English text and JSON; a tokenizer would be exact."""
MONTH_S = 30 * 24 * 3600


@dataclass(frozen=True)
class Quote:
    model: str
    local: bool
    usd: Decimal | None
    """None when nobody knows this model's price."""

    @property
    def text(self) -> str:
        if self.local:
            return "$0.00 (local)"
        return "price unknown" if self.usd is None else format_usd(self.usd)


@dataclass(frozen=True)
class TaskQuote:
    """One request priced on several models: `input_tokens` estimated, output at its cap."""

    task: str
    input_tokens: int
    output_cap: int
    quotes: tuple[Quote, ...]


def approx_input_tokens(request: ModelRequest) -> int:
    """≈ tokens of the prompt, system text and output schema, plus the chat framing."""
    chars = len(request.system or "") + sum(len(m.content) for m in request.messages)
    schema = request.schema()
    if schema is not None:
        chars += len(json.dumps(schema))
    framing = MESSAGE_FRAMING_TOKENS * (len(request.messages) + 1)
    return math.ceil(chars / CHARS_PER_TOKEN) + framing


def quote(
    settings: Settings, task: str, request: ModelRequest, models: Sequence[str], *, output: bool
) -> TaskQuote:
    """`request` priced on each of `models`; with `output`, its whole output allowance is
    added (an upper bound), else input alone (a lower bound)."""
    tokens = approx_input_tokens(request)
    usage = Usage(input_tokens=tokens, output_tokens=request.max_output_tokens if output else 0)
    overrides = price_overrides(settings)
    quotes = []
    for text in dict.fromkeys(models):
        ref = ModelRef.parse(text)
        try:
            target = resolve_target(ref, settings.providers)
        except ValueError:
            continue  # an unknown provider: `config validate` says so elsewhere
        cost = price(usage, ref, api=target.api, local=target.local, overrides=overrides)
        quotes.append(Quote(text, target.local, cost))
    return TaskQuote(task, tokens, request.max_output_tokens if output else 0, tuple(quotes))


def cloud_models(settings: Settings) -> list[str]:
    """Every non-local model of the configured chains, in chain order."""
    found: list[str] = []
    for task in ("triage", "rca"):
        for text in settings.routing.chain(task):
            try:
                target = resolve_target(ModelRef.parse(text), settings.providers)
            except ValueError:
                continue
            if not target.local and text not in found:
                found.append(text)
    return found


def runs_per_month(settings: Settings) -> tuple[int, int]:
    """(check runs, cycles) in 30 days of the enabled interval checks (cron ones count once
    a day: their period is theirs to choose). A cycle is a run of the most frequent check."""
    periods = [
        spec.interval.total_seconds() if spec.interval is not None else 60.0
        for spec in settings.enabled_checks
        if spec.cron is None
    ]
    runs = sum(MONTH_S / p for p in periods) + 30 * sum(
        1 for spec in settings.enabled_checks if spec.cron is not None
    )
    cycles = MONTH_S / min(periods) if periods else 30
    return round(runs), round(cycles)


@dataclass(frozen=True)
class Bill:
    real: tuple[LedgerRow, ...]
    """Calls that left the machine during the run."""
    incident: tuple[TaskQuote, ...]
    """What triage and RCA would have cost per model (when no model ran them)."""
    every_cycle: TaskQuote | None
    """One cycle's every-result request, input alone, per cloud model."""
    checks: int
    runs: int
    cycles: int
    local_triage_calls: int
    triage_model: str | None


def make_bill(
    settings: Settings,
    *,
    calls: Sequence[LedgerRow],
    triage: ModelRequest | None,
    rca: ModelRequest | None,
    every_cycle: ModelRequest | None,
) -> Bill:
    real = tuple(r for r in calls if sent(r))
    clouds = cloud_models(settings)
    incident: list[TaskQuote] = []
    answered = {r.task for r in real if r.outcome == "ok"}
    if triage is not None and "triage" not in answered:
        models = [*settings.routing.chain("triage"), *clouds]
        incident.append(quote(settings, "triage", triage, models, output=True))
    if rca is not None and "rca" not in answered:
        incident.append(quote(settings, "RCA", rca, settings.routing.chain("rca"), output=True))
    cycle = None
    if every_cycle is not None and clouds:
        cycle = quote(settings, "every cycle", every_cycle, clouds, output=False)
    runs, cycles = runs_per_month(settings)
    local_triage = [r for r in real if r.task == "triage" and r.local]
    triage_chain = settings.routing.chain("triage")
    return Bill(
        real=real,
        incident=tuple(incident),
        every_cycle=cycle,
        checks=len(settings.enabled_checks),
        runs=runs,
        cycles=cycles,
        local_triage_calls=len(local_triage),
        triage_model=triage_chain[0] if triage_chain else None,
    )


def bill_text(bill: Bill) -> str:
    """The bill as the demo prints it (plain text)."""
    lines = ["The bill"]
    if bill.real:
        lines.append("What the models this run used cost (from the ledger):")
        rows = [
            [
                r.task,
                f"{r.provider}/{r.model}",
                "local" if r.local else r.host,
                f"{r.input_tokens:,}",
                f"{r.output_tokens:,}",
                format_usd(r.cost_usd) + ("" if r.outcome == "ok" else f" ({r.outcome})"),
            ]
            for r in bill.real
        ]
        lines.append(table(["task", "model", "where", "in", "out", "cost"], rows, "lllrrl"))
    for task in bill.incident:
        lines.append(
            f"No model ran the {task.task}. At list price it would have cost, for the "
            f"≈{task.input_tokens:,} tokens it built and at most {task.output_cap:,} out:"
        )
        lines.append(
            table(
                ["model", "at most"],
                [[q.model, q.text] for q in task.quotes],
                "ll",
            )
        )
    lines.append(
        f"A month of this estate: {bill.checks} checks, {bill.runs:,} check runs in "
        f"{bill.cycles:,} cycles."
    )
    triage = bill.triage_model or "no triage model"
    lines.append(
        f"  watched by local triage ({triage}): $0.00 — a local model, called only when "
        "something changes"
        + (
            f" ({bill.local_triage_calls} call{'s' if bill.local_triage_calls > 1 else ''} "
            "this run)"
            if bill.local_triage_calls
            else ""
        )
    )
    if bill.every_cycle is not None:
        per_cycle = bill.every_cycle.input_tokens
        for q in bill.every_cycle.quotes:
            month = None if q.usd is None else q.usd * bill.cycles
            shown = "price unknown" if month is None else f"at least {format_usd(month)}"
            lines.append(
                f"  every cycle sent to {q.model}: {shown} (≈{per_cycle:,} tokens in per "
                "cycle, input alone)"
            )
    return "\n".join(lines)
