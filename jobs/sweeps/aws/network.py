"""Network reachability for "exposed" findings: a public flag is not a path. A resource is
reachable from the internet only when (1) it has a public address or flag, (2) one of its
security groups admits the port from anywhere, (3) one of its subnets' route tables sends
`0.0.0.0/0` or `::/0` to an internet gateway (the VPC's main table when the subnet has no table
of its own), and (4) that subnet's network ACL lets the port in from anywhere.

`exposure()` judges (2)-(4) and says which link holds and which is missing, so evidence names
the path ("security group sg-1 (db) allows port 5432 from 0.0.0.0/0; subnet-1 routes 0.0.0.0/0
to igw-1 (rtb-1)"). Severity: critical with the whole path; high when only the security group
is closed (one rule away) or a link could not be read; medium when no subnet routes to an
internet gateway or its network ACL denies the port: public on paper, unreachable as it stands.

The datasets (route tables, network ACLs, Redshift subnet groups) come through `collect`'s
plumbing; the functions that read them are pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from daemon.models import Severity
from jobs.sweeps.aws.collect import Data, aws_api, dataset, listed, security_groups
from jobs.sweeps.base import CollectError, SweepContext

INTERNET = ("0.0.0.0/0", "::/0")


# --- datasets ------------------------------------------------------------------------------


async def route_tables(ctx: SweepContext, region: str) -> Data:
    async def fetch() -> Data:
        return await listed(aws_api(ctx, region), "ec2", "describe_route_tables", "RouteTables")

    return await dataset(ctx, f"{region}:ec2:route_tables", fetch)


async def network_acls(ctx: SweepContext, region: str) -> Data:
    async def fetch() -> Data:
        return await listed(aws_api(ctx, region), "ec2", "describe_network_acls", "NetworkAcls")

    return await dataset(ctx, f"{region}:ec2:network_acls", fetch)


async def db_subnets(ctx: SweepContext, region: str) -> dict[str, tuple[str, list[str]]]:
    """Each RDS DB subnet group's (VPC, subnet ids), by group name (clusters name theirs)."""

    async def fetch() -> dict[str, tuple[str, list[str]]]:
        api = aws_api(ctx, region)
        groups = await listed(api, "rds", "describe_db_subnet_groups", "DBSubnetGroups")
        return {
            g["DBSubnetGroupName"]: (
                g.get("VpcId", ""),
                [s["SubnetIdentifier"] for s in g.get("Subnets", [])],
            )
            for g in groups
        }

    return await dataset(ctx, f"{region}:rds:subnet_groups", fetch)


async def redshift_subnets(ctx: SweepContext, region: str) -> dict[str, tuple[str, list[str]]]:
    """Each Redshift cluster subnet group's (VPC, subnet ids), by group name."""

    async def fetch() -> dict[str, tuple[str, list[str]]]:
        api = aws_api(ctx, region)
        groups = await listed(
            api, "redshift", "describe_cluster_subnet_groups", "ClusterSubnetGroups"
        )
        return {
            g["ClusterSubnetGroupName"]: (
                g.get("VpcId", ""),
                [s["SubnetIdentifier"] for s in g.get("Subnets", [])],
            )
            for g in groups
        }

    return await dataset(ctx, f"{region}:redshift:subnet_groups", fetch)


async def cache_subnets(ctx: SweepContext, region: str) -> dict[str, tuple[str, list[str]]]:
    """Each ElastiCache cache subnet group's (VPC, subnet ids), by group name."""

    async def fetch() -> dict[str, tuple[str, list[str]]]:
        api = aws_api(ctx, region)
        groups = await listed(
            api, "elasticache", "describe_cache_subnet_groups", "CacheSubnetGroups"
        )
        return {
            g["CacheSubnetGroupName"]: (
                g.get("VpcId", ""),
                [s["SubnetIdentifier"] for s in g.get("Subnets", [])],
            )
            for g in groups
        }

    return await dataset(ctx, f"{region}:elasticache:subnet_groups", fetch)


async def subnet_vpcs(ctx: SweepContext, region: str) -> dict[str, str]:
    """Each subnet's VPC, for the resources that name their subnets but not their VPC."""

    async def fetch() -> dict[str, str]:
        found = await listed(aws_api(ctx, region), "ec2", "describe_subnets", "Subnets")
        return {s["SubnetId"]: s.get("VpcId", "") for s in found}

    return await dataset(ctx, f"{region}:ec2:subnet_vpcs", fetch)


# --- pure judgements -----------------------------------------------------------------------


def internet_cidrs(permission: dict[str, Any]) -> list[str]:
    v4 = [r["CidrIp"] for r in permission.get("IpRanges", [])]
    v6 = [r["CidrIpv6"] for r in permission.get("Ipv6Ranges", [])]
    return [cidr for cidr in v4 + v6 if cidr in INTERNET]


def admits(permission: dict[str, Any], port: int) -> bool:
    if permission["IpProtocol"] == "-1":
        return True
    if permission["IpProtocol"] not in ("tcp", "6"):
        return False
    return int(permission["FromPort"]) <= port <= int(permission["ToPort"])


def table_of(subnet: str, vpc: str, tables: Data) -> tuple[dict[str, Any] | None, bool]:
    """The route table `subnet` uses, and whether it is the VPC's main table (the fallback for
    subnets with no table of their own)."""
    for table in tables:
        if any(a.get("SubnetId") == subnet for a in table.get("Associations", [])):
            return table, False
    for table in tables:
        if table.get("VpcId") == vpc and any(a.get("Main") for a in table.get("Associations", [])):
            return table, True
    return None, False


def gateway_route(table: dict[str, Any]) -> tuple[str, str] | None:
    """(destination, igw-…) of the table's active default route to an internet gateway."""
    for route in table.get("Routes", []):
        gateway = route.get("GatewayId") or ""
        destination = route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock")
        active = route.get("State", "active") == "active"
        if destination in INTERNET and gateway.startswith("igw-") and active:
            return destination, gateway
    return None


def acl_of(subnet: str, vpc: str, acls: Data) -> dict[str, Any] | None:
    """The network ACL of `subnet`: its association, else the VPC's default ACL."""
    for acl in acls:
        if any(a.get("SubnetId") == subnet for a in acl.get("Associations", [])):
            return acl
    return next((a for a in acls if a.get("VpcId") == vpc and a.get("IsDefault")), None)


def acl_admits(acl: dict[str, Any], port: int) -> tuple[bool, str]:
    """Whether the ACL lets TCP `port` in from anywhere: its first inbound entry (by number)
    whose source is the whole internet and that covers the port decides."""
    inbound = sorted(
        (e for e in acl.get("Entries", []) if not e.get("Egress")), key=lambda e: e["RuleNumber"]
    )
    for entry in inbound:
        source = entry.get("CidrBlock") or entry.get("Ipv6CidrBlock")
        if source not in INTERNET:
            continue
        protocol = str(entry.get("Protocol"))
        ports = entry.get("PortRange") or {}
        if protocol == "-1" or (
            protocol == "6" and int(ports.get("From", 0)) <= port <= int(ports.get("To", 65535))
        ):
            allowed = entry.get("RuleAction") == "allow"
            return allowed, f"rule {entry['RuleNumber']}: {entry.get('RuleAction')}"
    return False, "no rule admits it"


@dataclass(frozen=True)
class Route:
    """What the subnets say: the subnets with a path in, and what stops the others."""

    open: tuple[str, ...]
    """`subnet-1 routes 0.0.0.0/0 to igw-1 (rtb-1)`, one per subnet with a path."""
    missing: tuple[str, ...]
    """`subnet-2: rtb-2 (main) has no route to an internet gateway`, one per other subnet."""


def routes(subnets: Sequence[str], vpc: str, tables: Data, acls: Data | None, port: int) -> Route:
    """Which of `subnets` give a path in from the internet to `port`, and why the others do not
    (ACLs unread: `acls` is None, and only routes decide)."""
    found: list[str] = []
    missing: list[str] = []
    for subnet in subnets:
        table, main = table_of(subnet, vpc, tables)
        if table is None:
            missing.append(f"{subnet}: no route table")
            continue
        name = f"{table['RouteTableId']}{' (main)' if main else ''}"
        route = gateway_route(table)
        if route is None:
            missing.append(f"{subnet}: {name} has no route to an internet gateway")
            continue
        acl = None if acls is None else acl_of(subnet, vpc, acls)
        if acl is not None:
            allowed, why = acl_admits(acl, port)
            if not allowed:
                missing.append(
                    f"{subnet}: network ACL {acl['NetworkAclId']} denies port {port} from the "
                    f"internet ({why})"
                )
                continue
        found.append(f"{subnet} routes {route[0]} to {route[1]} ({name})")
    return Route(tuple(found), tuple(missing))


# --- the verdict ---------------------------------------------------------------------------


async def exposure(
    ctx: SweepContext,
    region: str,
    groups: Sequence[str],
    subnets: Sequence[str],
    vpc: str,
    port: int,
    unguarded: str | None = None,
) -> tuple[Severity, str]:
    """How reachable a public endpoint is on `port` (see the module's docstring), and why.
    `unguarded`: what to say when the endpoint has no security group of its own (a network
    load balancer without one passes traffic to its targets, whose groups then decide): the
    group link is then unknown, never "closed"."""
    says: list[str] = []
    if unguarded is not None and not groups:
        group_open: bool | None = None
        says.append(unguarded)
    else:
        group_open, said = await _groups_open(ctx, region, groups, port)
        says.append(said)
    routed: bool | None
    if not subnets:
        routed = None
        says.append("its subnets are unknown, so whether they route to the internet is too")
    else:
        try:
            tables = await route_tables(ctx, region)
            try:
                acls: Data | None = await network_acls(ctx, region)
            except CollectError:
                acls = None
            found = routes(subnets, vpc, tables, acls, port)
            routed = bool(found.open)
            if found.open:
                says += list(found.open)
            else:
                says.append(
                    "but none of its subnets lets the internet in ("
                    + "; ".join(found.missing)
                    + "): not reachable from the internet as things stand"
                )
        except CollectError as exc:
            routed = None
            says.append(f"whether its subnets route to an internet gateway is unknown: {exc}")
    if routed is False:
        severity = Severity.MEDIUM
    elif group_open and routed:
        severity = Severity.CRITICAL
    else:
        severity = Severity.HIGH
    return severity, "; ".join(says)


async def _groups_open(
    ctx: SweepContext, region: str, groups: Sequence[str], port: int
) -> tuple[bool | None, str]:
    """Whether one of `groups` admits `port` from the internet (None: unreadable), and why."""
    try:
        by_id = {g["GroupId"]: g for g in await security_groups(ctx, region)}
    except CollectError as exc:
        return None, f"whether its security groups open port {port} is unknown: {exc}"
    open_by = []
    for gid in (gid for gid in groups if gid in by_id):
        cidrs = [
            c for p in by_id[gid]["IpPermissions"] if admits(p, port) for c in internet_cidrs(p)
        ]
        if cidrs:
            name = by_id[gid]["GroupName"]
            open_by.append(
                f"security group {gid} ({name}) allows port {port} from {' and '.join(cidrs)}"
            )
    if open_by:
        return True, "; ".join(open_by)
    return False, (
        f"its security groups ({', '.join(groups) or 'none'}) do not open port {port} to the "
        "internet"
    )
