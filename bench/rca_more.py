"""`bench.rca`'s AWS scenarios (a failed ECS rollout, RDS storage full, Lambda throttling, ALB
unhealthy targets, a database password rotated under the app) against moto's server, and a
disk filling seen in Prometheus.

moto is arranged through the real API where it can be; where moto cannot produce a state (an
ECS circuit breaker's FAILED rollout and service events, an RDS event's text, a target's
health-check reason, alarm history) its in-process model is set, as the check tests do, and the
investigator still reads it through the real wire protocol.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.rca_scenario import Scenario
from tests.peers.aws import REGION, put_log


@contextmanager
def moto_server(root: Path) -> Iterator[str]:
    """moto's server on loopback (bench.footprint's), boto3 pointed at it through the
    environment, and moto's missing DescribeAlarmHistory answered; nothing can reach a real
    AWS account or ~/.aws."""
    import pytest

    from bench.footprint import moto_server as moto_env
    from tests.peers.aws import add_alarm_history

    patch = pytest.MonkeyPatch()
    with moto_env(root) as env:
        for key, value in env.items():
            patch.setenv(key, value)
        add_alarm_history(patch)  # moto 5 has no DescribeAlarmHistory
        try:
            yield env["AWS_ENDPOINT_URL"]
        finally:
            patch.undo()


def fresh_aws(endpoint: str) -> Any:
    import httpx

    from tests.peers.aws import Aws

    httpx.post(f"{endpoint}/moto-api/reset").raise_for_status()
    return Aws(endpoint, REGION)


DISK = 'node_filesystem_avail_bytes{mountpoint="/var/lib/postgresql"}'


def aws_checks(prometheus: str) -> str:
    """The bench estate's AWS checks and its disk check (TOML)."""
    query = f"{DISK} / {DISK.replace('avail', 'size')}"
    return f"""
[[checks]]
name = "checkout-ecs"
type = "aws_ecs"
cluster = "prod"
services = ["checkout"]
timeout = "20s"
[[checks]]
name = "orders-rds"
type = "aws_rds"
instances = ["orders"]
timeout = "20s"
[[checks]]
name = "aws-alarms"
type = "aws_cloudwatch"
mode = "alarms"
timeout = "20s"
[[checks]]
name = "db-disk"
type = "prometheus"
url = "{prometheus}"
query = '{query}'
op = "<"
threshold = 0.1
"""


def _now() -> datetime:
    return datetime.now(UTC)


def _service(aws: Any, image: str = "shop:2.14") -> Any:
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName="prod")
    container = {"name": "app", "image": image, "memory": 512}
    ecs.register_task_definition(family="checkout", containerDefinitions=[container])
    ecs.create_service(
        cluster="prod", serviceName="checkout", taskDefinition="checkout", desiredCount=3
    )
    return aws.backend("ecs").services["prod:checkout"]


def _series(
    aws: Any, namespace: str, metric: str, dims: dict[str, str], values: list[float]
) -> None:
    watch = aws.client("cloudwatch")
    now = _now()
    for i, value in enumerate(values):
        watch.put_metric_data(
            Namespace=namespace,
            MetricData=[{
                "MetricName": metric, "Value": value,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                "Timestamp": now - timedelta(minutes=5 * (len(values) - i)),
            }],
        )  # fmt: skip


def _alarm(
    aws: Any, name: str, namespace: str, metric: str, dims: dict[str, str], reason: str
) -> None:
    watch = aws.client("cloudwatch")
    watch.put_metric_alarm(
        AlarmName=name, Namespace=namespace, MetricName=metric, Statistic="Sum", Period=60,
        EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
    )  # fmt: skip
    watch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=reason)


def _rds(aws: Any) -> Any:
    aws.client("rds").create_db_instance(
        DBInstanceIdentifier="orders", DBInstanceClass="db.t3.medium", Engine="postgres",
        AllocatedStorage=100, MasterUsername="app", MasterUserPassword="not-a-real-one-1",
    )  # fmt: skip
    return aws.backend("rds").databases["orders"]


def failed_rollout(aws: Any) -> dict[str, str]:
    service = _service(aws)
    ecs = aws.client("ecs")
    container = {"name": "app", "image": "shop:2.15", "memory": 512}
    ecs.register_task_definition(family="checkout", containerDefinitions=[container])
    ecs.update_service(cluster="prod", service="checkout", taskDefinition="checkout:2")
    deployment = service.deployments[0]
    deployment["rolloutState"] = "FAILED"
    deployment["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
    when = deployment["createdAt"]
    service.events = [
        {"id": "e2", "createdAt": when, "message": f"(service checkout) (deployment "
         f"{deployment['id']}) deployment failed: tasks failed to start."},
        {"id": "e1", "createdAt": when, "message": "(service checkout) has started 1 tasks: "
         "(task 5f1c9e)."},
    ]  # fmt: skip
    put_log(aws, "/ecs/checkout", [
        "> shop@2.15.0 start", "> node server.js",
        "Error: Cannot find module '/app/server.js'", "    at Module._resolveFilename",
    ])  # fmt: skip
    return {}


def rds_storage_full(aws: Any) -> dict[str, str]:
    db = _rds(aws)
    db.add_event("DB_INSTANCE_CREATE")
    event = aws.backend("rds").events[-1]
    event.message = (
        "The free storage capacity for DB instance orders is low at 1% of the provisioned "
        "storage [Provisioned Storage: 100.00 GB, Free Storage: 1.10 GB]."
    )
    event.event_categories = ["low storage"]
    _series(aws, "AWS/RDS", "FreeStorageSpace", {"DBInstanceIdentifier": "orders"},
            [3.1e10, 2.2e10, 1.3e10, 4.4e9, 1.1e9])  # fmt: skip
    return {}


def lambda_throttling(aws: Any) -> dict[str, str]:
    role = aws.client("iam").create_role(
        RoleName="resize", AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[]}'
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return event\n")
    functions = aws.client("lambda")
    functions.create_function(
        FunctionName="resize", Runtime="python3.12", Role=role, Handler="handler.handle",
        Code={"ZipFile": code.getvalue()},
    )  # fmt: skip
    functions.put_function_concurrency(FunctionName="resize", ReservedConcurrentExecutions=5)
    dims = {"FunctionName": "resize"}
    _series(aws, "AWS/Lambda", "ConcurrentExecutions", dims, [2, 5, 5, 5, 5])
    reason = "Threshold Crossed: 1 datapoint [412.0] was greater than the threshold (0.0)."
    _alarm(aws, "resize-throttles", "AWS/Lambda", "Throttles", dims, reason)
    return {}


def alb_unhealthy(aws: Any) -> dict[str, str]:
    from moto.elbv2.models import FakeHealthStatus

    vpc = aws.client("ec2").describe_vpcs()["Vpcs"][0]["VpcId"]
    elbv2 = aws.client("elbv2")
    group = elbv2.create_target_group(
        Name="shop", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip",
        HealthCheckPath="/healthz", Matcher={"HttpCode": "200"},
    )["TargetGroups"][0]  # fmt: skip
    arn = group["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.0.1.12"}, {"Id": "10.0.2.7"}])

    def unhealthy(target: dict[str, Any], ec2: Any) -> Any:
        return FakeHealthStatus(
            target["Id"], "8080", "traffic-port", "unhealthy", "Target.ResponseCodeMismatch",
            "Health checks failed with these codes: [503]",
        )  # fmt: skip

    aws.backend("elbv2").target_groups[arn].health_for = unhealthy  # moto: always healthy
    reason = "Threshold Crossed: 1 datapoint [2.0] was greater than the threshold (0.0)."
    dims = {"TargetGroup": arn.split(":")[-1]}
    _alarm(aws, "shop-unhealthy-hosts", "AWS/ApplicationELB", "UnHealthyHostCount", dims, reason)
    return {"SHOP_TARGET_GROUP": arn}


def password_rotated(aws: Any) -> dict[str, str]:
    _service(aws)
    db = _rds(aws)
    db.add_event("DB_INSTANCE_RESET_MASTER_CREDENTIALS")
    put_log(aws, "/ecs/checkout", [
        "connecting to orders.cluster-abc.eu-west-1.rds.amazonaws.com:5432 as app",
        'FATAL: password authentication failed for user "app"', "exiting with code 1",
    ])  # fmt: skip
    return {}


def _disk(k8s: Any, prom: Any) -> None:
    from tests.peers.prometheus import matrix, vector

    prom.ranges[DISK] = matrix(
        {"mountpoint": "/var/lib/postgresql"}, "1.9e10", "1.2e10", "5.1e9", "8.0e8"
    )
    prom.answers["pg_stat_archiver_failed_count"] = vector(({"instance": "orders-db"}, "1423"))


def _describe(service: str, operation: str, **parameters: Any) -> tuple[str, dict[str, Any]]:
    return ("aws_describe", {"service": service, "operation": operation, "parameters": parameters})


def more_scenarios() -> list[Scenario]:
    read_log = _describe("logs", "filter_log_events", logGroupName="/ecs/checkout", minutes=30)
    return [
        Scenario(
            "failed ECS rollout",
            "checkout-ecs",
            "service checkout in cluster prod: deployment FAILED (ECS deployment circuit "
            "breaker: tasks failed to start.); 3 of 3 tasks running",
            [
                "FAILED",
                "deployment failed: tasks failed to start",
                "shop:2.15",
                "Cannot find module '/app/server.js'",
            ],
            [
                [_describe("ecs", "describe_task_definition", taskDefinition="checkout:2")],
                [read_log],
            ],
            aws=failed_rollout,
            subject="checkout",
            radius=[],
        ),
        Scenario(
            "disk filling (Prometheus)",
            "db-disk",
            'node_filesystem_avail_bytes{mountpoint="/var/lib/postgresql"} / '
            "node_filesystem_size_bytes = 0.04 < 0.1",
            ["0.04", '"8.0e8"', '"1423"'],
            [
                [("prometheus_range", {"query": DISK, "minutes": 240})],
                [("prometheus_query", {"query": "pg_stat_archiver_failed_count"})],
            ],
            setup=_disk,
            radius=[],
        ),
        Scenario(
            "RDS storage full",
            "orders-rds",
            "RDS instance orders: 1% free storage (1.1 GB of 100 GB)",
            [
                "1% free storage",
                "free storage capacity for DB instance orders is low",
                "1100000000",
                '"AllocatedStorage":100',
            ],
            [
                [
                    (
                        "cloudwatch_metric",
                        {
                            "namespace": "AWS/RDS",
                            "metric": "FreeStorageSpace",
                            "dimensions": "DBInstanceIdentifier=orders",
                            "statistic": "Minimum",
                            "minutes": 120,
                        },
                    )
                ],
                [_describe("rds", "describe_db_instances", DBInstanceIdentifier="orders")],
            ],
            aws=rds_storage_full,
            subject="orders",
            radius=[],
        ),
        Scenario(
            "Lambda throttling",
            "aws-alarms",
            "alarm resize-throttles is ALARM: Threshold Crossed: 1 datapoint [412.0] was "
            "greater than the threshold (0.0). (metric AWS/Lambda Throttles)",
            [
                "412.0",
                '"ReservedConcurrentExecutions":5',
                "ConcurrentExecutions{FunctionName=resize} Maximum per",
            ],
            [
                [
                    _describe("lambda", "get_function_concurrency", FunctionName="resize"),
                    (
                        "cloudwatch_metric",
                        {
                            "namespace": "AWS/Lambda",
                            "metric": "ConcurrentExecutions",
                            "dimensions": "FunctionName=resize",
                            "statistic": "Maximum",
                        },
                    ),
                ]
            ],
            aws=lambda_throttling,
            subject="resize-throttles",
            radius=[],
        ),
        Scenario(
            "ALB unhealthy targets",
            "aws-alarms",
            "alarm shop-unhealthy-hosts is ALARM: Threshold Crossed: 1 datapoint [2.0] was "
            "greater than the threshold (0.0). (metric AWS/ApplicationELB UnHealthyHostCount)",
            [
                "UnHealthyHostCount",
                "Target.ResponseCodeMismatch",
                "Health checks failed with these codes: [503]",
                '"HealthCheckPath":"/healthz"',
            ],
            [
                [
                    _describe("elbv2", "describe_target_groups", Names=["shop"]),
                    _describe(
                        "elbv2", "describe_target_health", TargetGroupArn="SHOP_TARGET_GROUP"
                    ),
                ]
            ],
            aws=alb_unhealthy,
            subject="shop-unhealthy-hosts",
            radius=[],
        ),
        Scenario(
            "database password rotated under the app",
            "checkout-ecs",
            "service checkout in cluster prod: 0 of 3 tasks running",
            ['password authentication failed for user "app"', "Reset master credentials"],
            [
                [read_log],
                [
                    _describe(
                        "rds",
                        "describe_events",
                        SourceIdentifier="orders",
                        SourceType="db-instance",
                        Duration=1440,
                    )
                ],
            ],
            aws=password_rotated,
            subject="checkout",
            radius=["orders-rds"],
        ),
    ]
