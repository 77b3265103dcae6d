"""Resources reachable from the internet, each judged on its network path by
`network.exposure` (security group, route to an internet gateway, network ACL) so the evidence
names the path and a resource whose subnets have no way in is reported as what it is:

- EC2 instances with a public address, and internet-facing load balancers, on an
  administration or database port: critical with the whole path.
- OpenSearch domains in a VPC and ElastiCache clusters whose security group admits their port
  from anywhere. AWS gives their endpoints private addresses only, so the last link (a public
  address) never holds: at most high, "one NAT, proxy or peering away", and the evidence says so.
"""

from __future__ import annotations

from typing import Any

from daemon.models import Severity
from jobs.sweeps.aws.collect import identity, opensearch_domains, security_groups
from jobs.sweeps.aws.collect_edge import cache_clusters
from jobs.sweeps.aws.collect_services import instances, listeners
from jobs.sweeps.aws.network import (
    admits,
    cache_subnets,
    exposure,
    internet_cidrs,
    subnet_vpcs,
)
from jobs.sweeps.aws.policy import PolicyError, access
from jobs.sweeps.aws.rule import REGION, security_meta
from jobs.sweeps.aws.security import ADMIN_PORTS, DB_PORTS
from jobs.sweeps.base import Rule, SweepContext
from jobs.sweeps.rule import Hit, rule

SENSITIVE = ADMIN_PORTS | DB_PORTS
RANK = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2}
LOWER = {Severity.HIGH: Severity.MEDIUM, Severity.MEDIUM: Severity.LOW}
CACHE_PORTS = {"memcached": 11211}  # Redis and Valkey: 6379
PRIVATE_ONLY = (
    "{what} gives its endpoints private addresses only: the internet reaches it through "
    "something in the VPC (a NAT, proxy, VPN or peering), not directly"
)


def open_to_internet(groups: dict[str, dict[str, Any]], ids: list[str], port: int) -> bool:
    """Whether one of the groups `ids` admits TCP `port` from 0.0.0.0/0 or ::/0."""
    permissions = [p for gid in ids if gid in groups for p in groups[gid]["IpPermissions"]]
    return any(admits(p, port) and internet_cidrs(p) for p in permissions)


def private_only(severity: Severity, why: str, what: str) -> tuple[Severity, str]:
    """A path judged for an endpoint AWS never gives a public address: never critical."""
    capped = Severity.HIGH if severity == Severity.CRITICAL else severity
    return capped, f"{why}; {PRIVATE_ONLY.format(what=what)}"


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


@rule(
    security_meta(
        "aws.elb.exposed",
        "Internet-facing load balancer forwards a sensitive port from the internet",
        Severity.CRITICAL,
        risk="The load balancer hands SSH, RDP or a database port to anyone on the internet: "
        "its targets are as exposed as if they had public addresses.",
        remediation="Remove the listener, make the load balancer internal, or restrict its "
        "security group to known addresses; reach administration ports through SSM or a VPN.",
        reference="https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-security-groups.html",
        controls=("cis-aws:5.2", "cis-aws:5.3", "soc2:CC6.6", "hipaa:164.312(a)(1)"),
    ),
    REGION,
)
async def elb_exposed(ctx: SweepContext, region: str) -> list[Hit]:
    by_lb: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for listener in await listeners(ctx, region):
        lb = listener.get("LoadBalancer") or {}
        port = int(listener.get("Port") or 0)
        if lb.get("Scheme") != "internet-facing" or port not in SENSITIVE:
            continue
        by_lb.setdefault(lb["LoadBalancerArn"], (lb, []))[1].append(port)
    hits = []
    for arn, (lb, ports) in sorted(by_lb.items()):
        name, kind = lb["LoadBalancerName"], lb.get("Type", "application")
        groups = list(lb.get("SecurityGroups") or [])
        subnets = [z["SubnetId"] for z in lb.get("AvailabilityZones", []) if z.get("SubnetId")]
        judged = []
        for port in sorted(set(ports)):
            unguarded = (
                f"{kind} load balancer {name} has no security group: it passes port {port} from "
                "anywhere to its targets, whose own security groups decide (not judged here)"
            )
            severity, why = await exposure(
                ctx, region, groups, subnets, lb.get("VpcId", ""), port, unguarded
            )
            judged.append((port, severity, why))
        port, severity, why = min(judged, key=lambda j: (RANK.get(j[1], 3), j[0]))
        evidence = (
            f"internet-facing {kind} load balancer {name} listens on port {port} "
            f"({SENSITIVE[port]}): {why}"
        )
        hits.append(Hit(arn, evidence, severity=severity))
    return hits


@rule(
    security_meta(
        "aws.opensearch.exposed",
        "OpenSearch domain in a VPC admits the internet to its endpoint",
        Severity.HIGH,
        risk="The domain's security group lets anyone reach port 443 and a subnet routes to "
        "an internet gateway: one NAT, proxy or peering away from the internet, and open to "
        "everything in the VPC.",
        remediation="Restrict the domain's security group to the clients that need it, and "
        "keep the domain in subnets without a route to an internet gateway.",
        reference="https://docs.aws.amazon.com/opensearch-service/latest/developerguide/vpc.html",
        controls=("soc2:CC6.6", "hipaa:164.312(a)(1)"),
    ),
    REGION,
)
async def opensearch_exposed(ctx: SweepContext, region: str) -> list[Hit]:
    groups = {g["GroupId"]: g for g in await security_groups(ctx, region)}
    hits = []
    for domain in await opensearch_domains(ctx, region):
        options = domain.get("VPCOptions") or {}
        subnets, ids = options.get("SubnetIds") or [], options.get("SecurityGroupIds") or []
        if not subnets or domain.get("Deleted") or not open_to_internet(groups, ids, 443):
            continue
        vpc = options.get("VPCId") or ""
        if not vpc:  # moto leaves VPCId out; AWS sends it
            vpc = (await subnet_vpcs(ctx, region)).get(subnets[0], "")
        severity, why = await exposure(ctx, region, ids, subnets, vpc, 443)
        severity, why = private_only(severity, why, "OpenSearch in a VPC")
        name = domain["DomainName"]
        try:
            policy = access(domain.get("AccessPolicies"), (await identity(ctx)).account)
            if policy.public:
                why += f"; its access policy lets anyone in: {policy.describe()}"
            else:
                severity = LOWER.get(severity, severity)
                why += "; its access policy admits named principals only (requests are signed)"
        except PolicyError:
            why += "; its access policy could not be read"
        evidence = f"OpenSearch domain {name} in {vpc or 'a VPC'} (port 443): {why}"
        hits.append(Hit(domain["ARN"], evidence, {"id": name}, severity=severity))
    return hits


@rule(
    security_meta(
        "aws.elasticache.exposed",
        "ElastiCache cluster admits the internet to its port",
        Severity.HIGH,
        risk="The cluster's security group lets anyone reach the cache port and a subnet "
        "routes to an internet gateway: one NAT, proxy or peering away from the internet, and "
        "Redis and Memcached without AUTH answer whoever connects.",
        remediation="Restrict the cluster's security group to the application's security "
        "group, and place the cluster in private subnets.",
        reference="https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/elasticache-vpc-accessing.html",
        controls=("soc2:CC6.6", "hipaa:164.312(a)(1)"),
    ),
    REGION,
)
async def elasticache_exposed(ctx: SweepContext, region: str) -> list[Hit]:
    groups = {g["GroupId"]: g for g in await security_groups(ctx, region)}
    hits = []
    for cluster in await cache_clusters(ctx, region):
        engine = str(cluster.get("Engine", "redis"))
        port = cache_port(cluster)
        ids = [g["SecurityGroupId"] for g in cluster.get("SecurityGroups", [])]
        if not open_to_internet(groups, ids, port):
            continue
        vpc, subnets = (await cache_subnets(ctx, region)).get(
            cluster.get("CacheSubnetGroupName", ""), ("", [])
        )
        severity, why = await exposure(ctx, region, ids, subnets, vpc, port)
        severity, why = private_only(severity, why, "ElastiCache")
        name = cluster["CacheClusterId"]
        auth = "" if cluster.get("AuthTokenEnabled") else "; no AUTH token is set"
        evidence = f"ElastiCache cluster {name} ({engine}, port {port}): {why}{auth}"
        hits.append(Hit(cluster["ARN"], evidence, {"id": name}, severity=severity))
    return hits


def cache_port(cluster: dict[str, Any]) -> int:
    """The port its nodes listen on: a node's endpoint, the configuration endpoint
    (Memcached), else the engine's default."""
    for node in cluster.get("CacheNodes", []):
        if (node.get("Endpoint") or {}).get("Port"):
            return int(node["Endpoint"]["Port"])
    if (cluster.get("ConfigurationEndpoint") or {}).get("Port"):
        return int(cluster["ConfigurationEndpoint"]["Port"])
    return CACHE_PORTS.get(str(cluster.get("Engine", "")), 6379)


RULES: list[Rule] = [ec2_exposed, elb_exposed, opensearch_exposed, elasticache_exposed]
