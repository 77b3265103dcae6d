from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from daemon.models import CheckResult
from jobs.aws.rds import RdsCheck, status_verdict
from jobs.base import CheckContext
from tests.jobs.conftest import assert_options_described
from tests.peers.aws import Aws, minutes_ago, restricted_user

pytest_plugins = ["tests.peers.aws_fixtures"]

GIB = 1024**3
ORDERS = "RDS instance orders (postgres 16.3, db.t4g.medium)"


def spec(**options: Any) -> RdsCheck:
    return RdsCheck.model_validate({"name": "db", "type": "aws_rds", **options})


async def check(ctx: CheckContext, **options: Any) -> list[CheckResult]:
    return await spec(**options).run(ctx)


def create_db(aws: Aws, name: str = "orders", engine: str = "postgres") -> None:
    aws.client("rds").create_db_instance(
        DBInstanceIdentifier=name,
        Engine=engine,
        EngineVersion="16.3",
        DBInstanceClass="db.t4g.medium",
        AllocatedStorage=100,
        MasterUsername="admin",
        MasterUserPassword="not-a-real-password",
    )


def put_free_storage(aws: Aws, gib: float, name: str = "orders") -> None:
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "FreeStorageSpace",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": name}],
                "Value": gib * GIB,
                "Unit": "Bytes",
                "Timestamp": minutes_ago(2),
            }
        ],
    )


def test_options_are_described() -> None:
    assert_options_described(RdsCheck)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        ("available", "ok"),
        ("storage-optimization", "ok"),
        ("backing-up", "degraded"),
        ("modifying", "degraded"),
        ("upgrading", "degraded"),
        ("stopped", "failing"),
        ("rebooting", "failing"),
        ("storage-full", "failing"),
        ("inaccessible-encryption-credentials", "failing"),
        ("some-state-aws-adds-next-year", "failing"),
    ],
)
def test_status_mapping(status: str, verdict: str) -> None:
    assert status_verdict(status) == verdict


async def test_available_instance_with_room_is_ok(aws: Aws, ctx: CheckContext) -> None:
    create_db(aws)
    put_free_storage(aws, 50)
    [result] = await check(ctx, instances=["orders"])
    assert result.status == "ok"
    assert result.subject == "orders"
    assert result.evidence == f"{ORDERS} is available; 50.0 GiB free of 100 GiB (50.0 %)"
    assert result.values["free_storage_percent"] == 50.0


async def test_stopped_instance_is_failing_and_quotes_its_status(
    aws: Aws, ctx: CheckContext
) -> None:
    create_db(aws)
    aws.client("rds").stop_db_instance(DBInstanceIdentifier="orders")
    [result] = await check(ctx, instances=["orders"])
    assert result.status == "failing"
    assert result.evidence == f"{ORDERS} is stopped"
    assert result.values["status"] == "stopped"


async def test_transitional_status_is_degraded(aws: Aws, ctx: CheckContext) -> None:
    create_db(aws)
    put_free_storage(aws, 50)
    aws.backend("rds").databases["orders"].status = "backing-up"  # no API sets it in moto
    [result] = await check(ctx, instances=["orders"])
    assert result.status == "degraded"
    assert result.evidence.startswith(f"{ORDERS} is backing-up (a transitional state); ")


async def test_storage_under_the_warning_is_degraded(aws: Aws, ctx: CheckContext) -> None:
    create_db(aws)
    put_free_storage(aws, 12)
    [result] = await check(ctx, instances=["orders"])
    assert result.status == "degraded"
    assert result.evidence == (
        f"{ORDERS} is available; 12.0 GiB free of 100 GiB (12.0 %), under the warning 15 %"
    )


async def test_storage_under_the_critical_is_failing(aws: Aws, ctx: CheckContext) -> None:
    create_db(aws)
    put_free_storage(aws, 3.1)
    [result] = await check(ctx, instances=["orders"], storage_critical_percent=4)
    assert result.status == "failing"
    assert result.evidence == (
        f"{ORDERS} is available; 3.1 GiB free of 100 GiB (3.1 %), under the critical 4 %"
    )


async def test_missing_storage_metric_is_noted_not_judged(aws: Aws, ctx: CheckContext) -> None:
    create_db(aws)
    [result] = await check(ctx, instances=["orders"])
    assert result.status == "ok"
    assert (
        result.evidence == f"{ORDERS} is available; no FreeStorageSpace datapoint in the last 30m"
    )


async def test_aurora_storage_is_not_judged(aws: Aws, ctx: CheckContext) -> None:
    aws.client("rds").create_db_cluster(
        DBClusterIdentifier="ledger",
        Engine="aurora-postgresql",
        MasterUsername="admin",
        MasterUserPassword="not-a-real-password",
    )
    aws.client("rds").create_db_instance(
        DBInstanceIdentifier="ledger-1",
        DBClusterIdentifier="ledger",
        Engine="aurora-postgresql",
        DBInstanceClass="db.r6g.large",
    )
    put_free_storage(aws, 0.1, name="ledger-1")
    [result] = await check(ctx, instances=["ledger-1"])
    assert result.status == "ok"
    assert "GiB free" not in result.evidence
    assert "FreeStorageSpace" not in result.evidence


async def test_every_instance_in_the_region_when_none_listed(aws: Aws, ctx: CheckContext) -> None:
    create_db(aws, "orders")
    create_db(aws, "billing")
    aws.client("rds").stop_db_instance(DBInstanceIdentifier="billing")
    results = await check(ctx)
    assert sorted((r.subject, r.status) for r in results) == [
        ("billing", "failing"),
        ("orders", "ok"),
    ]


async def test_listed_instance_that_does_not_exist_is_failing(aws: Aws, ctx: CheckContext) -> None:
    create_db(aws, "orders")
    put_free_storage(aws, 50)
    results = await check(ctx, instances=["orders", "ordres"])
    assert [(r.subject, r.status) for r in results] == [("orders", "ok"), ("ordres", "failing")]
    assert results[1].evidence == "RDS instance ordres not found in eu-west-1"


async def test_region_without_instances_is_ok(aws: Aws, ctx: CheckContext) -> None:
    [result] = await check(ctx)
    assert (result.status, result.evidence) == ("ok", "no RDS DB instances in eu-west-1")


def test_critical_threshold_must_be_below_warning() -> None:
    with pytest.raises(ValidationError, match="storage_critical_percent must be below"):
        spec(storage_warn_percent=5, storage_critical_percent=10)


async def test_access_denied_is_enforced_by_moto_and_names_the_action(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_db(aws)
    restricted_user(aws, monkeypatch, allow=["cloudwatch:GetMetricData"])
    [result] = await check(ctx, instances=["orders"])
    assert result.status == "error"
    assert result.evidence == (
        "AccessDenied on rds:DescribeDBInstances: grant it to the role or user of the default "
        "profile (User: arn:aws:iam::123456789012:user/watchkeeper is not authorized to "
        "perform: rds:DescribeDBInstances)"
    )


async def test_rca_context_lists_the_instance_events_of_the_last_hour(
    aws: Aws, ctx: CheckContext
) -> None:
    create_db(aws)
    aws.client("rds").stop_db_instance(DBInstanceIdentifier="orders")
    check_spec = spec(instances=["orders"])
    [block] = await check_spec.rca_context(ctx, await check_spec.run(ctx))
    assert block.title == "RDS events (last hour): orders"
    assert "DB instance created" in block.text
