"""AWS cost rules for idle databases and NAT gateways, read from CloudWatch over `idle_days` as
the idle EC2 and ElastiCache rules are. Each says what deleting it saves per month, priced from
`prices.py`; severity follows the saving (`by_savings`).

- An RDS instance is idle when its `DatabaseConnections` maximum was 0 on every day CloudWatch
  has: not one client connected. The saving is its instance hours (twice for Multi-AZ, whose
  standby is billed too); its storage, IOPS and backups are billed apart and not counted, so the
  figure errs low.
- A NAT gateway is idle when `BytesOutToDestination` + `BytesInFromSource` (what its clients
  sent out and what came back) stay under `nat_min_mib_per_day` a day on average. The saving is
  its hourly charge; the per-GB processing charge of so little traffic is left out.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from daemon.models import Severity
from jobs.sweeps.aws.collect import daily_metrics, db_instances, identity
from jobs.sweeps.aws.collect_edge import nat_gateways
from jobs.sweeps.aws.cost import labelled, midnight, option, prices
from jobs.sweeps.aws.cost_services import enough
from jobs.sweeps.aws.prices import saves, usd
from jobs.sweeps.aws.resources import Series
from jobs.sweeps.aws.rule import REGION
from jobs.sweeps.base import Rule, RuleMeta, SweepContext
from jobs.sweeps.rule import Hit, by_savings, rule

MIB = 1024**2
NAT_BYTES = ("BytesOutToDestination", "BytesInFromSource")


@rule(
    RuleMeta(
        id="aws.rds.idle",
        title="RDS instance has had no connections",
        kind="cost",
        severity=Severity.LOW,
        risk="A database instance is billed by the hour whether or not anything connects.",
        remediation="Delete it with a final snapshot if nothing uses it any more (a snapshot "
        "costs far less and can be restored); stopping it only lasts seven days.",
        service="aws:rds",
    ),
    REGION,
    severity=by_savings,
)
async def idle_databases(ctx: SweepContext, region: str) -> list[Hit]:
    days = max(1, int(option(ctx, "idle_days")))
    end, table, hits = midnight(ctx.now), prices(ctx), []
    found = [d for d in await db_instances(ctx, region) if d.get("DBInstanceStatus") == "available"]
    series = [
        Series(
            d["DBInstanceIdentifier"],
            "AWS/RDS",
            "DatabaseConnections",
            ("DBInstanceIdentifier", str(d["DBInstanceIdentifier"])),
            "Maximum",
        )
        for d in found
    ]
    start = end - timedelta(days=days)
    data = await daily_metrics(ctx, region, "RDS connections", series, start, end)
    for db in found:
        name = str(db["DBInstanceIdentifier"])
        peaks = data.get(name, [])
        if not enough(len(peaks), days) or max(peaks) > 0:
            continue
        engine, db_class = str(db.get("Engine", "")), str(db.get("DBInstanceClass", ""))
        multi_az = bool(db.get("MultiAZ"))
        monthly = table.rds_monthly(engine, db_class, multi_az)
        unknown = db_class if engine in ("mysql", "mariadb", "postgres") else f"{engine}:{db_class}"
        fix = saves(monthly, "deleting it", ("instance class", unknown, "rds_instance_hourly"))
        storage = db.get("AllocatedStorage")
        evidence = (
            f"RDS instance {_described(name, engine, db_class, multi_az, db)} had no connection "
            f"in {days} days (DatabaseConnections maximum 0 on each of the {len(peaks)} days "
            f"with data) — {fix} "
            f"(instance hours only; its {f'{storage} GiB of ' if storage else ''}storage and "
            "backups are billed on top)"
        )
        hits.append(
            Hit(db["DBInstanceArn"], evidence, command=_delete(db, region), savings=monthly)
        )
    return hits


def _described(name: str, engine: str, db_class: str, multi_az: bool, db: dict[str, Any]) -> str:
    cluster = db.get("DBClusterIdentifier")
    return labelled(
        name, engine, db_class, "Multi-AZ" if multi_az else None, cluster and f"cluster {cluster}"
    )


def _delete(db: dict[str, Any], region: str) -> str:
    """Aurora members have no snapshot of their own (the cluster keeps the data)."""
    name = db["DBInstanceIdentifier"]
    keep = "" if db.get("DBClusterIdentifier") else f" --final-db-snapshot-identifier {name}-final"
    return f"aws rds delete-db-instance --db-instance-identifier {name}{keep} --region {region}"


@rule(
    RuleMeta(
        id="aws.nat.idle",
        title="NAT gateway carries almost no traffic",
        kind="cost",
        severity=Severity.LOW,
        risk="A NAT gateway is billed by the hour whether or not anything sends traffic "
        "through it.",
        remediation="Delete it if the private subnets routed to it no longer reach out (remove "
        "the route first), then release its Elastic IP; or share one NAT gateway per VPC "
        "where per-zone redundancy is not needed.",
        service="aws:ec2",
    ),
    REGION,
    severity=by_savings,
)
async def idle_nat_gateways(ctx: SweepContext, region: str) -> list[Hit]:
    floor, days = option(ctx, "nat_min_mib_per_day"), max(1, int(option(ctx, "idle_days")))
    end, monthly, hits = midnight(ctx.now), prices(ctx).nat_monthly(), []
    gateways = await nat_gateways(ctx, region)
    series = [
        Series(
            f"{g['NatGatewayId']}/{m}",
            "AWS/NATGateway",
            m,
            ("NatGatewayId", g["NatGatewayId"]),
            "Sum",
        )
        for g in gateways
        for m in NAT_BYTES
    ]
    start = end - timedelta(days=days)
    data = await daily_metrics(ctx, region, "NAT gateway bytes", series, start, end)
    for gateway in gateways:
        nat = str(gateway["NatGatewayId"])
        daily = [data.get(f"{nat}/{m}", []) for m in NAT_BYTES]
        if not enough(max(len(d) for d in daily), days):
            continue
        per_day = sum(sum(d) for d in daily) / days / MIB
        if per_day >= floor:
            continue
        public = [
            a["PublicIp"] for a in gateway.get("NatGatewayAddresses", []) if a.get("PublicIp")
        ]
        evidence = (
            f"NAT gateway {labelled(nat, gateway.get('VpcId'), gateway.get('SubnetId'))} moved "
            f"{per_day:.2f} MiB a day on average over {days} days (less than {floor:g} MiB, "
            f"{' + '.join(NAT_BYTES)}) — deleting it saves ≈ {usd(monthly)}/mo"
            + (f", and releasing its Elastic IP {', '.join(public)} more" if public else "")
        )
        arn = (await identity(ctx)).arn("ec2", region, f"natgateway/{nat}")
        cli = f"aws ec2 delete-nat-gateway --nat-gateway-id {nat} --region {region}"
        hits.append(Hit(arn, evidence, command=cli, savings=monthly))
    return hits


RULES: list[Rule] = [idle_databases, idle_nat_gateways]
