"""EC2 exposure against moto, Prowler's ec2_instance_port_*_exposed_to_internet scenarios: an
open group is critical only with a public IP and a route to an internet gateway."""

from __future__ import annotations

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
