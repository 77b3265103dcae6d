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
from jobs.sweeps.aws.collect import (
    GLOBAL,
    Data,
    aws_api,
    dataset,
    each,
    home,
    listed,
    own_snapshots,
)
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


# --- logging, detection and configuration ----------------------------------------------------


async def trails(ctx: SweepContext) -> list[dict[str, Any]]:
    """Every trail the home region sees (multi-region trails from anywhere), each with its
    GetTrailStatus answer under `Status`."""
    region = await home(ctx)

    async def fetch() -> list[dict[str, Any]]:
        api = aws_api(ctx, region)
        found = (await api.call("cloudtrail", "describe_trails", includeShadowTrails=True))[
            "trailList"
        ]

        async def status(trail: dict[str, Any]) -> dict[str, Any]:
            answer = await api.call("cloudtrail", "get_trail_status", Name=trail["TrailARN"])
            return {**trail, "Status": answer}

        return await each(found, status)

    return await dataset(ctx, f"{GLOBAL}:cloudtrail:trails", fetch)


async def guardduty_detectors(ctx: SweepContext, region: str) -> dict[str, str]:
    """Each GuardDuty detector's status (`ENABLED`/`DISABLED`), by detector id."""

    async def ids() -> list[str]:
        found = await _listing(
            ctx, region, "detectors", "guardduty", "list_detectors", "DetectorIds"
        )
        return [str(detector) for detector in found]

    async def ask(api: AwsApi, detector: str) -> str:
        return str((await api.call("guardduty", "get_detector", DetectorId=detector))["Status"])

    return await _detail(ctx, region, "guardduty:status", ids, ask)


async def config_recorders(ctx: SweepContext, region: str) -> list[dict[str, Any]]:
    """AWS Config's recorders' statuses in the region (`recording`, `name`)."""

    async def fetch() -> list[dict[str, Any]]:
        answer = await aws_api(ctx, region).call("config", "describe_configuration_recorder_status")
        return list(answer.get("ConfigurationRecordersStatus", []))

    return await dataset(ctx, f"{region}:config:recorder_status", fetch)


async def security_hub(ctx: SweepContext, region: str) -> str | None:
    """The region's Security Hub ARN, None when the account is not subscribed there."""

    async def fetch() -> str | None:
        try:
            answer = await aws_api(ctx, region).call("securityhub", "describe_hub")
        except AwsError as exc:
            if exc.code == "InvalidAccessException":  # "not subscribed to AWS Security Hub"
                return None
            raise
        return str(answer.get("HubArn"))

    return await dataset(ctx, f"{region}:securityhub:hub", fetch)


async def ebs_default_encryption(ctx: SweepContext, region: str) -> bool:
    async def fetch() -> bool:
        answer = await aws_api(ctx, region).call("ec2", "get_ebs_encryption_by_default")
        return bool(answer.get("EbsEncryptionByDefault"))

    return await dataset(ctx, f"{region}:ec2:ebs_default_encryption", fetch)


async def instances(ctx: SweepContext, region: str) -> Data:
    """Running and stopped instances as AWS describes them (metadata options, network)."""

    async def fetch() -> Data:
        states = [{"Name": "instance-state-name", "Values": ["running", "stopped"]}]
        api = aws_api(ctx, region)
        found = await listed(api, "ec2", "describe_instances", "Reservations", Filters=states)
        return [i for r in found for i in r["Instances"]]

    return await dataset(ctx, f"{region}:ec2:instances", fetch)


async def own_images(ctx: SweepContext, region: str) -> Data:
    return await _listing(
        ctx, region, "own_images", "ec2", "describe_images", "Images", Owners=["self"]
    )


async def snapshot_volume_permissions(ctx: SweepContext, region: str) -> dict[str, list[Any]]:
    """Each own EBS snapshot's createVolumePermission entries, by snapshot id."""

    async def ids() -> list[str]:
        return [s.id for s in await own_snapshots(ctx, region)]

    async def ask(api: AwsApi, snapshot: str) -> list[Any]:
        answer = await api.call(
            "ec2",
            "describe_snapshot_attribute",
            SnapshotId=snapshot,
            Attribute="createVolumePermission",
        )
        return list(answer.get("CreateVolumePermissions", []))

    return await _detail(
        ctx, region, "ec2:snapshot_permissions", ids, ask, ("InvalidSnapshot.NotFound",)
    )


async def vpcs(ctx: SweepContext, region: str) -> Data:
    return await _listing(ctx, region, "vpcs", "ec2", "describe_vpcs", "Vpcs")


async def flow_logs(ctx: SweepContext, region: str) -> Data:
    return await _listing(ctx, region, "flow_logs", "ec2", "describe_flow_logs", "FlowLogs")


async def listeners(ctx: SweepContext, region: str) -> Data:
    """Every listener of every elbv2 load balancer, with `LoadBalancerName` and the load
    balancer itself (`LoadBalancer`: scheme, type, subnets, security groups) added."""

    async def fetch() -> Data:
        api = aws_api(ctx, region)
        lbs = await listed(api, "elbv2", "describe_load_balancers", "LoadBalancers")

        async def of(lb: dict[str, Any]) -> Data:
            found = await listed(
                api,
                "elbv2",
                "describe_listeners",
                "Listeners",
                LoadBalancerArn=lb["LoadBalancerArn"],
            )
            return [
                {**item, "LoadBalancerName": lb["LoadBalancerName"], "LoadBalancer": lb}
                for item in found
            ]

        return [item for group in await each(lbs, of) for item in group]

    return await dataset(ctx, f"{region}:elbv2:listeners", fetch)


# --- IAM users and policies --------------------------------------------------------------------


async def iam_users(ctx: SweepContext) -> Data:
    """Every IAM user with `HasConsole` (a login profile) and `MfaDevices` (their count)."""
    region = await home(ctx)

    async def fetch() -> Data:
        api = aws_api(ctx, region)

        async def one(user: dict[str, Any]) -> dict[str, Any]:
            name = user["UserName"]
            try:
                await api.call("iam", "get_login_profile", UserName=name)
                console = True
            except AwsError as exc:
                if exc.code != "NoSuchEntity":
                    raise
                console = False
            devices = await listed(api, "iam", "list_mfa_devices", "MFADevices", UserName=name)
            return {**user, "HasConsole": console, "MfaDevices": len(devices)}

        return await each(await listed(api, "iam", "list_users", "Users"), one)

    return await dataset(ctx, f"{GLOBAL}:iam:users", fetch)


async def password_policy(ctx: SweepContext) -> dict[str, Any] | None:
    """The account's password policy (None: none set)."""
    region = await home(ctx)

    async def fetch() -> dict[str, Any] | None:
        try:
            answer = await aws_api(ctx, region).call("iam", "get_account_password_policy")
        except AwsError as exc:
            if exc.code == "NoSuchEntity":
                return None
            raise
        return dict(answer["PasswordPolicy"])

    return await dataset(ctx, f"{GLOBAL}:iam:password_policy", fetch)


async def attached_policies(ctx: SweepContext) -> Data:
    """Customer-managed policies attached to someone, each with its default version's
    `Document` (decoded by boto3)."""
    region = await home(ctx)

    async def fetch() -> Data:
        api = aws_api(ctx, region)
        found = await listed(
            api, "iam", "list_policies", "Policies", Scope="Local", OnlyAttached=True
        )

        async def one(policy: dict[str, Any]) -> dict[str, Any]:
            version = await api.call(
                "iam",
                "get_policy_version",
                PolicyArn=policy["Arn"],
                VersionId=policy["DefaultVersionId"],
            )
            return {**policy, "Document": version["PolicyVersion"]["Document"]}

        return await each(found, one)

    return await dataset(ctx, f"{GLOBAL}:iam:attached_policies", fetch)
