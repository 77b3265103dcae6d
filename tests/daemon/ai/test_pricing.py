"""Pricing and cost reports. Expected figures are worked out by hand from the genai-prices 0.2.3
list rates (USD per million tokens) noted beside each test, not read back from the library."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from structlog.testing import capture_logs

from daemon.ai import pricing, reports
from daemon.ai.pricing import PriceOverride, Rates
from daemon.llm.types import ModelRequest, Usage
from daemon.models import ModelRef
from daemon.store.ledger import LedgerRow
from daemon.util.money import format_usd

OPUS = ModelRef("anthropic", "claude-opus-4-6")
GPT = ModelRef("openai", "gpt-5.4")
GEMINI = ModelRef("google", "gemini-3.1-pro-preview")
COMMAND = ModelRef("cohere", "command-a-03-2025")
T0 = datetime(2026, 11, 27, 14, 2, tzinfo=UTC)


def price(usage: Usage, ref: ModelRef, api: str | None = None, **kw: Any) -> Decimal | None:
    kw.setdefault("local", False)
    kw.setdefault("overrides", {})
    return pricing.price(usage, ref, api=api or ref.provider, **kw)


# -- price ------------------------------------------------------------------------------------


def test_anthropic_prices_cache_reads_and_writes_at_their_own_rates() -> None:
    # claude-opus-4-6: input $5, cache write $6.25, cache read $0.50, output $25 per MTok
    usage = Usage(
        input_tokens=10_000,
        output_tokens=1_000,
        cached_input_tokens=6_000,
        cache_write_tokens=2_000,
    )
    # uncached 2,000 x 5 = 10,000; reads 6,000 x 0.5 = 3,000; writes 2,000 x 6.25 = 12,500;
    # output 1,000 x 25 = 25,000 -> 50,500 / 1e6
    assert price(usage, OPUS) == Decimal("0.0505")


def test_openai_prices_cached_input_and_counts_reasoning_as_output() -> None:
    # gpt-5.4: input $2.50, cached input $0.25, output $15 per MTok (below the 272k tier)
    usage = Usage(
        input_tokens=20_000, output_tokens=3_000, cached_input_tokens=15_000, reasoning_tokens=2_000
    )
    # uncached 5,000 x 2.5 = 12,500; cached 15,000 x 0.25 = 3,750; output (reasoning included)
    # 3,000 x 15 = 45,000 -> 61,250 / 1e6
    assert price(usage, GPT) == Decimal("0.06125")


def test_gemini_thoughts_are_billed_as_output() -> None:
    # gemini-3.1-pro-preview: input $2, output $12 per MTok up to 200k input tokens
    usage = Usage(input_tokens=4_000, output_tokens=1_500, reasoning_tokens=1_000)
    # 4,000 x 2 = 8,000; 1,500 x 12 = 18,000 -> 26,000 / 1e6
    assert price(usage, GEMINI) == Decimal("0.026")


def test_gemini_long_prompt_pays_the_upper_tier_on_every_token() -> None:
    # above 200k input tokens: input $4, output $18 per MTok
    usage = Usage(input_tokens=250_000, output_tokens=2_000)
    # 250,000 x 4 = 1,000,000; 2,000 x 18 = 36,000 -> 1,036,000 / 1e6
    assert price(usage, GEMINI) == Decimal("1.036")


def test_cohere_command_a() -> None:
    # command-a-03-2025: input $2.50, output $10 per MTok
    usage = Usage(input_tokens=3_000, output_tokens=500)
    # 3,000 x 2.5 = 7,500; 500 x 10 = 5,000 -> 12,500 / 1e6
    assert price(usage, COMMAND) == Decimal("0.0125")


def test_override_wins_over_list_price_with_its_cached_rate() -> None:
    overrides = {"openai/gpt-5.4": PriceOverride(Decimal(1), Decimal(2), Decimal("0.1"))}
    usage = Usage(input_tokens=20_000, output_tokens=3_000, cached_input_tokens=15_000)
    # 5,000 x 1 + 15,000 x 0.1 + 3,000 x 2 = 12,500 -> / 1e6
    assert price(usage, GPT, overrides=overrides) == Decimal("0.0125")


def test_override_without_cached_rate_bills_cache_reads_and_writes_as_input() -> None:
    overrides = {"anthropic/claude-opus-4-6": PriceOverride(Decimal(1), Decimal(2))}
    usage = Usage(
        input_tokens=20_000,
        output_tokens=3_000,
        cached_input_tokens=15_000,
        cache_write_tokens=1_000,
    )
    # 20,000 x 1 + 3,000 x 2 = 26,000 -> / 1e6
    assert price(usage, OPUS, overrides=overrides) == Decimal("0.026")


def test_override_prices_a_model_genai_prices_does_not_know() -> None:
    ref = ModelRef("corp", "in-house-llm")
    overrides = {"corp/in-house-llm": PriceOverride(Decimal(3), Decimal(9))}
    # 1,000 x 3 + 1,000 x 9 = 12,000 -> / 1e6
    usage = Usage(input_tokens=1_000, output_tokens=1_000)
    assert price(usage, ref, api="openai", overrides=overrides) == Decimal("0.012")


def test_local_model_costs_exactly_zero_whatever_its_api_or_override() -> None:
    usage = Usage(input_tokens=50_000, output_tokens=5_000)
    lmstudio = ModelRef("lmstudio", "gpt-5.4")
    overrides = {"lmstudio/gpt-5.4": PriceOverride(Decimal(1), Decimal(1))}
    assert price(usage, lmstudio, api="openai", local=True, overrides=overrides) == Decimal(0)
    assert price(usage, ModelRef("ollama", "gemma4:27b"), local=True) == Decimal(0)


def test_a_remote_openai_compatible_provider_is_priced_by_its_api() -> None:
    usage = Usage(input_tokens=1_000, output_tokens=1_000)
    # 1,000 x 2.5 + 1,000 x 15 = 17,500 -> / 1e6
    assert price(usage, ModelRef("gateway", "gpt-5.4"), api="openai") == Decimal("0.0175")


def test_unknown_model_is_none_and_warned_once() -> None:
    ref = ModelRef("openai", "not-a-real-model-7f3a")
    with capture_logs() as logs:
        assert price(Usage(input_tokens=10, output_tokens=10), ref) is None
        assert price(Usage(input_tokens=99, output_tokens=1), ref) is None
    warnings = [e for e in logs if e.get("model") == str(ref)]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert 'prices."openai/not-a-real-model-7f3a"' in warnings[0]["event"]


def test_non_local_ollama_has_no_list_price() -> None:
    with capture_logs():
        assert price(Usage(input_tokens=10), ModelRef("gpu-box", "llama3"), api="ollama") is None


def test_inconsistent_usage_is_unknown_not_an_exception() -> None:
    with capture_logs():
        assert price(Usage(input_tokens=10, cached_input_tokens=20), OPUS) is None


# -- list price and estimate ------------------------------------------------------------------


def test_list_price_reads_per_million_rates() -> None:
    def rates(ref: ModelRef, **kw: Any) -> Rates | None:
        kw.setdefault("local", False)
        kw.setdefault("overrides", {})
        return pricing.list_price(ref, api=kw.pop("api", ref.provider), **kw)

    assert rates(OPUS) == Rates(Decimal(5), Decimal(25), Decimal("0.5"))
    assert rates(GPT) == Rates(Decimal("2.5"), Decimal(15), Decimal("0.25"))
    assert rates(COMMAND) == Rates(Decimal("2.5"), Decimal(10), None)  # no cache discount
    assert rates(ModelRef("ollama", "gemma4:27b"), api="ollama", local=True) == Rates(
        Decimal(0), Decimal(0), Decimal(0)
    )
    override = PriceOverride(Decimal(1), Decimal(2))
    assert rates(GPT, overrides={"openai/gpt-5.4": override}) == Rates(Decimal(1), Decimal(2), None)
    with capture_logs():
        assert rates(ModelRef("openai", "not-a-real-model-91c2")) is None


def ask(prompt: str, max_output_tokens: int) -> ModelRequest:
    return ModelRequest.ask(prompt, max_output_tokens=max_output_tokens)


def test_estimate_counts_a_token_per_byte_the_framing_and_the_whole_output_allowance() -> None:
    # 3,001 bytes + 2 x 16 framing = 3,033 prompt tokens x $5 + 1,024 x $25 = 40,765 / 1e6
    got = pricing.estimate(
        ask("x" * 3_001, 1_024), OPUS, api="anthropic", local=False, overrides={}
    )
    assert got == Decimal("0.040765")


def test_estimate_is_not_below_a_typical_actual_call() -> None:
    prompt = (
        "The checkout-api health check returned 503 three times in a row; the session cache "
        "stopped answering at 13:55, right after the deploy. Explain the likely root cause. "
    ) * 20
    # English runs ~4 chars per token: the real call sees about chars / 4 input tokens and
    # answers with less than its allowance
    actual = price(Usage(input_tokens=len(prompt) // 4, output_tokens=700), GPT)
    estimated = pricing.estimate(ask(prompt, 1_024), GPT, api="openai", local=False, overrides={})
    assert actual is not None and estimated is not None
    assert estimated >= actual


@pytest.mark.parametrize(
    "text",
    [
        # CJK: 3 bytes a character
        "数据库连接超时\u3001缓存节点内存不足\u3001结账服务返回五百零二错误\u3002" * 60,
        "Ошибка подключения к базе данных, кэш переполнен. " * 60,  # Cyrillic: 2 bytes a char
        "🔥💥🚨" * 400,  # 4 bytes a char
    ],
)
def test_the_estimate_bounds_any_script_even_at_one_token_per_byte(text: str) -> None:
    """Byte-level tokenizers never count more tokens than bytes: the worst a dense script can
    do is one token per byte, and the reservation still covers it (chars / 3 did not)."""
    worst = price(Usage(input_tokens=len(text.encode()), output_tokens=1_024), OPUS)
    estimated = pricing.estimate(ask(text, 1_024), OPUS, api="anthropic", local=False, overrides={})
    assert worst is not None and estimated is not None
    assert estimated >= worst
    old_rule = price(Usage(input_tokens=-(-len(text) // 3), output_tokens=1_024), OPUS)
    assert old_rule is not None and old_rule < worst  # what the attack review exploited


def test_local_estimate_is_zero_and_unknown_estimate_is_none() -> None:
    ref = ModelRef("ollama", "gemma4:27b")
    assert pricing.estimate(ask("x" * 9_000, 512), ref, api="ollama", local=True, overrides={}) == 0
    with capture_logs():
        unknown = ModelRef("openai", "not-a-real-model-c0de")
        estimated = pricing.estimate(
            ask("x" * 9_000, 512), unknown, api="openai", local=False, overrides={}
        )
        assert estimated is None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "unknown"),
        (Decimal(0), "$0.00"),
        (Decimal("0.0236"), "$0.0236"),
        (Decimal("0.12"), "$0.12"),
        (Decimal("0.5"), "$0.50"),
        (Decimal("0.023649"), "$0.0236"),
        (Decimal("0.00001"), "<$0.0001"),
        (Decimal("1.8449"), "$1.84"),
        (Decimal("1.845"), "$1.85"),
        (Decimal("1234.5"), "$1,234.50"),
        (Decimal("0.99996"), "$1.00"),
    ],
)
def test_format_usd(value: Decimal | None, text: str) -> None:
    assert format_usd(value) == text


# -- reports ----------------------------------------------------------------------------------


def row(**kw: Any) -> LedgerRow:
    values: dict[str, Any] = {
        "ts": T0,
        "task": "rca",
        "provider": "anthropic",
        "model": "claude-opus-4-6",
        "host": "api.anthropic.com",
        "input_tokens": 2_310,
        "output_tokens": 480,
        "cost_usd": Decimal("0.0236"),
        "latency_ms": 812.5,
        "outcome": "ok",
        "request_bytes": 9_000,
        "key_source": "keyring",
    }
    values.update(kw)
    return LedgerRow(**values)


@pytest.fixture
def rows() -> Iterator[list[LedgerRow]]:
    yield [
        row(incident_id=42),
        row(ts=T0 + timedelta(minutes=5), incident_id=42, cost_usd=Decimal("0.0100")),
        row(
            ts=T0 - timedelta(days=1),
            task="triage",
            provider="ollama",
            model="gemma4:27b",
            host="127.0.0.1:11434",
            cost_usd=Decimal(0),
            local=True,
            key_source="none",
            input_tokens=1_204,
            output_tokens=151,
        ),
        row(
            task="security",
            provider="corp",
            model="in-house",
            host="llm.corp.example",
            cost_usd=None,
            key_source="env",
            input_tokens=100,
            output_tokens=10,
            latency_ms=None,
        ),
        row(
            ts=T0 + timedelta(minutes=9),
            outcome="budget",
            host="api.anthropic.com",
            cost_usd=Decimal(0),
            input_tokens=0,
            output_tokens=0,
            request_bytes=0,
            latency_ms=None,
            key_source="none",
        ),
    ]


def test_costs_json_contract(rows: list[LedgerRow]) -> None:
    doc = reports.costs_json(rows, T0 - timedelta(days=2))
    json.dumps(doc)  # plain JSON types only
    assert set(doc) == {"since", "total_usd", "unknown_cost_calls", "calls", "skipped", "by_model"}
    assert doc["since"] == "2026-11-25T14:02:00+00:00"
    assert doc["total_usd"] == pytest.approx(0.0336)
    assert doc["unknown_cost_calls"] == 1
    call_keys = {
        "ts",
        "task",
        "provider",
        "model",
        "host",
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "reasoning_tokens",
        "cost_usd",
        "latency_ms",
        "outcome",
        "incident_id",
    }
    assert all(set(call) == call_keys for call in doc["calls"])
    first = doc["calls"][0]
    assert first["cost_usd"] == 0.0236 and isinstance(first["cost_usd"], float)
    assert first["ts"] == "2026-11-27T14:02:00+00:00"
    assert first["incident_id"] == 42 and first["latency_ms"] == 812.5
    assert doc["calls"][2]["cost_usd"] == 0  # local: a real zero
    assert doc["calls"][3]["cost_usd"] is None  # unknown stays unknown
    by_model = {m["model"]: m for m in doc["by_model"]}
    assert set(by_model["anthropic/claude-opus-4-6"]) == {
        "model",
        "calls",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    }
    # the budget-denied attempt is a skip, listed apart with its reason, not a call
    assert by_model["anthropic/claude-opus-4-6"]["calls"] == 2
    assert by_model["anthropic/claude-opus-4-6"]["cost_usd"] == pytest.approx(0.0336)
    assert [(s["outcome"], s["model"]) for s in doc["skipped"]] == [("budget", "claude-opus-4-6")]
    assert len(doc["calls"]) == 4
    assert by_model["ollama/gemma4:27b"]["cost_usd"] == 0
    assert by_model["corp/in-house"]["cost_usd"] is None


def test_costs_json_of_nothing_is_zero_with_no_unknowns() -> None:
    doc = reports.costs_json([], T0)
    assert doc["total_usd"] == 0 and doc["unknown_cost_calls"] == 0
    assert doc["calls"] == [] and doc["by_model"] == []


def test_group_by_day_is_chronological(rows: list[LedgerRow]) -> None:
    days = reports.group(rows, "day")
    assert [g.key for g in days] == ["2026-11-26", "2026-11-27"]
    assert (days[0].calls, days[0].cost_usd, days[0].unknown_cost_calls) == (1, Decimal(0), 0)
    assert (days[1].calls, days[1].cost_usd, days[1].unknown_cost_calls) == (
        4,
        Decimal("0.0336"),
        1,
    )


def test_group_by_model_task_provider(rows: list[LedgerRow]) -> None:
    by_model = reports.group(rows, "model")
    assert [g.key for g in by_model] == [
        "anthropic/claude-opus-4-6",
        "corp/in-house",
        "ollama/gemma4:27b",
    ]
    assert by_model[0].input_tokens == 4_620 and by_model[0].output_tokens == 960
    by_task = {g.key: g for g in reports.group(rows, "task")}
    assert set(by_task) == {"rca", "triage", "security"}
    assert by_task["rca"].calls == 3 and by_task["rca"].cost_usd == Decimal("0.0336")
    by_provider = {g.key: g.cost_text for g in reports.group(rows, "provider")}
    assert by_provider == {"anthropic": "$0.0336", "ollama": "$0.00", "corp": "unknown"}


def test_costs_text_marks_unknown_and_totals(rows: list[LedgerRow]) -> None:
    text = reports.costs_text(rows, T0 - timedelta(days=2), "day")
    lines = text.splitlines()
    assert lines[0] == "AI cost since 2026-11-25 14:02 UTC, by day"
    assert lines[1].split() == ["day", "calls", "input", "output", "cost"]
    assert lines[2].split() == ["2026-11-26", "1", "1,204", "151", "$0.00"]
    assert lines[3].split() == ["2026-11-27", "3", "4,720", "970", "$0.0336", "+", "unknown"]
    assert lines[4].split() == ["total", "4", "5,924", "1,121", "$0.0336", "+", "unknown"]
    assert lines[5] == "skipped, never sent: 1 (budget 1)"
    assert reports.costs_text([], T0, "model").endswith("no model calls were sent")
    only_skips = reports.costs_text(rows[-1:], T0, "model").splitlines()
    assert only_skips[1:] == ["no model calls were sent", "skipped, never sent: 1 (budget 1)"]


def test_audit_lists_every_destination_that_received_requests(rows: list[LedgerRow]) -> None:
    entries = reports.audit(rows)
    assert [a.host for a in entries] == ["127.0.0.1:11434", "api.anthropic.com", "llm.corp.example"]
    anthropic = entries[1]
    assert anthropic.calls == 2  # the budget-denied row sent nothing
    assert anthropic.bytes_sent == 18_000
    assert anthropic.key_sources == ["keyring"] and anthropic.providers == ["anthropic"]
    assert (anthropic.first_ts, anthropic.last_ts) == (T0, T0 + timedelta(minutes=5))
    doc = reports.audit_json(rows, T0 - timedelta(days=2))
    json.dumps(doc)
    assert doc["hosts"][1] == {
        "host": "api.anthropic.com",
        "calls": 2,
        "bytes_sent": 18_000,
        "key_sources": ["keyring"],
        "providers": ["anthropic"],
        "first_ts": "2026-11-27T14:02:00+00:00",
        "last_ts": "2026-11-27T14:07:00+00:00",
    }
    text = reports.audit_text(rows, T0 - timedelta(days=2))
    assert "api.anthropic.com" in text and "18,000" in text and "llm.corp.example" in text
    assert "no model requests were sent" in reports.audit_text([], T0)


@pytest.mark.parametrize(
    ("rates", "text"),
    [
        (None, "unknown"),
        (Rates(Decimal(5), Decimal(25), Decimal("0.5")), "$5.00 / $25.00 (cached $0.50)"),
        (Rates(Decimal("1.25"), Decimal(10), Decimal("0.125")), "$1.25 / $10.00 (cached $0.125)"),
        (Rates(Decimal("2.5"), Decimal(10), None), "$2.50 / $10.00"),
    ],
)
def test_format_rate(rates: Rates | None, text: str) -> None:
    assert pricing.format_rate(rates) == text


def test_row_json_is_one_call_of_costs_json(rows: list[LedgerRow]) -> None:
    doc = reports.costs_json(rows, T0)
    assert [reports.row_json(r) for r in rows if reports.sent(r)] == doc["calls"]
    assert [{**reports.row_json(r), "reason": r.detail} for r in rows[-1:]] == doc["skipped"]


def test_a_cost_block_never_shows_unknown_costs_as_zero() -> None:
    unknown = row(cost_usd=None, outcome="timeout")
    only_unknown = reports.CostBlock(
        calls=[unknown],
        incident_total=None,
        today=reports.Total.of([unknown]),
        month=reports.Total.of([unknown]),
    )
    text = reports.cost_text(only_unknown)
    assert "today unknown · month unknown" in text
    assert "$0.00" not in text.split("\n")[-1]
    mixed = reports.Total.of([unknown, row(cost_usd=Decimal("0.0236"))])
    assert (mixed.text, mixed.usd) == ("$0.0236 + unknown", None)
    known = reports.Total.of([row(cost_usd=Decimal("0.0236")), row(cost_usd=Decimal(0))])
    assert (known.text, known.usd) == ("$0.0236", Decimal("0.0236"))
