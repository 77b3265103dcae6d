"""Idle RDS instances and NAT gateways against moto's server: a finding case priced from
prices.py and a clean case per rule. moto publishes no RDS or NAT gateway metrics of its own,
so the tests put the daily datapoints AWS would publish through CloudWatch's real API."""

from __future__ import annotations

from daemon.models import Finding
from jobs.base import CheckContext
from jobs.sweeps.aws import cost_idle as rules
from tests.jobs.sweeps.aws.test_cost import evaluate
from tests.jobs.sweeps.aws.test_cost_services import put_days
from tests.peers.aws import ACCOUNT, REGION, Aws

pytest_plugins = ["tests.peers.aws_fixtures"]

MIB = 1024**2


def database(aws: Aws, name: str, db_class: str = "db.m5.large", **more: object) -> str:
    made = aws.client("rds").create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass=db_class,
        Engine=str(more.pop("Engine", "postgres")),
        AllocatedStorage=100,
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        **more,
    )
    arn: str = made["DBInstance"]["DBInstanceArn"]
    return arn


def connections(aws: Aws, name: str, peaks: list[float]) -> None:
    put_days(aws, "AWS/RDS", "DatabaseConnections", {"DBInstanceIdentifier": name}, peaks)


async def evaluate_rds(ctx: CheckContext) -> list[Finding]:
    return await evaluate(rules.idle_databases, ctx)


async def test_a_database_nobody_connected_to_saves_its_instance_hours(
    aws: Aws, ctx: CheckContext
) -> None:
    idle = database(aws, "reports-old", MultiAZ=True)
    database(aws, "orders")
    connections(aws, "reports-old", [0] * 14)
    connections(aws, "orders", [0] * 13 + [3])  # one client, once, two weeks ago: in use
    unpriced = database(
        aws, "erp", "db.r5.large", Engine="oracle-ee", LicenseModel="bring-your-own-license"
    )
    connections(aws, "erp", [0] * 14)
    found = {f.resource: f for f in await evaluate_rds(ctx)}
    assert set(found) == {idle, unpriced}
    # db.m5.large $0.171/h, Multi-AZ (a standby billed too): 2 x $0.171 x 730 = $249.66/mo.
    assert (found[idle].est_monthly_savings_usd, found[idle].severity) == (249.66, "medium")
    assert found[idle].evidence == (
        "RDS instance reports-old (postgres, db.m5.large, Multi-AZ) had no connection "
        "in 14 days (DatabaseConnections maximum 0 on each of the 14 days with data) — deleting "
        "it saves "
        "≈ $249.66/mo (instance hours only; its 100 GiB of storage and backups are billed on top)"
    )
    assert found[idle].remediation_cli == (
        "aws rds delete-db-instance --db-instance-identifier reports-old "
        f"--final-db-snapshot-identifier reports-old-final --region {REGION}"
    )
    # Oracle is not priced by the bare class: the finding says which key to add.
    assert found[unpriced].est_monthly_savings_usd is None
    assert (
        "price unknown for instance class oracle-ee:db.r5.large; add it under [[sweeps]] "
        "prices.rds_instance_hourly" in found[unpriced].evidence
    )
    # ...and once the site adds it, that price is used ($0.466/h x 730 = $340.18/mo).
    oracle = {"rds_instance_hourly": {"oracle-ee:db.r5.large": 0.466}}
    priced = {f.resource: f for f in await evaluate(rules.idle_databases, ctx, prices=oracle)}
    assert priced[unpriced].est_monthly_savings_usd == 0.466 * 730


async def test_a_database_in_use_or_too_new_to_judge_is_no_finding(
    aws: Aws, ctx: CheckContext
) -> None:
    database(aws, "orders")
    database(aws, "fresh")
    connections(aws, "orders", [12, 30, 25] * 5)
    connections(aws, "fresh", [0] * 3)  # created three days ago: not judged yet
    assert await evaluate_rds(ctx) == []


# -- NAT gateways ----------------------------------------------------------------------------


def nat_gateway(aws: Aws) -> tuple[str, str]:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.8.1.0/24")["Subnet"]["SubnetId"]
    eip = ec2.allocate_address(Domain="vpc")
    made = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip["AllocationId"])
    nat: str = made["NatGateway"]["NatGatewayId"]
    return nat, eip["PublicIp"]


def traffic(aws: Aws, nat: str, out_mib: float, back_mib: float) -> None:
    for metric, mib in (("BytesOutToDestination", out_mib), ("BytesInFromSource", back_mib)):
        put_days(aws, "AWS/NATGateway", metric, {"NatGatewayId": nat}, [mib * MIB] * 14)


async def test_a_nat_gateway_with_almost_no_traffic_saves_its_hourly_charge(
    aws: Aws, ctx: CheckContext
) -> None:
    (idle, ip), (busy, _) = nat_gateway(aws), nat_gateway(aws)
    traffic(aws, idle, 1.5, 0.5)  # health checks and NTP: 2 MiB a day
    traffic(aws, busy, 800, 4000)
    [found] = await evaluate(rules.idle_nat_gateways, ctx)
    # $0.045/h x 730 h = $32.85/mo (low).
    assert found.resource == f"arn:aws:ec2:{REGION}:{ACCOUNT}:natgateway/{idle}"
    assert (found.est_monthly_savings_usd, found.severity) == (32.85, "low")
    assert f"NAT gateway {idle} (vpc-" in found.evidence
    assert found.evidence.endswith(
        "moved 2.00 MiB a day on average over 14 days (less than 10 MiB, BytesOutToDestination "
        f"+ BytesInFromSource) — deleting it saves ≈ $32.85/mo, and releasing its Elastic IP "
        f"{ip} more"
    )
    assert found.remediation_cli == (
        f"aws ec2 delete-nat-gateway --nat-gateway-id {idle} --region {REGION}"
    )


async def test_a_nat_gateway_over_the_threshold_is_no_finding(aws: Aws, ctx: CheckContext) -> None:
    nat, _ = nat_gateway(aws)
    traffic(aws, nat, 1.5, 0.5)
    assert await evaluate(rules.idle_nat_gateways, ctx, nat_min_mib_per_day=1) == []
