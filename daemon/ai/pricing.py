"""What a model call costs, in exact Decimal USD: list prices, user overrides, estimates.

Pure: no I/O. An unknown price is `None`, never 0 (local models are a real 0), and prices come
only from the genai-prices data shipped in the package — never fetched from the internet.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog

from daemon.llm import PROVIDERS, provider_info
from daemon.llm.types import ModelRequest, Usage
from daemon.models import ModelRef

if TYPE_CHECKING:
    from daemon.store.ledger import LedgerRow

log = structlog.get_logger(__name__)

MTOK = Decimal(1_000_000)
MESSAGE_FRAMING_TOKENS = 16
"""Role markers and separators a chat template adds per message (generous on purpose)."""
_PROBE_TOKENS = 1000
"""Token count used to read per-million rates off genai-prices: far below any price tier."""


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
    if api not in PROVIDERS or not provider_info(api).priced:
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
    request: ModelRequest,
    ref: ModelRef,
    *,
    api: str,
    local: bool,
    overrides: Mapping[str, PriceOverride],
) -> Decimal | None:
    """An upper bound for a call before it is made, for budget reservations: one token per
    byte of prompt (no tokenizer counts fewer: dense scripts cannot slip past the budget),
    plus a few per message for the chat framing, the whole output allowance, at list price
    without any cache discount."""
    framing = MESSAGE_FRAMING_TOKENS * (len(request.messages) + 1)
    usage = Usage(
        input_tokens=request.prompt_bytes() + framing,
        output_tokens=request.max_output_tokens,
    )
    return price(usage, ref, api=api, local=local, overrides=overrides)


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
