"""The `[[sweeps]]` tables: nightly security and cost sweeps, their scope, mutelist and the
options cost rules read, plus the cross-checks that span tables (names, targets, cron).

Nothing here touches AWS or Kubernetes, or imports a rule module: a sweep's rules are only
looked up when it runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daemon.errors import ConfigProblem
from daemon.models import Duration

_RULE_GLOB = re.compile(r"^[A-Za-z0-9_.:*?\[\]!-]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AwsSweepScope(_Strict):
    profile: str | None = Field(
        default=None,
        description="AWS profile (~/.aws/config). Default: boto3's usual chain (environment, "
        "instance role, default profile).",
    )
    regions: list[str] = Field(
        default_factory=list,
        description="Regions to sweep, e.g. ['eu-west-1', 'us-east-1']. Default: the "
        "profile's region.",
    )


class KubernetesSweepScope(_Strict):
    kubeconfig: str | None = Field(
        default=None, description="Path to a kubeconfig. Default: $KUBECONFIG or ~/.kube/config."
    )
    contexts: list[str] = Field(
        default_factory=list, description="kubeconfig contexts to sweep. Default: the current one."
    )
    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to sweep. Default: all namespaces."
    )


class MuteEntry(_Strict):
    """An accepted finding: kept out of notifications and counted as muted, until `until`."""

    rule: str = Field(
        min_length=1,
        description="Rule id, e.g. 'aws.sg.open_ssh' (a glob such as 'k8s.pod.*' is allowed).",
    )
    resource: str = Field(
        min_length=1,
        description="fnmatch glob over the finding's resource (ARN or namespace/kind/name), "
        "e.g. 'arn:aws:ec2:*:security-group/sg-0abc*' or 'kube-system/*'.",
    )
    until: date | None = Field(
        default=None,
        description="Last day (UTC) the mute holds, e.g. 2026-12-31; after it the finding is "
        "reported again. Default: no end.",
    )
    reason: str = Field(
        min_length=1, description="Why this is accepted (shown in the reports). Required."
    )

    @field_validator("rule")
    @classmethod
    def _rule_glob(cls, value: str) -> str:
        if not _RULE_GLOB.match(value):
            raise ValueError(f"{value!r} is not a rule id or glob, e.g. 'aws.sg.open_ssh'")
        return value

    @field_validator("reason")
    @classmethod
    def _reason_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("give the reason this finding is accepted")
        return value.strip()

    def active(self, today: date) -> bool:
        return self.until is None or today <= self.until


class SweepOptions(_Strict):
    """The options rules read from `SweepContext.options`: the one place their keys, types and
    defaults are defined. `SweepConfig.options()` passes every field below, plus
    `cloud_monthly_usd` (from `[budget]`: float, or None when unset)."""

    spike_percent: float = Field(
        default=30.0,
        gt=0,
        description="A service's daily cost this many percent above its trailing average is a "
        "spike (together with spike_usd).",
    )
    spike_usd: float = Field(
        default=50.0,
        ge=0,
        description="...and at least this many USD above it, so tiny services do not alarm.",
    )
    idle_cpu_avg_percent: float = Field(
        default=5.0, ge=0, le=100, description="An instance averaging below this CPU % is idle…"
    )
    idle_cpu_max_percent: float = Field(
        default=15.0, ge=0, le=100, description="…if it also never peaked above this CPU %…"
    )
    idle_days: int = Field(default=14, ge=1, le=90, description="…over this many days.")
    lb_min_requests_per_day: float = Field(
        default=100.0, ge=0, description="A load balancer with fewer requests a day is unused."
    )
    snapshot_max_age_days: int = Field(
        default=90, ge=1, description="EBS snapshots older than this are reported."
    )
    cache_min_commands_per_day: float = Field(
        default=100.0,
        ge=0,
        description="An ElastiCache cluster with fewer get/set commands a day (over idle_days) "
        "is idle.",
    )
    search_min_requests_per_day: float = Field(
        default=100.0,
        ge=0,
        description="An OpenSearch domain with fewer requests a day (over idle_days) is idle.",
    )
    s3_cold_min_gib: float = Field(
        default=1024.0,
        ge=0,
        description="A bucket holding at least this many GiB in S3 Standard, with no lifecycle "
        "rule, is reported when cold…",
    )
    s3_cold_max_gets_per_day: float = Field(
        default=10.0,
        ge=0,
        description="…at most this many GET requests a day over 30 days (request metrics; "
        "without them: no object added or removed in 30 days).",
    )
    nat_min_mib_per_day: float = Field(
        default=10.0,
        ge=0,
        description="A NAT gateway moving fewer MiB a day (BytesOutToDestination + "
        "BytesInFromSource, averaged over idle_days) is idle.",
    )
    k8s_idle_request_percent: float = Field(
        default=10.0,
        ge=0,
        le=100,
        description="A workload using less than this % of its CPU/memory requests is "
        "over-provisioned.",
    )
    vcpu_hour_usd: float = Field(
        default=0.031611,
        ge=0,
        description="USD per requested vCPU-hour, for Kubernetes estimates. Default: AWS "
        "m6i.xlarge on-demand in us-east-1 ($0.192/h for 4 vCPU + 16 GiB) split into CPU and "
        "memory as cost-allocation tools do (Kubecost's default AWS rates). Set your own rate "
        "for figures that match your bill.",
    )
    gib_hour_usd: float = Field(
        default=0.004237,
        ge=0,
        description="USD per requested GiB-hour of memory (same source as vcpu_hour_usd).",
    )
    iam_key_max_age_days: int = Field(
        default=90, ge=1, description="IAM access keys older than this should be rotated."
    )
    iam_key_unused_days: int = Field(
        default=45, ge=1, description="IAM access keys unused this long should be removed."
    )
    trusted_accounts: list[str] = Field(
        default_factory=list,
        description="AWS account ids (12 digits) the security rules count as your own when a "
        "resource policy lets them in, e.g. your organisation's other accounts.",
    )
    critical_buckets: list[str] = Field(
        default_factory=list,
        description="fnmatch globs of S3 bucket names that must have versioning and MFA "
        "delete (aws.s3.versioning), e.g. ['*-backups', 'ledger-*']. Default: none checked.",
    )
    k8s_netpol_exempt_namespaces: list[str] = Field(
        default_factory=lambda: ["kube-system", "kube-public", "kube-node-lease"],
        description="Namespaces k8s.namespace.no_network_policy does not report without a "
        "NetworkPolicy. Default: the control plane's own.",
    )
    prices: dict[str, float | dict[str, float]] = Field(
        default_factory=dict,
        description="Overrides for the cost rules' price table in USD (EC2, EBS, EIP, ELB, RDS, "
        "NAT, ElastiCache, OpenSearch, S3; see "
        "jobs/sweeps/aws/prices.py): a section merged key by key, e.g. [sweeps.prices.ec2_hourly] "
        '"m6i.large" = 0.096, or a single price, e.g. eip_hourly = 0.005.',
    )

    @field_validator("trusted_accounts")
    @classmethod
    def _account_ids(cls, value: list[str]) -> list[str]:
        wrong = [v for v in value if not re.fullmatch(r"\d{12}", v)]
        if wrong:
            raise ValueError(f"{wrong[0]!r} is not an AWS account id (12 digits)")
        return value


class SweepConfig(SweepOptions):
    """One `[[sweeps]]` entry: what is swept, when, and who hears about changes."""

    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: Literal["security", "cost"]
    cron: str = Field(default="0 2 * * *", description="When it runs (crontab, UTC).")
    enabled: bool = True
    aws: AwsSweepScope | None = Field(default=None, description="Sweep this AWS account.")
    kubernetes: KubernetesSweepScope | None = Field(
        default=None, description="Sweep these Kubernetes clusters."
    )
    notify: list[str] = Field(
        default_factory=list,
        description="Target names to send changes to. Default: every target wanting 'report'.",
    )
    mutelist: list[MuteEntry] = Field(default_factory=list)
    rules: list[str] = Field(
        default_factory=list,
        description="Only rules whose id matches one of these globs, e.g. ['aws.*']. "
        "Default: every rule of this kind.",
    )
    timeout: Duration = Field(
        default=timedelta(minutes=10),
        description="The whole sweep's limit; rules still running then are recorded as errors.",
    )

    @model_validator(mode="after")
    def _has_scope(self) -> SweepConfig:
        if self.aws is None and self.kubernetes is None:
            raise ValueError(
                "a sweep needs a scope: add an `aws` table (profile, regions) and/or a "
                "`kubernetes` table (kubeconfig, contexts, namespaces)"
            )
        if self.timeout.total_seconds() <= 0:
            raise ValueError("timeout must be greater than 0")
        return self

    def options(self, cloud_monthly_usd: float | None = None) -> dict[str, Any]:
        """`SweepContext.options`: every SweepOptions field, plus `cloud_monthly_usd`."""
        data = self.model_dump(include=set(SweepOptions.model_fields))
        data["cloud_monthly_usd"] = cloud_monthly_usd
        return data


def sweep_problems(
    sweeps: Sequence[SweepConfig], target_events: Mapping[str, Sequence[str]]
) -> list[ConfigProblem]:
    """Unique names, known targets that want reports, a valid cron, no duplicate mutes.
    `target_events` maps each notify target's name to its `events`."""
    from apscheduler.triggers.cron import CronTrigger

    problems: list[ConfigProblem] = []
    seen: set[str] = set()
    for sweep in sweeps:
        key = f"sweeps[{sweep.name}]"
        if sweep.name in seen:
            problems.append(ConfigProblem(f"{key}.name", "duplicate name; names must be unique"))
        seen.add(sweep.name)
        try:
            CronTrigger.from_crontab(sweep.cron)
        except ValueError as exc:
            problems.append(
                ConfigProblem(
                    f"{key}.cron",
                    f"{sweep.cron!r} is not a crontab expression ({exc}); use five fields, "
                    "e.g. '0 2 * * *'",
                )
            )
        for target in sweep.notify:
            if target not in target_events:
                known = ", ".join(sorted(target_events)) or "none configured"
                problems.append(
                    ConfigProblem(
                        f"{key}.notify",
                        f"{target!r} is not a [[notify]] target (known: {known})",
                    )
                )
            elif "report" not in target_events[target]:
                problems.append(
                    ConfigProblem(
                        f"{key}.notify",
                        f"target {target!r} does not take 'report' events; add 'report' to "
                        "its events or remove it here",
                    )
                )
        problems += _price_problems(key, sweep)
        mutes: set[tuple[str, str]] = set()
        for index, entry in enumerate(sweep.mutelist):
            if (entry.rule, entry.resource) in mutes:
                problems.append(
                    ConfigProblem(
                        f"{key}.mutelist[{index}]",
                        f"duplicate entry for {entry.rule} on {entry.resource}; keep one",
                    )
                )
            mutes.add((entry.rule, entry.resource))
    return problems


def _price_problems(key: str, sweep: SweepConfig) -> list[ConfigProblem]:
    if not sweep.prices:
        return []
    from jobs.sweeps.aws.prices import price_table

    try:
        price_table(sweep.prices)
    except ValueError as exc:
        return [ConfigProblem(f"{key}.prices", str(exc))]
    return []
