"""`costs --forecast` against a hand-computed example."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from daemon.ai.forecast import forecast
from daemon.cli import main
from daemon.config.load import load_settings
from daemon.store import Store
from daemon.store.ledger import LedgerRow

CONFIG = """
[daemon]
state_dir = "state"
[routing]
triage = ["ollama/gemma4:27b", "openai/gpt-5.4"]
rca = ["openai/gpt-5.4", "ollama/gemma4:27b"]
[prices."openai/gpt-5.4"]
input_per_mtok = 2.00
output_per_mtok = 10.00
"""


def history(now: datetime) -> list[LedgerRow]:
    """10 days: 20 local triage calls (1,000 in / 100 out), 5 investigations of 2 turns each
    (3,000 in / 200 out a turn) on gpt-5.4, one failed call that must not count."""
    rows = []
    for i in range(20):
        rows.append(
            LedgerRow(ts=now - timedelta(hours=10 * i), task="triage", provider="ollama",
                      model="gemma4:27b", host="127.0.0.1", input_tokens=1000, output_tokens=100,
                      cost_usd=Decimal(0), outcome="ok", local=True)
        )  # fmt: skip
    for incident in range(1, 6):
        for _ in range(2):
            rows.append(
                LedgerRow(ts=now - timedelta(days=incident), task="rca", incident_id=incident,
                          provider="openai", model="gpt-5.4", host="api.openai.com",
                          input_tokens=3000, output_tokens=200, cost_usd=Decimal("0.008"),
                          outcome="ok")
            )  # fmt: skip
    rows.append(
        LedgerRow(ts=now, task="rca", incident_id=9, provider="openai", model="gpt-5.4",
                  host="api.openai.com", cost_usd=Decimal(0), outcome="rate_limited")
    )  # fmt: skip
    return rows


def test_forecast_matches_the_hand_computed_example(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    settings = load_settings(path)
    now = datetime(2026, 12, 4, tzinfo=UTC)
    result = forecast(
        settings, history(now), Decimal(10), every_cycle_tokens=5000, cycles_per_month=43_200
    )
    triage, rca = result.tasks
    # triage: 20 calls in 10 days = 2 a day; on gpt-5.4 each is 1,000 x $2/M + 100 x $10/M
    # = $0.003, 20 x $0.003 = $0.06 in 10 days = $0.18 a month.
    assert (triage.calls, triage.runs, triage.per_day) == (20, 20, Decimal(2))
    assert [(m.model, m.local, m.monthly_usd) for m in triage.models] == [
        ("ollama/gemma4:27b", True, Decimal(0)),
        ("openai/gpt-5.4", False, Decimal("0.18")),
    ]
    # rca: 5 investigations of 2 turns (6,000 in / 400 out each); a turn costs 3,000 x $2/M
    # + 200 x $10/M = $0.008; 10 turns = $0.08 in 10 days = $0.24 a month.
    assert (rca.calls, rca.runs, rca.per_day, rca.steps_per_run) == (10, 5, Decimal("0.5"), 2)
    assert (rca.input_tokens_per_run, rca.output_tokens_per_run) == (6000, 400)
    assert rca.models[0].monthly_usd == Decimal("0.24")
    # every cycle: 5,000 input tokens x $2/M = $0.01 a cycle x 43,200 cycles = $432.
    assert [(m.model, m.monthly_usd) for m in result.every_cycle] == [
        ("openai/gpt-5.4", Decimal("432"))
    ]


def test_costs_forecast_command_reads_the_ledger(tmp_path: Path, monkeypatch: object) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    settings = load_settings(path)
    now = datetime.now(UTC)
    with Store.open(settings.daemon.state_dir) as store:
        for row in history(now - timedelta(hours=1)):
            store.ledger.record(row)
    runner = CliRunner()
    shown = runner.invoke(main, ["costs", "--forecast", "--since", "30d", "-c", str(path)])
    assert shown.exit_code == 0, shown.output
    assert "rca: 0.17 investigations/day" in shown.output
    assert "6,000 in / 400 out tokens · 2.0 steps each" in shown.output
    data = json.loads(
        runner.invoke(
            main, ["costs", "--forecast", "--since", "30d", "--json", "-c", str(path)]
        ).output
    )
    rca = next(t for t in data["tasks"] if t["task"] == "rca")
    assert rca["runs"] == 5
    assert rca["monthly_usd"]["openai/gpt-5.4"] == pytest.approx(0.08, abs=1e-6)
