"""The investigator's AWS tools against moto's server: CloudWatch metrics and alarm history,
the allow-listed read-only describes, and what the allowlist refuses — with moto's own request
log proving a refused call never reached AWS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.config.load import load_settings
from daemon.engine.aws_allowlist import OPERATIONS, NotAllowed, checked, lookup, scrub
from daemon.engine.tools import Toolbox, build_toolbox
from daemon.llm.google import gemini_schema
from daemon.models import Incident, Severity
from daemon.store import Store
from jobs.base import CheckContext
from tests.peers.aws import Aws, RequestLog, add_alarm_history, put_log

pytest_plugins = ["tests.peers.aws_fixtures"]

NOW = datetime.now(UTC).replace(microsecond=0)
LEAKED_KEY = "AKIAQWERTYUIOPASDFGH"
LEAKED_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
AWS_TOOLS = {"aws_describe", "cloudwatch_alarm_history", "cloudwatch_metric"}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


def estate(aws: Aws) -> None:
    """An ECS service whose task definition carries a password and a host, an RDS instance
    low on storage with an alarm in ALARM, and a log group."""
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName="prod")
    env = [{"name": "DB_PASSWORD", "value": "hunter2-s3cr3t"}, {"name": "DB_HOST", "value": "db1"}]
    container = {"name": "app", "image": "shop:2.14", "memory": 128, "environment": env}
    ecs.register_task_definition(family="checkout", containerDefinitions=[container])
    ecs.create_service(cluster="prod", serviceName="checkout", taskDefinition="checkout")
    watch = aws.client("cloudwatch")
    dims = [{"Name": "DBInstanceIdentifier", "Value": "orders"}]
    for minutes, free in ((40, 9.0e9), (25, 5.5e9), (10, 1.2e9), (2, 2.0e8)):
        watch.put_metric_data(
            Namespace="AWS/RDS",
            MetricData=[{"MetricName": "FreeStorageSpace", "Dimensions": dims, "Value": free,
                         "Timestamp": NOW - timedelta(minutes=minutes)}],
        )  # fmt: skip
    for name, dimensions in (("orders-storage-low", dims), ("unrelated-cpu", [])):
        watch.put_metric_alarm(
            AlarmName=name, Namespace="AWS/RDS", MetricName="FreeStorageSpace",
            Dimensions=dimensions, Statistic="Minimum", Period=300, EvaluationPeriods=1,
            Threshold=1e9, ComparisonOperator="LessThanThreshold",
        )  # fmt: skip
    watch.set_alarm_state(
        AlarmName="orders-storage-low", StateValue="ALARM", StateReason="Threshold Crossed: 2e8"
    )
    lines = [f"line {i} " + "x" * 60 for i in range(100)]
    leak = f"retrying with {LEAKED_KEY} aws_secret_access_key={LEAKED_SECRET}"
    put_log(aws, "/ecs/checkout", [*lines, leak, "FATAL could not connect to db1: disk full"])


def toolbox(
    tmp_path: Path, ctx: CheckContext, extra: str = "", *, aws: bool = True, also: str = ""
) -> Toolbox:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[daemon]
state_dir = "state"
[[checks]]
name = "checkout"
type = "aws_ecs"
cluster = "prod"
services = ["checkout"]
[[checks]]
name = "orders-db"
type = "aws_rds"
instances = ["orders"]
{extra}
""")
    settings = load_settings(path)
    incident = Incident(
        id=1, fingerprint="f", check="checkout", severity=Severity.HIGH, opened_at=NOW,
        blast_radius=["orders-db", *([also] if also else [])],
    )  # fmt: skip
    with Store.open(settings.daemon.state_dir) as store:
        return build_toolbox(incident, settings.checks, store, ctx, output_bytes=2048, aws=aws)


async def test_aws_tools_read_metrics_alarms_and_allow_listed_describes(
    aws: Aws, tmp_path: Path, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    estate(aws)
    add_alarm_history(monkeypatch)
    box = toolbox(tmp_path, CheckContext(http=client, now=lambda: NOW))
    metric = await box.call(
        "cloudwatch_metric",
        {"namespace": "AWS/RDS", "metric": "FreeStorageSpace", "statistic": "Minimum",
         "dimensions": "DBInstanceIdentifier=orders", "minutes": 60},
    )  # fmt: skip
    nothing = await box.call(
        "cloudwatch_metric", {"namespace": "AWS/RDS", "metric": "FreeableMemory"}
    )
    alarms = await box.call("cloudwatch_alarm_history", {})
    history = await box.call("cloudwatch_alarm_history", {"alarm_name": "orders-storage-low"})
    service = await box.call(
        "aws_describe",
        {"service": "ecs", "operation": "describe_services",
         "parameters": {"cluster": "prod", "services": ["checkout"]}},
    )  # fmt: skip
    task = await box.call(
        "aws_describe",
        {"service": "ecs", "operation": "describe_task_definition",
         "parameters": {"taskDefinition": "checkout"}},
    )  # fmt: skip
    log = await box.call(
        "aws_describe",
        {"service": "logs", "operation": "filter_log_events",
         "parameters": {"logGroupName": "/ecs/checkout", "minutes": 30}},
    )  # fmt: skip
    assert set(box.tools) >= AWS_TOOLS
    # every provider can take the schemas: Gemini refuses an object without properties
    for name in AWS_TOOLS:
        converted = gemini_schema(box.tools[name].spec.parameters)
        assert all(p.get("properties") for p in converted["properties"].values()
                   if p["type"] == "OBJECT")  # fmt: skip
    assert metric.ok, metric.text
    lines = metric.text.splitlines()
    assert lines[0].startswith("AWS/RDS FreeStorageSpace{DBInstanceIdentifier=orders} Minimum")
    assert [line.split()[1] for line in lines[1:]] == ["9000000000", "5500000000", "1200000000",
                                                       "200000000"]  # fmt: skip
    assert nothing.ok and nothing.text.startswith("no datapoints for AWS/RDS FreeableMemory in")
    # the alarm in ALARM comes first, with its reason
    assert alarms.ok and alarms.text.splitlines()[0].startswith("alarm orders-storage-low is ALARM")
    assert "Threshold Crossed: 2e8" in alarms.text and "unrelated-cpu is" in alarms.text
    assert history.ok and "Alarm updated to ALARM: Threshold Crossed" in history.text
    [svc] = json.loads(service.text)["services"]
    assert svc["serviceName"] == "checkout" and "ResponseMetadata" not in service.text
    # the secret-named variable's value never reaches the model; the others do
    assert "hunter2" not in task.text and '"value":"[hidden]"' in task.text
    assert '"value":"db1"' in task.text
    # the log: its newest events, within the tool's byte limit, the FATAL line last
    assert log.ok and log.text.rstrip().endswith("FATAL could not connect to db1: disk full")
    assert log.text.startswith("[…earlier events cut at the byte limit]")
    # a credential a log line leaks is masked before the model sees it
    assert "retrying with AKIA***" in log.text
    assert LEAKED_KEY not in log.text and LEAKED_SECRET not in log.text
    assert len(log.text.encode()) <= 2048


async def test_writes_and_operations_off_the_allowlist_are_refused_before_any_request(
    aws: Aws, tmp_path: Path, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    estate(aws)
    box = toolbox(tmp_path, CheckContext(http=client, now=lambda: NOW))
    instance = aws.client("ec2").run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
    instance_id = instance["Instances"][0]["InstanceId"]
    requests = RequestLog(aws, monkeypatch, str(tmp_path / "moto-requests"))
    asks: list[dict[str, Any]] = [
        {"service": "ec2", "operation": "terminate_instances",
         "parameters": {"InstanceIds": [instance_id]}},
        {"service": "iam", "operation": "get_user", "parameters": {}},
        {"service": "ecs", "operation": "update_service",
         "parameters": {"cluster": "prod", "service": "checkout", "desiredCount": 0}},
        {"service": "ECS", "operation": "DeleteService", "parameters": {"cluster": "prod"}},
        {"service": "ecs", "operation": "describe_services",
         "parameters": {"cluster": "prod", "services": ["checkout"], "include": ["TAGS"]}},
        {"service": "logs", "operation": "filter_log_events",
         "parameters": {"logGroupName": "/ecs/checkout", "minutes": 100000}},
        {"service": "ec2", "operation": "describe_instances",
         "parameters": {"InstanceIds": [f"i-{n:08x}" for n in range(21)]}},
        {"service": "ecs", "operation": "describe_services", "parameters": {"cluster": "prod"}},
    ]  # fmt: skip
    outcomes = [await box.call("aws_describe", ask) for ask in asks]
    dims = await box.call(
        "cloudwatch_metric", {"namespace": "AWS/RDS", "metric": "CPU", "dimensions": "orders"}
    )
    elsewhere = await box.call(
        "cloudwatch_metric", {"namespace": "AWS/EC2", "metric": "CPU", "region": "us-east-1"}
    )
    requests.stop()
    reached = requests.operations()
    texts = [o.text for o in outcomes]
    assert not any(o.ok for o in outcomes) and not elsewhere.ok
    assert dims.text == "refused: dimensions: 'orders' is not Name=Value"
    assert texts[0].startswith("refused: 'ec2 terminate_instances' is not on the read-only AWS")
    assert texts[1].startswith("refused: 'iam get_user' is not on the read-only AWS allowlist")
    assert "'ecs update_service' is not on" in texts[2]
    assert "'ECS DeleteService' is not on" in texts[3]
    assert "ecs describe_services does not take 'include'" in texts[4]
    assert "minutes must be within 1..180" in texts[5]
    assert "InstanceIds takes 1 to 20 items" in texts[6]
    assert "ecs describe_services needs services" in texts[7]
    assert "unknown argument 'region'" in elsewhere.text
    assert reached == []  # moto's own log: not one request reached AWS
    reservations = aws.client("ec2").describe_instances(InstanceIds=[instance_id])
    assert reservations["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"


def test_every_allow_listed_operation_reads_and_exists_in_botocore() -> None:
    """The allowlist names real boto3 methods whose API names say they only read; its
    parameters are parameters of those operations (so a typo is caught here, not on call)."""
    import boto3  # type: ignore[import-untyped]

    aws = boto3.session.Session(region_name="eu-west-1")
    reads = ("Describe", "List", "Get", "FilterLogEvents")
    for op in OPERATIONS:
        client = aws.client(op.service, aws_access_key_id="x", aws_secret_access_key="y")
        api_name = client.meta.method_to_api_mapping[op.name]
        assert api_name.startswith(reads), op.label
        assert op.action.endswith(":" + api_name), op.label
        members = set(client.meta.service_model.operation_model(api_name).input_shape.members)
        sent = {k for k in op.params if k != "minutes"} | set(op.fixed)
        assert sent <= members, (op.label, sent - members)
    with pytest.raises(NotAllowed, match="not on the read-only AWS allowlist"):
        lookup("ec2", "run_instances")
    assert checked(lookup("rds", "describe_events"), {"Duration": 60})["MaxRecords"] == 50


async def test_aws_tools_off_or_without_aws_checks_are_not_offered(
    aws: Aws, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    ctx = CheckContext(http=client, now=lambda: NOW)
    off = toolbox(tmp_path, ctx, aws=False)
    assert set(off.tools) == {"check_history", "run_check"}
    settings_path = tmp_path / "off.toml"
    settings_path.write_text('[daemon]\nstate_dir = "s"\n[escalation]\naws_tools = false\n')
    assert load_settings(settings_path).escalation.aws_tools is False
    assert load_settings(tmp_path / "config.toml").escalation.aws_tools is True


async def test_two_regions_are_offered_as_scopes_and_nothing_else(
    aws: Aws, tmp_path: Path, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    estate(aws)
    extra = '[[checks]]\nname = "dr"\ntype = "aws_rds"\nregion = "us-west-2"\n'
    box = toolbox(tmp_path, CheckContext(http=client, now=lambda: NOW), extra, also="dr")
    spec = box.tools["aws_describe"].spec.parameters["properties"]["scope"]
    assert spec["enum"] == ["default-region", "us-west-2"]
    ask = {"service": "rds", "operation": "describe_db_instances",
           "parameters": {"DBInstanceIdentifier": "orders"}}  # fmt: skip
    other = await box.call("aws_describe", {**ask, "scope": "ap-south-1"})
    assert not other.ok and "outside this incident's scope" in other.text
    requests = RequestLog(aws, monkeypatch, str(tmp_path / "moto-requests"))
    there = await box.call("aws_describe", {**ask, "scope": "us-west-2"})
    requests.stop()
    assert there.ok and there.text.startswith("error: ") and "DBInstanceNotFound" in there.text
    assert requests.operations() == ["DescribeDBInstances"]
    assert requests.regions() == ["us-west-2"]


def test_readme_policy_grants_exactly_the_actions_the_tools_use() -> None:
    """The README's IAM policy for the AWS tools is the allowlist's actions plus the two
    CloudWatch tools' (nothing more, nothing missing)."""
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    block = readme.split('"Sid": "WatchkeeperInvestigatorReadOnly"', 1)[1].split("```", 1)[0]
    policy = json.loads('{"Sid": "x"' + block.rsplit("}]", 1)[0] + "}")
    expected = {"cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms"}
    expected |= {"cloudwatch:DescribeAlarmHistory"} | {op.action for op in OPERATIONS}
    assert set(policy["Action"]) == expected
    assert len(policy["Action"]) == len(expected)


def test_scrub_hides_secret_named_environment_values_and_request_metadata() -> None:
    lambda_config = {
        "FunctionName": "resize",
        "Environment": {"Variables": {"API_TOKEN": "tok-123", "BUCKET": "images"}},
        "ResponseMetadata": {"RequestId": "r"},
        "NextToken": "n",
    }
    assert scrub(lambda_config) == {
        "FunctionName": "resize",
        "Environment": {"Variables": {"API_TOKEN": "[hidden]", "BUCKET": "images"}},
    }
    pairs = [{"name": "STRIPE_SECRET_KEY", "value": "sk_live_x"}, {"name": "PORT", "value": "80"}]
    assert scrub({"environment": pairs})["environment"] == [
        {"name": "STRIPE_SECRET_KEY", "value": "[hidden]"},
        {"name": "PORT", "value": "80"},
    ]
