"""`watchkeeper sweep` and `watchkeeper findings` as a user runs them.

Every run is in-process (tests.cli: click's CliRunner, answering like a fresh process), so
the fake rules of tests/jobs/sweeps/fake_rules.py can be patched into `jobs.sweeps.RULE_MODULES`
— production code has no switch for test rules.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from daemon.models import Severity
from jobs.sweeps.base import CollectError
from tests.cli import run_cli
from tests.jobs.sweeps.fake_rules import FakeRule, finding, meta, use
from tests.peers.receivers import WebhookReceiver

SG = "arn:aws:ec2:eu-west-1:111122223333:security-group/sg-"
SWEEP = """
[[sweeps]]
name = "nightly"
kind = "security"
aws = { regions = ["eu-west-1"] }
"""


def write_config(tmp_path: Path, text: str = SWEEP) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[daemon]\nstate_dir = "state"\n{text}', encoding="utf-8")
    return path


def wk(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "WATCHKEEPER_CONFIG"}
    return run_cli(*args, "--config", str(config), env=env)


@pytest.fixture
def rule(monkeypatch: pytest.MonkeyPatch) -> FakeRule:
    found = [
        finding("aws.sg.open_ssh", SG + "1", severity=Severity.CRITICAL),
        finding("aws.sg.open_ssh", SG + "2", severity=Severity.MEDIUM),
    ]
    fake = FakeRule(meta("aws.sg.open_ssh"), found)
    use(monkeypatch, fake, FakeRule(meta("aws.iam.root_keys"), error=CollectError("AccessDenied")))
    return fake


def states(document: dict[str, Any]) -> dict[str, str]:
    return {f["resource"]: f["state"] for f in document["findings"]}


def test_sweep_json_prints_the_contract_and_exits_0_with_findings(
    tmp_path: Path, rule: FakeRule
) -> None:
    config = write_config(tmp_path)
    result = wk(config, "sweep", "security", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert list(document) == ["sweep", "findings", "summary"]
    assert document["sweep"]["name"] == "nightly" and document["sweep"]["kind"] == "security"
    assert states(document) == {SG + "1": "new", SG + "2": "new"}
    assert document["summary"]["rule_errors"] == [
        {"rule": "aws.iam.root_keys", "error": "AccessDenied"}
    ]
    assert (tmp_path / "state" / "reports" / "nightly" / "latest.sarif").is_file()
    rule.findings = rule.findings[:1]
    again = json.loads(wk(config, "sweep", "security", "--json").stdout)
    assert states(again) == {SG + "1": "open", SG + "2": "resolved"}
    assert again["summary"]["resolved"] == 1 and again["summary"]["open"] == 1


def test_findings_lists_the_latest_run_with_filters(tmp_path: Path, rule: FakeRule) -> None:
    config = write_config(tmp_path)
    assert wk(config, "sweep", "security").returncode == 0
    [document] = json.loads(wk(config, "findings", "--json").stdout)
    assert states(document) == {SG + "1": "new", SG + "2": "new"}
    [high] = json.loads(wk(config, "findings", "--severity", "high", "--json").stdout)
    assert states(high) == {SG + "1": "new"}
    assert high["summary"]["new"] == 2  # the summary is the whole run's
    assert json.loads(wk(config, "findings", "--kind", "cost", "--json").stdout) == []
    rule.findings = [*rule.findings, finding("aws.sg.open_ssh", SG + "3")]
    wk(config, "sweep", "security")
    [fresh] = json.loads(wk(config, "findings", "--new", "--json").stdout)
    assert states(fresh) == {SG + "3": "new"}
    text = wk(config, "findings").stdout
    assert "nightly (security)" in text and "CRITICAL" in text and SG + "3" in text


def test_findings_as_ocsf_array_and_json_lines_with_the_same_filters(
    tmp_path: Path, rule: FakeRule
) -> None:
    from tests.daemon.sweeps.test_ocsf import schema_errors

    config = write_config(tmp_path)
    assert wk(config, "sweep", "security").returncode == 0
    rule.findings = rule.findings[1:]  # SG 1 is fixed before the second night
    assert wk(config, "sweep", "security").returncode == 0
    result = wk(config, "findings", "--format", "ocsf")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert {f["resources"][0]["uid"]: f["status"] for f in found} == {
        SG + "1": "Resolved",
        SG + "2": "New",
    }
    for f in found:
        assert schema_errors(f) == []
        assert f["class_uid"] == 2004  # the fake rule maps no control
        assert f["finding_info"]["uid"] == f"aws.sg.open_ssh:{f['resources'][0]['uid']}"
    lines = wk(config, "findings", "--format", "ocsf-jsonl").stdout.splitlines()
    assert [json.loads(line) for line in lines] == found
    critical = wk(config, "findings", "--format", "ocsf-jsonl", "--severity", "critical")
    assert [json.loads(line)["status"] for line in critical.stdout.splitlines()] == ["Resolved"]
    assert wk(config, "findings", "--format", "ocsf", "--new").stdout.strip() == "[]"
    assert json.loads(wk(config, "findings", "--format", "json").stdout)[0]["findings"]


def test_findings_ocsf_refuses_cost_and_a_second_format(tmp_path: Path, rule: FakeRule) -> None:
    config = write_config(tmp_path)
    both = wk(config, "findings", "--format", "ocsf", "--json")
    assert both.returncode == 2 and "pick one" in both.stderr
    cost = wk(config, "findings", "--format", "ocsf", "--kind", "cost")
    assert cost.returncode == 2 and "OCSF has no class for cost findings" in cost.stderr
    assert "Traceback" not in both.stderr + cost.stderr


def test_sweep_text_output_names_what_is_new_and_the_reports(
    tmp_path: Path, rule: FakeRule
) -> None:
    result = wk(write_config(tmp_path), "sweep", "security")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "nightly (security, partial): 2 open — 2 new · 0 resolved · 0 muted"
    assert f"  new [CRITICAL] aws.sg.open_ssh {SG}1 — aws.sg.open_ssh on {SG}1" in lines
    assert "  rule error: aws.iam.root_keys: AccessDenied" in lines
    assert any(line.startswith("  reports: ") and ".sarif" in line for line in lines)


def test_a_sweep_where_every_rule_failed_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, FakeRule(meta("aws.sg.open_ssh"), error=CollectError("AccessDenied")))
    result = wk(write_config(tmp_path), "sweep", "security", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["summary"]["rule_errors"][0]["error"] == "AccessDenied"


def test_a_sweep_with_no_applicable_rule_exits_1_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, FakeRule(meta("k8s.pod.privileged", service="k8s:pods")))
    result = wk(write_config(tmp_path), "sweep", "security")
    assert result.returncode == 1
    assert "no security rule applies" in result.stderr


def test_several_sweeps_print_an_array_and_name_picks_one(tmp_path: Path, rule: FakeRule) -> None:
    config = write_config(tmp_path, SWEEP + SWEEP.replace('"nightly"', '"weekly"'))
    both = json.loads(wk(config, "sweep", "security", "--json").stdout)
    assert [d["sweep"]["name"] for d in both] == ["nightly", "weekly"]
    one = json.loads(wk(config, "sweep", "security", "--name", "weekly", "--json").stdout)
    assert one["sweep"]["name"] == "weekly"


def test_notify_delivers_only_what_changed(
    tmp_path: Path, rule: FakeRule, webhook_receiver: WebhookReceiver
) -> None:
    target = f'[[notify]]\nname = "oncall"\nurl = "{webhook_receiver.url()}"\n'
    config = write_config(tmp_path, target + SWEEP)
    first = wk(config, "sweep", "security", "--notify")
    assert first.returncode == 0 and "notification queued for 1 target(s)" in first.stdout
    [message] = webhook_receiver.messages
    assert message["title"] == "[SECURITY] nightly: 2 new, 0 resolved (1 critical · 1 medium)"
    assert "Full report: " in message["message"]
    second = wk(config, "sweep", "security", "--notify")
    assert "nothing changed since the last notification" in second.stdout
    assert len(webhook_receiver.messages) == 1


def test_progress_lines_name_the_sweep_and_the_rule(capsys: pytest.CaptureFixture[str]) -> None:
    from daemon.cli.sweeps import _progress
    from daemon.sweeps.runner import RuleOutcome

    report = _progress("nightly")
    report(RuleOutcome(meta("aws.sg.open_ssh"), [finding("aws.sg.open_ssh", SG + "1")]), 1, 2)
    report(RuleOutcome(meta("aws.iam.root_keys"), [], "AccessDenied"), 2, 2)
    assert capsys.readouterr().err.splitlines() == [
        "nightly [1/2] aws.sg.open_ssh: 1 finding",
        "nightly [2/2] aws.iam.root_keys: error — AccessDenied",
    ]


# -- argument and exit-code behaviour, as a real process -----------------------------------------


def test_no_sweep_of_that_kind_is_a_usage_error(tmp_path: Path) -> None:
    result = wk(write_config(tmp_path), "sweep", "cost")
    assert result.returncode == 2
    assert 'no enabled cost sweep is configured: add a [[sweeps]] table with kind = "cost"' in (
        result.stderr
    )


def test_an_unknown_sweep_name_is_a_usage_error(tmp_path: Path) -> None:
    result = wk(write_config(tmp_path), "sweep", "security", "--name", "nope")
    assert result.returncode == 2
    assert "no security sweep named 'nope'; configured: nightly" in result.stderr


def test_an_unknown_kind_is_a_usage_error(tmp_path: Path) -> None:
    result = wk(write_config(tmp_path), "sweep", "compliance")
    assert result.returncode == 2 and "'compliance' is not one of 'security', 'cost'" in (
        result.stderr
    )


def test_findings_before_any_sweep_is_an_empty_list(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = wk(config, "findings", "--json")
    assert (result.returncode, json.loads(result.stdout)) == (0, [])
    assert "no sweep has run yet" in wk(config, "findings").stdout


def test_a_bad_sweep_table_is_a_config_error(tmp_path: Path) -> None:
    result = wk(write_config(tmp_path, SWEEP + 'notify = ["pager"]\n'), "findings")
    assert result.returncode == 2
    assert "sweeps[nightly].notify: 'pager' is not a [[notify]] target" in result.stderr
