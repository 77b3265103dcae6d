"""AWS datasets for the sweep rules, each fetched once per sweep through `SweepContext.collect`
(keys `aws:<region>:<service>:<what>`, `aws:global:…` for account-wide ones).

Never imports boto3 (AwsApi loads it on first call) and never judges: a dataset is the
service's own items, unchanged, so every rule that needs one can share it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from jobs.aws.api import AwsApi, AwsError
from jobs.sweeps.base import AwsScope, CollectError, SweepContext

T = TypeVar("T")
R = TypeVar("R")

GLOBAL = "global"
"""The location of account-level resources (IAM, the S3 account block) and of buckets whose
region ListBuckets does not report."""
PARALLEL = 8  # per-resource calls in flight (bucket ACLs, snapshot attributes, access keys)

Data = list[dict[str, Any]]


# --- plumbing ----------------------------------------------------------------------------


def _api(ctx: SweepContext, region: str | None) -> AwsApi:
    scope = ctx.aws or AwsScope()
    return AwsApi(ctx.check, region=region, profile=scope.profile, timeout_s=ctx.timeout_s)


async def _collect(ctx: SweepContext, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
    async def guarded() -> T:
        try:
            return await fetch()
        except AwsError as exc:
            raise CollectError(str(exc)) from exc

    result: T = await ctx.collect(f"aws:{key}", guarded)
    return result


async def _items(api: AwsApi, service: str, method: str, key: str, **params: Any) -> Data:
    return [item for page in await api.pages(service, method, **params) for item in page[key]]


async def _each(items: Iterable[T], fetch: Callable[[T], Awaitable[R]]) -> list[R]:
    """`fetch` over every item, a few at a time (one API call each)."""
    limit = asyncio.Semaphore(PARALLEL)

    async def one(item: T) -> R:
        async with limit:
            return await fetch(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def regions(ctx: SweepContext) -> tuple[str, ...]:
    """The regions in scope; none configured: the session's default region."""
    scope = ctx.aws or AwsScope()
    if scope.regions:
        return scope.regions

    async def default() -> str:
        api = _api(ctx, None)
        await api.client("sts")
        return api.region_name

    return (await _collect(ctx, "default:region", default),)


async def caller_identity(ctx: SweepContext) -> dict[str, Any]:
    """Account and ARN of the credentials (GetCallerIdentity needs no permission)."""

    async def fetch() -> dict[str, Any]:
        return await _api(ctx, (await regions(ctx))[0]).call("sts", "get_caller_identity")

    return await _collect(ctx, f"{GLOBAL}:sts:identity", fetch)


async def partition(ctx: SweepContext) -> str:
    """`aws`, `aws-cn`, `aws-us-gov`: for ARNs the APIs do not return."""
    return str((await caller_identity(ctx))["Arn"]).split(":")[1]


# --- regional datasets -------------------------------------------------------------------


async def _listing(
    ctx: SweepContext, region: str, name: str, service: str, method: str, key: str
) -> Data:
    api = _api(ctx, region)
    return await _collect(ctx, f"{region}:{name}", lambda: _items(api, service, method, key))


async def security_groups(ctx: SweepContext, region: str) -> Data:
    return await _listing(
        ctx, region, "ec2:security_groups", "ec2", "describe_security_groups", "SecurityGroups"
    )


async def interfaces_per_group(ctx: SweepContext, region: str) -> Counter[str]:
    """How many network interfaces each security group is attached to."""

    async def fetch() -> Counter[str]:
        api = _api(ctx, region)
        enis = await _items(api, "ec2", "describe_network_interfaces", "NetworkInterfaces")
        return Counter(group["GroupId"] for eni in enis for group in eni.get("Groups", []))

    return await _collect(ctx, f"{region}:ec2:interfaces_per_group", fetch)


async def volumes(ctx: SweepContext, region: str) -> Data:
    return await _listing(ctx, region, "ec2:volumes", "ec2", "describe_volumes", "Volumes")


async def db_instances(ctx: SweepContext, region: str) -> Data:
    return await _listing(
        ctx, region, "rds:instances", "rds", "describe_db_instances", "DBInstances"
    )


async def db_clusters(ctx: SweepContext, region: str) -> Data:
    return await _listing(ctx, region, "rds:clusters", "rds", "describe_db_clusters", "DBClusters")


@dataclass(frozen=True)
class SnapshotAccess:
    kind: str
    """`db` or `db-cluster`: the word the RDS API and CLI use for each."""
    id: str
    arn: str
    restore: tuple[str, ...]
    """Who may restore it: account ids, or "all" for everyone."""


async def db_snapshot_access(ctx: SweepContext, region: str) -> list[SnapshotAccess]:
    """The restore attribute of every manual DB and DB cluster snapshot (automated ones
    cannot be shared)."""
    api = _api(ctx, region)

    async def attributes(kind: str, snapshot: dict[str, Any]) -> SnapshotAccess:
        if kind == "db":
            snapshot_id = snapshot["DBSnapshotIdentifier"]
            arn = snapshot["DBSnapshotArn"]
            answer = await api.call(
                "rds", "describe_db_snapshot_attributes", DBSnapshotIdentifier=snapshot_id
            )
            found = answer["DBSnapshotAttributesResult"]["DBSnapshotAttributes"]
        else:
            snapshot_id = snapshot["DBClusterSnapshotIdentifier"]
            arn = snapshot["DBClusterSnapshotArn"]
            answer = await api.call(
                "rds",
                "describe_db_cluster_snapshot_attributes",
                DBClusterSnapshotIdentifier=snapshot_id,
            )
            found = answer["DBClusterSnapshotAttributesResult"]["DBClusterSnapshotAttributes"]
        restore = [a for a in found if a["AttributeName"] == "restore"]
        values = tuple(restore[0].get("AttributeValues", [])) if restore else ()
        return SnapshotAccess(kind, snapshot_id, arn, values)

    async def fetch() -> list[SnapshotAccess]:
        manual = {"SnapshotType": "manual"}
        db = await _items(api, "rds", "describe_db_snapshots", "DBSnapshots", **manual)
        cluster = await _items(
            api, "rds", "describe_db_cluster_snapshots", "DBClusterSnapshots", **manual
        )
        pairs = [("db", s) for s in db] + [("db-cluster", s) for s in cluster]
        return await _each(pairs, lambda pair: attributes(*pair))

    return await _collect(ctx, f"{region}:rds:snapshot_access", fetch)


async def redshift_clusters(ctx: SweepContext, region: str) -> Data:
    return await _listing(
        ctx, region, "redshift:clusters", "redshift", "describe_clusters", "Clusters"
    )


async def opensearch_domains(ctx: SweepContext, region: str) -> Data:
    """DomainStatus of every OpenSearch and Elasticsearch domain."""

    async def fetch() -> Data:
        api = _api(ctx, region)
        listed = await api.call("opensearch", "list_domain_names")
        names = [d["DomainName"] for d in listed["DomainNames"]]
        chunks = [names[i : i + 5] for i in range(0, len(names), 5)]  # DescribeDomains: max 5
        answers = await _each(
            chunks, lambda chunk: api.call("opensearch", "describe_domains", DomainNames=chunk)
        )
        return [domain for answer in answers for domain in answer["DomainStatusList"]]

    return await _collect(ctx, f"{region}:opensearch:domains", fetch)


# --- global datasets (asked in the first region in scope) --------------------------------


async def _home(ctx: SweepContext) -> AwsApi:
    return _api(ctx, (await regions(ctx))[0])


async def iam_account_summary(ctx: SweepContext) -> dict[str, int]:
    async def fetch() -> dict[str, int]:
        answer = await (await _home(ctx)).call("iam", "get_account_summary")
        return dict(answer["SummaryMap"])

    return await _collect(ctx, f"{GLOBAL}:iam:account_summary", fetch)


@dataclass(frozen=True)
class AccessKey:
    user: str
    user_arn: str
    id: str
    status: str
    created: datetime


async def iam_access_keys(ctx: SweepContext) -> list[AccessKey]:
    """Every IAM user's access keys (at most two each)."""

    async def fetch() -> list[AccessKey]:
        api = await _home(ctx)
        users = await _items(api, "iam", "list_users", "Users")

        async def keys(user: dict[str, Any]) -> list[AccessKey]:
            name = user["UserName"]
            found = await _items(api, "iam", "list_access_keys", "AccessKeyMetadata", UserName=name)
            return [
                AccessKey(name, user["Arn"], k["AccessKeyId"], k["Status"], k["CreateDate"])
                for k in found
            ]

        return [key for user_keys in await _each(users, keys) for key in user_keys]

    return await _collect(ctx, f"{GLOBAL}:iam:access_keys", fetch)


async def iam_key_last_used(ctx: SweepContext) -> dict[str, datetime | None]:
    """When each active access key was last used (None: never)."""

    async def fetch() -> dict[str, datetime | None]:
        api = await _home(ctx)
        active = [k.id for k in await iam_access_keys(ctx) if k.status == "Active"]
        answers = await _each(
            active, lambda key: api.call("iam", "get_access_key_last_used", AccessKeyId=key)
        )
        return {
            key: answer["AccessKeyLastUsed"].get("LastUsedDate")
            for key, answer in zip(active, answers, strict=True)
        }

    return await _collect(ctx, f"{GLOBAL}:iam:key_last_used", fetch)


async def s3_buckets(ctx: SweepContext) -> Data:
    async def fetch() -> Data:
        return await _items(await _home(ctx), "s3", "list_buckets", "Buckets")

    return await _collect(ctx, f"{GLOBAL}:s3:buckets", fetch)


async def _per_bucket(
    ctx: SweepContext,
    name: str,
    method: str,
    extract: Callable[[dict[str, Any] | None], T],
    absent: str | None = None,
) -> dict[str, T]:
    """`extract(answer)` of `method` for every bucket, by bucket name; `extract(None)` where AWS
    answers `absent` (nothing configured). A bucket deleted meanwhile is left out."""

    async def fetch() -> dict[str, T]:
        api = await _home(ctx)

        async def one(bucket: str) -> tuple[str, dict[str, Any] | None] | None:
            try:
                return bucket, await api.call("s3", method, Bucket=bucket)
            except AwsError as exc:
                if exc.code == "NoSuchBucket":
                    return None
                if absent and exc.code == absent:
                    return bucket, None
                raise AwsError(f"{exc} (bucket {bucket})", exc.code) from exc

        names = [b["Name"] for b in await s3_buckets(ctx)]
        answers = [answer for answer in await _each(names, one) if answer]
        return {bucket: extract(answer) for bucket, answer in answers}

    return await _collect(ctx, f"{GLOBAL}:s3:{name}", fetch)


async def s3_policy_public(ctx: SweepContext) -> dict[str, bool]:
    """Whether AWS judges each bucket's policy public (GetBucketPolicyStatus IsPublic)."""

    def public(answer: dict[str, Any] | None) -> bool:
        return bool(answer and answer["PolicyStatus"].get("IsPublic"))

    return await _per_bucket(
        ctx, "policy_public", "get_bucket_policy_status", public, "NoSuchBucketPolicy"
    )


async def s3_acl_grants(ctx: SweepContext) -> dict[str, Data]:
    def grants(answer: dict[str, Any] | None) -> Data:
        return list(answer["Grants"]) if answer else []

    return await _per_bucket(ctx, "acl_grants", "get_bucket_acl", grants)


async def s3_bucket_blocks(ctx: SweepContext) -> dict[str, dict[str, bool] | None]:
    """Each bucket's public access block settings (None: no block set)."""

    def settings(answer: dict[str, Any] | None) -> dict[str, bool] | None:
        return dict(answer["PublicAccessBlockConfiguration"]) if answer else None

    return await _per_bucket(
        ctx,
        "public_access_blocks",
        "get_public_access_block",
        settings,
        "NoSuchPublicAccessBlockConfiguration",
    )


async def s3_account_block(ctx: SweepContext) -> dict[str, bool] | None:
    """The account's S3 public access block settings (None: none set)."""

    async def fetch() -> dict[str, bool] | None:
        account = (await caller_identity(ctx))["Account"]
        try:
            answer = await (await _home(ctx)).call(
                "s3control", "get_public_access_block", AccountId=account
            )
        except AwsError as exc:
            if exc.code == "NoSuchPublicAccessBlockConfiguration":
                return None
            raise
        return dict(answer["PublicAccessBlockConfiguration"])

    return await _collect(ctx, f"{GLOBAL}:s3control:public_access_block", fetch)
