"""The datasets the AWS cost rules judge: Cost Explorer figures, idle-resource inventories and
their CloudWatch usage, each fetched once per sweep through `SweepContext.collect`.

Never imports boto3 (jobs.aws.api loads it on first call) and never judges: an AWS refusal
becomes a CollectError naming the denied action, and the rules decide what the data means.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from jobs.aws.api import MAX_PAGES, AwsApi, AwsError
from jobs.sweeps.base import CollectError, SweepContext

T = TypeVar("T")
METRIC_QUERIES_PER_CALL = 500  # GetMetricData's limit
DAY_S = 86400


class _Shape(BaseModel):
    """An AWS response item: the fields the rules read, by their AWS names."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Tag(_Shape):
    key: str = Field(alias="Key")
    value: str = Field(alias="Value")


class _Tagged(_Shape):
    tags: tuple[Tag, ...] = Field(default=(), alias="Tags")

    @property
    def name(self) -> str | None:
        return next((t.value for t in self.tags if t.key == "Name" and t.value), None)


class Instance(_Tagged):
    id: str = Field(alias="InstanceId")
    type: str = Field(alias="InstanceType")


class Volume(_Tagged):
    id: str = Field(alias="VolumeId")
    size_gib: int = Field(alias="Size")
    type: str = Field(alias="VolumeType")
    state: str = Field(alias="State")
    iops: int | None = Field(default=None, alias="Iops")
    throughput: int | None = Field(default=None, alias="Throughput")
    created: datetime = Field(alias="CreateTime")


class Address(_Tagged):
    public_ip: str = Field(alias="PublicIp")
    allocation_id: str | None = Field(default=None, alias="AllocationId")
    association_id: str | None = Field(default=None, alias="AssociationId")
    instance_id: str | None = Field(default=None, alias="InstanceId")
    network_interface_id: str | None = Field(default=None, alias="NetworkInterfaceId")


class Snapshot(_Shape):
    id: str = Field(alias="SnapshotId")
    size_gib: int = Field(alias="VolumeSize")
    started: datetime = Field(alias="StartTime")
    volume_id: str | None = Field(default=None, alias="VolumeId")
    description: str = Field(default="", alias="Description")


class LoadBalancer(_Shape):
    arn: str = Field(alias="LoadBalancerArn")
    name: str = Field(alias="LoadBalancerName")
    type: str = Field(alias="Type")
    created: datetime = Field(alias="CreatedTime")

    @property
    def dimension(self) -> str:
        """Its CloudWatch `LoadBalancer` dimension, e.g. `app/web/50dc6c495c0c9188`."""
        return self.arn.split(":loadbalancer/", 1)[-1]


class RootCause(_Shape):
    service: str | None = Field(default=None, alias="Service")
    region: str | None = Field(default=None, alias="Region")
    usage_type: str | None = Field(default=None, alias="UsageType")
    linked_account: str | None = Field(default=None, alias="LinkedAccount")

    def __str__(self) -> str:
        """`AmazonEC2 in us-east-1, usage type BoxUsage:m5.large, account 111122223333`."""
        where = f" in {self.region}" if self.region else ""
        usage = f", usage type {self.usage_type}" if self.usage_type else ""
        account = f", account {self.linked_account}" if self.linked_account else ""
        return f"{self.service or 'a service'}{where}{usage}{account}"


class Impact(_Shape):
    max_impact: float = Field(alias="MaxImpact")
    total_impact: float | None = Field(default=None, alias="TotalImpact")
    total_actual: float | None = Field(default=None, alias="TotalActualSpend")
    total_expected: float | None = Field(default=None, alias="TotalExpectedSpend")


class Anomaly(_Shape):
    id: str = Field(alias="AnomalyId")
    start: str | None = Field(default=None, alias="AnomalyStartDate")
    end: str | None = Field(default=None, alias="AnomalyEndDate")
    dimension: str | None = Field(default=None, alias="DimensionValue")
    root_causes: tuple[RootCause, ...] = Field(default=(), alias="RootCauses")
    impact: Impact = Field(alias="Impact")
    monitor_arn: str = Field(alias="MonitorArn")


@dataclass(frozen=True)
class Identity:
    account: str
    partition: str

    def arn(self, service: str, region: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{region}:{self.account}:{resource}"


@dataclass(frozen=True)
class Regional(Generic[T]):
    """A region's items, with the region's name (resolved even when the scope left it
    to the profile or environment)."""

    region: str
    items: tuple[T, ...]


@dataclass(frozen=True)
class LbUsage:
    lb: LoadBalancer
    target_groups: int
    healthy_targets: int


@dataclass(frozen=True)
class CostPeriod:
    start: date
    by_service: dict[str, float]


def regions(ctx: SweepContext) -> tuple[str | None, ...]:
    """The scope's regions; `None` is the profile's or environment's default."""
    return (ctx.aws.regions if ctx.aws else ()) or (None,)


def _api(ctx: SweepContext, region: str | None) -> AwsApi:
    profile = ctx.aws.profile if ctx.aws else None
    return AwsApi(ctx.check, region=region, profile=profile, timeout_s=ctx.timeout_s)


async def _collect(ctx: SweepContext, key: str, what: str, fetch: Callable[[], Awaitable[T]]) -> T:
    async def guarded() -> T:
        try:
            return await fetch()
        except AwsError as exc:
            raise CollectError(f"{what}: {exc}") from exc

    value: T = await ctx.collect(key, guarded)
    return value


def _key(region: str | None, name: str) -> str:
    # "cost:" keeps these apart from the security rules' datasets, whose shapes differ.
    return f"aws:{region or 'default'}:cost:{name}"


async def identity(ctx: SweepContext) -> Identity:
    async def fetch() -> Identity:
        me = await _api(ctx, regions(ctx)[0]).call("sts", "get_caller_identity")
        return Identity(account=me["Account"], partition=me["Arn"].split(":")[1])

    return await _collect(ctx, _key(None, "sts:identity"), "AWS account unknown", fetch)


# Cost Explorer: account-wide, served from one endpoint whichever region the client names.
# AWS bills each request ($0.01), one more reason to ask once per sweep.


async def cost_by_service(
    ctx: SweepContext, start: date, end: date, granularity: str
) -> list[CostPeriod]:
    """Unblended cost per service for each period in [start, end)."""

    async def fetch() -> list[CostPeriod]:
        api, periods = _api(ctx, regions(ctx)[0]), dict[str, CostPeriod]()
        params: dict[str, Any] = {
            "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
            "Granularity": granularity,
            "Metrics": ["UnblendedCost"],
            "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}],
        }
        for _ in range(MAX_PAGES):
            page = await api.call("ce", "get_cost_and_usage", **params)
            for row in page.get("ResultsByTime", []):
                first = row["TimePeriod"]["Start"]
                period = periods.setdefault(first, CostPeriod(date.fromisoformat(first), {}))
                for group in row.get("Groups", []):
                    cost = float(group["Metrics"]["UnblendedCost"]["Amount"])
                    service = group["Keys"][0]
                    period.by_service[service] = period.by_service.get(service, 0.0) + cost
            if not page.get("NextPageToken"):
                break
            params["NextPageToken"] = page["NextPageToken"]
        return sorted(periods.values(), key=lambda p: p.start)

    key = _key(None, f"ce:cost_by_service:{granularity}:{start}:{end}")
    return await _collect(ctx, key, "Cost Explorer costs unavailable", fetch)


async def cost_forecast(ctx: SweepContext, start: date, end: date) -> float:
    """AWS's forecast of unblended cost over [start, end)."""

    async def fetch() -> float:
        forecast = await _api(ctx, regions(ctx)[0]).call(
            "ce",
            "get_cost_forecast",
            TimePeriod={"Start": start.isoformat(), "End": end.isoformat()},
            Metric="UNBLENDED_COST",
            Granularity="MONTHLY",
        )
        return float(forecast["Total"]["Amount"])

    key = _key(None, f"ce:forecast:{start}:{end}")
    return await _collect(ctx, key, "Cost Explorer forecast unavailable", fetch)


async def anomalies(ctx: SweepContext, start: date, end: date) -> list[Anomaly]:
    """Cost Anomaly Detection's anomalies that started or ran in [start, end]."""

    async def fetch() -> list[Anomaly]:
        api, found = _api(ctx, regions(ctx)[0]), list[Anomaly]()
        params: dict[str, Any] = {
            "DateInterval": {"StartDate": start.isoformat(), "EndDate": end.isoformat()}
        }
        for _ in range(MAX_PAGES):
            page = await api.call("ce", "get_anomalies", **params)
            found += [Anomaly.model_validate(raw) for raw in page.get("Anomalies", [])]
            if not page.get("NextPageToken"):
                break
            params["NextPageToken"] = page["NextPageToken"]
        return found

    key = _key(None, f"ce:anomalies:{start}:{end}")
    return await _collect(ctx, key, "Cost Anomaly Detection unavailable", fetch)


# Regional inventories.


async def _regional(
    ctx: SweepContext,
    region: str | None,
    name: str,
    fetch: Callable[[AwsApi], Awaitable[Iterable[T]]],
) -> Regional[T]:
    async def run() -> Regional[T]:
        api = _api(ctx, region)
        items = tuple(await fetch(api))
        return Regional(api.region_name, items)

    where = region or "the default region"
    return await _collect(ctx, _key(region, name), f"{name} unavailable in {where}", run)


async def running_instances(ctx: SweepContext, region: str | None) -> Regional[Instance]:
    async def fetch(api: AwsApi) -> list[Instance]:
        filters = [{"Name": "instance-state-name", "Values": ["running"]}]
        pages = await api.pages("ec2", "describe_instances", Filters=filters)
        return [
            Instance.model_validate(raw)
            for page in pages
            for reservation in page["Reservations"]
            for raw in reservation["Instances"]
        ]

    return await _regional(ctx, region, "EC2 instances", fetch)


async def volumes(ctx: SweepContext, region: str | None) -> Regional[Volume]:
    async def fetch(api: AwsApi) -> list[Volume]:
        pages = await api.pages("ec2", "describe_volumes")
        return [Volume.model_validate(raw) for page in pages for raw in page["Volumes"]]

    return await _regional(ctx, region, "EBS volumes", fetch)


async def addresses(ctx: SweepContext, region: str | None) -> Regional[Address]:
    async def fetch(api: AwsApi) -> list[Address]:
        found = await api.call("ec2", "describe_addresses")  # not paginated
        return [Address.model_validate(raw) for raw in found["Addresses"]]

    return await _regional(ctx, region, "Elastic IPs", fetch)


async def own_snapshots(ctx: SweepContext, region: str | None) -> Regional[Snapshot]:
    async def fetch(api: AwsApi) -> list[Snapshot]:
        pages = await api.pages("ec2", "describe_snapshots", OwnerIds=["self"])
        return [Snapshot.model_validate(raw) for page in pages for raw in page["Snapshots"]]

    return await _regional(ctx, region, "EBS snapshots", fetch)


async def load_balancers(ctx: SweepContext, region: str | None) -> Regional[LbUsage]:
    """Every elbv2 load balancer with its target groups and how many targets are healthy."""

    async def fetch(api: AwsApi) -> list[LbUsage]:
        lb_pages = await api.pages("elbv2", "describe_load_balancers")
        lbs = [LoadBalancer.model_validate(raw) for p in lb_pages for raw in p["LoadBalancers"]]
        groups: dict[str, int] = {lb.arn: 0 for lb in lbs}
        healthy: dict[str, int] = {lb.arn: 0 for lb in lbs}
        for page in await api.pages("elbv2", "describe_target_groups"):
            for group in page["TargetGroups"]:
                owners = [arn for arn in group.get("LoadBalancerArns", []) if arn in groups]
                if not owners:
                    continue
                health = await api.call(
                    "elbv2", "describe_target_health", TargetGroupArn=group["TargetGroupArn"]
                )
                up = sum(
                    1
                    for target in health["TargetHealthDescriptions"]
                    if target["TargetHealth"]["State"] == "healthy"
                )
                for arn in owners:
                    groups[arn] += 1
                    healthy[arn] += up
        return [LbUsage(lb, groups[lb.arn], healthy[lb.arn]) for lb in lbs]

    return await _regional(ctx, region, "load balancers", fetch)


# CloudWatch: one GetMetricData per 500 series, daily datapoints.


@dataclass(frozen=True)
class Series:
    id: str
    namespace: str
    metric: str
    dimension: tuple[str, str]
    stat: str


async def daily_metrics(
    ctx: SweepContext,
    region: str | None,
    name: str,
    series: Sequence[Series],
    start: datetime,
    end: datetime,
) -> dict[str, list[float]]:
    """Daily datapoints of each series over [start, end), by series id; a series with no
    data is absent (CloudWatch stores nothing for a metric that was not emitted)."""

    async def fetch() -> dict[str, list[float]]:
        api, values = _api(ctx, region), dict[str, list[float]]()
        ids = {f"q{i}": s.id for i, s in enumerate(series)}  # ids must match ^[a-z]\w*$
        queries = [_query(f"q{i}", s) for i, s in enumerate(series)]
        for first in range(0, len(queries), METRIC_QUERIES_PER_CALL):
            chunk = queries[first : first + METRIC_QUERIES_PER_CALL]
            pages = await api.pages(
                "cloudwatch",
                "get_metric_data",
                MetricDataQueries=chunk,
                StartTime=start,
                EndTime=end,
            )
            for page in pages:
                for result in page["MetricDataResults"]:
                    if result["Values"]:
                        values.setdefault(ids[result["Id"]], []).extend(result["Values"])
        return values

    key = _key(region, f"cloudwatch:{name}:{start.isoformat()}:{end.isoformat()}")
    where = region or "the default region"
    return await _collect(ctx, key, f"CloudWatch {name} unavailable in {where}", fetch)


def _query(query_id: str, series: Series) -> dict[str, Any]:
    dimension = {"Name": series.dimension[0], "Value": series.dimension[1]}
    metric = {"Namespace": series.namespace, "MetricName": series.metric}
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {**metric, "Dimensions": [dimension]},
            "Period": DAY_S,
            "Stat": series.stat,
        },
        "ReturnData": True,
    }
