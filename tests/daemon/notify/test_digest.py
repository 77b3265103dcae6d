"""The daily digest: figures from a real store and ledger, rendering, and the model summary."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from daemon.ai.pricing import PriceOverride
from daemon.ai.runner import AI
from daemon.config.load import load_settings
from daemon.config.settings import Settings
from daemon.models import CheckResult, EngineState, Incident, Severity, Status, fingerprint
from daemon.notify.digest import collect, digest, render_digest
from daemon.store import Store
from daemon.store.ledger import LedgerRow
from tests.peers.providers.anthropic import FakeAnthropic
from tests.peers.providers.ollama import FakeOllama

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
DAY0 = datetime(2026, 11, 26, tzinfo=UTC)
OPUS = "anthropic/claude-opus-4-6"


def at(hour: int, minute: int = 0, day: int = 26) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def result(check: str, when: datetime, status: Status) -> CheckResult:
    return CheckResult(check=check, status=status, evidence=f"{check} {status}", started_at=when)


def incident(
    incident_id: int,
    check: str,
    opened: datetime,
    resolved: datetime | None = None,
    severity: Severity = Severity.HIGH,
) -> Incident:
    return Incident(
        id=incident_id,
        fingerprint=fingerprint(check),
        check=check,
        severity=severity,
        status="open" if resolved is None else "resolved",
        opened_at=opened,
        resolved_at=resolved,
        evidence="503",
    )


def call(
    task: str,
    ref: str,
    when: datetime,
    tokens: tuple[int, int] = (0, 0),
    cost: Decimal | None = Decimal(0),
    outcome: str = "ok",
) -> LedgerRow:
    provider, model = ref.split("/", 1)
    return LedgerRow(
        ts=when,
        task=task,
        provider=provider,
        model=model,
        host="127.0.0.1" if provider == "ollama" else f"api.{provider}.com",
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cost_usd=cost,
        outcome=outcome,
        local=provider == "ollama",
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "state") as s:
        yield s


@pytest.fixture
def busy_day(store: Store) -> Store:
    """Three checks, six incidents (four touching the window) and seven ledger rows."""
    results = [
        result("api", at(9), "ok"),
        result("api", at(10), "failing"),
        result("api", at(11), "ok"),
        result("db_primary", at(9), "degraded"),
        result("db_primary", at(10), "degraded"),
        result("cache", at(9), "ok"),
        result("cache", at(12), "failing"),
        result("cache", at(13), "error"),
        result("old", at(7, day=26), "failing"),  # before the window: neither counted nor shown
    ]
    still_open = [
        incident(3, "cache", at(7, day=27), severity=Severity.CRITICAL),
        incident(6, "web", at(9, day=23), severity=Severity.LOW),
    ]
    resolved = [
        incident(1, "api", at(10), at(10, 14)),
        incident(2, "api", at(15), at(15, 30)),
        incident(4, "db_primary", at(9, day=25), at(9), severity=Severity.MEDIUM),
        incident(5, "api", at(9, day=24), at(10, day=24)),  # entirely before the window
    ]
    state = EngineState(incidents={i.id: i for i in still_open}, next_incident_id=7)
    store.incidents.commit_cycle(results, state, [], resolved, [], now=NOW)
    ledger = store.ledger
    for row in [
        call("triage", "ollama/gemma4:27b", at(10), (1000, 100)),
        call("triage", "ollama/gemma4:27b", at(12), (1000, 100)),
        call("triage", "ollama/gemma4:27b", at(13), outcome="unreachable"),
        call("rca", OPUS, at(10, 5), (1000, 200), Decimal("0.01")),
        call("rca", "openai/gpt-9", at(12, 5), (500, 50), None),
        call("rca", OPUS, at(13, 5), outcome="missing_key"),
        call("rca", OPUS, at(7), (9000, 900), Decimal(5)),  # before the window
        call("digest", "ollama/gemma4:27b", NOW, (10, 10)),  # the next window's
    ]:
        ledger.record(row)
    return store


def test_check_figures_count_results_in_the_window_by_status(busy_day: Store) -> None:
    checks = collect(busy_day, NOW).checks
    assert checks.results == {"ok": 3, "degraded": 2, "failing": 2, "error": 1}
    assert checks.total == 8 and checks.checks_seen == 3
    assert checks.not_ok == [("cache", "error"), ("db_primary", "degraded")]


def test_incident_figures_cover_opened_resolved_and_still_open(busy_day: Store) -> None:
    incidents = collect(busy_day, NOW).incidents
    assert [i.id for i in incidents.opened] == [1, 2, 3]
    assert [i.id for i in incidents.resolved] == [4, 1, 2]
    assert [i.id for i in incidents.still_open] == [6, 3]
    assert incidents.mean_to_resolve == timedelta(minutes=14 + 30 + 24 * 60) / 3
    assert incidents.max_to_resolve == timedelta(days=1)
    assert incidents.noisiest == [("api", 2)]


def test_ai_figures_split_local_cloud_and_keep_unknown_costs_unknown(busy_day: Store) -> None:
    ai = collect(busy_day, NOW).ai
    assert (ai.total.calls, ai.total.input_tokens, ai.total.output_tokens) == (4, 3500, 450)
    assert ai.total.cost_text == "$0.01 + unknown"
    assert (ai.cloud.calls, ai.cloud.cost_text) == (2, "$0.01 + unknown")
    # the unreachable triage and the rca without a key never left: skips, not calls
    assert (ai.served_local, ai.served_cloud, ai.failed) == (2, 2, 0)
    assert ai.not_sent == {"no key": 1, "unreachable": 1}
    assert {g.key: (g.calls, g.cost_text) for g in ai.by_task} == {
        "rca": (2, "$0.01 + unknown"),
        "triage": (2, "$0.00"),
    }
    assert {g.key: g.cost_text for g in ai.by_model} == {
        OPUS: "$0.01",
        "openai/gpt-9": "unknown",
        "ollama/gemma4:27b": "$0.00",
    }
    assert ai.local_models == {"ollama/gemma4:27b"}
    assert ai.local_triage_calls == 2 and ai.triage_saved_usd is None


def test_local_triage_is_priced_at_the_reference_models_list_price(busy_day: Store) -> None:
    ai = collect(busy_day, NOW, reference_model=OPUS).ai
    # claude-opus-4-6 at $5 / $25 per MTok: 2 * (1000 * 5 + 100 * 25) / 1e6
    assert ai.triage_saved_usd == Decimal("0.015")
    text = render_digest(collect(busy_day, NOW, reference_model=OPUS)).body
    assert f"Local triage saved $0.015 today vs {OPUS} (2 calls at list price)" in text


def test_reference_model_is_priced_as_its_api(busy_day: Store) -> None:
    ref, api = "gateway/claude-opus-4-6", "anthropic"
    data = collect(busy_day, NOW, reference_model=ref, reference_api=api)
    assert data.ai.triage_saved_usd == Decimal("0.015")


def test_a_price_override_for_the_reference_model_wins(busy_day: Store) -> None:
    overrides = {"gateway/big": PriceOverride(Decimal(10), Decimal(30))}
    data = collect(busy_day, NOW, reference_model="gateway/big", overrides=overrides)
    # 2 * (1000 * $10 + 100 * $30) / 1e6
    assert data.ai.triage_saved_usd == Decimal("0.026")


def test_unknown_reference_price_is_shown_as_unknown(busy_day: Store) -> None:
    data = collect(busy_day, NOW, reference_model="acme/mystery")
    assert data.ai.triage_saved_usd is None
    body = render_digest(data).body
    assert "Local triage savings vs acme/mystery: unknown" in body
    assert "saved $" not in body


def test_busy_day_renders_every_figure(busy_day: Store) -> None:
    message = render_digest(collect(busy_day, NOW, reference_model=OPUS))
    assert message.title == (
        "watchkeeper daily digest — 27 Nov: 3 incidents (2 open), 8 checks, AI $0.01 + unknown"
    )
    assert message.notify_type == "info"
    assert message.body == "\n".join(
        [
            "Window: 26 Nov 08:00 → 27 Nov 08:00 UTC",
            "",
            "**Checks:** 8 results from 3 checks: 3 ok · 2 degraded · 2 failing · 1 error",
            "Not ok now: cache (error), db\\_primary (degraded)",
            "",
            "**Incidents:** 3 opened · 3 resolved · 2 still open",
            "Time to resolve: mean 8h 14m · max 1d",
            "Noisiest: api (2)",
            "Open now: #6 web (low, 3d 23h), #3 cache (critical, 1h)",
            "",
            "**AI:** 4 calls · 3,500 in / 450 out · $0.01 + unknown · cloud $0.01 + unknown",
            "Served: 2 local (50%) · 2 cloud (50%) · 2 not sent (no key 1, unreachable 1)",
            "By task:",
            "- rca: 2 calls, 1,500 in / 250 out, $0.01 + unknown",
            "- triage: 2 calls, 2,000 in / 200 out, $0.00",
            "By model:",
            "- anthropic/claude-opus-4-6: 1 call, 1,000 in / 200 out, $0.01",
            "- ollama/gemma4:27b (local): 2 calls, 2,000 in / 200 out, $0.00",
            "- openai/gpt-9: 1 call, 500 in / 50 out, unknown",
            f"Local triage saved $0.015 today vs {OPUS} (2 calls at list price)",
        ]
    )


def test_empty_day_renders_sensibly(store: Store) -> None:
    message = render_digest(collect(store, NOW, reference_model=OPUS))
    assert message.title == "watchkeeper daily digest — 27 Nov: no incidents, 0 checks, AI $0.00"
    assert message.body == "\n".join(
        [
            "Window: 26 Nov 08:00 → 27 Nov 08:00 UTC",
            "",
            "**Checks:** no results recorded",
            "",
            "**Incidents:** none",
            "",
            "**AI:** no model calls",
        ]
    )


def test_unknown_costs_are_never_shown_as_zero(store: Store) -> None:
    store.ledger.record(call("rca", "openai/gpt-9", at(12), (500, 50), None))
    message = render_digest(collect(store, NOW))
    assert message.title.endswith("AI unknown")
    assert "$0.00" not in message.title + message.body
    assert "- openai/gpt-9: 1 call, 500 in / 50 out, unknown" in message.body


def test_times_are_shown_in_the_zone_of_now(busy_day: Store) -> None:
    paris = NOW.astimezone(ZoneInfo("Europe/Paris"))
    body = render_digest(collect(busy_day, paris)).body
    assert body.startswith("Window: 26 Nov 09:00 → 27 Nov 09:00 CET")
    assert "Open now: #6 web (low, 3d 23h), #3 cache (critical, 1h)" in body


def test_a_long_list_of_open_incidents_is_cut(store: Store) -> None:
    still_open = {n: incident(n, f"c{n}", at(9)) for n in range(1, 13)}
    store.incidents.commit_cycle(
        [], EngineState(incidents=still_open, next_incident_id=13), [], [], []
    )
    body = render_digest(collect(store, NOW)).body
    assert "**Incidents:** 12 opened · 0 resolved · 12 still open" in body
    assert "Open now: #1 c1 (high, 23h), #2 c2" in body
    assert body.endswith("#10 c10 (high, 23h) and 2 more\n\n**AI:** no model calls")


# -- the model summary ----------------------------------------------------------------------------


def settings_for(tmp_path: Path, ollama_url: str, extra: str = "") -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "state"\n[providers.ollama]\nbase_url = "{ollama_url}"\n{extra}',
        encoding="utf-8",
    )
    return load_settings(path)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_summary_from_the_local_model_is_prepended_and_labelled(
    busy_day: Store, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    reply = "A quiet day.\nThe cache incident is still open."
    with FakeOllama(reply=reply, prompt_eval_count=800, eval_count=40) as fake:
        ai = AI(settings_for(tmp_path, fake.url), busy_day, client, now=lambda: NOW)
        message, result = await digest(busy_day, ai, NOW, reference_model=OPUS)
        [body] = fake.bodies()
    plain = render_digest(collect(busy_day, NOW, reference_model=OPUS))
    assert message.title == plain.title
    assert message.body == (
        "Summary (ollama/gemma4:27b, local): A quiet day. The cache incident is still open.\n\n"
        + plain.body
    )
    assert body["options"]["num_predict"] == 200
    assert body["messages"][0]["role"] == "system"
    assert plain.title in body["messages"][1]["content"]
    assert "Not ok now: cache (error)" in body["messages"][1]["content"]
    assert result is not None and result.ok
    [row] = result.calls
    assert (row.task, row.local, row.cost_usd, row.ts) == ("digest", True, Decimal(0), NOW)
    # recorded at NOW: outside today's [since, NOW) window, inside tomorrow's
    tomorrow = collect(busy_day, NOW + timedelta(days=1)).ai
    assert [(g.key, g.calls) for g in tomorrow.by_task] == [("digest", 2)]


async def test_without_a_reachable_model_the_digest_is_deterministic_and_says_why(
    busy_day: Store, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    ai = AI(settings_for(tmp_path, closed_port_url()), busy_day, client, now=lambda: NOW)
    message, result = await digest(busy_day, ai, NOW)
    plain = render_digest(collect(busy_day, NOW))
    first, _, rest = message.body.partition("\n\n")
    assert first.startswith("(no model summary: ollama/gemma4:27b: unreachable")
    assert rest == plain.body and message.title == plain.title
    assert result is not None and not result.ok
    assert [r.outcome for r in result.calls] == ["unreachable"]


async def test_without_an_ai_layer_the_digest_is_labelled(busy_day: Store) -> None:
    message, result = await digest(busy_day, None, NOW)
    assert result is None
    assert message.body.startswith("(no model summary: AI is not configured)\n\nWindow: ")


async def test_an_empty_reply_is_no_summary(
    busy_day: Store, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    with FakeOllama(reply="  \n ") as fake:
        ai = AI(settings_for(tmp_path, fake.url), busy_day, client, now=lambda: NOW)
        message, result = await digest(busy_day, ai, NOW)
    assert message.body.startswith(
        "(no model summary: ollama/gemma4:27b returned an empty reply)\n\nWindow: "
    )
    assert result is not None and [r.outcome for r in result.calls] == ["ok"]


async def test_a_cloud_summary_is_labelled_with_its_cost(
    busy_day: Store, tmp_path: Path, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-ant-digest-test-0123456789"
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    usage = {"input_tokens": 1000, "output_tokens": 200}
    with FakeAnthropic(key=key, reply="One critical cache incident is open.", usage=usage) as fake:
        extra = f'[providers.anthropic]\nbase_url = "{fake.url}"\n[routing]\ndigest = ["{OPUS}"]\n'
        settings = settings_for(tmp_path, closed_port_url(), extra)
        ai = AI(settings, busy_day, client, now=lambda: NOW)
        message, result = await digest(busy_day, ai, NOW)
    assert message.body.startswith(
        f"Summary ({OPUS}, cloud $0.01): One critical cache incident is open.\n\nWindow: "
    )
    assert result is not None and result.cost_usd == Decimal("0.01")


def test_the_digest_lists_what_happened_while_paging_was_held(store: Store) -> None:
    from daemon.models import IncidentEvent

    why = "maintenance backup: nightly dump until 2026-11-27 03:00 UTC"
    db = incident(8, "db", at(1, 10, day=27), at(1, 40, day=27))

    def held(kind: str, when: datetime) -> IncidentEvent:
        return IncidentEvent(
            incident_id=8,
            kind=kind,  # type: ignore[arg-type]
            at=when,
            check="db",
            severity=Severity.HIGH,
            evidence="503",
            opened_at=db.opened_at,
            held=why,
        )

    events = [held("opened", at(1, 10, day=27)), held("resolved", at(1, 40, day=27))]
    store.incidents.commit_cycle([], EngineState(next_incident_id=9), events, [db], [], now=NOW)
    text = render_digest(collect(store, NOW)).body
    assert "Held by silences and maintenance windows (1):" in text
    assert "- #8 db: opened 01:10, resolved 01:40 — maintenance backup: nightly dump" in text
