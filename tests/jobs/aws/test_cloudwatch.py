from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]
from pydantic import ValidationError

from daemon.models import CheckResult
from jobs.aws.api import retry_attempts
from jobs.aws.cloudwatch import CloudWatchCheck
from jobs.base import CheckContext
from tests.jobs.conftest import assert_options_described
from tests.peers.aws import (
    Aws,
    add_alarm_history,
    minutes_ago,
    no_credentials,
    unresolvable_hosts,
)

pytest_plugins = ["tests.peers.aws_fixtures"]

REASON = "Threshold Crossed: 1 datapoint [12.0] was greater than the threshold (5.0)"
CPU = {"namespace": "AWS/RDS", "metric": "CPUUtilization"}
ORDERS = {"DBInstanceIdentifier": "orders"}
SINCE = r"since (\d{4}-\d\d-\d\d )?\d\d:\d\d UTC"


def spec(**options: Any) -> CloudWatchCheck:
    return CloudWatchCheck.model_validate({"name": "cw", "type": "aws_cloudwatch", **options})


async def check(ctx: CheckContext, **options: Any) -> list[CheckResult]:
    return await spec(**options).run(ctx)


def put_alarm(aws: Aws, name: str, state: str = "ALARM", reason: str = REASON) -> None:
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/ApplicationELB",
        MetricName="HTTPCode_Target_5XX_Count",
        Dimensions=[{"Name": "LoadBalancer", "Value": "app/api/1"}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    if state != "OK":
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)


def put_cpu(aws: Aws, value: float, minutes: float = 2) -> None:
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "orders"}],
                "Value": value,
                "Timestamp": minutes_ago(minutes),
            }
        ],
    )


def test_options_are_described() -> None:
    assert_options_described(CloudWatchCheck)


@pytest.mark.parametrize(("timeout_s", "attempts"), [(1, 1), (2, 2), (10, 3), (30, 5), (600, 5)])
def test_retry_attempts_leave_room_for_backoff_within_the_timeout(
    timeout_s: float, attempts: int
) -> None:
    assert retry_attempts(timeout_s) == attempts


async def test_alarm_in_alarm_state_is_failing_with_reason_and_since(
    aws: Aws, ctx: CheckContext
) -> None:
    put_alarm(aws, "api-5xx-high")
    [result] = await check(ctx, mode="alarms", alarm_prefix="api-")
    assert result.status == "failing"
    assert result.subject == "api-5xx-high"
    assert re.fullmatch(
        rf"alarm api-5xx-high is ALARM {SINCE}: {re.escape(REASON)} \(metric "
        r"AWS/ApplicationELB HTTPCode_Target_5XX_Count\{LoadBalancer=app/api/1\} "
        r"Sum per 1m > 5\)",
        result.evidence,
    )
    assert result.values["threshold"] == 5.0


async def test_alarm_in_ok_state_is_ignored(aws: Aws, ctx: CheckContext) -> None:
    put_alarm(aws, "api-5xx-high", state="OK")
    [result] = await check(ctx, mode="alarms", alarm_prefix="api-")
    assert result.status == "ok"
    assert result.evidence == (
        "no CloudWatch alarm with prefix 'api-' is in ALARM state in eu-west-1"
    )


async def test_prefix_leaves_out_other_alarms(aws: Aws, ctx: CheckContext) -> None:
    put_alarm(aws, "db-cpu-high")
    [result] = await check(ctx, mode="alarms", alarm_prefix="api-")
    assert result.status == "ok"
    [result] = await check(ctx, mode="alarms", alarm_prefix="db-")
    assert (result.status, result.subject) == ("failing", "db-cpu-high")


async def test_each_firing_alarm_is_its_own_result(aws: Aws, ctx: CheckContext) -> None:
    put_alarm(aws, "api-5xx-high")
    put_alarm(aws, "db-cpu-high")
    put_alarm(aws, "queue-depth", state="OK")
    results = await check(ctx, mode="alarms")
    assert sorted((r.status, r.subject) for r in results) == [
        ("failing", "api-5xx-high"),
        ("failing", "db-cpu-high"),
    ]


async def test_named_alarms_report_firing_and_missing(aws: Aws, ctx: CheckContext) -> None:
    put_alarm(aws, "api-5xx-high")
    put_alarm(aws, "api-latency", state="OK")
    results = await check(
        ctx, mode="alarms", alarm_names=["api-5xx-high", "api-latency", "api-5xx-hgih"]
    )
    assert [(r.status, r.subject) for r in results] == [
        ("failing", "api-5xx-high"),
        ("error", "api-5xx-hgih"),
    ]
    assert results[1].evidence == (
        "no CloudWatch alarm named api-5xx-hgih in eu-west-1: fix alarm_names"
    )


async def test_named_alarms_all_clear_summarises_their_states(aws: Aws, ctx: CheckContext) -> None:
    put_alarm(aws, "api-latency", state="OK")
    put_alarm(aws, "api-errors", state="INSUFFICIENT_DATA", reason="no data")
    [result] = await check(ctx, mode="alarms", alarm_names=["api-latency", "api-errors"])
    assert result.status == "ok"
    assert result.evidence == (
        "none of the 2 named alarms is in ALARM state (1 INSUFFICIENT_DATA, 1 OK)"
    )


async def test_metric_above_threshold_is_failing(aws: Aws, ctx: CheckContext) -> None:
    put_cpu(aws, 93.2)
    [result] = await check(ctx, mode="metric", **CPU, dimensions=ORDERS, threshold=80)
    assert result.status == "failing"
    assert re.fullmatch(
        r"AWS/RDS CPUUtilization\{DBInstanceIdentifier=orders\} Average over 5m = 93\.2 > 80 "
        r"\(period starting (\d{4}-\d\d-\d\d )?\d\d:\d\d UTC\)",
        result.evidence,
    )
    assert result.values == {"value": 93.2, "threshold": 80.0}


async def test_metric_below_threshold_is_ok(aws: Aws, ctx: CheckContext) -> None:
    put_cpu(aws, 41.5)
    [result] = await check(ctx, mode="metric", **CPU, dimensions=ORDERS, threshold=80)
    assert result.status == "ok"
    assert result.evidence.startswith(
        "AWS/RDS CPUUtilization{DBInstanceIdentifier=orders} Average over 5m = 41.5, not > 80"
    )


async def test_metric_judges_the_latest_datapoint_with_the_chosen_operator(
    aws: Aws, ctx: CheckContext
) -> None:
    put_cpu(aws, 5.0, minutes=12)
    put_cpu(aws, 30.0, minutes=2)
    options = {**CPU, "dimensions": ORDERS, "op": "<", "threshold": 10, "period": "5m"}
    [result] = await check(ctx, mode="metric", **options)
    assert result.status == "ok"
    assert " = 30, not < 10 " in result.evidence


async def test_metric_without_data_takes_the_no_data_status(aws: Aws, ctx: CheckContext) -> None:
    put_cpu(aws, 93.2, minutes=40)  # older than the lookback
    options = {**CPU, "dimensions": ORDERS, "threshold": 80, "no_data": "failing"}
    [result] = await check(ctx, mode="metric", **options)
    assert result.status == "failing"
    assert result.evidence.startswith(
        "no AWS/RDS CPUUtilization{DBInstanceIdentifier=orders} datapoints (Average over 5m) "
        "in the last 15m: check the namespace"
    )


def test_metric_mode_needs_namespace_metric_and_threshold() -> None:
    with pytest.raises(ValidationError, match="mode = 'metric' needs metric, threshold"):
        spec(mode="metric", namespace="AWS/RDS")


def test_options_of_the_other_mode_are_rejected() -> None:
    with pytest.raises(ValidationError, match="alarm_prefix: only for mode = 'alarms'"):
        spec(mode="metric", **CPU, threshold=1, alarm_prefix="api-")
    with pytest.raises(ValidationError, match="threshold: only for mode = 'metric'"):
        spec(mode="alarms", threshold=1)
    with pytest.raises(ValidationError, match="alarm_prefix or alarm_names, not both"):
        spec(mode="alarms", alarm_prefix="a", alarm_names=["b"])


def test_statistic_and_period_are_validated() -> None:
    assert spec(mode="metric", **CPU, threshold=1, statistic="p99.9").statistic == "p99.9"
    with pytest.raises(ValidationError, match="statistic 'Median'"):
        spec(mode="metric", **CPU, threshold=1, statistic="Median")
    with pytest.raises(ValidationError, match="multiple of 60 s"):
        spec(mode="metric", **CPU, threshold=1, period="90s")


async def test_rca_context_quotes_recent_alarm_state_changes(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_alarm_history(monkeypatch)
    put_alarm(aws, "api-5xx-high", state="OK")
    aws.client("cloudwatch").set_alarm_state(
        AlarmName="api-5xx-high", StateValue="ALARM", StateReason=REASON
    )
    check_spec = spec(mode="alarms", alarm_prefix="api-")
    results = await check_spec.run(ctx)
    [block] = await check_spec.rca_context(ctx, results)
    assert block.title == "CloudWatch alarm history: api-5xx-high"
    assert f"Alarm updated to ALARM: {REASON}" in block.text.splitlines()[0]


async def test_rca_context_of_a_metric_lists_the_last_hour(aws: Aws, ctx: CheckContext) -> None:
    put_cpu(aws, 93.2)
    check_spec = spec(mode="metric", **CPU, dimensions=ORDERS, threshold=80)
    [block] = await check_spec.rca_context(ctx, await check_spec.run(ctx))
    assert block.title == "AWS/RDS CPUUtilization{DBInstanceIdentifier=orders} Average, last hour"
    assert block.text.endswith(" 93.2")


async def test_client_is_built_once_per_profile_region_and_service(
    aws: Aws, ctx: CheckContext
) -> None:
    await check(ctx, mode="alarms")
    first = dict(ctx.clients)
    await check(ctx, mode="alarms", region="eu-west-1")
    await check(ctx, mode="alarms")
    assert list(first) == ["aws:::cloudwatch:10s"]
    assert ctx.clients["aws:::cloudwatch:10s"] is first["aws:::cloudwatch:10s"]
    assert set(ctx.clients) == {"aws:::cloudwatch:10s", "aws::eu-west-1:cloudwatch:10s"}


async def test_missing_credentials_is_an_error_that_says_how_to_configure(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_credentials(monkeypatch)
    [result] = await check(ctx, mode="alarms")
    assert result.status == "error"
    assert result.evidence.startswith(
        "no AWS credentials found for the default profile: configure them (aws configure / "
        "aws sso login / an instance role)"
    )


async def test_access_denied_names_the_denied_action(aws: Aws, ctx: CheckContext) -> None:
    # moto enforces IAM, but answers CloudWatch's CBOR protocol with an XML error that
    # botocore cannot parse (see test_aws_rds for the moto-enforced case): stub this edge.
    client = aws.client("cloudwatch")
    stubber = Stubber(client)
    denied = "User: arn:aws:iam::123456789012:user/ops is not authorized to perform: "
    stubber.add_client_error(
        "describe_alarms",
        service_error_code="AccessDenied",
        service_message=denied + "cloudwatch:DescribeAlarms",
        http_status_code=403,
    )
    ctx.clients["aws:::cloudwatch:10s"] = client
    with stubber:
        [result] = await check(ctx, mode="alarms")
    assert result.status == "error"
    assert result.evidence == (
        "AccessDenied on cloudwatch:DescribeAlarms: grant it to the role or user of the "
        f"default profile ({denied}cloudwatch:DescribeAlarms)"
    )


async def test_unreachable_endpoint_is_an_error(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port}")
    [result] = await check(ctx, mode="alarms", timeout="1s")
    assert result.status == "error"
    assert result.evidence == (
        f"cannot reach the AWS endpoint http://127.0.0.1:{closed_port} for "
        "cloudwatch:DescribeAlarms: connection refused"
    )


async def test_unknown_region_is_an_error_naming_it(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    unresolvable_hosts(monkeypatch)
    [result] = await check(ctx, mode="alarms", region="eu-nowhere-1", timeout="1s")
    assert result.status == "error"
    assert result.evidence.startswith(
        "unknown AWS region 'eu-nowhere-1': cloudwatch:DescribeAlarms has no endpoint there"
    )


async def test_no_region_anywhere_is_an_error(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    [result] = await check(ctx, mode="alarms")
    assert result.status == "error"
    assert result.evidence.startswith(
        'no AWS region for cloudwatch: set region = "eu-west-1" (for example) in the check, '
        "or AWS_REGION / AWS_DEFAULT_REGION"
    )


async def test_aws_region_variable_is_honoured(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    [result] = await check(ctx, mode="alarms")
    assert result.evidence == "no CloudWatch alarm at all is in ALARM state in eu-west-1"


async def test_unknown_profile_is_an_error(aws: Aws, ctx: CheckContext) -> None:
    [result] = await check(ctx, mode="alarms", profile="prod-readonly")
    assert result.status == "error"
    assert result.evidence.startswith(
        "AWS profile prod-readonly is not in the AWS config or credentials file"
    )


async def test_missing_boto3_is_an_error_with_the_install_command(
    ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    [result] = await check(ctx, mode="alarms", region="eu-west-1")
    assert result.status == "error"
    assert result.evidence == ("boto3 is not installed: install it: pip install 'watchkeeper[aws]'")


def test_importing_the_aws_check_modules_does_not_import_boto3() -> None:
    code = (
        "import sys, jobs.aws.cloudwatch, jobs.aws.rds, jobs.aws.ecs\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore'))\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
