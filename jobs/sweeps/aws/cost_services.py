"""AWS cost rules over managed services, read from CloudWatch as the idle EC2 and load
balancer rules are: idle ElastiCache clusters, idle OpenSearch domains, and large, cold S3
buckets that no lifecycle rule moves to a cheaper class. Each says what fixing it saves per
month, priced from `prices.py`; severity follows the saving (`by_savings`).

How a bucket is judged large and cold, from what the API gives without reading objects:
- large: its `BucketSizeBytes` in S3 Standard (CloudWatch's free daily storage metric, by
  storage class) is at least `s3_cold_min_gib`;
- cold: its request metrics (the `EntireBucket` filter, when the owner has turned them on)
  show at most `s3_cold_max_gets_per_day` GET requests a day over 30 days; without request
  metrics, a bucket whose object count and size have not moved for 30 days is cold for writes
  and the evidence says reads are unknown. Any other bucket is not judged: a growing bucket
  without request metrics may be hot.
The saving is what a 30-day transition to Standard-IA saves on its Standard bytes (the
conservative figure; Glacier Instant Retrieval saves more and is named beside it).
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from daemon.models import Severity
from jobs.sweeps.aws.collect import daily_metrics, identity, opensearch_domains
from jobs.sweeps.aws.collect_account import s3_lifecycle, s3_regions
from jobs.sweeps.aws.collect_edge import cache_clusters
from jobs.sweeps.aws.cost import labelled, midnight, option, prices
from jobs.sweeps.aws.prices import saves, usd
from jobs.sweeps.aws.resources import Series
from jobs.sweeps.aws.rule import REGION
from jobs.sweeps.base import Rule, RuleMeta, SweepContext
from jobs.sweeps.rule import Hit, by_savings, rule

GIB = 1024**3
COLD_DAYS = 30
"""The coldness window: Standard-IA's minimum storage duration and shortest transition."""
CACHE_COMMANDS = {"memcached": ("CmdGet", "CmdSet")}
REDIS_COMMANDS = ("GetTypeCmds", "SetTypeCmds")  # Redis OSS and Valkey
SEARCH_REQUESTS = ("OpenSearchRequests", "ElasticsearchRequests")  # by engine; one is empty
S3_METRICS = (
    ("size", "BucketSizeBytes", "Average", ("StorageType", "StandardStorage")),
    ("objects", "NumberOfObjects", "Average", ("StorageType", "AllStorageTypes")),
    ("gets", "GetRequests", "Sum", ("FilterId", "EntireBucket")),
)
LIFECYCLE_TO_IA = (
    '{"Rules":[{"ID":"cold-to-ia","Status":"Enabled","Filter":{},'
    '"Transitions":[{"Days":30,"StorageClass":"STANDARD_IA"}]}]}'
)


def enough(days_seen: int, days: int) -> bool:
    """A day or two without data does not hide an idle resource; one created inside the
    window (no data for most of it) is not judged yet."""
    return days_seen >= math.ceil(days * 0.8)


@rule(
    RuleMeta(
        id="aws.elasticache.idle",
        title="ElastiCache cluster is idle",
        kind="cost",
        severity=Severity.LOW,
        risk="Cache nodes are billed by the hour whether or not anything reads or writes them.",
        remediation="Delete the cluster (with a final snapshot) if nothing uses it any more, "
        "or move it to a smaller node type.",
        service="aws:elasticache",
    ),
    REGION,
    severity=by_savings,
)
async def idle_caches(ctx: SweepContext, region: str) -> list[Hit]:
    floor, days = option(ctx, "cache_min_commands_per_day"), max(1, int(option(ctx, "idle_days")))
    end, table, hits = midnight(ctx.now), prices(ctx), []
    clusters = [c for c in await cache_clusters(ctx, region) if _available(c)]
    series = [
        Series(f"{c['CacheClusterId']}/{m}", "AWS/ElastiCache", m, _cache_dim(c), "Sum")
        for c in clusters
        for m in CACHE_COMMANDS.get(str(c.get("Engine")), REDIS_COMMANDS)
    ]
    data = await daily_metrics(
        ctx, region, "ElastiCache commands", series, end - timedelta(days=days), end
    )
    for cluster in clusters:
        cid, engine = cluster["CacheClusterId"], str(cluster.get("Engine", "redis"))
        metrics = CACHE_COMMANDS.get(engine, REDIS_COMMANDS)
        daily = [data.get(f"{cid}/{m}", []) for m in metrics]
        if not enough(max(len(d) for d in daily), days):
            continue
        per_day = sum(sum(d) for d in daily) / days
        if per_day >= floor:
            continue
        node_type, nodes = str(cluster.get("CacheNodeType")), int(cluster.get("NumCacheNodes", 1))
        monthly = table.cache_monthly(node_type, nodes)
        fix = saves(monthly, "deleting it", ("node type", node_type, "cache_node_hourly"))
        group = cluster.get("ReplicationGroupId")
        what = labelled(
            cid, engine, f"{nodes} x {node_type}", group and f"replication group {group}"
        )
        evidence = (
            f"ElastiCache cluster {what} served {per_day:.1f} {'/'.join(metrics)} commands a day "
            f"on average over {days} days (fewer than {floor:g}) — {fix}"
        )
        cli = (
            f"aws elasticache delete-replication-group --replication-group-id {group} "
            f"--final-snapshot-identifier {group}-final --region {region}"
            if group
            else f"aws elasticache delete-cache-cluster --cache-cluster-id {cid} "
            f"--final-snapshot-identifier {cid}-final --region {region}"
        )
        hits.append(Hit(cluster["ARN"], evidence, command=cli, savings=monthly))
    return hits


def _available(cluster: dict[str, Any]) -> bool:
    return str(cluster.get("CacheClusterStatus", "available")) == "available"


def _cache_dim(cluster: dict[str, Any]) -> tuple[str, str]:
    return ("CacheClusterId", str(cluster["CacheClusterId"]))


@rule(
    RuleMeta(
        id="aws.opensearch.idle",
        title="OpenSearch domain is idle",
        kind="cost",
        severity=Severity.LOW,
        risk="A domain's instances are billed by the hour whether or not anyone searches or "
        "indexes.",
        remediation="Take a manual snapshot and delete the domain if nothing uses it any more, "
        "or shrink it to fewer, smaller instances.",
        service="aws:opensearch",
    ),
    REGION,
    severity=by_savings,
)
async def idle_domains(ctx: SweepContext, region: str) -> list[Hit]:
    floor = option(ctx, "search_min_requests_per_day")
    days = max(1, int(option(ctx, "idle_days")))
    end, table, hits = midnight(ctx.now), prices(ctx), []
    domains = [d for d in await opensearch_domains(ctx, region) if not d.get("Deleted")]
    account = (await identity(ctx)).account
    series = [
        Series(
            f"{d['DomainName']}/{m}",
            "AWS/ES",
            m,
            ("DomainName", str(d["DomainName"])),
            "Sum",
            (("ClientId", account),),
        )
        for d in domains
        for m in SEARCH_REQUESTS
    ]
    start = end - timedelta(days=days)
    data = await daily_metrics(ctx, region, "OpenSearch requests", series, start, end)
    for domain in domains:
        name = domain["DomainName"]
        daily = [data.get(f"{name}/{m}", []) for m in SEARCH_REQUESTS]
        if not enough(max(len(d) for d in daily), days):
            continue
        per_day = sum(sum(d) for d in daily) / days
        if per_day >= floor:
            continue
        instances = search_instances(domain.get("ClusterConfig") or {})
        monthly = table.search_monthly(instances)
        unknown = next((t for t in instances if t not in table.search_instance_hourly), "")
        fix = saves(monthly, "deleting it", ("instance type", unknown, "search_instance_hourly"))
        fleet = ", ".join(f"{n} x {t}" for t, n in instances.items())
        evidence = (
            f"OpenSearch domain {labelled(name, fleet)} answered {per_day:.1f} requests a day on "
            f"average over {days} days (fewer than {floor:g}) — {fix} (instances only; its "
            "storage is billed on top)"
        )
        cli = f"aws opensearch delete-domain --domain-name {name} --region {region}"
        hits.append(Hit(domain["ARN"], evidence, command=cli, savings=monthly))
    return hits


def search_instances(config: dict[str, Any]) -> dict[str, int]:
    """Instance counts by type: data nodes, dedicated masters, UltraWarm nodes."""
    found: dict[str, int] = {}
    parts: list[tuple[str, str, str | None]] = [("InstanceType", "InstanceCount", None)]
    parts += [("DedicatedMasterType", "DedicatedMasterCount", "DedicatedMasterEnabled")]
    parts += [("WarmType", "WarmCount", "WarmEnabled")]
    for kind, count, enabled in parts:
        if config.get(kind) and (enabled is None or config.get(enabled)):
            found[str(config[kind])] = found.get(str(config[kind]), 0) + int(config.get(count) or 1)
    return found


@rule(
    RuleMeta(
        id="aws.s3.cold_no_lifecycle",
        title="Large, cold S3 bucket has no lifecycle rule",
        kind="cost",
        severity=Severity.LOW,
        risk="Data nobody reads stays in S3 Standard, the dearest storage class, until someone "
        "moves it.",
        remediation="Add a lifecycle rule that moves objects to Standard-IA (or Intelligent-"
        "Tiering, or Glacier Instant Retrieval) after 30 days; objects under 128 KiB are billed "
        "as 128 KiB in IA, so filter them out if the bucket holds many small ones.",
        service="aws:s3",
    ),
    REGION,
    severity=by_savings,
)
async def cold_buckets(ctx: SweepContext, region: str) -> list[Hit]:
    min_gib, max_gets = option(ctx, "s3_cold_min_gib"), option(ctx, "s3_cold_max_gets_per_day")
    end, table = midnight(ctx.now), prices(ctx)
    start = end - timedelta(days=COLD_DAYS)
    names = sorted(n for n, where in (await s3_regions(ctx)).items() if where == region)
    lifecycle = await s3_lifecycle(ctx) if names else {}
    names = [
        n for n in names if not any(r.get("Status") == "Enabled" for r in lifecycle.get(n, []))
    ]
    series = [series for n in names for series in bucket_series(n)]
    data = await daily_metrics(ctx, region, "S3 storage", series, start, end)
    hits = []
    partition = (await identity(ctx)).partition
    for name in names:
        sizes, objects = data.get(f"{name}/size", []), data.get(f"{name}/objects", [])
        if not sizes or sizes[0] / GIB < min_gib:
            continue  # GetMetricData answers newest first: sizes[0] is the latest day
        cold = coldness(sizes, objects, data.get(f"{name}/gets"), max_gets)
        if cold is None:
            continue
        gib = sizes[0] / GIB
        standard, ia = table.s3_gib_month.get("STANDARD"), table.s3_gib_month.get("STANDARD_IA")
        monthly = None if standard is None or ia is None else gib * (standard - ia)
        glacier = table.s3_gib_month.get("GLACIER_IR")
        also = (
            f"; Glacier Instant Retrieval ≈ {usd(gib * (standard - glacier))}/mo"
            if (standard is not None and glacier is not None)
            else ""
        )
        fix = saves(
            monthly,
            "a lifecycle rule moving it to Standard-IA after 30 days",
            ("storage class", "STANDARD/STANDARD_IA", "s3_gib_month"),
        )
        evidence = (
            f"bucket {name} holds {gib:,.0f} GiB in S3 Standard with no lifecycle rule and is "
            f"cold: {cold} — {fix}{also}"
        )
        cli = (
            f"aws s3api put-bucket-lifecycle-configuration --bucket {name} "
            f"--lifecycle-configuration '{LIFECYCLE_TO_IA}'"
        )
        arn = f"arn:{partition}:s3:::{name}"
        hits.append(Hit(arn, evidence, command=cli, savings=monthly, location=region))
    return hits


def bucket_series(bucket: str) -> list[Series]:
    """Its Standard bytes, object count (daily storage metrics) and GET requests (request
    metrics, present only where the owner turned them on)."""
    return [
        Series(f"{bucket}/{key}", "AWS/S3", metric, ("BucketName", bucket), stat, (extra,))
        for key, metric, stat, extra in S3_METRICS
    ]


def coldness(
    sizes: list[float], objects: list[float], gets: list[float] | None, max_gets: float
) -> str | None:
    """Why the bucket is cold (see the module's docstring), or None when it is not, or
    cannot be told."""
    if gets:
        per_day = sum(gets) / COLD_DAYS
        if per_day > max_gets:
            return None
        return f"{sum(gets):,.0f} GET requests in {COLD_DAYS} days (request metrics)"
    if not enough(len(objects), COLD_DAYS) or not enough(len(sizes), COLD_DAYS):
        return None
    if max(objects) != min(objects) or max(sizes) > min(sizes) * 1.01:
        return None
    return (
        f"no object added or removed in {COLD_DAYS} days; reads unknown (turn on request "
        "metrics to confirm)"
    )


RULES: list[Rule] = [idle_caches, idle_domains, cold_buckets]
