"""The account-wide AWS datasets of the sweeps (IAM, S3, Cost Explorer), asked once per sweep
in the home region through the plumbing of `collect` (its clients, retries, `dataset` cache).

Never imports boto3 and never judges; split from `collect` for size, not for a second path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

from jobs.aws.api import MAX_PAGES, AwsApi, AwsError
from jobs.sweeps.aws.collect import GLOBAL, Data, aws_api, dataset, each, home, identity, listed
from jobs.sweeps.aws.resources import AccessKey, Anomaly, CostPeriod
from jobs.sweeps.base import SweepContext

T = TypeVar("T")


async def _token_pages(api: AwsApi, service: str, method: str, **params: Any) -> Data:
    """Every page of a call paged by NextPageToken, which boto3 has no paginator for."""
    pages = []
    for _ in range(MAX_PAGES):
        page = await api.call(service, method, **params)
        pages.append(page)
        if not page.get("NextPageToken"):
            break
        params["NextPageToken"] = page["NextPageToken"]
    return pages


# --- IAM and S3 (account-wide, asked in the home region) ---------------------------------------


async def iam_account_summary(ctx: SweepContext) -> dict[str, int]:
    async def fetch() -> dict[str, int]:
        answer = await aws_api(ctx, await home(ctx)).call("iam", "get_account_summary")
        return dict(answer["SummaryMap"])

    return await dataset(ctx, f"{GLOBAL}:iam:account_summary", fetch)


async def iam_access_keys(ctx: SweepContext) -> list[AccessKey]:
    """Every IAM user's access keys (at most two each)."""

    async def fetch() -> list[AccessKey]:
        api = aws_api(ctx, await home(ctx))

        async def keys(user: dict[str, Any]) -> list[AccessKey]:
            name = user["UserName"]
            found = await listed(api, "iam", "list_access_keys", "AccessKeyMetadata", UserName=name)
            return [
                AccessKey(name, user["Arn"], k["AccessKeyId"], k["Status"], k["CreateDate"])
                for k in found
            ]

        users = await listed(api, "iam", "list_users", "Users")
        return [key for user_keys in await each(users, keys) for key in user_keys]

    return await dataset(ctx, f"{GLOBAL}:iam:access_keys", fetch)


async def iam_key_last_used(ctx: SweepContext) -> dict[str, datetime | None]:
    """When each active access key was last used (None: never)."""

    async def fetch() -> dict[str, datetime | None]:
        api = aws_api(ctx, await home(ctx))
        active = [k.id for k in await iam_access_keys(ctx) if k.status == "Active"]
        answers = await each(
            active, lambda key: api.call("iam", "get_access_key_last_used", AccessKeyId=key)
        )
        return {
            key: answer["AccessKeyLastUsed"].get("LastUsedDate")
            for key, answer in zip(active, answers, strict=True)
        }

    return await dataset(ctx, f"{GLOBAL}:iam:key_last_used", fetch)


async def s3_buckets(ctx: SweepContext) -> Data:
    async def fetch() -> Data:
        return await listed(aws_api(ctx, await home(ctx)), "s3", "list_buckets", "Buckets")

    return await dataset(ctx, f"{GLOBAL}:s3:buckets", fetch)


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
        api = aws_api(ctx, await home(ctx))

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
        answers = [answer for answer in await each(names, one) if answer]
        return {bucket: extract(answer) for bucket, answer in answers}

    return await dataset(ctx, f"{GLOBAL}:s3:{name}", fetch)


async def s3_policy_public(ctx: SweepContext) -> dict[str, bool]:
    """Whether AWS judges each bucket's policy public (GetBucketPolicyStatus IsPublic)."""

    def public(answer: dict[str, Any] | None) -> bool:
        return bool(answer and answer["PolicyStatus"].get("IsPublic"))

    return await _per_bucket(
        ctx, "policy_public", "get_bucket_policy_status", public, "NoSuchBucketPolicy"
    )


async def s3_regions(ctx: SweepContext) -> dict[str, str]:
    """Each bucket's region: ListBuckets' `BucketRegion`, else GetBucketLocation (whose
    empty answer means us-east-1 and `EU` the old name of eu-west-1)."""

    def region(answer: dict[str, Any] | None) -> str:
        where = (answer or {}).get("LocationConstraint") or "us-east-1"
        return "eu-west-1" if where == "EU" else str(where)

    buckets = await s3_buckets(ctx)
    known = {b["Name"]: b["BucketRegion"] for b in buckets if b.get("BucketRegion")}
    if len(known) == len(buckets):
        return known
    return {**await _per_bucket(ctx, "regions", "get_bucket_location", region), **known}


async def s3_lifecycle(ctx: SweepContext) -> dict[str, Data]:
    """Each bucket's lifecycle rules ([] when it has none)."""

    def rules(answer: dict[str, Any] | None) -> Data:
        return list(answer.get("Rules", [])) if answer else []

    return await _per_bucket(
        ctx,
        "lifecycle",
        "get_bucket_lifecycle_configuration",
        rules,
        "NoSuchLifecycleConfiguration",
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


async def s3_versioning(ctx: SweepContext) -> dict[str, dict[str, str]]:
    """Each bucket's versioning settings (`Status`, `MFADelete`; {} when never set)."""

    def settings(answer: dict[str, Any] | None) -> dict[str, str]:
        keys = ("Status", "MFADelete")
        return {k: str(answer[k]) for k in keys if answer and k in answer}

    return await _per_bucket(ctx, "versioning", "get_bucket_versioning", settings)


async def s3_account_block(ctx: SweepContext) -> dict[str, bool] | None:
    """The account's S3 public access block settings (None: none set)."""

    async def fetch() -> dict[str, bool] | None:
        account = (await identity(ctx)).account
        try:
            answer = await aws_api(ctx, await home(ctx)).call(
                "s3control", "get_public_access_block", AccountId=account
            )
        except AwsError as exc:
            if exc.code == "NoSuchPublicAccessBlockConfiguration":
                return None
            raise
        return dict(answer["PublicAccessBlockConfiguration"])

    return await dataset(ctx, f"{GLOBAL}:s3control:public_access_block", fetch)


# --- spend (Cost Explorer) ----------------------------------------------------------------
# Cost Explorer is account-wide, one endpoint whichever region the client names, and AWS bills
# each request ($0.01): one more reason to ask once per sweep.


async def cost_by_service(
    ctx: SweepContext, start: date, end: date, granularity: str
) -> list[CostPeriod]:
    """Unblended cost per service for each period in [start, end)."""

    async def fetch() -> list[CostPeriod]:
        pages = await _token_pages(
            aws_api(ctx, await home(ctx)),
            "ce",
            "get_cost_and_usage",
            TimePeriod={"Start": start.isoformat(), "End": end.isoformat()},
            Granularity=granularity,
            Metrics=["UnblendedCost"],
            GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}],
        )
        return CostPeriod.from_pages(pages)

    key = f"{GLOBAL}:ce:cost_by_service:{granularity}:{start}:{end}"
    return await dataset(ctx, key, fetch, "Cost Explorer costs unavailable")


async def cost_forecast(ctx: SweepContext, start: date, end: date) -> float:
    """AWS's forecast of unblended cost over [start, end)."""

    async def fetch() -> float:
        forecast = await aws_api(ctx, await home(ctx)).call(
            "ce",
            "get_cost_forecast",
            TimePeriod={"Start": start.isoformat(), "End": end.isoformat()},
            Metric="UNBLENDED_COST",
            Granularity="MONTHLY",
        )
        return float(forecast["Total"]["Amount"])

    key = f"{GLOBAL}:ce:forecast:{start}:{end}"
    return await dataset(ctx, key, fetch, "Cost Explorer forecast unavailable")


async def anomalies(ctx: SweepContext, start: date, end: date) -> list[Anomaly]:
    """Cost Anomaly Detection's anomalies that started or ran in [start, end]."""

    async def fetch() -> list[Anomaly]:
        interval = {"StartDate": start.isoformat(), "EndDate": end.isoformat()}
        api = aws_api(ctx, await home(ctx))
        pages = await _token_pages(api, "ce", "get_anomalies", DateInterval=interval)
        return [Anomaly.model_validate(raw) for page in pages for raw in page.get("Anomalies", [])]

    key = f"{GLOBAL}:ce:anomalies:{start}:{end}"
    return await dataset(ctx, key, fetch, "Cost Anomaly Detection unavailable")
