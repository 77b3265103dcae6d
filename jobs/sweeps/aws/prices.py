"""On-demand list prices (USD, us-east-1) that the cost rules turn into monthly savings.

The figures come from the AWS public price list pages as of 2026 (Linux, on-demand, no
Savings Plans or Reserved Instances). Other regions differ by a few percent, which is why
every estimate is written "≈". A price this table does not know is `None`, never 0: a guessed
saving is worse than none. Sites override or extend it with `prices` in the `[[sweeps]]`
table, e.g. `[sweeps.prices.ec2_hourly]` then `"x1e.32xlarge" = 26.688`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from types import MappingProxyType
from typing import Any

HOURS_PER_MONTH = 730
"""AWS's own convention for turning hourly prices into monthly ones (8,760 h / 12)."""

GP3_FREE_IOPS = 3000
GP3_FREE_THROUGHPUT_MIBPS = 125
OPEN_SOURCE_ENGINES = frozenset({"mysql", "mariadb", "postgres"})
"""RDS engines `rds_instance_hourly`'s bare instance classes price."""

_EC2_HOURLY = {
    # General purpose, burstable (Intel / Graviton).
    "t3.nano": 0.0052,
    "t3.micro": 0.0104,
    "t3.small": 0.0208,
    "t3.medium": 0.0416,
    "t3.large": 0.0832,
    "t3.xlarge": 0.1664,
    "t3.2xlarge": 0.3328,
    "t4g.nano": 0.0042,
    "t4g.micro": 0.0084,
    "t4g.small": 0.0168,
    "t4g.medium": 0.0336,
    "t4g.large": 0.0672,
    "t4g.xlarge": 0.1344,
    "t4g.2xlarge": 0.2688,
    # General purpose.
    "m5.large": 0.096,
    "m5.xlarge": 0.192,
    "m5.2xlarge": 0.384,
    "m5.4xlarge": 0.768,
    "m6i.large": 0.096,
    "m6i.xlarge": 0.192,
    "m6i.2xlarge": 0.384,
    "m6i.4xlarge": 0.768,
    "m7i.large": 0.1008,
    "m7i.xlarge": 0.2016,
    "m7i.2xlarge": 0.4032,
    "m7i.4xlarge": 0.8064,
    # Compute optimised.
    "c5.large": 0.085,
    "c5.xlarge": 0.17,
    "c5.2xlarge": 0.34,
    "c5.4xlarge": 0.68,
    "c6i.large": 0.085,
    "c6i.xlarge": 0.17,
    "c6i.2xlarge": 0.34,
    "c6i.4xlarge": 0.68,
    "c7i.large": 0.08925,
    "c7i.xlarge": 0.1785,
    "c7i.2xlarge": 0.357,
    "c7i.4xlarge": 0.714,
    # Memory optimised.
    "r5.large": 0.126,
    "r5.xlarge": 0.252,
    "r5.2xlarge": 0.504,
    "r6i.large": 0.126,
    "r6i.xlarge": 0.252,
    "r6i.2xlarge": 0.504,
    # Previous generations and their successors, for aws.ec2.previous_generation: approximate
    # us-east-1 Linux on-demand list prices, read December 2026 (AWS's "Previous generation
    # instances" price page and the EC2 on-demand pricing page).
    "t2.nano": 0.0058,
    "t2.micro": 0.0116,
    "t2.small": 0.023,
    "t2.medium": 0.0464,
    "t2.large": 0.0928,
    "t2.xlarge": 0.1856,
    "t2.2xlarge": 0.3712,
    "m3.medium": 0.067,
    "m3.large": 0.133,
    "m3.xlarge": 0.266,
    "m3.2xlarge": 0.532,
    "m4.large": 0.10,
    "m4.xlarge": 0.20,
    "m4.2xlarge": 0.40,
    "m4.4xlarge": 0.80,
    "c3.large": 0.105,
    "c3.xlarge": 0.21,
    "c3.2xlarge": 0.42,
    "c4.large": 0.10,
    "c4.xlarge": 0.199,
    "c4.2xlarge": 0.398,
    "c4.4xlarge": 0.796,
    "r3.large": 0.166,
    "r3.xlarge": 0.333,
    "r3.2xlarge": 0.665,
    "r4.large": 0.133,
    "r4.xlarge": 0.266,
    "r4.2xlarge": 0.532,
    "i2.xlarge": 0.853,
    "i2.2xlarge": 1.705,
    "i3.large": 0.156,
    "i3.xlarge": 0.312,
    "i3.2xlarge": 0.624,
    "d2.xlarge": 0.69,
    "d2.2xlarge": 1.38,
    "d3.xlarge": 0.499,
    "d3.2xlarge": 0.999,
}

_EBS_GIB_MONTH = {
    "gp2": 0.10,
    "gp3": 0.08,
    "io1": 0.125,
    "io2": 0.125,
    "st1": 0.045,
    "sc1": 0.015,
    "standard": 0.05,
}

_EBS_IOPS_MONTH = {
    "io1": 0.065,
    # io2 is tiered: cheaper above 32,000 IOPS, so this is an upper bound there.
    "io2": 0.065,
    # gp3 includes 3,000 IOPS; only those above are charged.
    "gp3": 0.005,
}

_LB_HOURLY = {
    # The fixed hourly charge only: an idle load balancer uses next to no LCUs.
    "application": 0.0225,
    "network": 0.0225,
}


_CACHE_NODE_HOURLY = {
    # ElastiCache on-demand nodes (Redis OSS / Valkey / Memcached list price).
    "cache.t3.micro": 0.017,
    "cache.t3.small": 0.034,
    "cache.t3.medium": 0.068,
    "cache.t4g.micro": 0.016,
    "cache.t4g.small": 0.032,
    "cache.t4g.medium": 0.065,
    "cache.m5.large": 0.156,
    "cache.m5.xlarge": 0.311,
    "cache.m6g.large": 0.149,
    "cache.m6g.xlarge": 0.297,
    "cache.m7g.large": 0.158,
    "cache.r5.large": 0.216,
    "cache.r5.xlarge": 0.431,
    "cache.r6g.large": 0.206,
    "cache.r6g.xlarge": 0.411,
    "cache.r7g.large": 0.219,
}

_SEARCH_INSTANCE_HOURLY = {
    # OpenSearch Service on-demand instances (storage is billed apart and not counted).
    "t3.small.search": 0.036,
    "t3.medium.search": 0.073,
    "m5.large.search": 0.142,
    "m6g.large.search": 0.128,
    "m6g.xlarge.search": 0.256,
    "c5.large.search": 0.125,
    "c6g.large.search": 0.113,
    "r5.large.search": 0.186,
    "r6g.large.search": 0.167,
    "r6g.xlarge.search": 0.335,
}

_RDS_INSTANCE_HOURLY = {
    # RDS Single-AZ on-demand instances, MySQL/MariaDB list price (PostgreSQL is ~4% dearer, so
    # its saving errs low); approximate us-east-1 prices, read December 2026. Other engines
    # (Aurora, Oracle, SQL Server, Db2) are priced only under "<engine>:<class>" keys a site adds,
    # e.g. "aurora-postgresql:db.r6g.large" = 0.26. Storage and backups are billed apart.
    "db.t3.micro": 0.017,
    "db.t3.small": 0.034,
    "db.t3.medium": 0.068,
    "db.t3.large": 0.136,
    "db.t4g.micro": 0.016,
    "db.t4g.small": 0.032,
    "db.t4g.medium": 0.065,
    "db.t4g.large": 0.129,
    "db.m5.large": 0.171,
    "db.m5.xlarge": 0.342,
    "db.m5.2xlarge": 0.684,
    "db.m6g.large": 0.152,
    "db.m6g.xlarge": 0.304,
    "db.m6i.large": 0.171,
    "db.m6i.xlarge": 0.342,
    "db.r5.large": 0.24,
    "db.r5.xlarge": 0.48,
    "db.r6g.large": 0.215,
    "db.r6g.xlarge": 0.43,
    "db.r6i.large": 0.24,
    "db.r6i.xlarge": 0.48,
}

_S3_GIB_MONTH = {
    # S3 storage by class, first 50 TB tier: what a lifecycle transition moves data between.
    "STANDARD": 0.023,
    "STANDARD_IA": 0.0125,
    "GLACIER_IR": 0.004,
}


@dataclass(frozen=True)
class PriceTable:
    """The prices one sweep uses: the defaults above, with the site's overrides merged in."""

    ec2_hourly: Mapping[str, float]
    """Per instance type, per hour."""
    ebs_gib_month: Mapping[str, float]
    """Per volume type, per GiB-month of provisioned size."""
    ebs_iops_month: Mapping[str, float]
    """Per volume type, per provisioned IOPS-month (gp3: above the 3,000 included)."""
    ebs_gp3_throughput_month: float
    """Per MiB/s-month of gp3 throughput above the 125 MiB/s included."""
    snapshot_gib_month: float
    """EBS snapshot storage (standard tier), per GiB-month."""
    eip_hourly: float
    """A public IPv4 address, attached or idle (charged since February 2024)."""
    lb_hourly: Mapping[str, float]
    """Per elbv2 load balancer type ("application", "network"), per hour."""
    cache_node_hourly: Mapping[str, float]
    """Per ElastiCache node type, per node-hour."""
    search_instance_hourly: Mapping[str, float]
    """Per OpenSearch instance type, per instance-hour."""
    s3_gib_month: Mapping[str, float]
    """Per S3 storage class, per GiB-month."""
    rds_instance_hourly: Mapping[str, float]
    """Per RDS instance class (MySQL/MariaDB/PostgreSQL) or "<engine>:<class>", per hour."""
    nat_gateway_hourly: float
    """A NAT gateway's hourly charge (its per-GB processing charge is apart)."""

    def ec2_monthly(self, instance_type: str) -> float | None:
        hourly = self.ec2_hourly.get(instance_type)
        return None if hourly is None else hourly * HOURS_PER_MONTH

    def volume_monthly(
        self, volume_type: str, size_gib: int, iops: int | None, throughput: int | None
    ) -> float | None:
        per_gib = self.ebs_gib_month.get(volume_type)
        if per_gib is None:
            return None
        total = size_gib * per_gib
        per_iops = self.ebs_iops_month.get(volume_type)
        if per_iops is not None and iops:
            free = GP3_FREE_IOPS if volume_type == "gp3" else 0
            total += max(iops - free, 0) * per_iops
        if volume_type == "gp3" and throughput:
            extra = max(throughput - GP3_FREE_THROUGHPUT_MIBPS, 0)
            total += extra * self.ebs_gp3_throughput_month
        return total

    def snapshot_monthly(self, size_gib: int) -> float:
        return size_gib * self.snapshot_gib_month

    def eip_monthly(self) -> float:
        return self.eip_hourly * HOURS_PER_MONTH

    def lb_monthly(self, lb_type: str) -> float | None:
        hourly = self.lb_hourly.get(lb_type)
        return None if hourly is None else hourly * HOURS_PER_MONTH

    def cache_monthly(self, node_type: str, nodes: int) -> float | None:
        hourly = self.cache_node_hourly.get(node_type)
        return None if hourly is None else hourly * nodes * HOURS_PER_MONTH

    def search_monthly(self, instances: Mapping[str, int]) -> float | None:
        """The instance-hours of a domain (data nodes, dedicated masters, warm nodes), by
        type; None when one type's price is unknown."""
        if any(t not in self.search_instance_hourly for t in instances):
            return None
        hourly = sum(self.search_instance_hourly[t] * n for t, n in instances.items())
        return hourly * HOURS_PER_MONTH

    def rds_monthly(self, engine: str, db_class: str, multi_az: bool) -> float | None:
        """Instance hours only; a Multi-AZ instance pays for its standby too (twice)."""
        hourly = self.rds_instance_hourly.get(f"{engine}:{db_class}")
        if hourly is None and engine in OPEN_SOURCE_ENGINES:
            hourly = self.rds_instance_hourly.get(db_class)
        return None if hourly is None else hourly * (2 if multi_az else 1) * HOURS_PER_MONTH

    def nat_monthly(self) -> float:
        return self.nat_gateway_hourly * HOURS_PER_MONTH


DEFAULT_PRICES = PriceTable(
    ec2_hourly=MappingProxyType(_EC2_HOURLY),
    ebs_gib_month=MappingProxyType(_EBS_GIB_MONTH),
    ebs_iops_month=MappingProxyType(_EBS_IOPS_MONTH),
    ebs_gp3_throughput_month=0.04,
    snapshot_gib_month=0.05,
    eip_hourly=0.005,
    lb_hourly=MappingProxyType(_LB_HOURLY),
    cache_node_hourly=MappingProxyType(_CACHE_NODE_HOURLY),
    search_instance_hourly=MappingProxyType(_SEARCH_INSTANCE_HOURLY),
    s3_gib_month=MappingProxyType(_S3_GIB_MONTH),
    rds_instance_hourly=MappingProxyType(_RDS_INSTANCE_HOURLY),
    # Approximate us-east-1 list price, read December 2026.
    nat_gateway_hourly=0.045,
)


def price_table(overrides: Mapping[str, Any] | None = None) -> PriceTable:
    """DEFAULT_PRICES with `overrides` merged over it: a table section (`ec2_hourly`, …) is
    merged key by key, a single price (`snapshot_gib_month`, …) replaced. Raises ValueError
    naming the bad entry."""
    if not overrides:
        return DEFAULT_PRICES
    known = {f.name: getattr(DEFAULT_PRICES, f.name) for f in fields(PriceTable)}
    changes: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in known:
            raise ValueError(
                f"prices.{name} is not a price this sweep knows; use one of {', '.join(known)}"
            )
        if isinstance(known[name], Mapping):
            if not isinstance(value, Mapping):
                raise ValueError(f'prices.{name} must be a table, e.g. {{ "m5.large" = 0.096 }}')
            merged = {**known[name], **{k: _price(f"{name}.{k}", v) for k, v in value.items()}}
            changes[name] = MappingProxyType(merged)
        else:
            changes[name] = _price(name, value)
    return replace(DEFAULT_PRICES, **changes)


def _price(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"prices.{name} must be a price in USD (a number ≥ 0), not {value!r}")
    return float(value)


def usd(amount: float) -> str:
    return f"${amount:,.2f}"


def saves(monthly_usd: float | None, action: str, unknown: tuple[str, str, str]) -> str:
    """`stopping it saves ≈ $70.08/mo`, or which price is missing and where to add it:
    `unknown` is (what, which, table section), e.g. ("instance type", "x1e.32xlarge",
    "ec2_hourly")."""
    if monthly_usd is not None:
        return f"{action} saves ≈ {usd(monthly_usd)}/mo"
    what, value, section = unknown
    return f"price unknown for {what} {value}; add it under [[sweeps]] prices.{section}"
