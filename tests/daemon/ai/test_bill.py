"""The bill: requests priced on every model of the chains, a month of an estate."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from daemon.ai.bill import (
    CHARS_PER_TOKEN,
    approx_input_tokens,
    bill_text,
    make_bill,
    quote,
    runs_per_month,
)
from daemon.ai.pricing import MESSAGE_FRAMING_TOKENS
from daemon.config.load import load_settings
from daemon.config.settings import Settings
from daemon.llm.types import ModelRequest
from daemon.store.ledger import LedgerRow


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    path = tmp_path / "c.toml"
    path.write_text(
        '[daemon]\nstate_dir = "state"\n'
        '[routing]\ntriage = ["ollama/gemma4:27b"]\n'
        'rca = ["anthropic/claude-opus-4-6", "corp/in-house", "ollama/gemma4:27b"]\n'
        '[providers.corp]\napi = "openai"\nbase_url = "https://llm.corp.example/v1"\n'
        '[prices."corp/in-house"]\ninput_per_mtok = 1\noutput_per_mtok = 2\n'
        '[[checks]]\nname = "a"\ntype = "tcp"\nhost = "127.0.0.1"\nport = 1\ninterval = "30s"\n'
        '[[checks]]\nname = "b"\ntype = "tcp"\nhost = "127.0.0.1"\nport = 1\n'
        '[[checks]]\nname = "nightly"\ntype = "tcp"\nhost = "127.0.0.1"\nport = 1\n'
        'cron = "0 3 * * *"\n'
    )
    return load_settings(path)


REQUEST = ModelRequest.ask("x" * 3999, system="s" * 1000, max_output_tokens=1000)


def test_input_tokens_are_the_characters_built_at_four_a_token_plus_framing() -> None:
    assert approx_input_tokens(REQUEST) == math.ceil(4999 / CHARS_PER_TOKEN) + 2 * (
        MESSAGE_FRAMING_TOKENS
    )


def test_a_request_is_priced_on_each_model_local_at_zero_unknown_as_unknown(
    settings: Settings,
) -> None:
    tokens = approx_input_tokens(REQUEST)
    priced = quote(
        settings,
        "RCA",
        REQUEST,
        [*settings.routing.chain("rca"), "corp/unpriced"],
        output=True,
    )
    by_model = {q.model: q for q in priced.quotes}
    # claude-opus-4-6 lists $5 in and $25 out per million tokens
    assert by_model["anthropic/claude-opus-4-6"].usd == (
        Decimal(tokens) * 5 + Decimal(1000) * 25
    ) / Decimal(1_000_000)
    assert by_model["corp/in-house"].usd == (Decimal(tokens) * 1 + 1000 * 2) / Decimal(1_000_000)
    assert by_model["ollama/gemma4:27b"].text == "$0.00 (local)"
    assert by_model["corp/unpriced"].usd is None
    assert by_model["corp/unpriced"].text == "price unknown"
    input_only = quote(settings, "x", REQUEST, ["anthropic/claude-opus-4-6"], output=False)
    assert input_only.quotes[0].usd == Decimal(tokens) * 5 / Decimal(1_000_000)


def test_a_month_counts_each_checks_own_interval(settings: Settings) -> None:
    # 30 days: a every 30 s (86,400 runs), b every 60 s (43,200), nightly once a day (30)
    assert runs_per_month(settings) == (86_400 + 43_200 + 30, 86_400)


def test_with_no_model_the_bill_prices_what_was_built_and_the_alternative(
    settings: Settings,
) -> None:
    cycle = ModelRequest.ask("y" * 400)
    bill = make_bill(settings, calls=[], triage=REQUEST, rca=REQUEST, every_cycle=cycle)
    text = bill_text(bill)
    assert "No model ran the triage." in text and "No model ran the RCA." in text
    per_cycle = approx_input_tokens(cycle)
    opus_month = Decimal(per_cycle) * 5 / Decimal(1_000_000) * 86_400
    assert (
        f"every cycle sent to anthropic/claude-opus-4-6: at least ${opus_month:.2f}"
        f" (≈{per_cycle:,} tokens in per cycle, input alone)"
    ) in text
    assert "A month of this estate: 3 checks, 129,630 check runs in 86,400 cycles." in text
    assert "watched by local triage (ollama/gemma4:27b): $0.00" in text


def test_real_calls_replace_the_estimate_for_the_tasks_they_answered(
    settings: Settings,
) -> None:
    triage = LedgerRow(
        ts=datetime(2026, 12, 4, tzinfo=UTC),
        task="triage",
        provider="ollama",
        model="gemma4:27b",
        host="127.0.0.1:11434",
        input_tokens=1204,
        output_tokens=151,
        cost_usd=Decimal(0),
        outcome="ok",
        request_bytes=4000,
        local=True,
    )
    skipped = LedgerRow(
        ts=datetime(2026, 12, 4, tzinfo=UTC),
        task="rca",
        provider="anthropic",
        model="claude-opus-4-6",
        host="api.anthropic.com",
        cost_usd=Decimal(0),
        outcome="missing_key",
    )
    bill = make_bill(
        settings, calls=[triage, skipped], triage=REQUEST, rca=REQUEST, every_cycle=None
    )
    text = bill_text(bill)
    assert "No model ran the triage" not in text
    assert "No model ran the RCA" in text  # the RCA's only attempt was a skip
    row = next(line for line in text.splitlines() if line.startswith("triage"))
    assert row.split() == ["triage", "ollama/gemma4:27b", "local", "1,204", "151", "$0.00"]
    assert "(1 call this run)" in text
