"""Typed AWS resources the sweep rules judge: the fields rules read from the API's items, by
their AWS names, and the small records the collector assembles from several calls.

Pure data: no AWS call, no judgement. Unknown fields are ignored, missing required ones fail
validation loudly rather than being read as "not set".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Shape(BaseModel):
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


class Attachment(_Shape):
    instance_id: str = Field(alias="InstanceId")


class Volume(_Tagged):
    id: str = Field(alias="VolumeId")
    size_gib: int = Field(alias="Size")
    type: str = Field(alias="VolumeType")
    state: str = Field(alias="State")
    iops: int | None = Field(default=None, alias="Iops")
    throughput: int | None = Field(default=None, alias="Throughput")
    created: datetime = Field(alias="CreateTime")
    encrypted: bool = Field(default=False, alias="Encrypted")
    attachments: tuple[Attachment, ...] = Field(default=(), alias="Attachments")


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
    """Who the credentials are (GetCallerIdentity)."""

    account: str
    partition: str
    """`aws`, `aws-cn`, `aws-us-gov`: for ARNs the APIs do not return."""

    def arn(self, service: str, region: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{region}:{self.account}:{resource}"


@dataclass(frozen=True)
class LbUsage:
    lb: LoadBalancer
    target_groups: int
    healthy_targets: int


@dataclass(frozen=True)
class CostPeriod:
    start: date
    by_service: dict[str, float]

    @staticmethod
    def from_pages(pages: Iterable[dict[str, Any]]) -> list[CostPeriod]:
        """GetCostAndUsage pages grouped by SERVICE, as periods in date order."""
        periods: dict[str, CostPeriod] = {}
        for row in (row for page in pages for row in page.get("ResultsByTime", [])):
            first = row["TimePeriod"]["Start"]
            period = periods.setdefault(first, CostPeriod(date.fromisoformat(first), {}))
            for group in row.get("Groups", []):
                cost = float(group["Metrics"]["UnblendedCost"]["Amount"])
                service = group["Keys"][0]
                period.by_service[service] = period.by_service.get(service, 0.0) + cost
        return sorted(periods.values(), key=lambda p: p.start)


@dataclass(frozen=True)
class SnapshotAccess:
    kind: str
    """`db` or `db-cluster`: the word the RDS API and CLI use for each."""
    id: str
    arn: str
    restore: tuple[str, ...]
    """Who may restore it: account ids, or "all" for everyone."""

    @staticmethod
    def from_attributes(
        kind: str, id: str, arn: str, attributes: Iterable[dict[str, Any]]
    ) -> SnapshotAccess:
        restore = [a for a in attributes if a["AttributeName"] == "restore"]
        return SnapshotAccess(
            kind, id, arn, tuple(restore[0].get("AttributeValues", [])) if restore else ()
        )


@dataclass(frozen=True)
class AccessKey:
    user: str
    user_arn: str
    id: str
    status: str
    created: datetime


@dataclass(frozen=True)
class Series:
    """One CloudWatch metric series: `dimension` is (name, value); `more` the further
    dimensions some metrics are only published under (S3's StorageType, OpenSearch's
    ClientId)."""

    id: str
    namespace: str
    metric: str
    dimension: tuple[str, str]
    stat: str
    more: tuple[tuple[str, str], ...] = ()

    def query(self, query_id: str, period_s: int) -> dict[str, Any]:
        """Its GetMetricData query (ids must match ^[a-z]\\w*$)."""
        dimensions = [{"Name": n, "Value": v} for n, v in (self.dimension, *self.more)]
        metric = {"Namespace": self.namespace, "MetricName": self.metric, "Dimensions": dimensions}
        stat = {"Metric": metric, "Period": period_s, "Stat": self.stat}
        return {"Id": query_id, "MetricStat": stat, "ReturnData": True}
