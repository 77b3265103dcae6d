"""gp2 → gp3 and previous-generation instances against moto's server: a finding case priced
from prices.py and a clean case per rule. moto gives every instance an 8 GiB gp2 root volume
(as AWS did by default for years), which the gp2 rule rightly reports too."""

from __future__ import annotations

from jobs.base import CheckContext
from jobs.sweeps.aws import cost_modernise as rules
from jobs.sweeps.aws.prices import DEFAULT_PRICES
from tests.jobs.sweeps.aws.test_cost import evaluate, launch
from tests.peers.aws import ACCOUNT, REGION, Aws

pytest_plugins = ["tests.peers.aws_fixtures"]


def attach(aws: Aws, instance: str, size: int, volume_type: str, device: str) -> str:
    ec2 = aws.client("ec2")
    made = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=size, VolumeType=volume_type)
    ec2.attach_volume(VolumeId=made["VolumeId"], InstanceId=instance, Device=device)
    volume: str = made["VolumeId"]
    return volume


def root_volume(aws: Aws, instance: str) -> str:
    found = aws.client("ec2").describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance]}]
    )
    [root] = [
        v["VolumeId"] for v in found["Volumes"] if v["Attachments"][0]["Device"] == "/dev/sda1"
    ]
    return root


def arn(volume: str) -> str:
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/{volume}"


async def test_gp2_volumes_are_priced_as_gp3_with_their_own_performance(
    aws: Aws, ctx: CheckContext
) -> None:
    db = launch(aws, "m5.large", "db-1")
    big = attach(aws, db, 2000, "gp2", "/dev/sdf")
    small = attach(aws, db, 100, "gp2", "/dev/sdg")
    attach(aws, db, 500, "gp3", "/dev/sdh")
    aws.client("ec2").create_volume(AvailabilityZone=f"{REGION}a", Size=300, VolumeType="gp2")
    found = {f.resource: f for f in await evaluate(rules.gp2_volumes, ctx)}
    # The detached gp2 volume is aws.ebs.unattached's (delete it), not counted twice; gp3 is fine.
    assert set(found) == {arn(big), arn(small), arn(root_volume(aws, db))}
    # 2,000 GiB gp2: $200.00/mo, 6,000 IOPS baseline and 250 MiB/s. As gp3: 2,000 x $0.08
    # + 3,000 extra IOPS x $0.005 + 125 extra MiB/s x $0.04 = $160 + $15 + $5 = $180.00.
    assert found[arn(big)].evidence == (
        f"{big} (gp2, 2,000 GiB, on {db}) costs ≈ $200.00/mo; as gp3 with its baseline 6,000 IOPS "
        "and 250 MiB/s (3,000 IOPS and 125 MiB/s provisioned above the included) it would cost "
        "≈ $180.00/mo — modifying it saves ≈ $20.00/mo"
    )
    assert round(found[arn(big)].est_monthly_savings_usd or 0, 2) == 20.0
    assert found[arn(big)].severity == "low"
    assert found[arn(big)].remediation_cli == (
        f"aws ec2 modify-volume --volume-id {big} --volume-type gp3 --iops 6000 "
        f"--throughput 250 --region {REGION}"
    )
    # 100 GiB: 300 IOPS and 128 MiB/s, both inside gp3's included 3,000 and 125: $10 → $8.
    assert "with its baseline 300 IOPS and 125 MiB/s (all included)" in found[arn(small)].evidence
    assert round(found[arn(small)].est_monthly_savings_usd or 0, 2) == 2.0
    assert found[arn(small)].remediation_cli == (
        f"aws ec2 modify-volume --volume-id {small} --volume-type gp3 --region {REGION}"
    )


async def test_gp3_volumes_and_a_gp3_dearer_than_gp2_are_no_finding(
    aws: Aws, ctx: CheckContext
) -> None:
    db = launch(aws, "m5.large", "db-1")
    attach(aws, db, 500, "gp3", "/dev/sdf")
    assert len(await evaluate(rules.gp2_volumes, ctx)) == 1  # the 8 GiB gp2 root volume
    # A site whose gp3 price is gp2's: moving saves nothing, so nothing is reported.
    same = {"ebs_gib_month": {"gp3": DEFAULT_PRICES.ebs_gib_month["gp2"]}}
    assert await evaluate(rules.gp2_volumes, ctx, prices=same) == []


def test_gp2_baseline_follows_its_size() -> None:
    assert rules.gp2_baseline(8) == (100, 125)  # the 100 IOPS floor
    assert rules.gp2_baseline(1000) == (3000, 250)  # gp3's included IOPS cover up to 1 TiB
    assert rules.gp2_baseline(16_384) == (16_000, 250)  # the ceiling


def instance_arn(instance: str) -> str:
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance}"


async def test_previous_generation_instances_name_their_successor_and_price(
    aws: Aws, ctx: CheckContext
) -> None:
    c4, t2 = launch(aws, "c4.xlarge", "batch"), launch(aws, "t2.micro", "bastion")
    m3, i2 = launch(aws, "m3.medium", "legacy"), launch(aws, "i2.4xlarge", "store")
    launch(aws, "m6i.large", "web")
    found = {f.resource: f for f in await evaluate(rules.previous_generation, ctx)}
    assert set(found) == {instance_arn(i) for i in (c4, t2, m3, i2)}
    # c4.xlarge $0.199/h → c6i.xlarge $0.17/h: $0.029 x 730 = $21.17/mo.
    assert found[instance_arn(c4)].evidence == (
        f"{c4} (c4.xlarge, batch) is a previous-generation type; the current generation is "
        "c6i.xlarge — moving saves ≈ $21.17/mo at list price"
    )
    assert round(found[instance_arn(c4)].est_monthly_savings_usd or 0, 2) == 21.17
    assert found[instance_arn(c4)].remediation_cli == (
        f"aws ec2 stop-instances --instance-ids {c4} --region {REGION} && aws ec2 wait "
        f"instance-stopped --instance-ids {c4} --region {REGION} && aws ec2 "
        f"modify-instance-attribute --instance-id {c4} --instance-type Value=c6i.xlarge "
        f"--region {REGION} && aws ec2 start-instances --instance-ids {c4} --region {REGION}"
    )
    # t2.micro $0.0116 → t3.micro $0.0104: $0.876/mo.
    assert "the current generation is t3.micro — moving saves ≈ $0.88/mo" in (
        found[instance_arn(t2)].evidence
    )
    # m6i has no medium: one size up costs more, said as such, saving 0.
    m3_found = found[instance_arn(m3)]
    assert m3_found.evidence.endswith(
        "the current generation is m6i.large; m6i has no medium size, so one size up — it costs "
        "≈ $21.17/mo more at list price, for a faster instance"
    )
    assert m3_found.est_monthly_savings_usd == 0.0
    # Neither i2.4xlarge nor i3.4xlarge is in the table: still a finding, saving unknown.
    i2_found = found[instance_arn(i2)]
    assert i2_found.est_monthly_savings_usd is None
    assert i2_found.evidence.endswith(
        "i3.4xlarge — saving unknown: no price for i2.4xlarge; add it under [[sweeps]] "
        "prices.ec2_hourly"
    )


async def test_current_generation_instances_are_no_finding(aws: Aws, ctx: CheckContext) -> None:
    for instance_type in ("t3.micro", "m6i.large", "c7i.large", "r5.large", "t4g.small"):
        launch(aws, instance_type, instance_type)
    assert await evaluate(rules.previous_generation, ctx) == []


def test_every_previous_family_maps_to_a_current_one() -> None:
    assert not set(rules.PREVIOUS_GENERATION) & set(rules.PREVIOUS_GENERATION.values())
    assert rules.successor("m4.large") == ("m6i.large", "")
    assert rules.successor("m5.large") is None and rules.successor("t2") is None
