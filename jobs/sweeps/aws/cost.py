"""AWS cost rules: spend against the budget, spikes and anomalies, and idle resources priced
from `prices.py`, each finding saying what fixing it saves per month.

Rules only judge collected datasets; they read the clock from `ctx.now`, never guess a price
(unknown is `None`), and never import boto3.

Severity of an idle-resource finding follows its saving (`by_savings`): low by default, medium
from $100/mo, high from $1,000/mo. Spend findings (budget, spike, anomaly) carry no saving: they
say what is being spent, not what one change would save.
"""

from __future__ import annotations

import calendar
import math
from datetime import UTC, datetime, timedelta

from daemon.models import Severity
from jobs.sweeps.aws.collect import (
    addresses,
    daily_metrics,
    identity,
    load_balancers,
    own_snapshots,
    running_instances,
    volumes,
)
from jobs.sweeps.aws.collect_account import anomalies, cost_by_service, cost_forecast
from jobs.sweeps.aws.prices import PriceTable, price_table, saves, usd
from jobs.sweeps.aws.resources import LbUsage, Series
from jobs.sweeps.aws.rule import ACCOUNT, REGION
from jobs.sweeps.base import CollectError, Rule, RuleMeta, SweepContext
from jobs.sweeps.rule import Hit, by_savings, rule

DEFAULTS: dict[str, float] = {
    "spike_percent": 30,
    "spike_usd": 50,
    "idle_cpu_avg_percent": 5,
    "idle_cpu_max_percent": 15,
    "idle_days": 14,
    "lb_min_requests_per_day": 100,
    "snapshot_max_age_days": 90,
    "cache_min_commands_per_day": 100,
    "search_min_requests_per_day": 100,
    "s3_cold_min_gib": 1024,
    "s3_cold_max_gets_per_day": 10,
    "nat_min_mib_per_day": 10,
}
LB_WINDOW_DAYS = 7


def option(ctx: SweepContext, name: str) -> float:
    value = ctx.options.get(name, DEFAULTS[name])
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"sweep option {name} must be a number ≥ 0, not {value!r}")
    return float(value)


def prices(ctx: SweepContext) -> PriceTable:
    return price_table(ctx.options.get("prices"))


def midnight(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def labelled(resource_id: str, *details: str | None) -> str:
    """`i-0abc (m5.large, web-7)`."""
    shown = [d for d in details if d]
    return f"{resource_id} ({', '.join(shown)})" if shown else resource_id


def _top(by_service: dict[str, float], n: int = 3) -> str:
    ranked = sorted(by_service.items(), key=lambda item: item[1], reverse=True)[:n]
    return ", ".join(f"{service} {usd(cost)}" for service, cost in ranked) or "none"


# --- spend -----------------------------------------------------------------------------------


@rule(
    RuleMeta(
        id="aws.cost.budget_forecast",
        title="Month-end AWS spend is forecast over the cloud budget",
        kind="cost",
        severity=Severity.MEDIUM,
        risk="The month will close over budget unless spend comes down now.",
        remediation="Look at the top services in Cost Explorer and stop or shrink what is not "
        "needed; or raise cloud_monthly_usd if the budget is out of date.",
        service="aws:ce",
    ),
    ACCOUNT,
)
async def budget_forecast(ctx: SweepContext, region: str) -> list[Hit]:
    budget = ctx.options.get("cloud_monthly_usd")  # from [budget]; None: no budget set
    if budget is None:
        return []
    if isinstance(budget, bool) or not isinstance(budget, int | float) or budget <= 0:
        raise ValueError(f"cloud_monthly_usd must be a number of USD > 0, not {budget!r}")
    today = ctx.now.astimezone(UTC).date()
    first = today.replace(day=1)
    days = calendar.monthrange(today.year, today.month)[1]
    month_end = first + timedelta(days=days)
    spent: dict[str, float] = {}
    if today > first:  # on the 1st nothing is spent yet, and CE rejects an empty period
        for period in await cost_by_service(ctx, first, today, "MONTHLY"):
            for service, cost in period.by_service.items():
                spent[service] = spent.get(service, 0.0) + cost
    mtd = sum(spent.values())
    try:
        forecast = mtd + await cost_forecast(ctx, today, month_end)
        how = "Cost Explorer forecast"
    except CollectError as exc:
        elapsed = (today - first).days
        if not elapsed:
            raise
        forecast = mtd / elapsed * days
        how = f"linear projection of month to date, because {exc}"
    ratio = forecast / budget
    if ratio <= 1:
        return []
    evidence = (
        f"forecast {usd(forecast)} exceeds the cloud budget {usd(budget)} "
        f"({ratio:.0%}) for {today:%B %Y}: {usd(mtd)} spent before {today} "
        f"(top: {_top(spent)}); {how}"
    )
    severity = Severity.HIGH if ratio > 1.10 else Severity.MEDIUM
    return [Hit((await identity(ctx)).account, evidence, severity=severity)]


@rule(
    RuleMeta(
        id="aws.cost.daily_spike",
        title="A service's daily cost jumped",
        kind="cost",
        severity=Severity.MEDIUM,
        risk="A day-over-day jump is often a runaway job, a scaling loop or a misconfiguration "
        "that keeps costing until someone notices.",
        remediation="Open Cost Explorer for the service, group by usage type and resource, "
        "and find what started; stop it or confirm the new level is expected.",
        service="aws:ce",
    ),
    ACCOUNT,
)
async def daily_spike(ctx: SweepContext, region: str) -> list[Hit]:
    spike_percent, spike_usd = option(ctx, "spike_percent"), option(ctx, "spike_usd")
    today = ctx.now.astimezone(UTC).date()
    before_day, last_day = today - timedelta(days=2), today - timedelta(days=1)
    periods = await cost_by_service(ctx, before_day, today, "DAILY")
    by_day = {p.start: p.by_service for p in periods}
    before, last = by_day.get(before_day, {}), by_day.get(last_day, {})
    hits = []
    for service, cost in sorted(last.items()):
        prev = before.get(service, 0.0)
        rise = cost - prev
        percent = rise / prev * 100 if prev > 0 else float("inf")
        if rise <= spike_usd or percent <= spike_percent:
            continue
        change = f"+{percent:.0f}%" if prev > 0 else "new"
        evidence = (
            f"{service} cost {usd(cost)} on {last_day}, up {usd(rise)} ({change}) from "
            f"{usd(prev)} on {before_day} (thresholds: {spike_percent:g}% and "
            f"{usd(spike_usd)})"
        )
        hits.append(Hit(f"{(await identity(ctx)).account}:service/{service}", evidence))
    return hits


@rule(
    RuleMeta(
        id="aws.cost.anomaly",
        title="AWS Cost Anomaly Detection found unusual spend",
        kind="cost",
        severity=Severity.MEDIUM,
        risk="Spend well above what AWS expected from the account's history.",
        remediation="Open the anomaly in the Cost Management console, check its root cause, "
        "and stop the usage or mark the anomaly as expected.",
        service="aws:ce",
    ),
    ACCOUNT,
)
async def cost_anomaly(ctx: SweepContext, region: str) -> list[Hit]:
    today = ctx.now.astimezone(UTC).date()
    hits = []
    for anomaly in await anomalies(ctx, today - timedelta(days=7), today):
        impact = anomaly.impact
        total = impact.total_impact if impact.total_impact is not None else impact.max_impact
        spend = ""
        if impact.total_actual is not None and impact.total_expected is not None:
            spend = (
                f" ({usd(impact.total_actual)} spent where "
                f"{usd(impact.total_expected)} was expected)"
            )
        evidence = (
            f"anomaly from {anomaly.start or '?'} to {anomaly.end or 'now'}: "
            f"{usd(total)} above expected{spend}; root cause: "
            f"{'; '.join(map(str, anomaly.root_causes)) or anomaly.dimension or 'not given'}"
        )
        severity = Severity.HIGH if total >= 1000 else Severity.MEDIUM
        resource = f"{(await identity(ctx)).account}:anomaly/{anomaly.id}"
        hits.append(Hit(resource, evidence, severity=severity))
    return hits


# --- idle resources --------------------------------------------------------------------------


@rule(
    RuleMeta(
        id="aws.ec2.idle",
        title="EC2 instance is idle",
        kind="cost",
        severity=Severity.LOW,
        risk="A running instance that does no work is still paid for by the hour.",
        remediation="Stop or terminate it if nothing needs it, or move it to a smaller type.",
        service="aws:ec2",
    ),
    REGION,
    severity=by_savings,
)
async def idle_instances(ctx: SweepContext, region: str) -> list[Hit]:
    avg_limit = option(ctx, "idle_cpu_avg_percent")
    max_limit = option(ctx, "idle_cpu_max_percent")
    days = max(1, int(option(ctx, "idle_days")))
    end, table, hits = midnight(ctx.now), prices(ctx), []
    running = await running_instances(ctx, region)
    series = [
        Series(f"{vm.id}/{stat}", "AWS/EC2", "CPUUtilization", ("InstanceId", vm.id), stat)
        for vm in running
        for stat in ("Average", "Maximum")
    ]
    cpu = await daily_metrics(ctx, region, "EC2 CPU", series, end - timedelta(days=days), end)
    for vm in running:
        averages, peaks = cpu.get(f"{vm.id}/Average", []), cpu.get(f"{vm.id}/Maximum", [])
        # A day or two without data (a stop, a gap) does not hide an idle instance; one
        # launched inside the window is not judged yet.
        if len(averages) < math.ceil(days * 0.8) or not peaks:
            continue
        avg, peak = sum(averages) / len(averages), max(peaks)
        if avg >= avg_limit or peak >= max_limit:
            continue
        monthly = table.ec2_monthly(vm.type)
        fix = saves(monthly, "stopping it", ("instance type", vm.type, "ec2_hourly"))
        evidence = (
            f"{labelled(vm.id, vm.type, vm.name)} averaged {avg:.1f}% CPU "
            f"(max {peak:.1f}%) over {days} days — {fix}"
        )
        arn = (await identity(ctx)).arn("ec2", region, f"instance/{vm.id}")
        cli = f"aws ec2 stop-instances --instance-ids {vm.id} --region {region}"
        hits.append(Hit(arn, evidence, command=cli, savings=monthly))
    return hits


@rule(
    RuleMeta(
        id="aws.ebs.unattached",
        title="EBS volume is not attached to any instance",
        kind="cost",
        severity=Severity.LOW,
        risk="A detached volume is billed for its full provisioned size (and IOPS) every month.",
        remediation="Snapshot it if the data may be needed, then delete it.",
        service="aws:ec2",
    ),
    REGION,
    severity=by_savings,
)
async def unattached_volumes(ctx: SweepContext, region: str) -> list[Hit]:
    table, hits = prices(ctx), []
    for vol in (v for v in await volumes(ctx, region) if v.state == "available"):
        monthly = table.volume_monthly(vol.type, vol.size_gib, vol.iops, vol.throughput)
        iops = f", {vol.iops} IOPS" if vol.type in ("io1", "io2") and vol.iops else ""
        fix = saves(monthly, "deleting it", ("volume type", vol.type, "ebs_gib_month"))
        evidence = (
            f"{labelled(vol.id, vol.type, f'{vol.size_gib} GiB{iops}', vol.name)} is not "
            f"attached to any instance (created {vol.created:%Y-%m-%d}) — {fix}"
        )
        arn = (await identity(ctx)).arn("ec2", region, f"volume/{vol.id}")
        cli = f"aws ec2 delete-volume --volume-id {vol.id} --region {region}"
        hits.append(Hit(arn, evidence, command=cli, savings=monthly))
    return hits


@rule(
    RuleMeta(
        id="aws.eip.unassociated",
        title="Elastic IP is not associated",
        kind="cost",
        severity=Severity.LOW,
        risk="Every public IPv4 address is billed hourly (since February 2024), used or not.",
        remediation="Release it unless something (an allow-list, a DNS record) needs it kept.",
        service="aws:ec2",
    ),
    REGION,
    severity=by_savings,
)
async def unassociated_addresses(ctx: SweepContext, region: str) -> list[Hit]:
    monthly, hits = prices(ctx).eip_monthly(), []
    for eip in await addresses(ctx, region):
        if eip.association_id or eip.instance_id or eip.network_interface_id:
            continue
        evidence = (
            f"Elastic IP {labelled(eip.public_ip, eip.allocation_id, eip.name)} is not "
            f"associated with any instance or network interface — releasing it saves "
            f"≈ {usd(monthly)}/mo"
        )
        alloc, cli = eip.allocation_id, None
        arn = eip.public_ip
        if alloc:  # an EC2-Classic address has neither an ARN nor an allocation to release
            arn = (await identity(ctx)).arn("ec2", region, f"elastic-ip/{alloc}")
            cli = f"aws ec2 release-address --allocation-id {alloc} --region {region}"
        hits.append(Hit(arn, evidence, command=cli, savings=monthly))
    return hits


TRAFFIC = {  # per load balancer type: its label, and the CloudWatch metric that shows use
    "application": ("ALB", "AWS/ApplicationELB", "RequestCount", "requests"),
    "network": ("NLB", "AWS/NetworkELB", "NewFlowCount", "new flows"),
}


@rule(
    RuleMeta(
        id="aws.elb.idle",
        title="Load balancer serves no one",
        kind="cost",
        severity=Severity.LOW,
        risk="A load balancer is billed hourly whether or not it has targets or traffic.",
        remediation="Delete it (and its target groups) if nothing points at it any more.",
        service="aws:elasticloadbalancing",
    ),
    REGION,
    severity=by_savings,
)
async def idle_load_balancers(ctx: SweepContext, region: str) -> list[Hit]:
    min_per_day = option(ctx, "lb_min_requests_per_day")
    end = midnight(ctx.now)
    start, table = end - timedelta(days=LB_WINDOW_DAYS), prices(ctx)
    usable = [u for u in await load_balancers(ctx, region) if u.lb.type in TRAFFIC]  # not gateway
    idle = {u.lb.arn: _no_targets(u) for u in usable if not u.healthy_targets}
    # One created inside the window has not had a full week to get traffic.
    judged = [u.lb for u in usable if u.lb.arn not in idle and u.lb.created <= start]
    series = [
        Series(lb.arn, *TRAFFIC[lb.type][1:3], ("LoadBalancer", lb.dimension), "Sum")
        for lb in judged
    ]
    traffic = await daily_metrics(ctx, region, "LB traffic", series, start, end)
    for lb in judged:
        per_day = sum(traffic.get(lb.arn, [])) / LB_WINDOW_DAYS
        if per_day < min_per_day:
            idle[lb.arn] = (
                f"handled {per_day:.1f} {TRAFFIC[lb.type][3]}/day on average over the last "
                f"{LB_WINDOW_DAYS} days (fewer than {min_per_day:g})"
            )
    hits = []
    for lb in (u.lb for u in usable if u.lb.arn in idle):
        monthly = table.lb_monthly(lb.type)
        fix = saves(monthly, "deleting it", ("load balancer type", lb.type, "lb_hourly"))
        evidence = f"{TRAFFIC[lb.type][0]} {lb.name} {idle[lb.arn]} — {fix}"
        cli = f"aws elbv2 delete-load-balancer --load-balancer-arn {lb.arn}"
        hits.append(Hit(lb.arn, evidence, command=cli, savings=monthly))
    return hits


def _no_targets(usage: LbUsage) -> str:
    groups = usage.target_groups
    if not groups:
        return "has no target groups"
    return f"has no healthy target in its {groups} target group{'s' if groups > 1 else ''}"


@rule(
    RuleMeta(
        id="aws.ebs.old_snapshot",
        title="EBS snapshot is old",
        kind="cost",
        severity=Severity.LOW,
        risk="Old snapshots nobody restores from are billed every month, often for years.",
        remediation="Delete it if no retention rule needs it (deregister any AMI it backs "
        "first), or move it to the archive tier.",
        service="aws:ec2",
    ),
    REGION,
    severity=by_savings,
)
async def old_snapshots(ctx: SweepContext, region: str) -> list[Hit]:
    max_age = option(ctx, "snapshot_max_age_days")
    cutoff, table, hits = ctx.now - timedelta(days=max_age), prices(ctx), []
    for snap in (s for s in await own_snapshots(ctx, region) if s.started < cutoff):
        monthly = table.snapshot_monthly(snap.size_gib)
        source = f"of {snap.volume_id}" if snap.volume_id else None
        label = labelled(snap.id, f"{snap.size_gib} GiB", source, snap.description[:60])
        evidence = (
            f"{label} is {(ctx.now - snap.started).days} days old (limit {max_age:g}) — "
            f"deleting it saves at most ≈ {usd(monthly)}/mo (an upper bound: snapshots are "
            "incremental, so it may hold less than its volume's size)"
        )
        arn = (await identity(ctx)).arn("ec2", region, f"snapshot/{snap.id}")
        cli = f"aws ec2 delete-snapshot --snapshot-id {snap.id} --region {region}"
        hits.append(Hit(arn, evidence, command=cli, savings=monthly))
    return hits


RULES: list[Rule] = [
    budget_forecast,
    daily_spike,
    cost_anomaly,
    idle_instances,
    unattached_volumes,
    unassociated_addresses,
    idle_load_balancers,
    old_snapshots,
]
