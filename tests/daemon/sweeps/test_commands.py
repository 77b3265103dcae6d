"""`watchkeeper sweep` and `watchkeeper findings` where the sweep's own behaviour shows: the
summary agrees with the notification, findings come most severe first, a disabled sweep is
named as such, and an empty `findings` says which command fills it. In-process (click's
CliRunner) with the fake rules of tests/jobs/sweeps/fake_rules.py; the notification goes to a
real webhook receiver on loopback."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from daemon.models import Severity
from tests.daemon.cli.test_sweep_commands import SG, SWEEP, wk, write_config
from tests.jobs.sweeps.fake_rules import FakeRule, finding, meta, use
from tests.peers.receivers import WebhookReceiver

COST = '\n[[sweeps]]\nname = "spend"\nkind = "cost"\naws = { regions = ["eu-west-1"] }\n'


def counts(text: str) -> tuple[int, int]:
    """(new, resolved) as a line of text states them."""
    match = re.search(r"(\d+) new\D+?(?:\d+ changed\D+?)?(\d+) resolved", text)
    assert match is not None, text
    return int(match[1]), int(match[2])


def listed(lines: list[str], state: str) -> list[str]:
    return [line.split()[3] for line in lines if line.startswith(f"  {state} [")]


def test_the_summary_and_the_notification_count_the_same_new_and_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, webhook_receiver: WebhookReceiver
) -> None:
    rule = FakeRule(meta("aws.sg.open"), [finding("aws.sg.open", SG + s) for s in "ab"])
    use(monkeypatch, rule)
    target = f'[[notify]]\nname = "oncall"\nurl = "{webhook_receiver.url()}"\n'
    config = write_config(tmp_path, target + SWEEP)
    assert wk(config, "sweep", "security", "--notify").returncode == 0
    # a run nobody was told about, then one that tells: `a` still open, `b` resolved, `c` and
    # `d` new to the targets (`c` was first seen by the quiet run)
    rule.findings = [finding("aws.sg.open", SG + s) for s in "abc"]
    assert wk(config, "sweep", "security").returncode == 0
    rule.findings = [finding("aws.sg.open", SG + s) for s in "acd"]
    result = wk(config, "sweep", "security", "--notify")
    assert result.returncode == 0, result.stderr

    lines = result.stdout.splitlines()
    _first, told = webhook_receiver.messages
    assert counts(lines[0]) == counts(told["title"]) == (2, 1)
    assert lines[0] == (
        "nightly (security, ok): 3 open — 2 new · 1 resolved since the last notification · 0 muted"
    )
    assert told["title"] == "[SECURITY] nightly: 2 new, 1 resolved (2 high)"
    assert listed(lines, "new") == [SG + "c", SG + "d"]
    assert listed(lines, "resolved") == [SG + "b"]
    body = told["message"]
    new_part, resolved_part = body.split("**Resolved (1):**")
    assert SG + "c" in new_part and SG + "d" in new_part and SG + "a" not in body
    assert SG + "b" in resolved_part


def test_findings_and_the_sweep_summary_list_the_most_severe_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(
        monkeypatch,
        FakeRule(meta("aws.b"), [finding("aws.b", SG + "1", severity=Severity.LOW)]),
        FakeRule(meta("aws.z"), [finding("aws.z", SG + "2", severity=Severity.CRITICAL)]),
        FakeRule(
            meta("aws.a"),
            [
                finding("aws.a", SG + "9", severity=Severity.HIGH),
                finding("aws.a", SG + "1", severity=Severity.CRITICAL),
            ],
        ),
    )
    expected = [("aws.a", "1"), ("aws.z", "2"), ("aws.a", "9"), ("aws.b", "1")]
    config = write_config(tmp_path)
    swept = wk(config, "sweep", "security")
    new = [line.split()[2:4] for line in swept.stdout.splitlines() if line.startswith("  new [")]
    assert new == [[rule, SG + n] for rule, n in expected]
    rows = [line.split() for line in wk(config, "findings").stdout.splitlines()[2:]]
    assert [(row[2], row[3]) for row in rows] == [(rule, SG + n) for rule, n in expected]
    assert [row[0] for row in rows] == ["CRITICAL", "CRITICAL", "HIGH", "LOW"]


def usage_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    return " ".join(result.stderr.split())


def test_asking_for_a_disabled_sweep_names_it_and_says_how_to_enable_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, FakeRule(meta("aws.sg.open"), [finding("aws.sg.open", SG + "1")]))
    config = write_config(tmp_path, SWEEP + "enabled = false\n")
    message = usage_error(wk(config, "sweep", "security"))
    assert f"the security sweep nightly is disabled (enabled = false in {config})" in message
    assert "set enabled = true" in message
    assert "`watchkeeper sweep security --name nightly`" in message

    by_name = wk(config, "sweep", "security", "--name", "nightly")
    assert by_name.returncode == 0
    assert "sweep nightly is disabled" in by_name.stderr and "running it once" in by_name.stderr
    assert by_name.stdout.startswith("nightly (security, ok): 1 open")

    wrong_kind = usage_error(wk(config, "sweep", "cost", "--name", "nightly"))
    assert "sweep nightly is a security sweep: run `watchkeeper sweep security --name nightly`" in (
        wrong_kind
    )


def test_findings_of_a_kind_that_never_ran_name_the_command_that_runs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, FakeRule(meta("aws.sg.open"), [finding("aws.sg.open", SG + "1")]))
    config = write_config(tmp_path, SWEEP + COST)
    assert wk(config, "sweep", "security").returncode == 0
    result = wk(config, "findings", "--kind", "cost")
    assert result.returncode == 0
    assert result.stdout.strip() == (
        "no cost sweep has run yet (`watchkeeper sweep cost` runs one now)"
    )
    assert "nightly (security)" in wk(config, "findings").stdout

    disabled = write_config(tmp_path, SWEEP + COST + "enabled = false\n")
    assert wk(disabled, "findings", "--kind", "cost").stdout.strip() == (
        "no cost sweep has run yet (`watchkeeper sweep cost --name spend` runs one now)"
    )
    none = write_config(tmp_path)
    assert wk(none, "findings", "--kind", "cost").stdout.strip() == (
        'no cost sweep is configured: add a [[sweeps]] table with kind = "cost" '
        "(see config.example.toml)"
    )
