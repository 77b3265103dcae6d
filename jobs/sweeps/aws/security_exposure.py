"""EC2 instances reachable from the internet on an administration or database port: a public
address, a security group that admits the port from anywhere, and a network path (route to an
internet gateway, network ACL) judged by `network.exposure` — so an instance whose subnet has
no way in from the internet is reported as what it is: one route away, not exposed.
"""

from __future__ import annotations

from daemon.models import Severity
from jobs.sweeps.aws.collect import identity, security_groups
from jobs.sweeps.aws.collect_services import instances
from jobs.sweeps.aws.network import admits, exposure, internet_cidrs
from jobs.sweeps.aws.rule import REGION, security_meta
from jobs.sweeps.aws.security import ADMIN_PORTS, DB_PORTS
from jobs.sweeps.base import Rule, SweepContext
from jobs.sweeps.rule import Hit, rule

SENSITIVE = ADMIN_PORTS | DB_PORTS
RANK = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2}


@rule(
    security_meta(
        "aws.ec2.exposed",
        "EC2 instance is reachable from the internet on a sensitive port",
        Severity.CRITICAL,
        risk="Anyone on the internet can reach SSH, RDP or a database on the instance: brute "
        "force and exploits arrive within minutes of it going up.",
        remediation="Remove the security group rule, or take the instance out of a public "
        "subnet (no public IP, no route to an internet gateway); reach it through SSM Session "
        "Manager or a VPN.",
        reference="https://docs.aws.amazon.com/vpc/latest/userguide/infrastructure-security.html",
        controls=("cis-aws:5.2", "cis-aws:5.3", "soc2:CC6.6", "hipaa:164.312(a)(1)"),
    ),
    REGION,
)
async def ec2_exposed(ctx: SweepContext, region: str) -> list[Hit]:
    groups = {g["GroupId"]: g for g in await security_groups(ctx, region)}
    me, hits = await identity(ctx), []
    for instance in await instances(ctx, region):
        address = instance.get("PublicIpAddress")
        if not address or instance.get("State", {}).get("Name") != "running":
            continue
        attached = [
            *instance.get("SecurityGroups", []),
            *(g for eni in instance.get("NetworkInterfaces", []) for g in eni.get("Groups", [])),
        ]  # every interface's groups: a second interface can open what the first does not
        ids = list(dict.fromkeys(g["GroupId"] for g in attached))
        permissions = [p for gid in ids if gid in groups for p in groups[gid]["IpPermissions"]]
        ports = [
            port
            for port in SENSITIVE
            if any(admits(p, port) and internet_cidrs(p) for p in permissions)
        ]
        if not ports:
            continue
        subnet, vpc = instance.get("SubnetId"), instance.get("VpcId", "")
        judged = [
            (port, *await exposure(ctx, region, ids, [subnet] if subnet else [], vpc, port))
            for port in ports
        ]
        port, severity, why = min(judged, key=lambda j: (RANK.get(j[1], 3), j[0]))
        iid = instance["InstanceId"]
        evidence = (
            f"instance {iid} has public IP {address} and port {port} ({SENSITIVE[port]}) "
            f"open: {why}"
        )
        hits.append(Hit(me.arn("ec2", region, f"instance/{iid}"), evidence, severity=severity))
    return hits


RULES: list[Rule] = [ec2_exposed]
