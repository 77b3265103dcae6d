"""EC2 exposure against moto, Prowler's ec2_instance_port_*_exposed_to_internet scenarios: an
open group is critical only with a public IP and a route to an internet gateway."""

from __future__ import annotations

import json

from jobs.sweeps.aws import security_exposure as rules
from jobs.sweeps.base import SweepContext
from tests.jobs.sweeps.aws.helpers import judge
from tests.jobs.sweeps.aws.test_security import internet_gateway, security_group, subnets
from tests.peers.aws import Aws

pytest_plugins = ["tests.peers.aws_fixtures", "tests.jobs.sweeps.aws.fixtures"]

AMI = "ami-12c6146b"


def instance(aws: Aws, group: str, subnet: str) -> str:
    found = aws.client("ec2").run_instances(
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
        NetworkInterfaces=[
            {
                "DeviceIndex": 0,
                "SubnetId": subnet,
                "Groups": [group],
                "AssociatePublicIpAddress": True,
            }
        ],
    )
    iid: str = found["Instances"][0]["InstanceId"]
    return iid


async def test_instance_with_ssh_open_and_a_route_to_an_internet_gateway_is_critical(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    igw, main = internet_gateway(aws)
    subnet = subnets(aws)[0]
    gid = security_group(aws, "bastion", ("tcp", 22, 22, "0.0.0.0/0"))
    iid = instance(aws, gid, subnet)
    [finding] = await judge(rules.ec2_exposed, aws_sweep)
    assert finding.severity == "critical"
    assert finding.resource.endswith(f":instance/{iid}")
    assert finding.evidence.startswith(f"instance {iid} has public IP ")
    assert finding.evidence.endswith(
        f"and port 22 (SSH) open: security group {gid} (bastion) allows port 22 from 0.0.0.0/0; "
        f"{subnet} routes 0.0.0.0/0 to {igw} ({main} (main))"
    )


async def test_instance_in_a_subnet_without_an_internet_route_is_medium(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    gid = security_group(aws, "db", ("tcp", 5432, 5432, "0.0.0.0/0"))
    instance(aws, gid, subnets(aws)[0])
    [finding] = await judge(rules.ec2_exposed, aws_sweep)
    assert finding.severity == "medium"
    assert "has no route to an internet gateway" in finding.evidence
    assert "port 5432 (PostgreSQL)" in finding.evidence


async def test_instance_open_only_on_https_is_not_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    internet_gateway(aws)
    gid = security_group(aws, "web", ("tcp", 443, 443, "0.0.0.0/0"))
    instance(aws, gid, subnets(aws)[0])
    assert await judge(rules.ec2_exposed, aws_sweep) == []


# -- load balancers ------------------------------------------------------------------------------


def load_balancer(
    aws: Aws, name: str, port: int, *, kind: str = "network", groups: tuple[str, ...] = ()
) -> str:
    """An internet-facing load balancer on the default VPC's first two subnets, with one TCP
    (network) or HTTP (application) listener on `port`; its ARN."""
    elb = aws.client("elbv2")
    vpc = aws.client("ec2").describe_vpcs()["Vpcs"][0]["VpcId"]
    placed = {"SecurityGroups": list(groups)} if groups else {}
    lb = elb.create_load_balancer(
        Name=name, Subnets=subnets(aws)[:2], Scheme="internet-facing", Type=kind, **placed
    )["LoadBalancers"][0]
    protocol = "TCP" if kind == "network" else "HTTP"
    group = elb.create_target_group(
        Name=f"{name}-targets", Protocol=protocol, Port=port, VpcId=vpc
    )["TargetGroups"][0]
    elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol=protocol,
        Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}],
    )
    arn: str = lb["LoadBalancerArn"]
    return arn


async def test_load_balancer_forwarding_ssh_with_a_route_is_critical(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    igw, main = internet_gateway(aws)
    gid = security_group(aws, "nlb-ssh", ("tcp", 22, 22, "0.0.0.0/0"))
    arn = load_balancer(aws, "bastion-nlb", 22, groups=(gid,))
    [finding] = await judge(rules.elb_exposed, aws_sweep)
    assert (finding.resource, finding.severity) == (arn, "critical")
    first = subnets(aws)[0]
    assert finding.evidence.startswith(
        "internet-facing network load balancer bastion-nlb listens on port 22 (SSH): "
        f"security group {gid} (nlb-ssh) allows port 22 from 0.0.0.0/0; "
        f"{first} routes 0.0.0.0/0 to {igw} ({main} (main))"
    )


async def test_load_balancer_without_a_route_is_medium_and_says_what_is_missing(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    gid = security_group(aws, "nlb-db", ("tcp", 5432, 5432, "0.0.0.0/0"))
    load_balancer(aws, "db-nlb", 5432, groups=(gid,))
    [finding] = await judge(rules.elb_exposed, aws_sweep)
    assert finding.severity == "medium"
    assert "listens on port 5432 (PostgreSQL)" in finding.evidence
    assert "has no route to an internet gateway" in finding.evidence
    assert "not reachable from the internet as things stand" in finding.evidence


async def test_network_load_balancer_without_security_groups_is_high_not_critical(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    internet_gateway(aws)
    load_balancer(aws, "bare-nlb", 3389)
    [finding] = await judge(rules.elb_exposed, aws_sweep)
    assert finding.severity == "high"
    assert "network load balancer bare-nlb has no security group: it passes port 3389" in (
        finding.evidence
    )


async def test_web_and_internal_load_balancers_are_not_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    internet_gateway(aws)
    web = security_group(aws, "web", ("tcp", 443, 443, "0.0.0.0/0"))
    load_balancer(aws, "web-alb", 443, kind="application", groups=(web,))
    elb = aws.client("elbv2")
    elb.create_load_balancer(
        Name="inside", Subnets=subnets(aws)[:2], Scheme="internal", Type="network"
    )
    assert await judge(rules.elb_exposed, aws_sweep) == []


# -- OpenSearch in a VPC -------------------------------------------------------------------------

OPEN_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "es:*"}],
    }
)


def vpc_domain(aws: Aws, name: str, group: str, policy: str | None = None) -> str:
    extra = {"AccessPolicies": policy} if policy else {}
    domain = aws.client("opensearch").create_domain(
        DomainName=name,
        VPCOptions={"SubnetIds": subnets(aws)[:1], "SecurityGroupIds": [group]},
        **extra,
    )
    arn: str = domain["DomainStatus"]["ARN"]
    return arn


async def test_vpc_domain_open_to_anyone_with_a_route_is_high_never_critical(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    igw, _ = internet_gateway(aws)
    gid = security_group(aws, "search", ("tcp", 443, 443, "0.0.0.0/0"))
    arn = vpc_domain(aws, "logs", gid, OPEN_POLICY)
    [finding] = await judge(rules.opensearch_exposed, aws_sweep)
    assert (finding.resource, finding.severity) == (arn, "high")
    assert f"security group {gid} (search) allows port 443 from 0.0.0.0/0" in finding.evidence
    assert f"routes 0.0.0.0/0 to {igw}" in finding.evidence
    assert "private addresses only" in finding.evidence
    assert "its access policy lets anyone in" in finding.evidence


async def test_vpc_domain_without_a_route_and_a_signed_policy_is_low(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    gid = security_group(aws, "search", ("tcp", 443, 443, "0.0.0.0/0"))
    vpc_domain(aws, "audit", gid)
    [finding] = await judge(rules.opensearch_exposed, aws_sweep)
    assert finding.severity == "low"  # medium (no route), one lower for the signed policy
    assert "has no route to an internet gateway" in finding.evidence
    assert "admits named principals only" in finding.evidence


async def test_vpc_domain_behind_a_closed_group_is_not_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    internet_gateway(aws)
    gid = security_group(aws, "search", ("tcp", 443, 443, "10.0.0.0/8"))
    vpc_domain(aws, "private", gid, OPEN_POLICY)
    assert await judge(rules.opensearch_exposed, aws_sweep) == []


# -- ElastiCache ---------------------------------------------------------------------------------


def cache_cluster(aws: Aws, name: str, group: str, engine: str = "redis") -> str:
    """A one-node cluster in a subnet group of the default VPC's first subnet. moto stores the
    security groups and port it was given but leaves `SecurityGroups` and `CacheNodes` out of
    DescribeCacheClusters: they are filled in on its model from what it stored, as AWS
    answers, and the rule reads them over the wire."""
    cache = aws.client("elasticache")
    cache.create_cache_subnet_group(
        CacheSubnetGroupName=f"{name}-net",
        CacheSubnetGroupDescription=name,
        SubnetIds=subnets(aws)[:1],
    )
    cache.create_cache_cluster(
        CacheClusterId=name,
        Engine=engine,
        CacheNodeType="cache.t3.micro",
        NumCacheNodes=1,
        CacheSubnetGroupName=f"{name}-net",
        SecurityGroupIds=[group],
        **({"Port": 11211} if engine == "memcached" else {}),
    )
    model = aws.backend("elasticache").cache_clusters[name]
    model.security_groups = [
        {"SecurityGroupId": g, "Status": "active"} for g in model.security_group_ids
    ]
    model.cache_nodes = [
        {"CacheNodeId": "0001", "Endpoint": {"Address": f"{name}.cache", "Port": model.port}}
    ]
    arn: str = model.arn
    return arn


async def test_cache_cluster_open_to_the_internet_with_a_route_is_high(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    igw, main = internet_gateway(aws)
    gid = security_group(aws, "cache", ("tcp", 6379, 6379, "0.0.0.0/0"))
    arn = cache_cluster(aws, "sessions", gid)
    [finding] = await judge(rules.elasticache_exposed, aws_sweep)
    assert (finding.resource, finding.severity) == (arn, "high")
    first = subnets(aws)[0]
    assert finding.evidence == (
        f"ElastiCache cluster sessions (redis, port 6379): security group {gid} (cache) allows "
        f"port 6379 from 0.0.0.0/0; {first} routes 0.0.0.0/0 to {igw} ({main} (main)); "
        "ElastiCache gives its endpoints private addresses only: the internet reaches it "
        "through something in the VPC (a NAT, proxy, VPN or peering), not directly; no AUTH "
        "token is set"
    )


async def test_memcached_without_a_route_is_medium(aws: Aws, aws_sweep: SweepContext) -> None:
    gid = security_group(aws, "memcache", ("tcp", 11211, 11211, "::/0"))
    cache_cluster(aws, "pages", gid, engine="memcached")
    [finding] = await judge(rules.elasticache_exposed, aws_sweep)
    assert finding.severity == "medium"
    assert "(memcached, port 11211)" in finding.evidence
    assert "allows port 11211 from ::/0" in finding.evidence
    assert "has no route to an internet gateway" in finding.evidence


async def test_cache_cluster_open_only_inside_the_vpc_is_not_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    internet_gateway(aws)
    gid = security_group(aws, "cache", ("tcp", 6379, 6379, "172.31.0.0/16"))
    cache_cluster(aws, "internal", gid)
    assert await judge(rules.elasticache_exposed, aws_sweep) == []
