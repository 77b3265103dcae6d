"""Sweeps end to end with fake rules: rule failures, scope, diffs across runs, the mutelist,
notifications only on change, report files, and the model summary (real AI, fake Ollama)."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from daemon.ai.runner import AI
from daemon.config.load import load_settings
from daemon.config.settings import Settings
from daemon.errors import ConfigError
from daemon.models import Finding, Severity
from daemon.store import Store
from daemon.sweeps.runner import SweepError, SweepRun, run_sweep
from jobs.base import CheckContext
from jobs.sweeps.base import CollectError, SweepContext
from jobs.sweeps.rule import Frame, Hit, Scope, SweepRule
from tests.jobs.sweeps.fake_rules import (
    FakeRule,
    HangingRule,
    OptionsRule,
    SharedDataRule,
    finding,
    meta,
    use,
)
from tests.peers.loopback import free_port
from tests.peers.providers.ollama import FakeOllama

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
SG = "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-"
TARGET = '[[notify]]\nname = "oncall"\nurl = "json://127.0.0.1:9/hook"\n'
SWEEP = '[[sweeps]]\nname = "nightly"\nkind = "security"\naws = { regions = ["eu-west-1"] }\n'


def settings_for(tmp_path: Path, text: str = TARGET + SWEEP) -> Settings:
    path = tmp_path / "config.toml"
    path.write_text(f'[daemon]\nstate_dir = "state"\n{text}', encoding="utf-8")
    return load_settings(path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store.open(settings.daemon.state_dir) as s:
        yield s


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


async def sweep(
    settings: Settings,
    store: Store,
    client: httpx.AsyncClient,
    now: datetime = NOW,
    *,
    ai: AI | None = None,
    notify: bool = True,
    name: str = "nightly",
) -> SweepRun:
    config = next(s for s in settings.sweeps if s.name == name)
    ctx = CheckContext(http=client, now=lambda: now)
    return await run_sweep(settings, config, store, ai, ctx, now, notify_targets=notify)


def states(run: SweepRun) -> dict[str, str]:
    return {t.finding.resource: t.state for t in run.record.findings}


def outbox(store: Store) -> list[str]:
    return [row.body for row in store.outbox.due(NOW + timedelta(days=30))]


# -- rules: failures, scope, globs ---------------------------------------------------------------


async def test_a_collect_error_is_a_rule_error_and_the_sweep_carries_on(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Store, client: httpx.AsyncClient
) -> None:
    denied = CollectError("AccessDenied on ec2:DescribeSecurityGroups")
    use(
        monkeypatch,
        FakeRule(meta("aws.sg.open_ssh"), error=denied),
        FakeRule(meta("aws.s3.public"), [finding("aws.s3.public", "arn:aws:s3:::logs")]),
    )
    run = await sweep(settings, store, client)
    assert run.record.status == "partial"
    assert run.record.detail["rule_errors"] == [
        {"rule": "aws.sg.open_ssh", "error": "AccessDenied on ec2:DescribeSecurityGroups"}
    ]
    assert states(run) == {"arn:aws:s3:::logs": "new"}


async def test_a_crashing_rule_is_isolated_and_named(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Store, client: httpx.AsyncClient
) -> None:
    use(
        monkeypatch,
        FakeRule(meta("aws.broken"), error=KeyError("SecurityGroups")),
        FakeRule(meta("aws.ok"), [finding("aws.ok", SG + "1")]),
    )
    run = await sweep(settings, store, client)
    [error] = run.record.detail["rule_errors"]
    assert error == {"rule": "aws.broken", "error": "rule crashed: KeyError: 'SecurityGroups'"}
    assert states(run) == {SG + "1": "new"}


async def test_a_rule_returning_something_else_than_findings_is_a_crash(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Store, client: httpx.AsyncClient
) -> None:
    use(monkeypatch, FakeRule(meta("aws.odd"), ["not a finding"]))  # type: ignore[list-item]
    run = await sweep(settings, store, client)
    assert run.record.detail["rule_errors"][0]["error"].startswith("rule crashed: TypeError")
    assert run.failed


async def test_rules_sharing_a_denied_dataset_fetch_it_once_and_all_record_the_error(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Store, client: httpx.AsyncClient
) -> None:
    fetches: list[str] = []
    use(
        monkeypatch,
        SharedDataRule(meta("aws.sg.a"), fetches, denied=True),
        SharedDataRule(meta("aws.sg.b"), fetches, denied=True),
    )
    run = await sweep(settings, store, client)
    assert len(fetches) == 1
    assert [e["error"] for e in run.record.detail["rule_errors"]] == [
        "AccessDenied on ec2:DescribeSecurityGroups"
    ] * 2
    assert run.failed  # every rule failed: the sweep itself did not run


async def test_a_rule_still_running_at_the_sweep_timeout_is_recorded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    settings = settings_for(tmp_path, SWEEP + 'timeout = "200ms"\n')
    use(monkeypatch, HangingRule(meta("aws.slow")), FakeRule(meta("aws.quick")))
    with Store.open(settings.daemon.state_dir) as store:
        run = await sweep(settings, store, client)
    assert run.record.detail["rule_errors"] == [
        {"rule": "aws.slow", "error": "timed out: the sweep's 0.2s limit was reached"}
    ]
    assert run.record.status == "partial"


async def test_a_scope_that_cannot_be_swept_is_checked_once_and_holds_back_only_its_rules(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Store, client: httpx.AsyncClient
) -> None:
    checks: list[str] = []

    async def refuse(ctx: SweepContext) -> None:
        checks.append("AWS")
        raise CollectError("no AWS credentials found for the default profile")

    async def places(ctx: SweepContext) -> list[str]:
        return ["eu-west-1"]

    async def judge(ctx: SweepContext, place: str) -> list[Hit]:
        raise AssertionError("a rule of a scope that failed must not run")

    async def no_account(ctx: SweepContext) -> None:
        return None

    frame = Frame("region", places, lambda place: place, no_account, Scope("AWS", refuse))
    held = [SweepRule(meta(f"aws.held{i}"), judge, frame) for i in range(3)]
    free = FakeRule(meta("aws.free"), [finding("aws.free", SG + "1")])
    use(monkeypatch, *held, free)
    run = await sweep(settings, store, client)
    assert checks == ["AWS"]  # once for the sweep, not once per rule
    assert run.record.detail["scope_errors"] == [
        {
            "scope": "AWS",
            "error": "no AWS credentials found for the default profile",
            "rules": ["aws.held0", "aws.held1", "aws.held2"],
        }
    ]
    assert run.record.detail["rule_errors"] == []
    assert (run.record.status, run.record.detail["rules_run"]) == ("partial", 1)
    assert states(run) == {SG + "1": "new"}
    assert run.message is not None
    assert run.message.body.count("no AWS credentials found") == 1


async def test_rules_out_of_scope_or_not_matching_the_globs_do_not_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    settings = settings_for(tmp_path, SWEEP + 'rules = ["aws.sg.*", "k8s.*"]\n')
    rules = {
        "aws.sg.open": FakeRule(meta("aws.sg.open")),
        "aws.s3.public": FakeRule(meta("aws.s3.public", service="aws:s3")),
        "k8s.pod.privileged": FakeRule(meta("k8s.pod.privileged", service="k8s:pods")),
        "aws.cost.idle": FakeRule(meta("aws.sg.idle", kind="cost")),
    }
    use(monkeypatch, *rules.values())
    with Store.open(settings.daemon.state_dir) as store:
        run = await sweep(settings, store, client)
    assert {rule: r.calls for rule, r in rules.items()} == {
        "aws.sg.open": 1,
        "aws.s3.public": 0,  # not in the globs
        "k8s.pod.privileged": 0,  # no kubernetes table
        "aws.cost.idle": 0,  # a cost rule
    }
    assert run.record.detail["rules_run"] == 1


async def test_no_applicable_rule_is_a_sweep_error(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Store, client: httpx.AsyncClient
) -> None:
    use(monkeypatch, FakeRule(meta("k8s.pod.privileged", service="k8s:pods")))
    with pytest.raises(SweepError, match="no security rule applies"):
        await sweep(settings, store, client)


async def test_rules_get_the_scope_and_the_documented_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    text = (
        "[budget]\ncloud_monthly_usd = 1200\n"
        + SWEEP.replace("security", "cost").replace(
            'regions = ["eu-west-1"] }', 'profile = "prod", regions = ["eu-west-1"] }'
        )
        + 'spike_percent = 45\n[sweeps.prices.ec2_hourly]\n"m6i.large" = 0.08\n'
    )
    settings = settings_for(tmp_path, text)
    rule = OptionsRule(meta("aws.cost.spy", kind="cost"))
    use(monkeypatch, rule)
    with Store.open(settings.daemon.state_dir) as store:
        await sweep(settings, store, client)
    [ctx] = rule.seen
    assert ctx.aws is not None and (ctx.aws.profile, ctx.aws.regions) == ("prod", ("eu-west-1",))
    assert ctx.kubernetes is None and ctx.now == NOW
    assert ctx.options["spike_percent"] == 45 and ctx.options["spike_usd"] == 50
    assert ctx.options["vcpu_hour_usd"] == 0.031611 and ctx.options["cloud_monthly_usd"] == 1200.0
    assert ctx.options["prices"] == {"ec2_hourly": {"m6i.large": 0.08}}


# -- diffs across runs ---------------------------------------------------------------------------


async def test_findings_go_new_then_open_and_a_gone_one_is_resolved(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Store, client: httpx.AsyncClient
) -> None:
    rule = FakeRule(
        meta("aws.sg.open"), [finding("aws.sg.open", SG + "1"), finding("aws.sg.open", SG + "2")]
    )
    use(monkeypatch, rule)
    first = await sweep(settings, store, client)
    assert states(first) == {SG + "1": "new", SG + "2": "new"}
    rule.findings = [finding("aws.sg.open", SG + "1"), finding("aws.sg.open", SG + "3")]
    second = await sweep(settings, store, client, NOW + timedelta(days=1))
    assert states(second) == {SG + "1": "open", SG + "3": "new", SG + "2": "resolved"}
    [kept] = [t for t in second.record.findings if t.finding.resource == SG + "1"]
    assert kept.first_seen == NOW
    third = await sweep(settings, store, client, NOW + timedelta(days=2))
    assert states(third) == {SG + "1": "open", SG + "3": "open"}  # resolved once, then gone


async def test_a_finding_of_a_rule_that_failed_is_unknown_never_resolved(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Store, client: httpx.AsyncClient
) -> None:
    rule = FakeRule(meta("aws.sg.open"), [finding("aws.sg.open", SG + "1")])
    other = FakeRule(meta("aws.s3.public"), [finding("aws.s3.public", "arn:aws:s3:::b")])
    use(monkeypatch, rule, other)
    await sweep(settings, store, client)
    rule.error = CollectError("AccessDenied on ec2:DescribeSecurityGroups")
    failed = await sweep(settings, store, client, NOW + timedelta(days=1))
    assert states(failed) == {"arn:aws:s3:::b": "open", SG + "1": "unknown"}
    assert failed.changes.resolved == []
    assert len(outbox(store)) == 2  # the second only tells the rule error
    assert "AccessDenied on ec2:DescribeSecurityGroups" in outbox(store)[1]
    assert "Resolved" not in outbox(store)[1]
    rule.error, rule.findings = None, []
    fixed = await sweep(settings, store, client, NOW + timedelta(days=2))
    assert states(fixed)[SG + "1"] == "resolved"


async def test_findings_of_a_rule_no_longer_in_scope_are_dropped_not_resolved(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    settings = settings_for(tmp_path)
    use(
        monkeypatch,
        FakeRule(meta("aws.sg.open"), [finding("aws.sg.open", SG + "1")]),
        FakeRule(meta("aws.s3.public"), [finding("aws.s3.public", "arn:aws:s3:::b")]),
    )
    with Store.open(settings.daemon.state_dir) as store:
        await sweep(settings, store, client)
        narrowed = settings_for(tmp_path, SWEEP + 'rules = ["aws.s3.*"]\n')
        run = await sweep(narrowed, store, client, NOW + timedelta(days=1))
    assert states(run) == {"arn:aws:s3:::b": "open"}


async def test_a_raised_severity_is_a_change_worth_telling(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Store, client: httpx.AsyncClient
) -> None:
    rule = FakeRule(
        meta("aws.sg.open"), [finding("aws.sg.open", SG + "1", severity=Severity.MEDIUM)]
    )
    use(monkeypatch, rule)
    await sweep(settings, store, client)
    rule.findings = [finding("aws.sg.open", SG + "1", severity=Severity.CRITICAL)]
    run = await sweep(settings, store, client, NOW + timedelta(days=1))
    [changed] = run.changes.changed
    assert changed.change == "severity raised from medium"
    assert run.message is not None and "**Changed (1):**" in run.message.body
    assert "severity raised from medium" in run.message.body


# -- the mutelist --------------------------------------------------------------------------------


MUTE = """
[[sweeps.mutelist]]
rule = "aws.sg.open"
resource = "arn:aws:ec2:*:security-group/sg-1*"
until = 2026-11-27
reason = "bastion, accepted by security (SEC-12)"
"""


async def test_a_muted_finding_is_counted_but_never_told_until_the_mute_expires(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    from daemon.sweeps.reports import report_json

    settings = settings_for(tmp_path, TARGET + SWEEP + MUTE)
    use(
        monkeypatch,
        FakeRule(
            meta("aws.sg.open"),
            [finding("aws.sg.open", SG + "1"), finding("aws.sg.open", SG + "2")],
        ),
    )
    with Store.open(settings.daemon.state_dir) as store:
        first = await sweep(settings, store, client)
        [muted] = [t for t in first.record.findings if t.muted]
        assert muted.mute == "bastion, accepted by security (SEC-12) (until 2026-11-27)"
        assert [t.finding.resource for t in first.changes.new] == [SG + "2"]
        assert first.message is not None and SG.replace("_", "\\_") + "1" not in first.message.body
        summary = report_json(first.record)["summary"]
        assert (summary["new"], summary["muted"]) == (1, 1)
        # the entry ends on the 27th: on the 28th the finding is told, as no longer muted
        later = await sweep(settings, store, client, NOW + timedelta(days=1))
        assert [t.change for t in later.changes.changed] == ["no longer muted"]
        assert later.message is not None and "no longer muted" in later.message.body


async def test_an_expired_mute_does_not_mute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    settings = settings_for(tmp_path, TARGET + SWEEP + MUTE.replace("2026-11-27", "2026-11-26"))
    use(monkeypatch, FakeRule(meta("aws.sg.open"), [finding("aws.sg.open", SG + "1")]))
    with Store.open(settings.daemon.state_dir) as store:
        run = await sweep(settings, store, client)
    assert not any(t.muted for t in run.record.findings)
    assert len(run.changes.new) == 1


# -- notifications -------------------------------------------------------------------------------


async def test_only_changes_are_notified_and_an_identical_run_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Store, client: httpx.AsyncClient
) -> None:
    rule = FakeRule(
        meta("aws.sg.open"), [finding("aws.sg.open", SG + "1"), finding("aws.sg.open", SG + "2")]
    )
    use(monkeypatch, rule)
    first = await sweep(settings, store, client)
    assert first.queued == 1 and first.message is not None
    assert first.message.title == "[SECURITY] nightly: 2 new, 0 resolved (2 high)"
    again = await sweep(settings, store, client, NOW + timedelta(days=1))
    assert (again.queued, again.message) == (0, None)
    rule.findings = rule.findings[:1]
    fixed = await sweep(settings, store, client, NOW + timedelta(days=2))
    assert fixed.message is not None
    assert fixed.message.title == "[SECURITY] nightly: 0 new, 1 resolved"
    assert fixed.message.notify_type == "success"
    assert "**Resolved (1):**" in fixed.message.body and "**New" not in fixed.message.body
    assert len(outbox(store)) == 2


async def test_runs_that_did_not_notify_do_not_swallow_what_is_new(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Store, client: httpx.AsyncClient
) -> None:
    use(monkeypatch, FakeRule(meta("aws.sg.open"), [finding("aws.sg.open", SG + "1")]))
    quiet = await sweep(settings, store, client, notify=False)
    assert quiet.queued == 0 and outbox(store) == []
    told = await sweep(settings, store, client, NOW + timedelta(hours=1))
    assert states(told) == {SG + "1": "open"}  # as seen by the previous run
    assert [t.finding.resource for t in told.changes.new] == [SG + "1"]  # never told before
    assert told.queued == 1


async def test_the_message_goes_to_the_named_targets_with_the_report_attached(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    targets = (
        TARGET
        + TARGET.replace("oncall", "security-team")
        + TARGET.replace("oncall", "digest-only")
        + 'events = ["opened"]\n'
    )
    settings = settings_for(tmp_path, targets + SWEEP + 'notify = ["security-team"]\n')
    use(monkeypatch, FakeRule(meta("aws.sg.open"), [finding("aws.sg.open", SG + "1")]))
    with Store.open(settings.daemon.state_dir) as store:
        run = await sweep(settings, store, client)
        [row] = store.outbox.due(NOW + timedelta(days=1))
    report = run.record.detail["reports"]["md"]
    assert (row.target, row.attach) == ("security-team", report)
    assert f"Full report: {report}" in row.body
    assert row.payload is not None and row.payload["event"] == "report"


async def test_report_files_are_private_with_latest_copies(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Store, client: httpx.AsyncClient
) -> None:
    use(monkeypatch, FakeRule(meta("aws.sg.open"), [finding("aws.sg.open", SG + "1")]))
    run = await sweep(settings, store, client)
    folder = settings.daemon.state_dir / "reports" / "nightly"
    names = sorted(p.name for p in folder.iterdir())
    stamp = "20261127T020000Z"
    assert names == [
        f"{stamp}.json",
        f"{stamp}.md",
        f"{stamp}.ocsf.json",
        f"{stamp}.sarif",
        "latest.json",
        "latest.md",
        "latest.ocsf.json",
        "latest.sarif",
    ]
    assert run.record.detail["reports"]["sarif"] == str(folder / f"{stamp}.sarif")
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    assert (folder / "latest.md").read_text() == (folder / f"{stamp}.md").read_text()


async def test_the_run_is_stored_and_read_back(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Store, client: httpx.AsyncClient
) -> None:
    use(monkeypatch, FakeRule(meta("aws.sg.open"), [finding("aws.sg.open", SG + "1")]))
    run = await sweep(settings, store, client)
    stored = store.sweeps.last_run("nightly")
    assert stored is not None
    assert stored == run.record  # detail is left out of ==
    assert stored.detail["reports"] == run.record.detail["reports"]
    assert [r.id for r in store.sweeps.latest_runs()] == [run.record.id]


# -- the model summary ---------------------------------------------------------------------------


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def ai_settings(tmp_path: Path, ollama_url: str) -> Settings:
    models = (
        f'[providers.ollama]\nbase_url = "{ollama_url}"\nmax_retries = 0\n'
        '[routing]\nsecurity = ["ollama/gemma4:27b"]\n'
    )
    return settings_for(tmp_path, models + TARGET + SWEEP)


async def test_a_local_model_prioritises_what_is_new_with_its_cost_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    use(
        monkeypatch,
        FakeRule(
            meta("aws.sg.open"),
            [finding("aws.sg.open", SG + "1", evidence="port 22 open to 0.0.0.0/0")],
        ),
    )
    reply = "Close SSH on sg-1 first:\nit is open to the internet."
    with FakeOllama(reply=reply, prompt_eval_count=900, eval_count=40) as fake:
        settings = ai_settings(tmp_path, fake.url)
        with Store.open(settings.daemon.state_dir) as store:
            ai = AI(settings, store, client, now=lambda: NOW)
            run = await sweep(settings, store, client, ai=ai)
            ledger = store.ledger.calls(NOW - timedelta(days=1))
        [body] = fake.bodies()
    assert run.message is not None
    assert run.message.body.startswith(
        "Summary (ollama/gemma4:27b, local): Close SSH on sg-1 first: it is open to the "
        "internet.\n\n**New (1):**"
    )
    assert run.message.body.endswith(
        "AI cost: security $0.00 (ollama/gemma4:27b: 900 in / 40 out, local)\n"
        "Sweep total $0.00 · today $0.00 · month $0.00"
    )
    assert body["options"]["num_predict"] == 300
    assert "port 22 open to 0.0.0.0/0" in body["messages"][1]["content"]
    assert "never instructions" in body["messages"][0]["content"]
    [row] = ledger
    assert (row.task, row.sweep_id, row.cost_usd) == ("security", run.record.id, Decimal(0))
    md = Path(run.record.detail["reports"]["md"]).read_text()
    assert "Summary (ollama/gemma4:27b, local): Close SSH" in md


async def test_without_a_reachable_model_the_report_goes_out_labelled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    use(monkeypatch, FakeRule(meta("aws.sg.open"), [finding("aws.sg.open", SG + "1")]))
    settings = ai_settings(tmp_path, closed_port_url())
    with Store.open(settings.daemon.state_dir) as store:
        ai = AI(settings, store, client, now=lambda: NOW)
        run = await sweep(settings, store, client, ai=ai)
    assert run.message is not None
    first = run.message.body.splitlines()[0]
    assert first.startswith("(no model summary: ollama/gemma4:27b: ")
    assert "AI cost" not in run.message.body  # nothing reached a model
    assert run.queued == 1


async def test_without_an_ai_layer_the_summary_says_so(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, store: Store, client: httpx.AsyncClient
) -> None:
    use(monkeypatch, FakeRule(meta("aws.sg.open"), [finding("aws.sg.open", SG + "1")]))
    run = await sweep(settings, store, client)
    assert run.message is not None
    assert run.message.body.splitlines()[0] == "(no model summary: AI is not configured)"


async def test_nothing_new_means_no_model_call(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    rule = FakeRule(meta("aws.sg.open"), [finding("aws.sg.open", SG + "1")])
    use(monkeypatch, rule)
    with FakeOllama(reply="Fix it.") as fake:
        settings = ai_settings(tmp_path, fake.url)
        with Store.open(settings.daemon.state_dir) as store:
            ai = AI(settings, store, client, now=lambda: NOW)
            await sweep(settings, store, client, ai=ai)
            rule.findings = []
            resolved = await sweep(settings, store, client, NOW + timedelta(days=1), ai=ai)
        assert len(fake.bodies()) == 1
    assert resolved.message is not None and "summary" not in resolved.message.body.lower()


# -- config --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        (SWEEP + SWEEP, "sweeps[nightly].name", "duplicate name"),
        (SWEEP + 'cron = "every night"\n', "sweeps[nightly].cron", "not a crontab"),
        (SWEEP + 'notify = ["pager"]\n', "sweeps[nightly].notify", "'pager' is not a [[notify]]"),
        (
            TARGET + 'events = ["opened"]\n' + SWEEP + 'notify = ["oncall"]\n',
            "sweeps[nightly].notify",
            "does not take 'report' events",
        ),
        (SWEEP + MUTE + MUTE, "sweeps[nightly].mutelist[1]", "duplicate entry"),
        (
            SWEEP
            + MUTE.replace('reason = "bastion, accepted by security (SEC-12)"', 'reason = " "'),
            "sweeps[nightly].mutelist[0].reason",
            "give the reason",
        ),
        (
            SWEEP + MUTE.replace("2026-11-27", '"someday"'),
            "sweeps[nightly].mutelist[0].until",
            "date",
        ),
        (
            SWEEP.replace('aws = { regions = ["eu-west-1"] }\n', ""),
            "sweeps[nightly]",
            "needs a scope",
        ),
        (SWEEP + "[sweeps.prices]\nlaptops = 3\n", "sweeps[nightly].prices", "prices.laptops"),
        (SWEEP.replace('"security"', '"compliance"'), "sweeps[nightly].kind", "'security'"),
    ],
)
def test_bad_sweep_config_is_explained(tmp_path: Path, text: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_for(tmp_path, text)
    problems = [(p.key, p.message) for p in caught.value.problems]
    assert any(k.startswith(key) and words in m for k, m in problems), problems


def test_a_sweep_needs_only_its_name_kind_and_a_scope(tmp_path: Path) -> None:
    [config] = settings_for(tmp_path, SWEEP).sweeps
    assert (config.cron, config.enabled, config.timeout) == (
        "0 2 * * *",
        True,
        timedelta(minutes=10),
    )
    assert config.options()["idle_days"] == 14 and config.mutelist == []


def test_mute_until_is_inclusive() -> None:
    from daemon.config.sweeps import MuteEntry
    from daemon.sweeps.diff import mute_for

    entry = MuteEntry(rule="aws.*", resource="arn:*", until=date(2026, 11, 27), reason="ok")
    f: Finding = finding("aws.sg.open", SG + "1")
    assert mute_for(f, [entry], date(2026, 11, 27)) == "ok (until 2026-11-27)"
    assert mute_for(f, [entry], date(2026, 11, 28)) is None


# -- the daemon's schedule -----------------------------------------------------------------------


async def test_the_daemon_schedules_each_enabled_sweep_on_its_cron(tmp_path: Path) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from daemon.service.daemon import Service

    text = (
        SWEEP + 'cron = "30 3 * * 1"\n' + SWEEP.replace('"nightly"', '"off"') + "enabled = false\n"
    )
    settings = settings_for(tmp_path, text)
    service = Service(tmp_path / "config.toml", settings)
    service.scheduler = AsyncIOScheduler(timezone=UTC)
    service._schedule_all()
    job = service.scheduler.get_job("sweep:nightly")
    assert job is not None and tuple(job.args) == ("nightly",)
    fields = {f.name: str(f) for f in job.trigger.fields}
    assert (fields["minute"], fields["hour"], fields["day_of_week"]) == ("30", "3", "1")
    assert str(job.trigger.timezone) == "UTC"
    assert service.scheduler.get_job("sweep:off") is None


async def test_a_cloud_model_gets_the_findings_redacted_and_the_cost_is_itemised(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    from tests.peers.providers.anthropic import FakeAnthropic

    leaked = "AKIAIOSFODNN7EXAMPLE"
    use(
        monkeypatch,
        FakeRule(
            meta("aws.lambda.env_secret"),
            [
                finding(
                    "aws.lambda.env_secret",
                    "arn:aws:lambda:eu-west-1:1:function:f",
                    evidence=f"environment variable KEY holds {leaked}",
                )
            ],
        ),
    )
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    usage = {"input_tokens": 1000, "output_tokens": 100}
    with FakeAnthropic(key="sk-ant-test-0123456789", reply="Rotate the key.", usage=usage) as fake:
        models = (
            f'[providers.anthropic]\nbase_url = "{fake.url}"\nmax_retries = 0\n'
            '[routing]\nsecurity = ["anthropic/claude-sonnet-4-6"]\n'
        )
        settings = settings_for(tmp_path, models + TARGET + SWEEP)
        with Store.open(settings.daemon.state_dir) as store:
            ai = AI(settings, store, client, now=lambda: NOW)
            run = await sweep(settings, store, client, ai=ai)
        sent = b"".join(r.body for r in fake.requests)
    assert leaked.encode() not in sent
    assert b"holds [REDACTED:aws_access_key:1]" in sent
    assert run.message is not None
    assert run.message.body.startswith("Summary (anthropic/claude-sonnet-4-6, cloud $0.0045): ")
    assert "AI cost: security $0.0045 (anthropic/claude-sonnet-4-6: 1,000 in / 100 out, " in (
        run.message.body
    )
    assert leaked in Path(run.record.detail["reports"]["md"]).read_text()  # local file: as is


def test_the_prompt_keeps_to_its_budget_most_severe_first() -> None:
    from daemon.store.sweeps import SweepRunRecord, TrackedFinding
    from daemon.sweeps.diff import Changes
    from daemon.sweeps.summary import PROMPT_CHARS, summary_request

    low = [
        TrackedFinding(
            finding("aws.x", f"{SG}{i}", severity=Severity.LOW, evidence="e" * 400), "new", NOW
        )
        for i in range(60)
    ]
    top = TrackedFinding(finding("aws.sg.open", SG + "top", severity=Severity.CRITICAL), "new", NOW)
    record = SweepRunRecord("r", "nightly", "security", NOW, NOW, "ok", True, (*low, top))
    request = summary_request(record, Changes(new=[*low, top]))
    prompt = request.messages[0].content
    assert len(prompt) < PROMPT_CHARS + 1000
    assert prompt.index(SG + "top") < prompt.index(SG + "0")
    assert "more findings left out to fit]" in prompt
    assert request.max_output_tokens == 300
