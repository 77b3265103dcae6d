"""The network-exposure rules of jobs.sweeps.aws.security against moto: one failing and one
passing scenario per rule, the evidence they give, and how a denied dataset surfaces."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from jobs.sweeps.aws import security as rules
from jobs.sweeps.base import AwsScope, CollectError, SweepContext
from tests.jobs.sweeps.aws.helpers import judge
from tests.peers.aws import ACCOUNT, REGION, Aws, restricted_user

pytest_plugins = ["tests.peers.aws_fixtures", "tests.jobs.sweeps.aws.fixtures"]

ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}"
OPEN_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "es:*"}],
}


def security_group(aws: Aws, name: str, *rules: tuple[str, int, int, str]) -> str:
    """A group admitting (protocol, from port, to port, CIDR) for each rule."""
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    gid: str = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
    permissions: list[dict[str, Any]] = []
    for protocol, low, high, cidr in rules:
        ranges = (
            {"Ipv6Ranges": [{"CidrIpv6": cidr}]}
            if ":" in cidr
            else {"IpRanges": [{"CidrIp": cidr}]}
        )
        ports = {} if protocol == "-1" else {"FromPort": low, "ToPort": high}
        permissions.append({"IpProtocol": protocol, **ports, **ranges})
    if permissions:
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=permissions)
    return gid


def internet_gateway(aws: Aws) -> tuple[str, str]:
    """An internet gateway on the default VPC and the main route table's default route to it:
    (igw id, main route table id)."""
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    main = main_table(aws)
    ec2.create_route(RouteTableId=main, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    return igw, main


def main_table(aws: Aws) -> str:
    tables = aws.client("ec2").describe_route_tables()["RouteTables"]
    main = [t for t in tables if any(a.get("Main") for a in t["Associations"])]
    table: str = main[0]["RouteTableId"]
    return table


def subnets(aws: Aws) -> list[str]:
    return sorted(s["SubnetId"] for s in aws.client("ec2").describe_subnets()["Subnets"])


def db_subnet_group(aws: Aws, ids: list[str]) -> str:
    aws.client("rds").create_db_subnet_group(
        DBSubnetGroupName="orders-net", DBSubnetGroupDescription="orders", SubnetIds=ids
    )
    return "orders-net"


def database(
    aws: Aws,
    name: str,
    *,
    public: bool,
    groups: tuple[str, ...] = (),
    network: str | None = None,
) -> None:
    placed = {"DBSubnetGroupName": network} if network else {}
    aws.client("rds").create_db_instance(
        **placed,
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="not-a-real-password",
        PubliclyAccessible=public,
        VpcSecurityGroupIds=list(groups),
    )


# --- RDS ---------------------------------------------------------------------------------


async def test_public_database_whose_group_opens_its_port_to_the_internet_is_critical(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    igw, main = internet_gateway(aws)
    subnet = subnets(aws)[0]
    gid = security_group(aws, "orders-db", ("tcp", 5432, 5432, "0.0.0.0/0"))
    database(aws, "orders", public=True, groups=(gid,), network=db_subnet_group(aws, [subnet]))
    [finding] = await judge(rules.rds_public, aws_sweep)
    assert finding.severity == "critical"
    assert finding.resource == f"{ARN}:db:orders"
    assert finding.location == REGION
    assert finding.account == ACCOUNT
    assert finding.evidence == (
        f"RDS instance orders (postgres, port 5432) is publicly accessible; security group "
        f"{gid} (orders-db) allows port 5432 from 0.0.0.0/0; {subnet} routes 0.0.0.0/0 to "
        f"{igw} ({main} (main))"
    )
    assert finding.remediation_cli == (
        f"aws rds modify-db-instance --region {REGION} --db-instance-identifier orders "
        "--no-publicly-accessible --apply-immediately"
    )


async def test_public_database_behind_closed_groups_is_high(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    igw, main = internet_gateway(aws)
    subnet = subnets(aws)[0]
    gid = security_group(aws, "orders-db", ("tcp", 5432, 5432, "10.0.0.0/8"))
    database(aws, "orders", public=True, groups=(gid,), network=db_subnet_group(aws, [subnet]))
    [finding] = await judge(rules.rds_public, aws_sweep)
    assert finding.severity == "high"
    assert finding.evidence == (
        "RDS instance orders (postgres, port 5432) is publicly accessible; its security groups "
        f"({gid}) do not open port 5432 to the internet; {subnet} routes 0.0.0.0/0 to {igw} "
        f"({main} (main))"
    )


# Prowler's rds_instance_no_public_access scenarios: the flag and an open group are not a path.


async def test_public_database_in_subnets_without_an_internet_route_is_medium_and_says_why(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    first, second = subnets(aws)[:2]
    main = main_table(aws)
    gid = security_group(aws, "orders-db", ("tcp", 5432, 5432, "0.0.0.0/0"))
    group = db_subnet_group(aws, [first, second])
    database(aws, "orders", public=True, groups=(gid,), network=group)
    [finding] = await judge(rules.rds_public, aws_sweep)
    assert finding.severity == "medium"
    assert finding.evidence == (
        "RDS instance orders (postgres, port 5432) is publicly accessible; security group "
        f"{gid} (orders-db) allows port 5432 from 0.0.0.0/0; but none of its subnets lets the "
        f"internet in ({first}: {main} (main) has no route to an internet gateway; {second}: "
        f"{main} (main) has no route to an internet gateway): not reachable from the internet "
        "as things stand"
    )


async def test_a_subnet_s_own_route_table_overrides_the_main_one(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    routed, private = subnets(aws)[:2]
    igw, main = internet_gateway(aws)  # the main table routes to the internet ...
    own = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=own, SubnetId=private)  # ... this subnet's does not
    gid = security_group(aws, "orders-db", ("tcp", 5432, 5432, "0.0.0.0/0"))
    database(aws, "orders", public=True, groups=(gid,), network=db_subnet_group(aws, [private]))
    [finding] = await judge(rules.rds_public, aws_sweep)
    assert finding.severity == "medium"
    assert f"{private}: {own} has no route to an internet gateway" in finding.evidence
    # and the other way round: an own table with the route, under a main table without it
    ec2.create_route(RouteTableId=own, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.delete_route(RouteTableId=main, DestinationCidrBlock="0.0.0.0/0")
    aws_sweep._data.clear()
    [finding] = await judge(rules.rds_public, aws_sweep)
    assert finding.severity == "critical"
    assert finding.evidence.endswith(f"{private} routes 0.0.0.0/0 to {igw} ({own})")
    assert routed not in finding.evidence


async def test_a_network_acl_denying_the_port_breaks_the_path(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnet = subnets(aws)[0]
    internet_gateway(aws)
    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    for number, action, ports in ((90, "deny", (5432, 5432)), (100, "allow", (0, 65535))):
        ec2.create_network_acl_entry(
            NetworkAclId=acl,
            RuleNumber=number,
            Protocol="6",
            RuleAction=action,
            Egress=False,
            CidrBlock="0.0.0.0/0",
            PortRange={"From": ports[0], "To": ports[1]},
        )
    current = ec2.describe_network_acls(
        Filters=[{"Name": "association.subnet-id", "Values": [subnet]}]
    )["NetworkAcls"][0]
    association = next(
        a["NetworkAclAssociationId"] for a in current["Associations"] if a["SubnetId"] == subnet
    )
    ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=acl)
    gid = security_group(aws, "orders-db", ("tcp", 5432, 5432, "0.0.0.0/0"))
    database(aws, "orders", public=True, groups=(gid,), network=db_subnet_group(aws, [subnet]))
    [finding] = await judge(rules.rds_public, aws_sweep)
    assert finding.severity == "medium"
    assert (
        f"{subnet}: network ACL {acl} denies port 5432 from the internet (rule 90: deny)"
        in finding.evidence
    )


async def test_a_database_whose_subnets_are_unknown_stays_high(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    gid = security_group(aws, "orders-db", ("tcp", 5432, 5432, "0.0.0.0/0"))
    database(aws, "orders", public=True, groups=(gid,))  # moto then reports no subnet group
    [finding] = await judge(rules.rds_public, aws_sweep)
    assert finding.severity == "high"
    assert finding.evidence.endswith(
        "its subnets are unknown, so whether they route to the internet is too"
    )


async def test_private_database_is_not_reported(aws: Aws, aws_sweep: SweepContext) -> None:
    gid = security_group(aws, "orders-db", ("tcp", 5432, 5432, "0.0.0.0/0"))
    database(aws, "orders", public=False, groups=(gid,))
    assert await judge(rules.rds_public, aws_sweep) == []


async def test_public_multi_az_cluster_is_reported_and_aurora_left_to_its_instances(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    rds = aws.client("rds")
    common = {"MasterUsername": "admin", "MasterUserPassword": "not-a-real-password"}
    rds.create_db_cluster(
        DBClusterIdentifier="ledger",
        Engine="postgres",
        PubliclyAccessible=True,
        DBClusterInstanceClass="db.m5d.large",
        StorageType="io1",
        AllocatedStorage=100,
        Iops=1000,
        **common,
    )
    rds.create_db_cluster(
        DBClusterIdentifier="aurora", Engine="aurora-postgresql", PubliclyAccessible=True, **common
    )
    [finding] = await judge(rules.rds_public, aws_sweep)
    assert finding.resource == f"{ARN}:cluster:ledger"
    assert finding.evidence.startswith("RDS cluster ledger (postgres, port 5432) is publicly")
    assert finding.remediation_cli is not None
    assert "modify-db-cluster --region eu-west-1 --db-cluster-identifier ledger" in (
        finding.remediation_cli
    )


async def test_unreadable_security_groups_leave_a_public_database_high_and_say_why(
    aws: Aws, aws_sweep: SweepContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    database(aws, "orders", public=True)
    restricted_user(aws, monkeypatch, allow=["rds:Describe*"])
    [finding] = await judge(rules.rds_public, aws_sweep)
    assert finding.severity == "high"
    assert "whether its security groups open port 5432 is unknown: AccessDenied on " in (
        finding.evidence
    )
    assert "ec2:DescribeSecurityGroups" in finding.evidence


async def test_snapshot_anyone_can_restore_is_critical(aws: Aws, aws_sweep: SweepContext) -> None:
    database(aws, "orders", public=False)
    rds = aws.client("rds")
    rds.create_db_snapshot(DBSnapshotIdentifier="orders-final", DBInstanceIdentifier="orders")
    rds.modify_db_snapshot_attribute(
        DBSnapshotIdentifier="orders-final", AttributeName="restore", ValuesToAdd=["all"]
    )
    [finding] = await judge(rules.rds_snapshot_public, aws_sweep)
    assert finding.severity == "critical"
    assert finding.resource == f"{ARN}:snapshot:orders-final"
    assert finding.evidence == (
        "manual DB snapshot orders-final can be restored by any AWS account (restore "
        "attribute: all)"
    )
    assert finding.remediation_cli == (
        f"aws rds modify-db-snapshot-attribute --region {REGION} --db-snapshot-identifier "
        "orders-final --attribute-name restore --values-to-remove all"
    )


async def test_snapshot_shared_with_one_account_is_not_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    database(aws, "orders", public=False)
    rds = aws.client("rds")
    rds.create_db_snapshot(DBSnapshotIdentifier="orders-final", DBInstanceIdentifier="orders")
    rds.modify_db_snapshot_attribute(
        DBSnapshotIdentifier="orders-final", AttributeName="restore", ValuesToAdd=["210987654321"]
    )
    assert await judge(rules.rds_snapshot_public, aws_sweep) == []


# --- Redshift and OpenSearch -------------------------------------------------------------


def warehouse(aws: Aws, *, public: bool, groups: list[str], network: str | None = None) -> None:
    placed = {"ClusterSubnetGroupName": network} if network else {}
    aws.client("redshift").create_cluster(
        **placed,
        ClusterIdentifier="warehouse",
        ClusterType="single-node",
        NodeType="ra3.large",
        MasterUsername="admin",
        MasterUserPassword="Not-a-real-password1",
        PubliclyAccessible=public,
        VpcSecurityGroupIds=groups,
    )


async def test_public_redshift_cluster_is_reported(aws: Aws, aws_sweep: SweepContext) -> None:
    igw, main = internet_gateway(aws)
    subnet = subnets(aws)[0]
    aws.client("redshift").create_cluster_subnet_group(
        ClusterSubnetGroupName="warehouse-net", Description="warehouse", SubnetIds=[subnet]
    )
    gid = security_group(aws, "warehouse", ("tcp", 5439, 5439, "::/0"))
    warehouse(aws, public=True, groups=[gid], network="warehouse-net")
    [finding] = await judge(rules.redshift_public, aws_sweep)
    assert finding.severity == "critical"
    assert finding.resource == f"arn:aws:redshift:{REGION}:{ACCOUNT}:cluster:warehouse"
    assert finding.evidence == (
        f"Redshift cluster warehouse (port 5439) is publicly accessible; security group {gid} "
        f"(warehouse) allows port 5439 from ::/0; {subnet} routes 0.0.0.0/0 to {igw} "
        f"({main} (main))"
    )


async def test_public_redshift_cluster_without_an_internet_route_is_medium(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    aws.client("redshift").create_cluster_subnet_group(
        ClusterSubnetGroupName="warehouse-net", Description="warehouse", SubnetIds=subnets(aws)[:1]
    )
    gid = security_group(aws, "warehouse", ("tcp", 5439, 5439, "0.0.0.0/0"))
    warehouse(aws, public=True, groups=[gid], network="warehouse-net")
    [finding] = await judge(rules.redshift_public, aws_sweep)
    assert finding.severity == "medium"
    assert "has no route to an internet gateway" in finding.evidence


async def test_private_redshift_cluster_is_not_reported(aws: Aws, aws_sweep: SweepContext) -> None:
    warehouse(aws, public=False, groups=[security_group(aws, "warehouse")])
    assert await judge(rules.redshift_public, aws_sweep) == []


async def test_domain_outside_a_vpc_open_to_anyone_is_high(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    aws.client("opensearch").create_domain(
        DomainName="logs", AccessPolicies=json.dumps(OPEN_POLICY)
    )
    [finding] = await judge(rules.opensearch_public, aws_sweep)
    assert finding.severity == "high"
    assert finding.resource == f"arn:aws:es:{REGION}:{ACCOUNT}:domain/logs"
    assert finding.evidence.startswith("OpenSearch domain logs has a public endpoint (")
    assert finding.evidence.endswith(
        ") and its access policy lets anyone in: statement 1 allows es:* to anyone (no condition)"
    )


@pytest.mark.parametrize("source", ["*", "0.0.0.0/0", "::/0"])
async def test_domain_open_under_a_source_ip_condition_that_admits_anyone_is_found(
    aws: Aws, aws_sweep: SweepContext, source: str
) -> None:
    statement = OPEN_POLICY["Statement"][0] | {
        "Sid": "LooksRestricted",
        "Condition": {"IpAddress": {"aws:SourceIp": [source]}},
    }
    policy = OPEN_POLICY | {"Statement": [statement]}
    aws.client("opensearch").create_domain(DomainName="logs", AccessPolicies=json.dumps(policy))
    [finding] = await judge(rules.opensearch_public, aws_sweep)
    assert finding.evidence.endswith(
        f"lets anyone in: LooksRestricted allows es:* to anyone (aws:SourceIp allows {source})"
    )


async def test_domain_restricted_to_a_vpc_endpoint_by_a_deny_is_not_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "es:*",
        "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-0123"}},
    }
    policy = OPEN_POLICY | {"Statement": [*OPEN_POLICY["Statement"], deny]}
    aws.client("opensearch").create_domain(DomainName="logs", AccessPolicies=json.dumps(policy))
    assert await judge(rules.opensearch_public, aws_sweep) == []


async def test_domain_with_a_source_ip_condition_is_not_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    statement = OPEN_POLICY["Statement"][0] | {
        "Condition": {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}}
    }
    policy = OPEN_POLICY | {"Statement": [statement]}
    aws.client("opensearch").create_domain(DomainName="logs", AccessPolicies=json.dumps(policy))
    assert await judge(rules.opensearch_public, aws_sweep) == []


# --- security groups ---------------------------------------------------------------------


async def test_ssh_open_to_the_internet_is_high_with_the_attached_interfaces(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    gid = security_group(aws, "bastion", ("tcp", 22, 22, "0.0.0.0/0"), ("tcp", 22, 22, "::/0"))
    ec2 = aws.client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SecurityGroupIds=[gid], SubnetId=subnet
    )
    [finding] = await judge(rules.sg_open_ssh, aws_sweep)
    vpc = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["VpcId"]
    assert finding.severity == "high"
    assert finding.resource == f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{gid}"
    assert finding.evidence == (
        f"security group bastion ({gid}, {vpc}) allows tcp 22 (SSH) from 0.0.0.0/0 and ::/0; "
        "attached to 1 network interface"
    )
    assert finding.remediation_cli == (
        f"aws ec2 revoke-security-group-ingress --region {REGION} --group-id {gid} "
        """--ip-permissions '[{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"""
        """"IpRanges":[{"CidrIp":"0.0.0.0/0"}],"Ipv6Ranges":[{"CidrIpv6":"::/0"}]}]'"""
    )


async def test_ssh_open_to_a_private_range_is_not_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    security_group(aws, "bastion", ("tcp", 22, 22, "10.0.0.0/8"))
    assert await judge(rules.sg_open_ssh, aws_sweep) == []


async def test_rdp_open_over_ipv6_is_high(aws: Aws, aws_sweep: SweepContext) -> None:
    gid = security_group(aws, "windows", ("tcp", 3389, 3389, "::/0"))
    [finding] = await judge(rules.sg_open_rdp, aws_sweep)
    assert finding.severity == "high"
    assert f"({gid}, " in finding.evidence
    assert "allows tcp 3389 (RDP) from ::/0; attached to 0 network interfaces" in finding.evidence


async def test_rdp_closed_is_not_reported(aws: Aws, aws_sweep: SweepContext) -> None:
    security_group(aws, "windows", ("tcp", 443, 443, "0.0.0.0/0"))
    assert await judge(rules.sg_open_rdp, aws_sweep) == []


async def test_port_range_covering_database_ports_is_reported_once_per_group(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    security_group(
        aws, "legacy", ("tcp", 3000, 6000, "0.0.0.0/0"), ("tcp", 6379, 6379, "0.0.0.0/0")
    )
    [finding] = await judge(rules.sg_open_db, aws_sweep)
    assert finding.severity == "high"
    assert (
        "allows tcp 3000-6000 (covers 3306 MySQL, 5432 PostgreSQL, 5439 Redshift) from "
        "0.0.0.0/0; tcp 6379 (Redis) from 0.0.0.0/0;" in finding.evidence
    )


async def test_database_port_open_to_the_vpc_only_is_not_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    security_group(aws, "db", ("tcp", 5432, 5432, "172.31.0.0/16"))
    assert await judge(rules.sg_open_db, aws_sweep) == []


async def test_all_traffic_from_the_internet_is_critical_and_only_reported_as_such(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    gid = security_group(aws, "wide-open", ("-1", 0, 0, "0.0.0.0/0"))
    [finding] = await judge(rules.sg_open_all, aws_sweep)
    assert finding.severity == "critical"
    assert f"({gid}, " in finding.evidence
    assert "allows all traffic from 0.0.0.0/0" in finding.evidence
    assert await judge(rules.sg_open_ssh, aws_sweep) == []
    assert await judge(rules.sg_open_db, aws_sweep) == []


async def test_every_tcp_port_from_the_internet_counts_as_all_traffic(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    security_group(aws, "all-tcp", ("tcp", 0, 65535, "::/0"))
    [finding] = await judge(rules.sg_open_all, aws_sweep)
    assert "allows tcp 0-65535 (covers 22 SSH, 3389 RDP, 3306 MySQL" in finding.evidence


async def test_default_groups_are_not_open_to_all(aws: Aws, aws_sweep: SweepContext) -> None:
    # moto's default VPC group admits all traffic from itself only, and egress everywhere.
    assert await judge(rules.sg_open_all, aws_sweep) == []


# --- scope and failure -------------------------------------------------------------------


async def test_denied_dataset_raises_collect_error_naming_the_action(
    aws: Aws, aws_sweep: SweepContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    security_group(aws, "bastion", ("tcp", 22, 22, "0.0.0.0/0"))
    restricted_user(aws, monkeypatch, allow=["rds:Describe*"])
    with pytest.raises(CollectError) as denied:
        await judge(rules.sg_open_ssh, aws_sweep)
    assert str(denied.value) == (
        "AccessDenied on ec2:DescribeSecurityGroups: grant it to the role or user of the "
        f"default profile (User: arn:aws:iam::{ACCOUNT}:user/watchkeeper is not authorized to "
        "perform: ec2:DescribeSecurityGroups)"
    )
    assert await judge(rules.rds_snapshot_public, aws_sweep) == []  # other datasets still work


async def test_without_regions_the_sessions_default_region_is_swept(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    security_group(aws, "bastion", ("tcp", 22, 22, "0.0.0.0/0"))
    aws_sweep.aws = AwsScope()
    [finding] = await judge(rules.sg_open_ssh, aws_sweep)
    assert finding.location == REGION


def test_rule_ids_are_unique_and_every_rule_is_a_security_rule() -> None:
    ids = [rule.meta.id for rule in rules.RULES]
    assert len(ids) == len(set(ids))
    assert {rule.meta.kind for rule in rules.RULES} == {"security"}
    assert {rule.meta.service for rule in rules.RULES} == {
        "aws:ec2",
        "aws:rds",
        "aws:redshift",
        "aws:opensearch",
    }


def test_importing_the_rules_does_not_import_boto3() -> None:
    code = (
        "import sys, jobs.sweeps.aws.security, jobs.sweeps.aws.security_account, "
        "jobs.sweeps.aws.security_policies, jobs.sweeps.aws.security_config, "
        "jobs.sweeps.aws.security_access, jobs.sweeps.aws.security_exposure, "
        "jobs.sweeps.compliance, daemon.sweeps.compliance; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
