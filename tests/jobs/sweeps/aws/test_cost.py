"""The AWS cost rules against moto's server: one finding case and one clean case per rule.

moto 5.2 serves GetCostAndUsage from results queued through its API, but has no
GetCostForecast or GetAnomalies: `cost_explorer_extras` answers those from moto's own
response class (the rules still speak the real JSON protocol), and the tests without it show
what a sweep does when Cost Explorer cannot answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from moto.core.utils import iso_8601_datetime_with_milliseconds

from daemon.models import Finding
from jobs.base import CheckContext
from jobs.sweeps.aws import cost as aws_cost
from jobs.sweeps.aws.prices import DEFAULT_PRICES, price_table
from jobs.sweeps.base import AwsScope, CollectError, SweepContext
from tests.peers.aws import ACCOUNT, REGION, Aws, restricted_user

pytest_plugins = ["tests.peers.aws_fixtures"]

CE_NOW = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)
"""Cost Explorer tests: moto does not care about dates, so a fixed day in March 2026."""
EC2 = "Amazon Elastic Compute Cloud - Compute"


@pytest.fixture(autouse=True)
def _no_default_amis(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto otherwise gives every account ~1,300 snapshots "owned by self" behind its AMIs."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


def sweep(ctx: CheckContext, now: datetime | None = None, **options: Any) -> SweepContext:
    return SweepContext(
        check=ctx,
        now=now or datetime.now(UTC),
        aws=AwsScope(regions=(REGION,)),
        options=options,
        timeout_s=5,
    )


async def evaluate(rule: Any, ctx: CheckContext, **kwargs: Any) -> list[Finding]:
    found: list[Finding] = await rule.evaluate(sweep(ctx, **kwargs))
    return found


# Cost Explorer


def queue_costs(aws: Aws, *results: dict[str, Any]) -> None:
    """Each result answers one distinct GetCostAndUsage request, in order."""
    url = f"{aws.endpoint}/moto-api/static/ce/cost-and-usage-results"
    httpx.post(url, json={"results": list(results)}).raise_for_status()


def by_service(*periods: tuple[str, str, dict[str, float]]) -> dict[str, Any]:
    """A GetCostAndUsage answer grouped by SERVICE, as AWS sends it."""
    rows = [
        {
            "TimePeriod": {"Start": start, "End": end},
            "Total": {},
            "Groups": [
                {"Keys": [name], "Metrics": {"UnblendedCost": {"Amount": str(c), "Unit": "USD"}}}
                for name, c in costs.items()
            ],
            "Estimated": True,
        }
        for start, end, costs in periods
    ]
    return {"GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}], "ResultsByTime": rows}


@dataclass
class CostExplorerExtras:
    forecast: float = 0.0
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def cost_explorer_extras(monkeypatch: pytest.MonkeyPatch) -> CostExplorerExtras:
    """GetCostForecast and GetAnomalies for moto's CE, answering what the test sets."""
    from moto.ce.responses import CostExplorerResponse

    extras = CostExplorerExtras()

    def get_cost_forecast(self: Any) -> str:
        params = json.loads(self.body)
        extras.requests.append(("GetCostForecast", params))
        amount = {"Amount": f"{extras.forecast}", "Unit": "USD"}
        rows = [{"TimePeriod": params["TimePeriod"], "MeanValue": amount["Amount"]}]
        return json.dumps({"Total": amount, "ForecastResultsByTime": rows})

    def get_anomalies(self: Any) -> str:
        extras.requests.append(("GetAnomalies", json.loads(self.body)))
        return json.dumps({"Anomalies": extras.anomalies})

    for name, method in (
        ("get_cost_forecast", get_cost_forecast),
        ("get_anomalies", get_anomalies),
    ):
        monkeypatch.setattr(CostExplorerResponse, name, method, raising=False)
    return extras


MARCH_TO_DATE = by_service(
    ("2026-03-01", "2026-03-15", {EC2: 600.0, "Amazon RDS": 300.0, "Amazon S3": 100.0})
)


@pytest.mark.parametrize(
    ("budget", "severity", "share"), [(2000, "high", 115), (2200, "medium", 105)]
)
async def test_forecast_over_budget_is_a_finding(
    aws: Aws,
    ctx: CheckContext,
    cost_explorer_extras: CostExplorerExtras,
    budget: float,
    severity: str,
    share: int,
) -> None:
    queue_costs(aws, MARCH_TO_DATE)
    cost_explorer_extras.forecast = 1300.0
    rule = aws_cost.budget_forecast
    [found] = await evaluate(rule, ctx, now=CE_NOW, cloud_monthly_usd=budget)
    # $1,000 spent 1-14 March + $1,300 forecast for 15-31 March = $2,300;
    # 2300 / 2000 = 115 % (> 110 %: high); 2300 / 2200 = 104.5 % (> 100 %: medium).
    assert found.evidence == (
        f"forecast $2,300.00 exceeds the cloud budget ${budget:,.2f} ({share}%) for March 2026: "
        "$1,000.00 spent before 2026-03-15 (top: Amazon Elastic Compute Cloud - Compute "
        "$600.00, Amazon RDS $300.00, Amazon S3 $100.00); Cost Explorer forecast"
    )
    assert (found.severity, found.resource, found.location) == (severity, ACCOUNT, "global")
    assert found.est_monthly_savings_usd is None
    [(_, asked)] = cost_explorer_extras.requests
    assert asked["TimePeriod"] == {"Start": "2026-03-15", "End": "2026-04-01"}


async def test_forecast_within_budget_is_no_finding(
    aws: Aws, ctx: CheckContext, cost_explorer_extras: CostExplorerExtras
) -> None:
    queue_costs(aws, MARCH_TO_DATE)
    cost_explorer_extras.forecast = 1300.0
    assert await evaluate(aws_cost.budget_forecast, ctx, now=CE_NOW, cloud_monthly_usd=2500) == []


async def test_without_a_budget_cost_explorer_is_not_asked(
    aws: Aws, ctx: CheckContext, cost_explorer_extras: CostExplorerExtras
) -> None:
    assert await evaluate(aws_cost.budget_forecast, ctx, now=CE_NOW) == []
    assert cost_explorer_extras.requests == []


async def test_without_a_forecast_month_to_date_is_projected_linearly(
    aws: Aws, ctx: CheckContext
) -> None:
    queue_costs(aws, MARCH_TO_DATE)  # and moto has no GetCostForecast
    rule = aws_cost.budget_forecast
    [found] = await evaluate(rule, ctx, now=CE_NOW, cloud_monthly_usd=2000)
    # $1,000 over the 14 full days before 15 March, x 31 days / 14 = $2,214.29 (111 %: high).
    assert found.evidence.startswith(
        "forecast $2,214.29 exceeds the cloud budget $2,000.00 (111%) for March 2026"
    )
    assert (
        "; linear projection of month to date, because Cost Explorer forecast unavailable: "
        "ce:GetCostForecast failed: 500" in found.evidence
    )
    assert found.severity == "high"


DAILY = (("2026-03-13", "2026-03-14"), ("2026-03-14", "2026-03-15"))


async def test_day_over_day_spike_in_percent_and_dollars_is_a_finding(
    aws: Aws, ctx: CheckContext
) -> None:
    before = {EC2: 100.0, "Amazon S3": 10.0, "Amazon RDS": 1000.0}
    last = {EC2: 250.0, "Amazon S3": 40.0, "Amazon RDS": 1100.0, "AWS Lambda": 80.0}
    queue_costs(aws, by_service((*DAILY[0], before), (*DAILY[1], last)))
    found = await evaluate(aws_cost.daily_spike, ctx, now=CE_NOW)
    # EC2 +$150 (+150 %) and Lambda +$80 (new) pass both bars (30 % and $50);
    # S3 +$30 (+300 %) is too few dollars; RDS +$100 (+10 %) too small a share.
    assert [f.evidence for f in found] == [
        "AWS Lambda cost $80.00 on 2026-03-14, up $80.00 (new) from $0.00 on 2026-03-13 "
        "(thresholds: 30% and $50.00)",
        f"{EC2} cost $250.00 on 2026-03-14, up $150.00 (+150%) from $100.00 on 2026-03-13 "
        "(thresholds: 30% and $50.00)",
    ]
    assert found[1].resource == f"{ACCOUNT}:service/{EC2}"
    assert found[1].severity == "medium"


async def test_rise_under_the_dollar_threshold_is_no_spike(aws: Aws, ctx: CheckContext) -> None:
    queue_costs(aws, by_service((*DAILY[0], {EC2: 100.0}), (*DAILY[1], {EC2: 250.0})))
    assert await evaluate(aws_cost.daily_spike, ctx, now=CE_NOW, spike_usd=200) == []


def anomaly(anomaly_id: str, impact: float, actual: float) -> dict[str, Any]:
    return {
        "AnomalyId": anomaly_id,
        "AnomalyStartDate": "2026-03-10",
        "AnomalyEndDate": "2026-03-12",
        "DimensionValue": "AmazonEC2",
        "RootCauses": [
            {"Service": "AmazonEC2", "Region": "us-east-1", "UsageType": "BoxUsage:p4d.24xlarge"}
        ],
        "AnomalyScore": {"MaxScore": 0.9, "CurrentScore": 0.4},
        "Impact": {
            "MaxImpact": impact / 2,
            "TotalImpact": impact,
            "TotalActualSpend": actual,
            "TotalExpectedSpend": actual - impact,
        },
        "MonitorArn": f"arn:aws:ce::{ACCOUNT}:anomalymonitor/services",
    }


async def test_each_anomaly_is_a_finding_with_its_impact(
    aws: Aws, ctx: CheckContext, cost_explorer_extras: CostExplorerExtras
) -> None:
    cost_explorer_extras.anomalies = [anomaly("a-1", 1500.0, 1800.0), anomaly("a-2", 120.0, 200.0)]
    big, small = await evaluate(aws_cost.cost_anomaly, ctx, now=CE_NOW)
    assert big.evidence == (
        "anomaly from 2026-03-10 to 2026-03-12: $1,500.00 above expected ($1,800.00 spent "
        "where $300.00 was expected); root cause: AmazonEC2 in us-east-1, usage type "
        "BoxUsage:p4d.24xlarge"
    )
    assert (big.severity, small.severity) == ("high", "medium")
    assert big.resource == f"{ACCOUNT}:anomaly/a-1"
    [(_, asked)] = cost_explorer_extras.requests
    assert asked["DateInterval"] == {"StartDate": "2026-03-08", "EndDate": "2026-03-15"}


async def test_no_anomaly_is_no_finding(
    aws: Aws, ctx: CheckContext, cost_explorer_extras: CostExplorerExtras
) -> None:
    assert await evaluate(aws_cost.cost_anomaly, ctx, now=CE_NOW) == []


async def test_anomalies_unavailable_is_a_collect_error(aws: Aws, ctx: CheckContext) -> None:
    with pytest.raises(CollectError, match=r"^Cost Anomaly Detection unavailable: ce:GetAnomalies"):
        await evaluate(aws_cost.cost_anomaly, ctx, now=CE_NOW)


# Idle resources


def midnight() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def launch(aws: Aws, instance_type: str, name: str) -> str:
    ec2 = aws.client("ec2")
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}]
    reservation = ec2.run_instances(
        ImageId="ami-12345678",
        InstanceType=instance_type,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=tags,
    )
    instance_id: str = reservation["Instances"][0]["InstanceId"]
    return instance_id


def put_daily(
    aws: Aws, namespace: str, metric: str, dimension: tuple[str, str], days: list[list[float]]
) -> None:
    """`days[0]` is yesterday's datapoints (from noon, a minute apart), `days[1]` the day
    before, and so on."""
    data = [
        {
            "MetricName": metric,
            "Dimensions": [{"Name": dimension[0], "Value": dimension[1]}],
            "Value": value,
            "Timestamp": midnight() - timedelta(days=ago + 1) + timedelta(hours=12, minutes=i),
        }
        for ago, values in enumerate(days)
        for i, value in enumerate(values)
    ]
    aws.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=data)


def put_cpu(aws: Aws, instance_id: str, days: list[list[float]]) -> None:
    put_daily(aws, "AWS/EC2", "CPUUtilization", ("InstanceId", instance_id), days)


# 13 days at 1.0 and 3.2 % (average 2.1) and one at 9.8, 0, 0, 0 and 0.7 % (average 2.1).
IDLE_CPU = [[1.0, 3.2]] * 13 + [[9.8, 0.0, 0.0, 0.0, 0.7]]


async def test_idle_instance_is_a_finding_with_its_hourly_price_as_saving(
    aws: Aws, ctx: CheckContext
) -> None:
    idle, busy = launch(aws, "m5.large", "web-7"), launch(aws, "m5.large", "api-1")
    put_cpu(aws, idle, IDLE_CPU)
    put_cpu(aws, busy, [[35.0, 45.0]] * 14)
    [found] = await evaluate(aws_cost.idle_instances, ctx)
    # m5.large: $0.096/h x 730 h = $70.08/mo (under $100: low).
    assert found.evidence == (
        f"{idle} (m5.large, web-7) averaged 2.1% CPU (max 9.8%) over 14 days — "
        "stopping it saves ≈ $70.08/mo"
    )
    assert found.est_monthly_savings_usd == 70.08
    assert found.severity == "low"
    assert found.resource == f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{idle}"
    assert (
        found.remediation_cli == f"aws ec2 stop-instances --instance-ids {idle} --region {REGION}"
    )


async def test_busy_or_new_instance_is_no_finding(aws: Aws, ctx: CheckContext) -> None:
    busy, new = launch(aws, "m5.large", "api-1"), launch(aws, "m5.large", "new-1")
    put_cpu(aws, busy, [[1.0, 3.2]] * 13 + [[20.0]])  # one peak over 15 %
    put_cpu(aws, new, [[1.0]] * 5)  # 5 days of data: too new to judge over 14
    assert await evaluate(aws_cost.idle_instances, ctx) == []


async def test_unknown_instance_price_is_none_until_overridden(aws: Aws, ctx: CheckContext) -> None:
    idle = launch(aws, "x1e.32xlarge", "sap-1")
    put_cpu(aws, idle, IDLE_CPU)
    [found] = await evaluate(aws_cost.idle_instances, ctx)
    assert found.est_monthly_savings_usd is None
    assert found.evidence.endswith(
        "— price unknown for instance type x1e.32xlarge; add it under [[sweeps]] prices.ec2_hourly"
    )
    prices = {"ec2_hourly": {"x1e.32xlarge": 26.688}}
    [found] = await evaluate(aws_cost.idle_instances, ctx, prices=prices)
    # $26.688/h x 730 h = $19,482.24/mo (≥ $1,000: high).
    assert (found.est_monthly_savings_usd, found.severity) == (19482.24, "high")


async def test_unattached_volumes_are_findings_priced_by_size_and_iops(
    aws: Aws, ctx: CheckContext
) -> None:
    ec2 = aws.client("ec2")
    zone = f"{REGION}a"
    gp3 = ec2.create_volume(AvailabilityZone=zone, Size=100, VolumeType="gp3")["VolumeId"]
    io1 = ec2.create_volume(AvailabilityZone=zone, Size=500, VolumeType="io1", Iops=4000)
    attached = ec2.create_volume(AvailabilityZone=zone, Size=50, VolumeType="gp2")["VolumeId"]
    ec2.attach_volume(
        VolumeId=attached, InstanceId=launch(aws, "t3.micro", "db"), Device="/dev/sdf"
    )
    found = {
        f.resource.rsplit("/", 1)[1]: f for f in await evaluate(aws_cost.unattached_volumes, ctx)
    }
    assert set(found) == {gp3, io1["VolumeId"]}  # not the attached one, nor the root volume
    # gp3: 100 GiB x $0.08 = $8.00/mo (low).
    created = datetime.now(UTC).date().isoformat()
    assert found[gp3].evidence == (
        f"{gp3} (gp3, 100 GiB) is not attached to any instance (created {created}) — "
        "deleting it saves ≈ $8.00/mo"
    )
    assert (found[gp3].est_monthly_savings_usd, found[gp3].severity) == (8.0, "low")
    # io1: 500 GiB x $0.125 + 4,000 IOPS x $0.065 = $62.50 + $260.00 = $322.50/mo (medium).
    io1_found = found[io1["VolumeId"]]
    assert "(io1, 500 GiB, 4000 IOPS)" in io1_found.evidence
    assert (io1_found.est_monthly_savings_usd, io1_found.severity) == (322.5, "medium")


async def test_attached_volumes_are_no_finding(aws: Aws, ctx: CheckContext) -> None:
    launch(aws, "t3.micro", "db")  # its root volume is in use
    assert await evaluate(aws_cost.unattached_volumes, ctx) == []


async def test_unassociated_elastic_ip_is_a_finding(aws: Aws, ctx: CheckContext) -> None:
    ec2 = aws.client("ec2")
    free = ec2.allocate_address(Domain="vpc")
    used = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(
        AllocationId=used["AllocationId"], InstanceId=launch(aws, "t3.micro", "a")
    )
    [found] = await evaluate(aws_cost.unassociated_addresses, ctx)
    # $0.005/h x 730 h = $3.65/mo.
    assert found.evidence == (
        f"Elastic IP {free['PublicIp']} ({free['AllocationId']}) is not associated with any "
        "instance or network interface — releasing it saves ≈ $3.65/mo"
    )
    assert found.est_monthly_savings_usd == 3.65
    assert found.resource == f"arn:aws:ec2:{REGION}:{ACCOUNT}:elastic-ip/{free['AllocationId']}"


async def test_associated_elastic_ip_is_no_finding(aws: Aws, ctx: CheckContext) -> None:
    ec2 = aws.client("ec2")
    used = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(
        AllocationId=used["AllocationId"], InstanceId=launch(aws, "t3.micro", "a")
    )
    assert await evaluate(aws_cost.unassociated_addresses, ctx) == []


@dataclass
class Lb:
    arn: str
    dimension: str


def load_balancer(aws: Aws, name: str, target: str | None, age_days: int = 30) -> Lb:
    """An ALB forwarding to one target group (holding `target` if given), `age_days` old."""
    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")
        for i, z in enumerate("ab")
    ]
    lb = elbv2.create_load_balancer(
        Name=name, Subnets=[s["Subnet"]["SubnetId"] for s in subnets], Type="application"
    )["LoadBalancers"][0]
    group = elbv2.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=80, VpcId=vpc)
    group_arn = group["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group_arn}],
    )
    if target:
        elbv2.register_targets(TargetGroupArn=group_arn, Targets=[{"Id": target, "Port": 80}])
    # moto stamps CreatedTime "now", and its API cannot backdate a load balancer.
    created = datetime.now(UTC) - timedelta(days=age_days)
    model = aws.backend("elbv2").load_balancers[lb["LoadBalancerArn"]]
    model.created_time = iso_8601_datetime_with_milliseconds(created)
    return Lb(lb["LoadBalancerArn"], lb["LoadBalancerArn"].split(":loadbalancer/")[1])


def put_requests(aws: Aws, lb: Lb, per_day: float) -> None:
    put_daily(
        aws, "AWS/ApplicationELB", "RequestCount", ("LoadBalancer", lb.dimension), [[per_day]] * 7
    )


async def test_load_balancer_without_healthy_targets_is_a_finding(
    aws: Aws, ctx: CheckContext
) -> None:
    lb = load_balancer(aws, "orphan", target=None)
    [found] = await evaluate(aws_cost.idle_load_balancers, ctx)
    # $0.0225/h x 730 h = $16.425 → $16.43/mo.
    assert found.evidence == (
        "ALB orphan has no healthy target in its 1 target group — deleting it saves ≈ $16.43/mo"
    )
    assert (found.resource, found.est_monthly_savings_usd) == (lb.arn, 16.43)


async def test_load_balancer_with_little_traffic_is_a_finding(aws: Aws, ctx: CheckContext) -> None:
    lb = load_balancer(aws, "quiet", target=launch(aws, "t3.micro", "web"))
    put_requests(aws, lb, 50)
    [found] = await evaluate(aws_cost.idle_load_balancers, ctx)
    # 7 days x 50 requests / 7 = 50 requests/day, under 100.
    assert found.evidence == (
        "ALB quiet handled 50.0 requests/day on average over the last 7 days (fewer than "
        "100) — deleting it saves ≈ $16.43/mo"
    )


async def test_busy_or_new_load_balancer_is_no_finding(aws: Aws, ctx: CheckContext) -> None:
    busy = load_balancer(aws, "busy", target=launch(aws, "t3.micro", "web"))
    put_requests(aws, busy, 5000)
    load_balancer(aws, "new", target=launch(aws, "t3.micro", "web2"), age_days=2)  # no traffic
    assert await evaluate(aws_cost.idle_load_balancers, ctx) == []


def snapshot(aws: Aws, size: int, age_days: int) -> str:
    ec2 = aws.client("ec2")
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=size)["VolumeId"]
    snapshot_id: str = ec2.create_snapshot(VolumeId=volume, Description="nightly")["SnapshotId"]
    # moto stamps StartTime "now", and its API cannot backdate a snapshot.
    model = aws.backend("ec2").snapshots[snapshot_id]
    model.start_time = datetime.now(UTC) - timedelta(days=age_days)
    return snapshot_id


async def test_old_snapshot_is_a_finding_with_an_upper_bound_saving(
    aws: Aws, ctx: CheckContext
) -> None:
    old = snapshot(aws, 100, age_days=120)
    snapshot(aws, 100, age_days=10)
    [found] = await evaluate(aws_cost.old_snapshots, ctx)
    # 100 GiB x $0.05 = $5.00/mo, at most.
    assert found.evidence.startswith(f"{old} (100 GiB, of vol-")
    assert found.evidence.endswith(
        ", nightly) is 120 days old (limit 90) — deleting it saves at most ≈ $5.00/mo (an "
        "upper bound: snapshots are incremental, so it may hold less than its volume's size)"
    )
    assert (found.est_monthly_savings_usd, found.severity) == (5.0, "low")


async def test_recent_snapshot_is_no_finding(aws: Aws, ctx: CheckContext) -> None:
    snapshot(aws, 100, age_days=120)
    assert await evaluate(aws_cost.old_snapshots, ctx, snapshot_max_age_days=180) == []


# Failure paths, prices and imports


async def test_denied_inventory_is_a_collect_error_naming_the_action(
    aws: Aws, ctx: CheckContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    restricted_user(aws, monkeypatch, allow=["sts:GetCallerIdentity"])
    with pytest.raises(
        CollectError, match=rf"^EBS volumes unavailable in {REGION}: \w+ on ec2:DescribeVolumes"
    ):
        await evaluate(aws_cost.unattached_volumes, ctx)


def test_price_overrides_merge_over_the_table() -> None:
    table = price_table({"ec2_hourly": {"m5.large": 0.1}, "snapshot_gib_month": 0.0125})
    assert table.ec2_hourly["m5.large"] == 0.1
    assert table.ec2_hourly["c5.large"] == DEFAULT_PRICES.ec2_hourly["c5.large"]
    assert table.snapshot_monthly(100) == 1.25  # 100 GiB x $0.0125
    # gp3 beyond its free 3,000 IOPS and 125 MiB/s: 100 x 0.08 + 3,000 x 0.005 + 125 x 0.04.
    assert DEFAULT_PRICES.volume_monthly("gp3", 100, 6000, 250) == pytest.approx(28.0)
    assert DEFAULT_PRICES.volume_monthly("gp9", 100, None, None) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ec2": {}}, "prices.ec2 is not a price this sweep knows"),
        ({"ec2_hourly": 0.1}, "prices.ec2_hourly must be a table"),
        ({"ec2_hourly": {"m5.large": "cheap"}}, "prices.ec2_hourly.m5.large must be a price"),
    ],
)
def test_bad_price_overrides_say_what_is_wrong(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        price_table(overrides)


def test_importing_the_rules_does_not_import_boto3() -> None:
    code = (
        "import sys, jobs.sweeps.aws.cost as m; "
        "assert len(m.RULES) == 8; "
        "assert not {'boto3', 'botocore'} & set(sys.modules), 'boto3 imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
