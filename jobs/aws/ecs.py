"""The `aws_ecs` check: ECS services run the tasks they want, and their deployments succeed.

Read-only (ListServices, DescribeServices); boto3 is never imported at module import. Service
events are AWS text: quoted and clipped, never interpreted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from daemon.models import CheckResult, ContextBlock, Duration, Status, format_duration
from daemon.util.text import clip
from jobs.aws.api import QUOTE_CHARS, AwsApi, AwsCheck, AwsError, clock

DESCRIBE_BATCH = 10
"""DescribeServices takes at most 10 services per call."""
EVENT_LINES = 15


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="ignore")


class _Event(_Model):
    created_at: datetime
    message: str


class _Deployment(_Model):
    id: str
    status: str
    rollout_state: str | None = None
    rollout_state_reason: str = ""
    failed_tasks: int = 0
    updated_at: datetime | None = None


class _Service(_Model):
    service_name: str
    status: str
    desired_count: int
    running_count: int
    pending_count: int
    deployments: list[_Deployment] = []
    events: list[_Event] = []
    created_at: datetime | None = None

    def last_change(self) -> datetime | None:
        """When the newest deployment last changed: how long tasks may have been pending."""
        times = [d.updated_at for d in self.deployments if d.updated_at is not None]
        return max(times) if times else self.created_at


def judge(service: _Service, cluster: str, now: datetime, grace: timedelta) -> tuple[Status, str]:
    """Failing: not ACTIVE, a FAILED rollout, an in-progress rollout with failed tasks, or fewer
    tasks running than desired. Degraded: tasks pending longer than `grace`. Otherwise ok."""
    head = f"service {service.service_name} in cluster {cluster}"
    counts = f"{service.running_count} of {service.desired_count} tasks running"
    if service.pending_count:
        counts += f"; {service.pending_count} pending"
    failed = [d for d in service.deployments if d.rollout_state == "FAILED"]
    broken = [d for d in service.deployments if d.rollout_state == "IN_PROGRESS" and d.failed_tasks]
    status: Status = "ok"
    if service.status != "ACTIVE":
        status, detail = "failing", f"{head} is {service.status}"
    elif failed:
        reason = clip(failed[0].rollout_state_reason, 200)
        status, detail = "failing", f"{head}: deployment {failed[0].id} FAILED ({reason}); {counts}"
    elif broken:
        deployment = broken[0]
        detail = f"{head}: deployment {deployment.id} in progress with "
        detail += f"{deployment.failed_tasks} failed tasks; {counts}"
        status = "failing"
    elif service.running_count < service.desired_count:
        status, detail = "failing", f"{head}: {counts}"
    else:
        detail = f"{head}: {counts}"
        since = service.last_change()
        if service.pending_count and since is not None and now - since > grace:
            status = "degraded"
            detail += f" for {format_duration(now - since)} (since {clock(since, now)})"
    if status != "ok" and service.events:
        event = service.events[0]  # newest first
        detail += (
            f"; last event ({clock(event.created_at, now)}): {clip(event.message, QUOTE_CHARS)}"
        )
    return status, detail


class EcsCheck(AwsCheck):
    """ECS services in one cluster run their desired task count and deploy cleanly."""

    type: Literal["aws_ecs"]
    cluster: str = Field(min_length=1, description="Cluster name or ARN.")
    services: list[str] = Field(
        default_factory=list,
        description="Service names or ARNs; empty: every service in the cluster. A listed "
        "service that does not exist is failing.",
    )
    pending_grace: Duration = Field(
        default=timedelta(minutes=10),
        description="Degraded when tasks stay pending longer than this after the service's "
        "latest deployment change, e.g. '10m'.",
    )

    async def inspect(self, api: AwsApi, now: datetime) -> list[CheckResult]:
        try:
            services, missing = await self._describe(api, self.services)
        except AwsError as exc:
            if exc.code != "ClusterNotFoundException":
                raise
            evidence = f"ECS cluster {self.cluster} not found in {api.region_name}"
            return [self.result("failing", evidence, started_at=now, subject=self.cluster)]
        results = []
        for service in services:
            status, evidence = judge(service, self.cluster, now, self.pending_grace)
            values: dict[str, float | int | str | bool | None] = {
                "running": service.running_count,
                "desired": service.desired_count,
                "pending": service.pending_count,
            }
            subject = service.service_name
            results.append(
                self.result(status, evidence, started_at=now, subject=subject, values=values)
            )
        for name in missing:
            evidence = f"service {name} not found in cluster {self.cluster}"
            results.append(self.result("failing", evidence, started_at=now, subject=name))
        if not results:
            evidence = f"cluster {self.cluster} has no services"
            results.append(self.result("ok", evidence, started_at=now))
        return results

    async def _describe(self, api: AwsApi, names: list[str]) -> tuple[list[_Service], list[str]]:
        """The services (all of the cluster's when `names` is empty) and the names not found."""
        if not names:
            pages = await api.pages("ecs", "list_services", cluster=self.cluster)
            names = [arn for page in pages for arn in page["serviceArns"]]
        services: list[_Service] = []
        missing: list[str] = []
        for start in range(0, len(names), DESCRIBE_BATCH):
            response = await api.call(
                "ecs",
                "describe_services",
                cluster=self.cluster,
                services=names[start : start + DESCRIBE_BATCH],
            )
            services += [_Service.model_validate(s) for s in response["services"]]
            missing += [f["arn"].rsplit("/", 1)[-1] for f in response["failures"]]
        return services, missing

    async def context_for(
        self, api: AwsApi, subjects: list[str], now: datetime
    ) -> list[ContextBlock]:
        services, _ = await self._describe(api, subjects)
        blocks = []
        for service in services:
            lines = [
                f"{clock(e.created_at, now)} {clip(e.message, QUOTE_CHARS)}" for e in service.events
            ]
            lines = lines[:EVENT_LINES] or ["no service events"]
            for d in service.deployments:
                state = (
                    f"{d.status} rollout {d.rollout_state or '?'}, {d.failed_tasks} failed tasks"
                )
                lines.append(f"deployment {d.id}: {state}")
            title = f"ECS service events (newest first): {service.service_name}"
            blocks.append(ContextBlock(title, "\n".join(lines), relevance=70))
        return blocks
