"""The managed-service cost rules against moto's server: idle ElastiCache clusters and
OpenSearch domains (request metrics over `idle_days`), and large, cold S3 buckets without a
lifecycle rule (storage and request metrics over 30 days) — each with a finding case priced
from prices.py and a clean case, the metrics published through CloudWatch's real API."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from jobs.base import CheckContext
from jobs.sweeps.aws import cost_services as rules
from tests.jobs.sweeps.aws.test_cost import evaluate, midnight
from tests.peers.aws import ACCOUNT, REGION, Aws

pytest_plugins = ["tests.peers.aws_fixtures"]

GIB = 1024**3


def put_days(
    aws: Aws, namespace: str, metric: str, dimensions: dict[str, str], days: list[float]
) -> None:
    """One datapoint a day at noon: `days[0]` yesterday, `days[1]` the day before…"""
    data = [
        {
            "MetricName": metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            "Value": value,
            "Timestamp": midnight() - timedelta(days=ago + 1) + timedelta(hours=12),
        }
        for ago, value in enumerate(days)
    ]
    cloudwatch = aws.client("cloudwatch")
    for first in range(0, len(data), 20):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[first : first + 20])


# -- ElastiCache -------------------------------------------------------------------------------


def cache(aws: Aws, name: str, node_type: str = "cache.r6g.large", nodes: int = 1) -> str:
    engine = "memcached" if nodes > 1 else "redis"
    made = aws.client("elasticache").create_cache_cluster(
        CacheClusterId=name, Engine=engine, CacheNodeType=node_type, NumCacheNodes=nodes
    )
    arn: str = made["CacheCluster"]["ARN"]
    return arn


def commands(aws: Aws, name: str, per_day: float, metrics: tuple[str, ...], days: int = 14) -> None:
    for metric in metrics:
        put_days(aws, "AWS/ElastiCache", metric, {"CacheClusterId": name}, [per_day / 2] * days)


async def test_idle_cache_cluster_saves_its_nodes(aws: Aws, ctx: CheckContext) -> None:
    idle, busy = cache(aws, "sessions"), cache(aws, "hot")
    commands(aws, "sessions", 12, rules.REDIS_COMMANDS)
    commands(aws, "hot", 50_000, rules.REDIS_COMMANDS)
    [found] = await evaluate(rules.idle_caches, ctx)
    # cache.r6g.large: $0.206/h x 730 h = $150.38/mo (over $100: medium).
    assert (found.resource, found.severity) == (idle, "medium")
    assert found.est_monthly_savings_usd == 0.206 * 730
    assert found.evidence == (
        "ElastiCache cluster sessions (redis, 1 x cache.r6g.large) served 12.0 "
        "GetTypeCmds/SetTypeCmds commands a day on average over 14 days (fewer than 100) — "
        "deleting it saves ≈ $150.38/mo"
    )
    assert found.remediation_cli == (
        "aws elasticache delete-cache-cluster --cache-cluster-id sessions "
        f"--final-snapshot-identifier sessions-final --region {REGION}"
    )
    assert busy != idle


async def test_memcached_counts_its_own_commands_and_an_unknown_type_says_so(
    aws: Aws, ctx: CheckContext
) -> None:
    cache(aws, "pages", node_type="cache.x9.huge", nodes=3)
    commands(aws, "pages", 0, ("CmdGet", "CmdSet"))
    [found] = await evaluate(rules.idle_caches, ctx)
    assert "pages (memcached, 3 x cache.x9.huge) served 0.0 CmdGet/CmdSet" in found.evidence
    assert found.evidence.endswith(
        "price unknown for node type cache.x9.huge; add it under [[sweeps]] "
        "prices.cache_node_hourly"
    )
    assert found.est_monthly_savings_usd is None


async def test_a_cache_without_two_weeks_of_data_is_not_judged(aws: Aws, ctx: CheckContext) -> None:
    cache(aws, "new")
    commands(aws, "new", 0, rules.REDIS_COMMANDS, days=5)
    assert await evaluate(rules.idle_caches, ctx) == []


# -- OpenSearch --------------------------------------------------------------------------------


def domain(aws: Aws, name: str, **cluster: Any) -> str:
    config = {"InstanceType": "r6g.large.search", "InstanceCount": 2, **cluster}
    made = aws.client("opensearch").create_domain(DomainName=name, ClusterConfig=config)
    arn: str = made["DomainStatus"]["ARN"]
    return arn


def requests(aws: Aws, name: str, per_day: float, metric: str = "OpenSearchRequests") -> None:
    dims = {"DomainName": name, "ClientId": ACCOUNT}
    put_days(aws, "AWS/ES", metric, dims, [per_day] * 14)


async def test_idle_domain_saves_its_instances_masters_included(
    aws: Aws, ctx: CheckContext
) -> None:
    idle = domain(
        aws,
        "old-logs",
        DedicatedMasterEnabled=True,
        DedicatedMasterType="m6g.large.search",
        DedicatedMasterCount=3,
    )
    domain(aws, "search")
    requests(aws, "old-logs", 3)
    requests(aws, "search", 90_000)
    [found] = await evaluate(rules.idle_domains, ctx)
    # 2 x $0.167 + 3 x $0.128 = $0.718/h x 730 = $524.14/mo
    assert (found.resource, found.severity) == (idle, "medium")
    assert round(found.est_monthly_savings_usd or 0, 2) == 524.14
    assert found.evidence == (
        "OpenSearch domain old-logs (2 x r6g.large.search, 3 x m6g.large.search) answered 3.0 "
        "requests a day on average over 14 days (fewer than 100) — deleting it saves ≈ "
        "$524.14/mo (instances only; its storage is billed on top)"
    )


async def test_an_elasticsearch_domain_busy_on_its_own_metric_is_not_idle(
    aws: Aws, ctx: CheckContext
) -> None:
    domain(aws, "legacy")
    requests(aws, "legacy", 0)
    requests(aws, "legacy", 5_000, metric="ElasticsearchRequests")
    assert await evaluate(rules.idle_domains, ctx) == []


# -- S3 ----------------------------------------------------------------------------------------


def bucket(
    aws: Aws,
    name: str,
    *,
    gib: float,
    objects: float,
    gets: list[float] | None = None,
    grow: bool = False,
) -> str:
    aws.client("s3").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    sizes = [gib * GIB * (1 - 0.01 * day if grow else 1) for day in range(30)]
    put_days(
        aws,
        "AWS/S3",
        "BucketSizeBytes",
        {"BucketName": name, "StorageType": "StandardStorage"},
        sizes,
    )
    put_days(
        aws,
        "AWS/S3",
        "NumberOfObjects",
        {"BucketName": name, "StorageType": "AllStorageTypes"},
        [objects] * 30,
    )
    if gets is not None:
        put_days(
            aws, "AWS/S3", "GetRequests", {"BucketName": name, "FilterId": "EntireBucket"}, gets
        )
    return f"arn:aws:s3:::{name}"


LIFECYCLE = {
    "Rules": [
        {
            "ID": "archive",
            "Status": "Enabled",
            "Filter": {},
            "Transitions": [{"Days": 30, "StorageClass": "GLACIER_IR"}],
        }
    ]
}


async def test_a_large_unread_bucket_without_lifecycle_is_a_saving(
    aws: Aws, ctx: CheckContext
) -> None:
    cold = bucket(aws, "old-exports", gib=20_480, objects=1_200_000, gets=[2.0] * 30)
    bucket(aws, "served-assets", gib=20_480, objects=1_200_000, gets=[40_000.0] * 30)
    bucket(aws, "tidy-archive", gib=20_480, objects=9, gets=[0.0] * 30)
    aws.client("s3").put_bucket_lifecycle_configuration(
        Bucket="tidy-archive", LifecycleConfiguration=LIFECYCLE
    )
    bucket(aws, "small", gib=12, objects=4, gets=[0.0] * 30)
    [found] = await evaluate(rules.cold_buckets, ctx)
    # 20,480 GiB x ($0.023 - $0.0125) = $215.04/mo; Glacier IR: 20,480 x $0.019 = $389.12
    assert (found.resource, found.severity, found.location) == (cold, "medium", REGION)
    assert found.evidence == (
        "bucket old-exports holds 20,480 GiB in S3 Standard with no lifecycle rule and is cold: "
        "60 GET requests in 30 days (request metrics) — a lifecycle rule moving it to "
        "Standard-IA after 30 days saves ≈ $215.04/mo; Glacier Instant Retrieval ≈ $389.12/mo"
    )
    assert found.remediation_cli is not None
    command = found.remediation_cli
    assert command.startswith("aws s3api put-bucket-lifecycle-configuration --bucket old-exports")
    rule = json.loads(command.split("'")[1])["Rules"][0]
    assert rule["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}]


async def test_without_request_metrics_only_an_unchanging_bucket_is_cold(
    aws: Aws, ctx: CheckContext
) -> None:
    still = bucket(aws, "frozen-backups", gib=2048, objects=310)
    bucket(aws, "growing-logs", gib=2048, objects=310, grow=True)
    [found] = await evaluate(rules.cold_buckets, ctx)
    assert found.resource == still
    assert "cold: no object added or removed in 30 days; reads unknown (turn on request " in (
        found.evidence
    )
