"""The AWS collector of the sweeps: clients, regions and retries from jobs.aws.api (as the
checks), each dataset fetched once per sweep through `SweepContext.collect`; regional datasets
here, account-wide ones in `collect_account` on the same plumbing.

Never imports boto3 (AwsApi loads it on first call) and never judges. Keys are
`aws:<region>:<service>:<what>` (`aws:global:…` account-wide); a refusal is a CollectError.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from jobs.aws.api import AwsApi, AwsError
from jobs.sweeps.aws.resources import (
    Address,
    Identity,
    Instance,
    LbUsage,
    LoadBalancer,
    Series,
    Snapshot,
    SnapshotAccess,
    Volume,
)
from jobs.sweeps.base import AwsScope, CollectError, SweepContext

T = TypeVar("T")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)

GLOBAL = "global"
"""The location of account-level resources (IAM, the S3 account block, Cost Explorer) and of
buckets whose region ListBuckets does not report."""
PARALLEL = 8  # per-resource calls in flight (bucket ACLs, snapshot attributes, access keys)
METRIC_QUERIES_PER_CALL = 500  # GetMetricData's limit
DAY_S = 86400

Data = list[dict[str, Any]]


# --- plumbing ------------------------------------------------------------------------------


def aws_api(ctx: SweepContext, region: str | None) -> AwsApi:
    scope = ctx.aws or AwsScope()
    return AwsApi(ctx.check, region=region, profile=scope.profile, timeout_s=ctx.timeout_s)


async def dataset(
    ctx: SweepContext, key: str, fetch: Callable[[], Awaitable[T]], what: str | None = None
) -> T:
    """`fetch()` once per sweep under `aws:<key>`; AWS's refusal becomes a CollectError, led by
    `what` ("EBS volumes unavailable in eu-west-1") when the bare sentence would not say."""

    async def guarded() -> T:
        try:
            return await fetch()
        except AwsError as exc:
            raise CollectError(f"{what}: {exc}" if what else str(exc)) from exc

    result: T = await ctx.collect(f"aws:{key}", guarded)
    return result


async def listed(api: AwsApi, service: str, method: str, key: str, **params: Any) -> Data:
    return [item for page in await api.pages(service, method, **params) for item in page[key]]


async def each(items: Iterable[T], fetch: Callable[[T], Awaitable[R]]) -> list[R]:
    """`fetch` over every item, a few at a time (one API call each)."""
    limit = asyncio.Semaphore(PARALLEL)

    async def one(item: T) -> R:
        async with limit:
            return await fetch(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def _listing(
    ctx: SweepContext, region: str, name: str, model: type[M], call: tuple[str, str, str], what: str
) -> list[M]:
    """A paginated listing (`call` = service, method, key of the items), as `model`s."""

    async def fetch() -> list[M]:
        return [model.model_validate(raw) for raw in await listed(aws_api(ctx, region), *call)]

    return await dataset(ctx, f"{region}:{name}", fetch, f"{what} unavailable in {region}")


async def _raw(ctx: SweepContext, region: str, name: str, call: tuple[str, str, str]) -> Data:
    """A paginated listing (`call` = service, method, key of the items), as AWS sent it."""
    return await dataset(ctx, f"{region}:{name}", lambda: listed(aws_api(ctx, region), *call))


async def regions(ctx: SweepContext) -> tuple[str, ...]:
    """The regions in scope; none configured: the session's default region, by name."""
    scope = ctx.aws or AwsScope()
    if scope.regions:
        return scope.regions

    async def default() -> str:
        api = aws_api(ctx, None)
        await api.client("sts")
        return api.region_name

    return (await dataset(ctx, "default:region", default),)


async def home(ctx: SweepContext) -> str:
    """The region account-wide services are asked in: the first in scope (any would answer)."""
    return (await regions(ctx))[0]


async def identity(ctx: SweepContext) -> Identity:
    """The account and partition of the credentials (GetCallerIdentity needs no permission)."""

    async def fetch() -> Identity:
        me = await aws_api(ctx, await home(ctx)).call("sts", "get_caller_identity")
        return Identity(account=me["Account"], partition=me["Arn"].split(":")[1])

    return await dataset(ctx, f"{GLOBAL}:sts:identity", fetch)


# --- EC2 and load balancers ------------------------------------------------------------------


async def security_groups(ctx: SweepContext, region: str) -> Data:
    call = ("ec2", "describe_security_groups", "SecurityGroups")
    return await _raw(ctx, region, "ec2:security_groups", call)


async def interfaces_per_group(ctx: SweepContext, region: str) -> Counter[str]:
    """How many network interfaces each security group is attached to."""

    async def fetch() -> Counter[str]:
        api = aws_api(ctx, region)
        enis = await listed(api, "ec2", "describe_network_interfaces", "NetworkInterfaces")
        return Counter(group["GroupId"] for eni in enis for group in eni.get("Groups", []))

    return await dataset(ctx, f"{region}:ec2:interfaces_per_group", fetch)


async def volumes(ctx: SweepContext, region: str) -> list[Volume]:
    call = ("ec2", "describe_volumes", "Volumes")
    return await _listing(ctx, region, "ec2:volumes", Volume, call, "EBS volumes")


async def own_snapshots(ctx: SweepContext, region: str) -> list[Snapshot]:
    async def fetch() -> list[Snapshot]:
        api = aws_api(ctx, region)
        found = await listed(api, "ec2", "describe_snapshots", "Snapshots", OwnerIds=["self"])
        return [Snapshot.model_validate(raw) for raw in found]

    what = f"EBS snapshots unavailable in {region}"
    return await dataset(ctx, f"{region}:ec2:own_snapshots", fetch, what)


async def running_instances(ctx: SweepContext, region: str) -> list[Instance]:
    async def fetch() -> list[Instance]:
        running = [{"Name": "instance-state-name", "Values": ["running"]}]
        api = aws_api(ctx, region)
        found = await listed(api, "ec2", "describe_instances", "Reservations", Filters=running)
        return [Instance.model_validate(raw) for r in found for raw in r["Instances"]]

    what = f"EC2 instances unavailable in {region}"
    return await dataset(ctx, f"{region}:ec2:running_instances", fetch, what)


async def addresses(ctx: SweepContext, region: str) -> list[Address]:
    async def fetch() -> list[Address]:
        found = await aws_api(ctx, region).call("ec2", "describe_addresses")  # not paginated
        return [Address.model_validate(raw) for raw in found["Addresses"]]

    what = f"Elastic IPs unavailable in {region}"
    return await dataset(ctx, f"{region}:ec2:addresses", fetch, what)


async def load_balancers(ctx: SweepContext, region: str) -> list[LbUsage]:
    """Every elbv2 load balancer with its target groups and how many targets are healthy."""

    async def fetch() -> list[LbUsage]:
        api = aws_api(ctx, region)
        raw = await listed(api, "elbv2", "describe_load_balancers", "LoadBalancers")
        lbs = [LoadBalancer.model_validate(item) for item in raw]
        groups: dict[str, int] = {lb.arn: 0 for lb in lbs}
        healthy: dict[str, int] = {lb.arn: 0 for lb in lbs}
        for group in await listed(api, "elbv2", "describe_target_groups", "TargetGroups"):
            owners = [arn for arn in group.get("LoadBalancerArns", []) if arn in groups]
            if not owners:
                continue
            health = await api.call(
                "elbv2", "describe_target_health", TargetGroupArn=group["TargetGroupArn"]
            )
            states = [t["TargetHealth"]["State"] for t in health["TargetHealthDescriptions"]]
            for arn in owners:
                groups[arn] += 1
                healthy[arn] += states.count("healthy")
        return [LbUsage(lb, groups[lb.arn], healthy[lb.arn]) for lb in lbs]

    what = f"load balancers unavailable in {region}"
    return await dataset(ctx, f"{region}:elbv2:load_balancers", fetch, what)


# --- databases and search ----------------------------------------------------------------------


async def db_instances(ctx: SweepContext, region: str) -> Data:
    call = ("rds", "describe_db_instances", "DBInstances")
    return await _raw(ctx, region, "rds:instances", call)


async def db_clusters(ctx: SweepContext, region: str) -> Data:
    return await _raw(ctx, region, "rds:clusters", ("rds", "describe_db_clusters", "DBClusters"))


async def db_snapshot_access(ctx: SweepContext, region: str) -> list[SnapshotAccess]:
    """The restore attribute of every manual DB and DB cluster snapshot (automated ones
    cannot be shared)."""
    api = aws_api(ctx, region)

    async def attributes(kind: str, snapshot: dict[str, Any]) -> SnapshotAccess:
        # The DB and DB cluster APIs name the same things `DBSnapshot…` / `DBClusterSnapshot…`.
        noun, method = ("DBSnapshot", "db") if kind == "db" else ("DBClusterSnapshot", "db_cluster")
        snapshot_id, arn = snapshot[f"{noun}Identifier"], snapshot[f"{noun}Arn"]
        answer = await api.call(
            "rds", f"describe_{method}_snapshot_attributes", **{f"{noun}Identifier": snapshot_id}
        )
        found = answer[f"{noun}AttributesResult"][f"{noun}Attributes"]
        return SnapshotAccess.from_attributes(kind, snapshot_id, arn, found)

    async def fetch() -> list[SnapshotAccess]:
        manual = {"SnapshotType": "manual"}
        db = await listed(api, "rds", "describe_db_snapshots", "DBSnapshots", **manual)
        cluster = await listed(
            api, "rds", "describe_db_cluster_snapshots", "DBClusterSnapshots", **manual
        )
        pairs = [("db", s) for s in db] + [("db-cluster", s) for s in cluster]
        return await each(pairs, lambda pair: attributes(*pair))

    return await dataset(ctx, f"{region}:rds:snapshot_access", fetch)


async def redshift_clusters(ctx: SweepContext, region: str) -> Data:
    call = ("redshift", "describe_clusters", "Clusters")
    return await _raw(ctx, region, "redshift:clusters", call)


async def opensearch_domains(ctx: SweepContext, region: str) -> Data:
    """DomainStatus of every OpenSearch and Elasticsearch domain."""

    async def fetch() -> Data:
        api = aws_api(ctx, region)
        listed = await api.call("opensearch", "list_domain_names")
        names = [d["DomainName"] for d in listed["DomainNames"]]
        chunks = [names[i : i + 5] for i in range(0, len(names), 5)]  # DescribeDomains: max 5
        answers = await each(
            chunks, lambda chunk: api.call("opensearch", "describe_domains", DomainNames=chunk)
        )
        return [domain for answer in answers for domain in answer["DomainStatusList"]]

    return await dataset(ctx, f"{region}:opensearch:domains", fetch)


async def daily_metrics(
    ctx: SweepContext,
    region: str,
    name: str,
    series: Sequence[Series],
    start: datetime,
    end: datetime,
) -> dict[str, list[float]]:
    """Daily datapoints of each series over [start, end), by series id, one GetMetricData per
    500 series; a series with no data is absent (CloudWatch stores nothing unemitted)."""

    async def fetch() -> dict[str, list[float]]:
        api, values = aws_api(ctx, region), dict[str, list[float]]()
        ids = {f"q{i}": s.id for i, s in enumerate(series)}
        queries = [s.query(f"q{i}", DAY_S) for i, s in enumerate(series)]
        for first in range(0, len(queries), METRIC_QUERIES_PER_CALL):
            chunk = queries[first : first + METRIC_QUERIES_PER_CALL]
            pages = await api.pages(
                "cloudwatch",
                "get_metric_data",
                MetricDataQueries=chunk,
                StartTime=start,
                EndTime=end,
            )
            for result in (result for page in pages for result in page["MetricDataResults"]):
                if result["Values"]:
                    values.setdefault(ids[result["Id"]], []).extend(result["Values"])
        return values

    key = f"{region}:cloudwatch:{name}:{start.isoformat()}:{end.isoformat()}"
    return await dataset(ctx, key, fetch, f"CloudWatch {name} unavailable in {region}")
