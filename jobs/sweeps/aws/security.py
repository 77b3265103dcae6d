"""AWS security rules for what the internet can reach: security groups open to anyone, public
databases, warehouses, search domains and snapshots (S3, IAM, encryption: security_account).

Rules only judge datasets from `collect`: they never call AWS themselves and never import
boto3 (it loads when the first dataset is fetched, so listing rules stays cheap).
"""

from __future__ import annotations

import json
from typing import Any

from daemon.models import Severity
from jobs.sweeps.aws.collect import (
    db_clusters,
    db_instances,
    db_snapshot_access,
    identity,
    interfaces_per_group,
    opensearch_domains,
    redshift_clusters,
    security_groups,
)
from jobs.sweeps.aws.network import db_subnets, exposure, internet_cidrs, redshift_subnets
from jobs.sweeps.aws.policy import Access, PolicyError, access
from jobs.sweeps.aws.rule import REGION, security_meta
from jobs.sweeps.base import CollectError, Rule, SweepContext
from jobs.sweeps.rule import Hit, Judge, rule

ADMIN_PORTS = {22: "SSH", 3389: "RDP"}
DB_PORTS = {
    **{3306: "MySQL", 5432: "PostgreSQL", 1433: "SQL Server", 1521: "Oracle"},
    **{27017: "MongoDB", 6379: "Redis", 11211: "Memcached", 9200: "Elasticsearch"},
    5439: "Redshift",
}


# --- security group arithmetic -----------------------------------------------------------


def all_traffic(permission: dict[str, Any]) -> bool:
    ports = (permission.get("FromPort"), permission.get("ToPort"))
    return permission["IpProtocol"] == "-1" or ports == (0, 65535)


def tcp_ports(permission: dict[str, Any]) -> range:
    if permission["IpProtocol"] not in ("tcp", "6"):
        return range(0)
    return range(permission["FromPort"], permission["ToPort"] + 1)


def describe(permission: dict[str, Any], ports: dict[int, str]) -> str:
    """`tcp 22 (SSH) from 0.0.0.0/0`, `tcp 1000-6000 (covers 3306 MySQL) from ::/0`."""
    cidrs = " and ".join(internet_cidrs(permission))
    if permission["IpProtocol"] == "-1":
        return f"all traffic from {cidrs}"
    low, high = permission["FromPort"], permission["ToPort"]
    if low == high:
        name = f" ({ports[low]})" if low in ports else ""
        return f"{permission['IpProtocol']} {low}{name} from {cidrs}"
    named = [f"{port} {name}" for port, name in ports.items() if low <= port <= high]
    covers = f" (covers {', '.join(named)})" if named else ""
    return f"{permission['IpProtocol']} {low}-{high}{covers} from {cidrs}"


async def group_hit(
    ctx: SweepContext,
    region: str,
    group: dict[str, Any],
    bad: list[dict[str, Any]],
    ports: dict[int, str],
) -> Hit:
    try:
        count = (await interfaces_per_group(ctx, region))[group["GroupId"]]
        attached = f"; attached to {count} network interface{'' if count == 1 else 's'}"
    except CollectError:  # the count only adds context: the exposure stands without it
        attached = ""
    where = f", {group['VpcId']}" if group.get("VpcId") else ""
    allows = "; ".join(describe(p, ports) for p in bad)
    revoke = [
        {k: p[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in p}
        | {"IpRanges": [{"CidrIp": c} for c in internet_cidrs(p) if ":" not in c]}
        | {"Ipv6Ranges": [{"CidrIpv6": c} for c in internet_cidrs(p) if ":" in c]}
        for p in bad
    ]
    gid = group["GroupId"]
    arn = group.get("SecurityGroupArn")  # absent from older API answers
    if not arn:
        me = await identity(ctx)
        arn = f"arn:{me.partition}:ec2:{region}:{group['OwnerId']}:security-group/{gid}"
    return Hit(
        arn,
        f"security group {group['GroupName']} ({gid}{where}) allows {allows}{attached}",
        {"group_id": gid, "permissions": json.dumps(revoke, separators=(",", ":"))},
    )


def open_ports(ports: dict[int, str]) -> Judge:
    """Judge: groups admitting any of `ports` from the internet (all-traffic rules are left to
    aws.sg.open_all, so each permission is reported once, at its worst)."""

    async def judge(ctx: SweepContext, region: str) -> list[Hit]:
        hits = []
        for group in await security_groups(ctx, region):
            bad = [
                p
                for p in group["IpPermissions"]
                if internet_cidrs(p)
                and not all_traffic(p)
                and any(n in tcp_ports(p) for n in ports)
            ]
            if bad:
                hits.append(await group_hit(ctx, region, group, bad, ports))
        return hits

    return judge


SG_RULES_DOCS = "https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html"
REVOKE = (
    "aws ec2 revoke-security-group-ingress --region {region} --group-id {group_id} "
    "--ip-permissions '{permissions}'"
)
RESTRICT = (
    "Remove the rule, or narrow its source to the addresses that need it (a VPN, a bastion's "
    "security group, AWS Systems Manager Session Manager instead of SSH/RDP)."
)

sg_open_ssh = rule(
    security_meta(
        "aws.sg.open_ssh",
        "Security group allows SSH from the internet",
        Severity.HIGH,
        risk="Anyone on the internet can try passwords and exploits against SSH.",
        remediation=RESTRICT,
        remediation_cli=REVOKE,
        reference=SG_RULES_DOCS,
        controls=("cis-aws:5.2", "cis-aws:5.3", "soc2:CC6.6", "hipaa:164.312(a)(1)"),
    ),
    REGION,
)(open_ports({22: "SSH"}))

sg_open_rdp = rule(
    security_meta(
        "aws.sg.open_rdp",
        "Security group allows RDP from the internet",
        Severity.HIGH,
        risk="RDP exposed to the internet is a leading ransomware entry point.",
        remediation=RESTRICT,
        remediation_cli=REVOKE,
        reference=SG_RULES_DOCS,
        controls=("cis-aws:5.2", "cis-aws:5.3", "soc2:CC6.6", "hipaa:164.312(a)(1)"),
    ),
    REGION,
)(open_ports({3389: "RDP"}))

sg_open_db = rule(
    security_meta(
        "aws.sg.open_db",
        "Security group allows a database or cache port from the internet",
        Severity.HIGH,
        risk="Databases and caches reachable from anywhere invite brute force and data theft.",
        remediation="Remove the rule; let only the application's security group reach the port.",
        remediation_cli=REVOKE,
        reference=SG_RULES_DOCS,
        controls=("soc2:CC6.6", "hipaa:164.312(a)(1)"),
    ),
    REGION,
)(open_ports(DB_PORTS))


@rule(
    security_meta(
        "aws.sg.open_all",
        "Security group allows all traffic from the internet",
        Severity.CRITICAL,
        risk="Every port of every attached resource is reachable from anywhere.",
        remediation="Replace the rule with rules for the ports and sources that are needed.",
        remediation_cli=REVOKE,
        reference=SG_RULES_DOCS,
        controls=("cis-aws:5.2", "cis-aws:5.3", "soc2:CC6.6", "hipaa:164.312(a)(1)"),
    ),
    REGION,
)
async def sg_open_all(ctx: SweepContext, region: str) -> list[Hit]:
    hits = []
    for group in await security_groups(ctx, region):
        bad = [p for p in group["IpPermissions"] if all_traffic(p) and internet_cidrs(p)]
        if bad:
            hits.append(await group_hit(ctx, region, group, bad, ADMIN_PORTS | DB_PORTS))
    return hits


# --- publicly accessible data stores -----------------------------------------------------


@rule(
    security_meta(
        "aws.rds.public",
        "RDS database is publicly accessible",
        Severity.HIGH,
        risk="The database has a public IP address: one security group rule away from the "
        "internet, or already reachable from it.",
        remediation="Turn off public accessibility; reach the database through the VPC, a VPN "
        "or a bastion.",
        remediation_cli="aws rds modify-{what} --region {region} --{what}-identifier {id} "
        "--no-publicly-accessible --apply-immediately",
        reference=(
            "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_VPC.WorkingWithRDSInstanceinaVPC.html"
        ),
        controls=("cis-aws:2.3.3", "soc2:CC6.6", "hipaa:164.312(a)(1)"),
    ),
    REGION,
)
async def rds_public(ctx: SweepContext, region: str) -> list[Hit]:
    # Aurora exposure is per instance; PubliclyAccessible on a cluster is for Multi-AZ clusters.
    clusters = [c for c in await db_clusters(ctx, region) if not c["Engine"].startswith("aurora")]
    found = [
        ("instance", db["DBInstanceIdentifier"], db["DBInstanceArn"], db, db.get("Endpoint", {}))
        for db in await db_instances(ctx, region)
    ] + [("cluster", c["DBClusterIdentifier"], c["DBClusterArn"], c, c) for c in clusters]
    hits = []
    for noun, name, arn, db, endpoint in found:
        if db.get("PubliclyAccessible"):
            port = int(endpoint.get("Port") or db.get("DbInstancePort") or 0)
            groups = [g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups", [])]
            vpc, subnets = await _db_subnets(ctx, region, db)
            severity, why = await exposure(ctx, region, groups, subnets, vpc, port)
            evidence = (
                f"RDS {noun} {name} ({db['Engine']}, port {port}) is publicly accessible; {why}"
            )
            hits.append(Hit(arn, evidence, {"what": f"db-{noun}", "id": name}, severity=severity))
    return hits


@rule(
    security_meta(
        "aws.rds.snapshot_public",
        "RDS snapshot is public",
        Severity.CRITICAL,
        risk="Any AWS account can restore the snapshot and read all of its data.",
        remediation="Remove `all` from the snapshot's restore attribute; share it with named "
        "accounts only.",
        remediation_cli="aws rds modify-{what}-snapshot-attribute --region {region} "
        "--{what}-snapshot-identifier {id} --attribute-name restore --values-to-remove all",
        reference="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ShareSnapshot.html",
        controls=("soc2:CC6.1", "hipaa:164.312(a)(1)"),
    ),
    REGION,
)
async def rds_snapshot_public(ctx: SweepContext, region: str) -> list[Hit]:
    return [
        Hit(
            s.arn,
            f"manual {'DB cluster' if s.kind == 'db-cluster' else 'DB'} snapshot {s.id} can be "
            "restored by any AWS account (restore attribute: all)",
            {"what": s.kind, "id": s.id},
        )
        for s in await db_snapshot_access(ctx, region)
        if "all" in s.restore
    ]


@rule(
    security_meta(
        "aws.redshift.public",
        "Redshift cluster is publicly accessible",
        Severity.HIGH,
        risk="The warehouse has a public IP address: one security group rule away from the "
        "internet, or already reachable from it.",
        remediation="Turn off public accessibility; reach the cluster through the VPC.",
        remediation_cli="aws redshift modify-cluster --region {region} --cluster-identifier {id} "
        "--no-publicly-accessible",
        reference="https://docs.aws.amazon.com/redshift/latest/mgmt/managing-clusters-vpc.html",
        controls=("soc2:CC6.6", "hipaa:164.312(a)(1)"),
    ),
    REGION,
)
async def redshift_public(ctx: SweepContext, region: str) -> list[Hit]:
    hits = []
    for cluster in await redshift_clusters(ctx, region):
        if cluster.get("PubliclyAccessible"):
            name, port = cluster["ClusterIdentifier"], cluster.get("Endpoint", {}).get("Port", 5439)
            groups = [g["VpcSecurityGroupId"] for g in cluster.get("VpcSecurityGroups", [])]
            vpc, subnets = await _redshift_subnets(ctx, region, cluster)
            severity, why = await exposure(ctx, region, groups, subnets, vpc, port)
            arn = (await identity(ctx)).arn("redshift", region, f"cluster:{name}")
            evidence = f"Redshift cluster {name} (port {port}) is publicly accessible; {why}"
            hits.append(Hit(arn, evidence, {"id": name}, severity=severity))
    return hits


async def _db_subnets(ctx: SweepContext, region: str, db: dict[str, Any]) -> tuple[str, list[str]]:
    """An instance's subnets (DescribeDBInstances embeds its group), a cluster's by its group's
    name; none when they cannot be read (exposure() then says the subnets are unknown)."""
    net = db.get("DBSubnetGroup")
    if isinstance(net, dict):
        return net.get("VpcId", ""), [s["SubnetIdentifier"] for s in net.get("Subnets", [])]
    try:
        return (await db_subnets(ctx, region)).get(str(net or ""), ("", []))
    except CollectError:
        return "", []


async def _redshift_subnets(
    ctx: SweepContext, region: str, cluster: dict[str, Any]
) -> tuple[str, list[str]]:
    try:
        found = await redshift_subnets(ctx, region)
    except CollectError:
        return cluster.get("VpcId", ""), []  # exposure() says the subnets are unknown
    vpc, subnets = found.get(cluster.get("ClusterSubnetGroupName", ""), ("", []))
    return cluster.get("VpcId") or vpc, subnets


@rule(
    security_meta(
        "aws.opensearch.public",
        "OpenSearch domain is open to the internet",
        Severity.HIGH,
        risk="The domain has a public endpoint and its access policy lets anyone call it.",
        remediation="Move the domain into a VPC, or restrict the access policy to named "
        "principals or source IP conditions.",
        remediation_cli="aws opensearch update-domain-config --region {region} --domain-name "
        "{id} --access-policies file://restricted-policy.json",
        reference="https://docs.aws.amazon.com/opensearch-service/latest/developerguide/vpc.html",
        controls=("soc2:CC6.6", "hipaa:164.312(a)(1)"),
    ),
    REGION,
)
async def opensearch_public(ctx: SweepContext, region: str) -> list[Hit]:
    hits = []
    for domain in await opensearch_domains(ctx, region):
        vpc = domain.get("VPCOptions") or {}
        if vpc.get("VPCId") or vpc.get("SubnetIds") or domain.get("Deleted"):
            continue
        try:
            found = access(domain.get("AccessPolicies"), (await identity(ctx)).account)
        except PolicyError:
            continue  # AWS refuses such a policy; nothing it says can be judged
        if found.public:
            name = domain["DomainName"]
            public = Access(found.verdict, tuple(g for g in found.grants if g.public))
            evidence = (
                f"OpenSearch domain {name} has a public endpoint ({domain.get('Endpoint')}) and "
                f"its access policy lets anyone in: {public.describe()}"
            )
            hits.append(Hit(domain["ARN"], evidence, {"id": name}))
    return hits


RULES: list[Rule] = [
    rds_public,
    rds_snapshot_public,
    redshift_public,
    opensearch_public,
    sg_open_ssh,
    sg_open_rdp,
    sg_open_db,
    sg_open_all,
]
