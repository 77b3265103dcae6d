"""A sweep that finds no AWS credentials says so once — in the stored run, the three reports,
the notification and the CLI — with the rules it could not run, instead of one identical error
per rule; and what it found before is kept (not re-checked), never resolved. Against moto's
server, with nothing boto3 could find credentials in."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import jobs.sweeps
from daemon.cli.sweeps import findings_text, run_text
from daemon.store import Store
from daemon.sweeps.reports import report_json
from tests.daemon.sweeps.moto_sweeps import (
    open_to_the_internet,
    report,
    security_settings,
    sweep_now,
)
from tests.peers.aws import Aws

pytest_plugins = ["tests.peers.aws_fixtures", "tests.jobs.sweeps.aws.fixtures"]

MISSING = "no AWS credentials found for the default profile"


def without_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str) -> None:
    """Nothing boto3 could find credentials in: no AWS_* variable, empty config and credentials
    files, no instance metadata (169.254.169.254 is never asked); requests, if any were made,
    would still go to moto on loopback."""
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    empty = tmp_path / "empty-aws-file"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)


async def test_missing_credentials_are_one_error_for_the_sweep_not_one_per_rule(
    aws: Aws, account_hosts: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_to_the_internet(aws, "bastion", 22)
    settings = security_settings(tmp_path)
    with Store.open(settings.daemon.state_dir) as store:
        before = await sweep_now(settings, store)
        found = sorted(t.finding.id for t in before.record.findings)
        assert any(id.startswith("aws.sg.open_ssh:") for id in found)
        without_credentials(monkeypatch, tmp_path, aws.endpoint)
        run = await sweep_now(settings, store, datetime.now(UTC) + timedelta(days=1))

    record = run.record
    assert record.detail["rule_errors"] == []
    [failure] = record.detail["scope_errors"]
    assert failure["scope"] == "AWS"
    assert failure["error"].startswith(MISSING)
    aws_rules = [r.meta.id for r in jobs.sweeps.rules("security") if r.meta.service[:4] == "aws:"]
    assert failure["rules"] == sorted(aws_rules)
    assert record.detail["rules_run"] == 0
    assert record.status == "failed"
    # not swept is not fixed: what was found before is carried, not resolved
    assert sorted((t.finding.id, t.state) for t in record.findings) == [
        (id, "unknown") for id in found
    ]
    assert run.changes.resolved == []

    assert run.message is not None
    assert run.message.body.count("no AWS credentials") == 1
    assert f"({len(aws_rules)} rules did not run)" in run.message.body
    for ext in ("md", "json", "sarif"):
        assert report(run, ext).count("no AWS credentials") == 1, ext
    assert run_text(run, True).count("no AWS credentials") == 1
    assert findings_text([report_json(record)]).count("no AWS credentials") == 1
