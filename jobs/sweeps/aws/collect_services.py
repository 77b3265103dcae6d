"""The AWS datasets of the resource-policy and configuration rules (SNS, SQS, Lambda, ECR, KMS,
Secrets Manager, CloudTrail, GuardDuty, Config, EC2 images and settings, IAM users and
policies, flow logs, listeners), on `collect`'s plumbing: each fetched once per sweep, a refusal
a CollectError naming what AWS denied.

Never imports boto3 and never judges; split from `collect` for size, not for a second path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from jobs.aws.api import AwsApi, AwsError
from jobs.sweeps.aws.collect import GLOBAL, Data, aws_api, dataset, each, home, listed
from jobs.sweeps.aws.collect_account import s3_buckets
from jobs.sweeps.base import SweepContext


async def _listing(
    ctx: SweepContext, region: str, name: str, service: str, method: str, key: str, **params: Any
) -> Data:
    async def fetch() -> Data:
        return await listed(aws_api(ctx, region), service, method, key, **params)

    return await dataset(ctx, f"{region}:{service}:{name}", fetch)


async def _detail(
    ctx: SweepContext,
    region: str,
    name: str,
    items: Callable[[], Awaitable[list[str]]],
    ask: Callable[[AwsApi, str], Awaitable[Any]],
    absent: tuple[str, ...] = (),
) -> dict[str, Any]:
    """`ask(api, item)` for every item, by item; None where AWS answers one of `absent` (nothing
    configured, or the item went away meanwhile)."""

    async def fetch() -> dict[str, Any]:
        api = aws_api(ctx, region)

        async def one(item: str) -> tuple[str, Any]:
            try:
                return item, await ask(api, item)
            except AwsError as exc:
                if exc.code in absent:
                    return item, None
                raise

        return dict(await each(await items(), one))

    return await dataset(ctx, f"{region}:{name}", fetch)


# --- resources with resource policies ------------------------------------------------------


async def sns_topics(ctx: SweepContext, region: str) -> dict[str, dict[str, str]]:
    """Every SNS topic's attributes (Policy among them), by topic ARN."""

    async def arns() -> list[str]:
        topics = await _listing(ctx, region, "topics", "sns", "list_topics", "Topics")
        return [t["TopicArn"] for t in topics]

    async def ask(api: AwsApi, arn: str) -> dict[str, str]:
        answer = await api.call("sns", "get_topic_attributes", TopicArn=arn)
        return dict(answer["Attributes"])

    return await _detail(ctx, region, "sns:attributes", arns, ask, ("NotFound",))


async def sqs_queues(ctx: SweepContext, region: str) -> dict[str, dict[str, str]]:
    """Every SQS queue's Policy and QueueArn, by queue URL."""

    async def urls() -> list[str]:
        async def fetch() -> list[str]:
            answer = await aws_api(ctx, region).call("sqs", "list_queues")
            return list(answer.get("QueueUrls", []))

        return await dataset(ctx, f"{region}:sqs:queues", fetch)

    async def ask(api: AwsApi, url: str) -> dict[str, str]:
        answer = await api.call(
            "sqs", "get_queue_attributes", QueueUrl=url, AttributeNames=["Policy", "QueueArn"]
        )
        return dict(answer.get("Attributes", {}))

    gone = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
    return await _detail(ctx, region, "sqs:attributes", urls, ask, gone)


async def lambda_functions(ctx: SweepContext, region: str) -> Data:
    return await _listing(ctx, region, "functions", "lambda", "list_functions", "Functions")


async def lambda_policies(ctx: SweepContext, region: str) -> dict[str, str | None]:
    """Each function's resource policy (None: none), by function name."""

    async def names() -> list[str]:
        return [f["FunctionName"] for f in await lambda_functions(ctx, region)]

    async def ask(api: AwsApi, name: str) -> str:
        return str((await api.call("lambda", "get_policy", FunctionName=name))["Policy"])

    return await _detail(ctx, region, "lambda:policies", names, ask, ("ResourceNotFoundException",))


async def lambda_urls(ctx: SweepContext, region: str) -> dict[str, dict[str, Any] | None]:
    """Each function's URL configuration (None: no URL), by function name."""

    async def names() -> list[str]:
        return [f["FunctionName"] for f in await lambda_functions(ctx, region)]

    async def ask(api: AwsApi, name: str) -> dict[str, Any]:
        answer = await api.call("lambda", "get_function_url_config", FunctionName=name)
        return dict(answer)

    return await _detail(ctx, region, "lambda:urls", names, ask, ("ResourceNotFoundException",))


async def ecr_repositories(ctx: SweepContext, region: str) -> Data:
    return await _listing(
        ctx, region, "repositories", "ecr", "describe_repositories", "repositories"
    )


async def ecr_policies(ctx: SweepContext, region: str) -> dict[str, str | None]:
    """Each repository's policy text (None: none), by repository name."""

    async def names() -> list[str]:
        return [r["repositoryName"] for r in await ecr_repositories(ctx, region)]

    async def ask(api: AwsApi, name: str) -> str:
        answer = await api.call("ecr", "get_repository_policy", repositoryName=name)
        return str(answer["policyText"])

    absent = ("RepositoryPolicyNotFoundException", "RepositoryNotFoundException")
    return await _detail(ctx, region, "ecr:policies", names, ask, absent)


async def kms_keys(ctx: SweepContext, region: str) -> dict[str, dict[str, Any] | None]:
    """Each customer-managed key's metadata, default policy and rotation status, by key id
    (AWS-managed keys left out: their owner is AWS)."""

    async def ids() -> list[str]:
        keys = await _listing(ctx, region, "keys", "kms", "list_keys", "Keys")
        return [k["KeyId"] for k in keys]

    async def ask(api: AwsApi, key: str) -> dict[str, Any] | None:
        meta = (await api.call("kms", "describe_key", KeyId=key))["KeyMetadata"]
        if meta.get("KeyManager") != "CUSTOMER" or meta.get("KeyState") == "PendingDeletion":
            return None
        policy = await api.call("kms", "get_key_policy", KeyId=key, PolicyName="default")
        rotation: bool | None = None
        if meta.get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT":
            status = await api.call("kms", "get_key_rotation_status", KeyId=key)
            rotation = bool(status.get("KeyRotationEnabled"))
        return {"meta": meta, "policy": policy.get("Policy"), "rotation": rotation}

    return await _detail(ctx, region, "kms:key_details", ids, ask, ("NotFoundException",))


async def secrets(ctx: SweepContext, region: str) -> Data:
    return await _listing(ctx, region, "secrets", "secretsmanager", "list_secrets", "SecretList")


async def secret_policies(ctx: SweepContext, region: str) -> dict[str, str | None]:
    """Each secret's resource policy (None: none), by secret ARN."""

    async def arns() -> list[str]:
        return [s["ARN"] for s in await secrets(ctx, region)]

    async def ask(api: AwsApi, arn: str) -> str | None:
        answer = await api.call("secretsmanager", "get_resource_policy", SecretId=arn)
        policy = answer.get("ResourcePolicy")
        return str(policy) if policy else None

    return await _detail(
        ctx, region, "secretsmanager:policies", arns, ask, ("ResourceNotFoundException",)
    )


async def s3_policies(ctx: SweepContext) -> dict[str, str | None]:
    """Each bucket's policy (None: none), by bucket name."""
    region = await home(ctx)

    async def names() -> list[str]:
        return [b["Name"] for b in await s3_buckets(ctx)]

    async def ask(api: AwsApi, name: str) -> str:
        return str((await api.call("s3", "get_bucket_policy", Bucket=name))["Policy"])

    absent = ("NoSuchBucketPolicy", "NoSuchBucket")
    return await _detail(ctx, region, f"{GLOBAL}:s3:policies", names, ask, absent)
