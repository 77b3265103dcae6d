"""What a model call costs, in exact Decimal USD, and the cost and audit reports over the ledger.

Pure: no I/O. An unknown price is `None`, never 0 (local models are a real 0), and prices come
only from the genai-prices data shipped in the package — never fetched from the internet.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal

import structlog

from daemon.llm.types import ModelRef, Usage

if TYPE_CHECKING:
    from daemon.ledger import LedgerRow

log = structlog.get_logger(__name__)

MTOK = Decimal(1_000_000)
_PROBE_TOKENS = 1000
"""Token count used to read per-million rates off genai-prices: far below any price tier."""

# APIs whose name is also their genai-prices provider id (Ollama has none: it is local).
PRICED_APIS = frozenset({"anthropic", "openai", "google", "cohere"})


@dataclass(frozen=True)
class PriceOverride:
    """A user's price for one `provider/model` (`[prices."provider/model"]`), USD per MTok."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None
    """Cache reads; None bills them at the input rate."""


@dataclass(frozen=True)
class Rates:
    """List price in USD per million tokens. `cached_input_per_mtok` is None when cache reads
    cost the same as input (no discount known)."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None


_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(ref: ModelRef, api: str, why: str) -> None:
    """Unknown prices repeat on every call; one line per model per process is enough."""
    key = str(ref)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(
        "model price unknown: its calls are recorded with cost unknown; set "
        f'[prices."{key}"] to price it',
        model=key,
        api=api,
        why=why,
    )


def price(
    usage: Usage,
    ref: ModelRef,
    *,
    api: str,
    local: bool,
    overrides: Mapping[str, PriceOverride],
) -> Decimal | None:
    """The cost of one call in USD: 0 for a local model, a user override, else genai-prices'
    list price for `api` (not the provider's name: an OpenAI-compatible LM Studio is priced
    as what it is). None when nobody knows the price."""
    if local:
        return Decimal(0)
    override = overrides.get(str(ref))
    if override is not None:
        return _override_price(usage, override)
    if api not in PRICED_APIS:
        _warn_once(ref, api, f"genai-prices has no prices for the {api!r} API")
        return None
    import genai_prices  # ~0.15 s to import; only paid when a cloud call is priced

    try:
        calculation = genai_prices.calc_price(
            genai_prices.Usage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_read_tokens=usage.cached_input_tokens,
                cache_write_tokens=usage.cache_write_tokens,
            ),
            ref.model,
            provider_id=api,
        )
    except LookupError as exc:
        _warn_once(ref, api, str(exc))
        return None
    except ValueError as exc:  # inconsistent counts, e.g. cache reads above total input
        log.warning("cannot price this call's usage", model=str(ref), why=str(exc))
        return None
    return calculation.total_price


def _override_price(usage: Usage, override: PriceOverride) -> Decimal:
    cached = usage.cached_input_tokens
    cached_rate = override.cached_input_per_mtok
    if cached_rate is None:
        cached_rate = override.input_per_mtok
    # cache writes (part of input_tokens) stay at the input rate
    total = (
        max(usage.input_tokens - cached, 0) * override.input_per_mtok
        + cached * cached_rate
        + usage.output_tokens * override.output_per_mtok
    )
    return total / MTOK


def price_rows(
    rows: Sequence[LedgerRow], ref: ModelRef, *, api: str, overrides: Mapping[str, PriceOverride]
) -> Decimal | None:
    """What the tokens of `rows` would cost on `ref` at list price — each call priced on its
    own, so tiered prices apply as they would. None when any price is unknown, never $0."""
    total = Decimal(0)
    for r in rows:
        usage = Usage(r.input_tokens, r.output_tokens, r.cached_input_tokens, 0, r.reasoning_tokens)
        cost = price(usage, ref, api=api, local=False, overrides=overrides)
        if cost is None:
            return None
        total += cost
    return total


def list_price(
    ref: ModelRef,
    *,
    api: str,
    local: bool,
    overrides: Mapping[str, PriceOverride],
) -> Rates | None:
    """Per-million rates for the `models` table; None when the price is unknown."""
    if local:
        return Rates(Decimal(0), Decimal(0), Decimal(0))
    override = overrides.get(str(ref))
    if override is not None:
        return Rates(
            override.input_per_mtok, override.output_per_mtok, override.cached_input_per_mtok
        )

    def probe(**counts: int) -> Decimal | None:
        return price(Usage(**counts), ref, api=api, local=False, overrides={})

    # A per-request fee, if any, is the price of nothing: subtract it from every probe.
    base = probe()
    inputs = probe(input_tokens=_PROBE_TOKENS)
    outputs = probe(output_tokens=_PROBE_TOKENS)
    cached = probe(input_tokens=_PROBE_TOKENS, cached_input_tokens=_PROBE_TOKENS)
    if base is None or inputs is None or outputs is None or cached is None:
        return None
    input_rate, output_rate, cached_rate = (
        _plain((probed - base) * MTOK / _PROBE_TOKENS) for probed in (inputs, outputs, cached)
    )
    return Rates(input_rate, output_rate, None if cached_rate == input_rate else cached_rate)


def _plain(value: Decimal) -> Decimal:
    """`5.000` -> `5`, `0.2500` -> `0.25` (and `10` stays `10`, not `1E+1`)."""
    return value.quantize(Decimal(1)) if value == value.to_integral() else value.normalize()


def estimate(
    prompt_chars: int,
    max_output_tokens: int,
    ref: ModelRef,
    *,
    api: str,
    local: bool,
    overrides: Mapping[str, PriceOverride],
) -> Decimal | None:
    """An upper bound for a call before it is made, for budget reservations: chars / 3 tokens
    of prompt (over-counts English by ~25 % on purpose), the whole output allowance, at list
    price without any cache discount."""
    usage = Usage(input_tokens=math.ceil(prompt_chars / 3), output_tokens=max_output_tokens)
    return price(usage, ref, api=api, local=local, overrides=overrides)


def format_usd(value: Decimal | None) -> str:
    """`$0.00` only for an exact zero; up to 4 decimals below $1 (`$0.0236`, `$0.12`), 2 from
    $1 (`$1.84`); `<$0.0001` for a tiny non-zero cost; `unknown` for None."""
    if value is None:
        return "unknown"
    if value == 0:
        return "$0.00"
    sign, amount = ("-", -value) if value < 0 else ("", value)
    fine = amount.quantize(Decimal("0.0001"), ROUND_HALF_UP)
    if fine == 0:
        return f"{sign}<$0.0001"
    if fine < 1:
        text = f"{fine:f}".rstrip("0")
        whole, _, decimals = text.partition(".")
        return f"{sign}${whole}.{decimals.ljust(2, '0')}"
    return f"{sign}${amount.quantize(Decimal('0.01'), ROUND_HALF_UP):,.2f}"


def format_rate(rates: Rates | None) -> str:
    """`$2.50 / $15.00 (cached $0.25)` per MTok, exact (rates are not rounded); `unknown`."""
    if rates is None:
        return "unknown"
    text = f"{_exact_usd(rates.input_per_mtok)} / {_exact_usd(rates.output_per_mtok)}"
    if rates.cached_input_per_mtok is not None:
        text += f" (cached {_exact_usd(rates.cached_input_per_mtok)})"
    return text


def _exact_usd(value: Decimal) -> str:
    whole, _, decimals = f"{value:f}".partition(".")
    return f"${whole}.{decimals.rstrip('0').ljust(2, '0')}"


# -- reports over ledger rows -------------------------------------------------------------------

GroupBy = Literal["day", "model", "task", "provider"]
GROUP_KEYS: Mapping[GroupBy, Callable[[LedgerRow], str]] = {
    "day": lambda r: r.ts.astimezone(UTC).strftime("%Y-%m-%d"),
    "model": lambda r: f"{r.provider}/{r.model}",
    "task": lambda r: r.task,
    "provider": lambda r: r.provider,
}

# Outcomes where no request left the machine: not evidence of a destination.
NOT_SENT = frozenset({"budget", "missing_key", "skipped"})


@dataclass
class GroupRow:
    key: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    """Known costs only; see `unknown_cost_calls`."""
    unknown_cost_calls: int = 0

    def add(self, row: LedgerRow) -> None:
        self.calls += 1
        self.input_tokens += row.input_tokens
        self.output_tokens += row.output_tokens
        if row.cost_usd is None:
            self.unknown_cost_calls += 1
        else:
            self.cost_usd += row.cost_usd

    @property
    def cost_text(self) -> str:
        """`$0.12`, `$0.12 + unknown`, or `unknown` when no call's price is known."""
        if not self.unknown_cost_calls:
            return format_usd(self.cost_usd)
        if self.unknown_cost_calls == self.calls:
            return "unknown"
        return f"{format_usd(self.cost_usd)} + unknown"


def group(rows: Iterable[LedgerRow], by: GroupBy) -> list[GroupRow]:
    """Totals per day (oldest first) or per model/task/provider (costliest first)."""
    key_of = GROUP_KEYS[by]
    groups: dict[str, GroupRow] = {}
    for row in rows:
        key = key_of(row)
        groups.setdefault(key, GroupRow(key)).add(row)
    if by == "day":
        return sorted(groups.values(), key=lambda g: g.key)
    return sorted(groups.values(), key=lambda g: (-g.cost_usd, g.key))


def _total(rows: Iterable[LedgerRow]) -> GroupRow:
    total = GroupRow("total")
    for row in rows:
        total.add(row)
    return total


def row_json(r: LedgerRow) -> dict[str, Any]:
    """One call as in `costs --json` (cost a JSON number, or null when unknown)."""
    return {
        "ts": r.ts.isoformat(),
        "task": r.task,
        "provider": r.provider,
        "model": r.model,
        "host": r.host,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "cached_input_tokens": r.cached_input_tokens,
        "reasoning_tokens": r.reasoning_tokens,
        "cost_usd": None if r.cost_usd is None else float(r.cost_usd),
        "latency_ms": r.latency_ms,
        "outcome": r.outcome,
        "incident_id": r.incident_id,
    }


def costs_json(rows: Sequence[LedgerRow], since: datetime) -> dict[str, Any]:
    """The `costs --json` document. Decimals become JSON numbers only here; an unknown cost is
    null, and `total_usd` (known costs) comes with `unknown_cost_calls`."""
    total = _total(rows)
    return {
        "since": since.isoformat(),
        "total_usd": float(total.cost_usd),
        "unknown_cost_calls": total.unknown_cost_calls,
        "calls": [row_json(r) for r in rows],
        "by_model": [
            {
                "model": g.key,
                "calls": g.calls,
                "input_tokens": g.input_tokens,
                "output_tokens": g.output_tokens,
                # null as soon as one call's price is unknown: never a silent undercount
                "cost_usd": None if g.unknown_cost_calls else float(g.cost_usd),
            }
            for g in group(rows, "model")
        ],
    }


def _table(header: Sequence[str], body: Sequence[Sequence[str]], align: str) -> str:
    """Columns padded to width; `align` has one `l` or `r` per column."""
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = []
    for line in [header, *body]:
        cells = [
            cell.ljust(w) if a == "l" else cell.rjust(w)
            for cell, w, a in zip(line, widths, align, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def costs_text(rows: Sequence[LedgerRow], since: datetime, by: GroupBy = "model") -> str:
    """A table of calls, tokens and cost per group, with a total line."""
    title = f"AI cost since {_when(since)}, by {by}"
    if not rows:
        return f"{title}\nno model calls"
    body = [
        [g.key, f"{g.calls:,}", f"{g.input_tokens:,}", f"{g.output_tokens:,}", g.cost_text]
        for g in [*group(rows, by), _total(rows)]
    ]
    return f"{title}\n" + _table([by, "calls", "input", "output", "cost"], body, "lrrrr")


@dataclass
class AuditRow:
    """Every model request one destination host received."""

    host: str
    calls: int
    bytes_sent: int
    key_sources: list[str]
    providers: list[str]
    first_ts: datetime
    last_ts: datetime


def audit(rows: Iterable[LedgerRow]) -> list[AuditRow]:
    """Per destination host, sorted by host. Rows where nothing was sent (budget, missing key,
    skipped) are not destinations; an attempt that failed on the way still counts."""
    hosts: dict[str, AuditRow] = {}
    for row in rows:
        if row.outcome in NOT_SENT:
            continue
        host = row.host or "(unknown host)"
        entry = hosts.get(host)
        if entry is None:
            entry = hosts[host] = AuditRow(host, 0, 0, [], [], row.ts, row.ts)
        entry.calls += 1
        entry.bytes_sent += row.request_bytes
        entry.key_sources = sorted({*entry.key_sources, row.key_source})
        entry.providers = sorted({*entry.providers, row.provider})
        entry.first_ts = min(entry.first_ts, row.ts)
        entry.last_ts = max(entry.last_ts, row.ts)
    return sorted(hosts.values(), key=lambda a: a.host)


def audit_json(rows: Iterable[LedgerRow], since: datetime) -> dict[str, Any]:
    return {
        "since": since.isoformat(),
        "hosts": [
            {
                "host": a.host,
                "calls": a.calls,
                "bytes_sent": a.bytes_sent,
                "key_sources": a.key_sources,
                "providers": a.providers,
                "first_ts": a.first_ts.isoformat(),
                "last_ts": a.last_ts.isoformat(),
            }
            for a in audit(rows)
        ],
    }


def audit_text(rows: Iterable[LedgerRow], since: datetime) -> str:
    title = f"Model requests by destination since {_when(since)}"
    entries = audit(rows)
    if not entries:
        return f"{title}\nno model requests were sent"
    header = ["host", "calls", "bytes sent", "providers", "key sources", "first", "last"]
    body = [
        [
            a.host,
            f"{a.calls:,}",
            f"{a.bytes_sent:,}",
            ", ".join(a.providers),
            ", ".join(a.key_sources),
            _when(a.first_ts),
            _when(a.last_ts),
        ]
        for a in entries
    ]
    return f"{title}\n" + _table(header, body, "lrrllll")
