"""AWS cost rules for resources on an older, dearer generation of the same thing: gp2 volumes
that would cost less as gp3, and instances of previous-generation families. Each says what
moving saves per month, priced from `prices.py`; severity follows the saving (`by_savings`).

gp2 → gp3, priced like for like. gp2's performance grows with size (3 IOPS per GiB, at least
100 and at most 16,000; 128 MiB/s up to 170 GiB, up to 250 MiB/s above, the full 250 from
334 GiB). gp3 includes 3,000 IOPS and 125 MiB/s whatever its size, which covers every gp2 volume
up to 1 TiB (gp2 reaches 3,000 IOPS at 1,000 GiB). So the gp3 price compared is the price of a
gp3 volume provisioned with the gp2 volume's own baseline: its IOPS when above 3,000, and
250 MiB/s for volumes over 170 GiB. That never promises less than the volume has now. With the
list prices that is always a saving (at 2 TiB: 3,144 extra IOPS and 125 extra MiB/s still leave
≈ $20/mo); a site's own prices may not, and then the volume is skipped, not reported at a loss.
Detached gp2 volumes are skipped too: `aws.ebs.unattached` already says deleting them saves the
whole volume, and counting both would add the same money twice.

Previous generation: the families AWS's DescribeInstanceTypes answers `CurrentGeneration:
false` for (AWS's "Previous generation instances" page: a1, c1, c3, c4, cc2, cr1, d2, g2, g3,
hi1, hs1, i2, m1, m2, m3, m4, p2, r3, r4, t1), plus t2, which AWS still lists as current but
whose successor t3 costs about 10% less at every size with the same burst model (the check
cost tools such as Steampipe's aws_thrifty make too). Each is mapped to the x86 successor of
the same size (Intel, so an AMI built for the old family boots; a1 to Graviton m6g), and the
saving is the list-price difference when both are in the price table, "unknown" otherwise.
"""

from __future__ import annotations

from daemon.models import Severity
from jobs.sweeps.aws.collect import identity, running_instances, volumes
from jobs.sweeps.aws.cost import labelled, prices
from jobs.sweeps.aws.prices import GP3_FREE_IOPS, GP3_FREE_THROUGHPUT_MIBPS, HOURS_PER_MONTH, usd
from jobs.sweeps.aws.resources import Volume
from jobs.sweeps.aws.rule import REGION
from jobs.sweeps.base import Rule, RuleMeta, SweepContext
from jobs.sweeps.rule import Hit, by_savings, rule

GP2_IOPS_PER_GIB = 3
GP2_MIN_IOPS, GP2_MAX_IOPS = 100, 16_000
GP2_SMALL_MAX_GIB = 170
"""Up to this size a gp2 volume delivers 128 MiB/s (gp3's included 125 covers it)."""
GP2_MAX_THROUGHPUT_MIBPS = 250

PREVIOUS_GENERATION: dict[str, str] = {
    # DescribeInstanceTypes CurrentGeneration=false, and its same-size x86 successor.
    "t1": "t3",
    "m1": "m6i",
    "m2": "r6i",
    "m3": "m6i",
    "m4": "m6i",
    "c1": "c6i",
    "c3": "c6i",
    "c4": "c6i",
    "cc2": "c6i",
    "r3": "r6i",
    "r4": "r6i",
    "cr1": "r6i",
    "i2": "i3",
    "hi1": "i3",
    "d2": "d3",
    "hs1": "d3",
    "g2": "g4dn",
    "g3": "g4dn",
    "p2": "p3",
    "a1": "m6g",
    # Listed as current by AWS, but t3 is cheaper at every size with the same burst credits.
    "t2": "t3",
}
NO_MEDIUM = frozenset({"m6i", "c6i", "r6i"})
"""Successors whose smallest size is large: a `medium` moves up one size."""


def gp2_baseline(size_gib: int) -> tuple[int, int]:
    """The IOPS and MiB/s a gp2 volume of this size sustains (its baseline, not its burst)."""
    iops = min(max(size_gib * GP2_IOPS_PER_GIB, GP2_MIN_IOPS), GP2_MAX_IOPS)
    throughput = (
        GP3_FREE_THROUGHPUT_MIBPS if size_gib <= GP2_SMALL_MAX_GIB else GP2_MAX_THROUGHPUT_MIBPS
    )
    return iops, throughput


@rule(
    RuleMeta(
        id="aws.ebs.gp2",
        title="EBS volume is gp2; gp3 costs less for the same performance",
        kind="cost",
        severity=Severity.LOW,
        risk="gp2 costs 20% more per GiB than gp3, and ties its IOPS to its size.",
        remediation="Modify the volume to gp3 (online, no detach or restart), keeping the IOPS "
        "and throughput in the command; the change takes effect within minutes and the volume "
        "cannot be modified again for six hours.",
        service="aws:ec2",
    ),
    REGION,
    severity=by_savings,
)
async def gp2_volumes(ctx: SweepContext, region: str) -> list[Hit]:
    table, hits = prices(ctx), []
    attached = [v for v in await volumes(ctx, region) if v.type == "gp2" and v.state == "in-use"]
    for vol in attached:
        iops, throughput = gp2_baseline(vol.size_gib)
        now = table.volume_monthly("gp2", vol.size_gib, None, None)
        then = table.volume_monthly("gp3", vol.size_gib, iops, throughput)
        if now is None or then is None or now - then <= 0:
            continue  # no price to compare, or gp3 at this performance costs as much or more
        extra = _provisioned(iops, throughput)
        evidence = (
            f"{labelled(vol.id, f'gp2, {vol.size_gib:,} GiB', _owner(vol), vol.name)} costs "
            f"≈ {usd(now)}/mo; as gp3 with its baseline {iops:,} IOPS and {throughput} MiB/s "
            f"({extra}) it would cost ≈ {usd(then)}/mo — modifying it saves "
            f"≈ {usd(now - then)}/mo"
        )
        arn = (await identity(ctx)).arn("ec2", region, f"volume/{vol.id}")
        keep = f" --iops {iops}" if iops > GP3_FREE_IOPS else ""
        keep += f" --throughput {throughput}" if throughput > GP3_FREE_THROUGHPUT_MIBPS else ""
        cli = (
            f"aws ec2 modify-volume --volume-id {vol.id} --volume-type gp3{keep} --region {region}"
        )
        hits.append(Hit(arn, evidence, command=cli, savings=now - then))
    return hits


def _owner(vol: Volume) -> str | None:
    return f"on {vol.attachments[0].instance_id}" if vol.attachments else None


def _provisioned(iops: int, throughput: int) -> str:
    extra = [
        f"{iops - GP3_FREE_IOPS:,} IOPS" if iops > GP3_FREE_IOPS else "",
        f"{throughput - GP3_FREE_THROUGHPUT_MIBPS} MiB/s"
        if throughput > GP3_FREE_THROUGHPUT_MIBPS
        else "",
    ]
    shown = " and ".join(e for e in extra if e)
    return f"{shown} provisioned above the included" if shown else "all included"


def successor(instance_type: str) -> tuple[str, str] | None:
    """(the current-generation type to move to, a note when its size differs), or None when
    the type is not of a previous generation."""
    family, _, size = instance_type.partition(".")
    new = PREVIOUS_GENERATION.get(family)
    if new is None or not size:
        return None
    if size == "medium" and new in NO_MEDIUM:
        return f"{new}.large", f"; {new} has no medium size, so one size up"
    return f"{new}.{size}", ""


@rule(
    RuleMeta(
        id="aws.ec2.previous_generation",
        title="EC2 instance runs a previous-generation type",
        kind="cost",
        severity=Severity.LOW,
        risk="Previous-generation instances cost as much or more than their successors for "
        "less performance, and AWS adds no capacity for them.",
        remediation="Stop the instance, change its type to the current-generation one named "
        "(check the AMI supports ENA and NVMe first: t2/m4/c4/r4 era AMIs may not), and start "
        "it again — or change it in its launch template or Auto Scaling group.",
        service="aws:ec2",
    ),
    REGION,
    severity=by_savings,
)
async def previous_generation(ctx: SweepContext, region: str) -> list[Hit]:
    table, hits = prices(ctx), []
    for vm in await running_instances(ctx, region):
        moved = successor(vm.type)
        if moved is None:
            continue
        new, note = moved
        old_hourly, new_hourly = table.ec2_hourly.get(vm.type), table.ec2_hourly.get(new)
        if old_hourly is None or new_hourly is None:
            savings = None
            unknown = vm.type if old_hourly is None else new
            price = (
                f"saving unknown: no price for {unknown}; add it under [[sweeps]] prices.ec2_hourly"
            )
        else:
            difference = (old_hourly - new_hourly) * HOURS_PER_MONTH
            savings = max(difference, 0.0)
            price = (
                f"moving saves ≈ {usd(difference)}/mo at list price"
                if difference > 0
                else f"it costs ≈ {usd(-difference)}/mo more at list price, for a faster instance"
            )
        evidence = (
            f"{labelled(vm.id, vm.type, vm.name)} is a previous-generation type; the current "
            f"generation is {new}{note} — {price}"
        )
        arn = (await identity(ctx)).arn("ec2", region, f"instance/{vm.id}")
        cli = (
            f"aws ec2 stop-instances --instance-ids {vm.id} --region {region} && "
            f"aws ec2 wait instance-stopped --instance-ids {vm.id} --region {region} && "
            f"aws ec2 modify-instance-attribute --instance-id {vm.id} --instance-type Value={new} "
            f"--region {region} && aws ec2 start-instances --instance-ids {vm.id} --region {region}"
        )
        hits.append(Hit(arn, evidence, command=cli, savings=savings))
    return hits


RULES: list[Rule] = [gp2_volumes, previous_generation]
