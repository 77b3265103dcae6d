"""The `aws_rds` check: RDS DB instances are available and not running out of storage.

Read-only (DescribeDBInstances, GetMetricData on FreeStorageSpace, DescribeEvents); boto3 is
never imported at module import.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from daemon.models import STATUS_RANK, CheckResult, ContextBlock, Status, format_duration
from daemon.util.text import clip
from jobs.aws.api import QUOTE_CHARS, AwsApi, AwsCheck, clock

OK_STATES = frozenset({"available", "storage-optimization"})
"""AWS documents both as fully operational (storage-optimization can last hours after a
storage change, so it must not page anyone)."""
DEGRADED_STATES = frozenset(
    {
        "backing-up",
        "configuring-enhanced-monitoring",
        "configuring-iam-database-auth",
        "configuring-log-exports",
        "converting-to-vpc",
        "creating",
        "maintenance",
        "modifying",
        "moving-to-vpc",
        "renaming",
        "resetting-master-credentials",
        "starting",
        "storage-config-upgrade",
        "storage-initialization",
        "upgrading",
    }
)
"""Planned or transitional states. Every other status (stopped, stopping, rebooting,
storage-full, failed, deleting, inaccessible-*, incompatible-*, insufficient-capacity,
restore-error, and any state AWS adds later) is failing."""
GIB = 1024**3
STORAGE_PERIOD_S = 300
STORAGE_LOOKBACK = timedelta(minutes=30)
EVENTS_WINDOW = timedelta(hours=1)
EVENT_LINES = 20
QUERIES_PER_CALL = 500
"""GetMetricData's limit on queries in one request."""


def status_verdict(status: str) -> Status:
    if status in OK_STATES:
        return "ok"
    return "degraded" if status in DEGRADED_STATES else "failing"


class _Instance(BaseModel):
    model_config = ConfigDict(extra="ignore")

    identifier: str = Field(alias="DBInstanceIdentifier")
    arn: str = Field(default="", alias="DBInstanceArn")
    status: str = Field(alias="DBInstanceStatus")
    engine: str = Field(alias="Engine")
    engine_version: str = Field(default="", alias="EngineVersion")
    instance_class: str = Field(default="", alias="DBInstanceClass")
    allocated_gib: int = Field(default=0, alias="AllocatedStorage")
    max_allocated_gib: int | None = Field(default=None, alias="MaxAllocatedStorage")

    @property
    def storage_watched(self) -> bool:
        """Aurora storage is a cluster volume that grows by itself: nothing to fill up."""
        running = self.status in OK_STATES | DEGRADED_STATES
        return running and self.allocated_gib > 0 and not self.engine.startswith("aurora")


class RdsCheck(AwsCheck):
    """RDS DB instances are available, with enough free storage."""

    type: Literal["aws_rds"]
    instances: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="DB instance identifiers (or ARNs) to watch; empty: every instance in "
        "the region. A listed instance that does not exist is failing.",
    )
    storage_warn_percent: float = Field(
        default=15,
        gt=0,
        lt=100,
        description="Degraded when free storage (CloudWatch FreeStorageSpace against "
        "AllocatedStorage) is under this percentage.",
    )
    storage_critical_percent: float = Field(
        default=5, ge=0, lt=100, description="Failing when free storage is under this percentage."
    )

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Self:
        if self.storage_critical_percent >= self.storage_warn_percent:
            raise ValueError("storage_critical_percent must be below storage_warn_percent")
        return self

    async def inspect(self, api: AwsApi, now: datetime) -> list[CheckResult]:
        params = {"Filters": [{"Name": "db-instance-id", "Values": self.instances}]}
        pages = await api.pages(
            "rds", "describe_db_instances", **(params if self.instances else {})
        )
        found = [_Instance.model_validate(item) for page in pages for item in page["DBInstances"]]
        free = await _free_storage(api, [i for i in found if i.storage_watched], now)
        results = [self._judge(i, free.get(i.identifier), now) for i in found]
        known = {i.identifier for i in found} | {i.arn for i in found}
        for name in (n for n in self.instances if n not in known):
            evidence = f"RDS instance {name} not found in {api.region_name}"
            results.append(self.result("failing", evidence, started_at=now, subject=name))
        if not results:
            evidence = f"no RDS DB instances in {api.region_name}"
            results.append(self.result("ok", evidence, started_at=now))
        return results

    def _judge(self, db: _Instance, free_bytes: float | None, now: datetime) -> CheckResult:
        status = status_verdict(db.status)
        evidence = f"RDS instance {db.identifier} ({db.engine} {db.engine_version}, "
        evidence += f"{db.instance_class}) is {db.status}"
        if status == "degraded":
            evidence += " (a transitional state)"
        values: dict[str, float | int | str | bool | None] = {
            "status": db.status,
            "allocated_gib": db.allocated_gib,
        }
        if free_bytes is not None:
            percent = free_bytes / (db.allocated_gib * GIB) * 100
            values.update(free_storage_percent=round(percent, 2), free_storage_bytes=free_bytes)
            storage, evidence = self._storage(db, free_bytes, percent, evidence)
            status = max(status, storage, key=STATUS_RANK.__getitem__)
        elif db.storage_watched:
            evidence += (
                f"; no FreeStorageSpace datapoint in the last {format_duration(STORAGE_LOOKBACK)}"
            )
        return self.result(status, evidence, started_at=now, subject=db.identifier, values=values)

    def _storage(
        self, db: _Instance, free_bytes: float, percent: float, evidence: str
    ) -> tuple[Status, str]:
        evidence += f"; {free_bytes / GIB:.1f} GiB free of {db.allocated_gib} GiB ({percent:.1f} %)"
        status: Status = "ok"
        if percent < self.storage_critical_percent:
            status = "failing"
            evidence += f", under the critical {self.storage_critical_percent:g} %"
        elif percent < self.storage_warn_percent:
            status = "degraded"
            evidence += f", under the warning {self.storage_warn_percent:g} %"
        if status != "ok" and db.max_allocated_gib and db.max_allocated_gib > db.allocated_gib:
            evidence += f" (storage autoscaling may grow it to {db.max_allocated_gib} GiB)"
        return status, evidence

    async def context_for(
        self, api: AwsApi, subjects: list[str], now: datetime
    ) -> list[ContextBlock]:
        blocks = []
        for name in subjects:
            response = await api.call(
                "rds",
                "describe_events",
                SourceIdentifier=name,
                SourceType="db-instance",
                StartTime=now - EVENTS_WINDOW,
                EndTime=now,
                MaxRecords=100,
            )
            events = response["Events"][-EVENT_LINES:]
            lines = [f"{clock(e['Date'], now)} {clip(e['Message'], QUOTE_CHARS)}" for e in events]
            text = "\n".join(lines) or "no events in the last hour"
            blocks.append(ContextBlock(f"RDS events (last hour): {name}", text, relevance=70))
        return blocks


async def _free_storage(api: AwsApi, instances: list[_Instance], now: datetime) -> dict[str, float]:
    """Latest FreeStorageSpace (bytes, the period's minimum) per instance identifier."""
    free: dict[str, float] = {}
    for start in range(0, len(instances), QUERIES_PER_CALL):
        batch = instances[start : start + QUERIES_PER_CALL]
        queries = [
            {
                "Id": f"s{n}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/RDS",
                        "MetricName": "FreeStorageSpace",
                        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": db.identifier}],
                    },
                    "Period": STORAGE_PERIOD_S,
                    "Stat": "Minimum",
                },
                "ReturnData": True,
            }
            for n, db in enumerate(batch)
        ]
        response = await api.call(
            "cloudwatch",
            "get_metric_data",
            MetricDataQueries=queries,
            StartTime=now - STORAGE_LOOKBACK,
            EndTime=now,
            ScanBy="TimestampDescending",
        )
        for data in response["MetricDataResults"]:
            if data["Values"]:
                free[batch[int(data["Id"][1:])].identifier] = data["Values"][0]
    return free
