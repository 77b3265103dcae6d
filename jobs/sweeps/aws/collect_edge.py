"""The AWS datasets of the cache, CDN and NAT rules (ElastiCache clusters, CloudFront
distributions, NAT gateways), on `collect`'s plumbing: each fetched
once per sweep, a refusal a CollectError naming what AWS denied.

Never imports boto3 and never judges; split from `collect_services` for size.
"""

from __future__ import annotations

from jobs.sweeps.aws.collect import GLOBAL, Data, aws_api, dataset, home, listed
from jobs.sweeps.base import SweepContext


async def cache_clusters(ctx: SweepContext, region: str) -> Data:
    """Every ElastiCache cluster (Redis/Valkey nodes and Memcached), with its nodes' endpoints
    (`ShowCacheNodeInfo`), security groups and subnet group."""

    async def fetch() -> Data:
        api = aws_api(ctx, region)
        return await listed(
            api, "elasticache", "describe_cache_clusters", "CacheClusters", ShowCacheNodeInfo=True
        )

    what = f"ElastiCache clusters unavailable in {region}"
    return await dataset(ctx, f"{region}:elasticache:clusters", fetch, what)


async def distributions(ctx: SweepContext) -> Data:
    """Every CloudFront distribution's summary (global: asked once, in the home region); the
    summary carries the viewer certificate and every cache behaviour's protocol policy."""

    async def fetch() -> Data:
        api = aws_api(ctx, await home(ctx))
        pages = await api.pages("cloudfront", "list_distributions")
        return [item for page in pages for item in page["DistributionList"].get("Items", [])]

    what = "CloudFront distributions unavailable"
    return await dataset(ctx, f"{GLOBAL}:cloudfront:distributions", fetch, what)


async def nat_gateways(ctx: SweepContext, region: str) -> Data:
    """Every NAT gateway that is up (`available`): pending, failed and deleted ones cost
    nothing an idle rule could save."""

    async def fetch() -> Data:
        up = [{"Name": "state", "Values": ["available"]}]
        api = aws_api(ctx, region)
        return await listed(api, "ec2", "describe_nat_gateways", "NatGateways", Filter=up)

    what = f"NAT gateways unavailable in {region}"
    return await dataset(ctx, f"{region}:ec2:nat_gateways", fetch, what)
