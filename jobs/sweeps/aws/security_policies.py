"""AWS security rules over resource policies — SNS topics, SQS queues, Lambda functions (and
their URLs), ECR repositories, KMS keys, Secrets Manager secrets, S3 TLS-only policies — and
the hygiene beside them (key and secret rotation, image scanning).

Every policy is judged by the one evaluator (`policy.access`): a condition that only looks
restrictive (`aws:SourceIp *`, `aws:SecureTransport`) does not hide a public grant, and a
`Deny` for all but a VPC endpoint does keep the internet out. Accounts in the sweep option
`trusted_accounts` count as inside.
"""

from __future__ import annotations

from collections.abc import Collection
from fnmatch import fnmatchcase
from typing import Any

from daemon.models import Severity
from jobs.sweeps.aws.collect import identity
from jobs.sweeps.aws.collect_account import s3_buckets, s3_versioning
from jobs.sweeps.aws.collect_services import (
    ecr_policies,
    ecr_repositories,
    kms_keys,
    lambda_functions,
    lambda_policies,
    lambda_urls,
    s3_policies,
    secret_policies,
    secrets,
    sns_topics,
    sqs_queues,
)
from jobs.sweeps.aws.policy import Access, PolicyError, access, requires_tls
from jobs.sweeps.aws.rule import ACCOUNT, REGION, security_meta
from jobs.sweeps.base import Rule, SweepContext
from jobs.sweeps.rule import Hit, rule

AC = "hipaa:164.312(a)(1)"
PUBLIC_FIX = (
    "Remove the statement that allows `*`, or add a condition that names who may call "
    "(aws:SourceAccount, aws:SourceArn, aws:PrincipalOrgID, aws:SourceVpce)."
)


def trusted(ctx: SweepContext) -> tuple[str, ...]:
    return tuple(ctx.options.get("trusted_accounts") or ())


async def public(
    ctx: SweepContext, policy: Any, actions: Collection[str] | None = None
) -> Access | None:
    """The policy's public grants, or None (private, cross-account only, or not a policy)."""
    try:
        found = access(policy, (await identity(ctx)).account, actions, trusted(ctx))
    except PolicyError:
        return None
    if not found.public:
        return None
    return Access(found.verdict, tuple(g for g in found.grants if g.public))


def policy_meta(rid: str, what: str, severity: Severity, risk: str, docs: str) -> Any:
    return security_meta(
        rid,
        f"{what} policy lets anyone in",
        severity,
        risk=risk,
        remediation=PUBLIC_FIX,
        reference=docs,
        controls=("soc2:CC6.1", "soc2:CC6.6", AC),
    )


@rule(
    policy_meta(
        "aws.sns.public",
        "SNS topic",
        Severity.HIGH,
        "Anyone can publish to (or subscribe to) the topic: spoofed messages reach its "
        "subscribers, or its messages reach strangers.",
        "https://docs.aws.amazon.com/sns/latest/dg/sns-security-best-practices.html",
    ),
    REGION,
)
async def sns_public(ctx: SweepContext, region: str) -> list[Hit]:
    hits = []
    for arn, attributes in (await sns_topics(ctx, region)).items():
        found = attributes and await public(ctx, attributes.get("Policy"))
        if found:
            name = arn.rsplit(":", 1)[-1]
            hits.append(Hit(arn, f"SNS topic {name}'s policy: {found.describe()}"))
    return hits


@rule(
    policy_meta(
        "aws.sqs.public",
        "SQS queue",
        Severity.HIGH,
        "Anyone can send to, read from or purge the queue.",
        "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-security-best-practices.html",
    ),
    REGION,
)
async def sqs_public(ctx: SweepContext, region: str) -> list[Hit]:
    hits = []
    for url, attributes in (await sqs_queues(ctx, region)).items():
        found = attributes and await public(ctx, attributes.get("Policy"))
        if found:
            arn = attributes.get("QueueArn") or url
            name = url.rstrip("/").rsplit("/", 1)[-1]
            hits.append(Hit(arn, f"SQS queue {name}'s policy: {found.describe()}"))
    return hits


@rule(
    policy_meta(
        "aws.lambda.public",
        "Lambda function",
        Severity.HIGH,
        "Anyone with an AWS account can invoke (or change) the function.",
        "https://docs.aws.amazon.com/lambda/latest/dg/access-control-resource-based.html",
    ),
    REGION,
)
async def lambda_public(ctx: SweepContext, region: str) -> list[Hit]:
    arns = {f["FunctionName"]: f["FunctionArn"] for f in await lambda_functions(ctx, region)}
    hits = []
    for name, policy in (await lambda_policies(ctx, region)).items():
        found = policy and await public(ctx, policy)
        if found:
            evidence = f"Lambda function {name}'s resource policy: {found.describe()}"
            hits.append(Hit(arns.get(name, name), evidence))
    return hits


@rule(
    security_meta(
        "aws.lambda.url_no_auth",
        "Lambda function URL needs no authentication",
        Severity.HIGH,
        risk="Anyone on the internet can call the function through its URL, unsigned.",
        remediation="Set the URL's AuthType to AWS_IAM, or remove the URL and put the function "
        "behind API Gateway with an authoriser.",
        remediation_cli="aws lambda update-function-url-config --region {region} "
        "--function-name {name} --auth-type AWS_IAM",
        reference="https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html",
        controls=("soc2:CC6.1", "soc2:CC6.6", AC, "hipaa:164.312(d)"),
    ),
    REGION,
)
async def lambda_url_no_auth(ctx: SweepContext, region: str) -> list[Hit]:
    arns = {f["FunctionName"]: f["FunctionArn"] for f in await lambda_functions(ctx, region)}
    return [
        Hit(
            arns.get(name, name),
            f"Lambda function {name} has a URL ({url.get('FunctionUrl')}) with AuthType NONE",
            {"name": name},
        )
        for name, url in (await lambda_urls(ctx, region)).items()
        if url and url.get("AuthType") == "NONE"
    ]


@rule(
    policy_meta(
        "aws.ecr.public",
        "ECR repository",
        Severity.HIGH,
        "Anyone with an AWS account can pull (or push) the repository's images.",
        "https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policies.html",
    ),
    REGION,
)
async def ecr_public(ctx: SweepContext, region: str) -> list[Hit]:
    arns = {r["repositoryName"]: r["repositoryArn"] for r in await ecr_repositories(ctx, region)}
    hits = []
    for name, policy in (await ecr_policies(ctx, region)).items():
        found = policy and await public(ctx, policy)
        if found:
            evidence = f"ECR repository {name}'s policy: {found.describe()}"
            hits.append(Hit(arns.get(name, name), evidence))
    return hits


@rule(
    security_meta(
        "aws.ecr.scan_on_push",
        "ECR repository does not scan images on push",
        Severity.LOW,
        risk="Images with known vulnerabilities are pushed and deployed without anyone told.",
        remediation="Turn on scan on push (or enhanced scanning for the registry).",
        remediation_cli="aws ecr put-image-scanning-configuration --region {region} "
        "--repository-name {name} --image-scanning-configuration scanOnPush=true",
        reference="https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-scanning.html",
        controls=("soc2:CC7.1",),
    ),
    REGION,
)
async def ecr_scan_on_push(ctx: SweepContext, region: str) -> list[Hit]:
    return [
        Hit(
            r["repositoryArn"],
            f"ECR repository {r['repositoryName']} has scanOnPush off",
            {"name": r["repositoryName"]},
        )
        for r in await ecr_repositories(ctx, region)
        if not (r.get("imageScanningConfiguration") or {}).get("scanOnPush")
    ]


@rule(
    policy_meta(
        "aws.kms.public",
        "KMS key",
        Severity.CRITICAL,
        "Anyone with an AWS account can use (or manage) the key: whatever it encrypts is "
        "readable by them.",
        "https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html",
    ),
    REGION,
)
async def kms_public(ctx: SweepContext, region: str) -> list[Hit]:
    hits = []
    for key in (await kms_keys(ctx, region)).values():
        found = key and await public(ctx, key["policy"])
        if key and found:
            meta = key["meta"]
            evidence = f"KMS key {meta['KeyId']}'s key policy: {found.describe()}"
            hits.append(Hit(meta["Arn"], evidence))
    return hits


@rule(
    security_meta(
        "aws.kms.rotation",
        "KMS customer key is not rotated",
        Severity.MEDIUM,
        risk="The same key material protects data for ever: a leaked key stays useful.",
        remediation="Turn on automatic key rotation (yearly, or a period you choose).",
        remediation_cli="aws kms enable-key-rotation --region {region} --key-id {key}",
        reference="https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html",
        controls=("cis-aws:3.8", "soc2:CC6.1", "hipaa:164.312(a)(2)(iv)"),
    ),
    REGION,
)
async def kms_rotation(ctx: SweepContext, region: str) -> list[Hit]:
    return [
        Hit(
            key["meta"]["Arn"],
            f"KMS key {key['meta']['KeyId']} (symmetric, customer managed) has automatic "
            "rotation off",
            {"key": key["meta"]["KeyId"]},
        )
        for key in (await kms_keys(ctx, region)).values()
        if key and key["rotation"] is False and key["meta"].get("KeyState") == "Enabled"
    ]


@rule(
    policy_meta(
        "aws.secretsmanager.public",
        "Secrets Manager secret",
        Severity.CRITICAL,
        "Anyone with an AWS account can read the secret's value.",
        "https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_resource-policies.html",
    ),
    REGION,
)
async def secretsmanager_public(ctx: SweepContext, region: str) -> list[Hit]:
    names = {s["ARN"]: s["Name"] for s in await secrets(ctx, region)}
    hits = []
    for arn, policy in (await secret_policies(ctx, region)).items():
        found = policy and await public(ctx, policy)
        if found:
            evidence = f"secret {names.get(arn, arn)}'s resource policy: {found.describe()}"
            hits.append(Hit(arn, evidence))
    return hits


@rule(
    security_meta(
        "aws.secretsmanager.rotation",
        "Secret is not rotated",
        Severity.MEDIUM,
        risk="A secret that never changes stays valid wherever it leaked to.",
        remediation="Turn on rotation with a rotation function (managed rotation for RDS, "
        "Redshift and DocumentDB credentials).",
        reference="https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotating-secrets.html",
        controls=("soc2:CC6.1", "hipaa:164.312(d)"),
    ),
    REGION,
)
async def secretsmanager_rotation(ctx: SweepContext, region: str) -> list[Hit]:
    return [
        Hit(s["ARN"], f"secret {s['Name']} has rotation off (RotationEnabled: false)")
        for s in await secrets(ctx, region)
        if not s.get("RotationEnabled")
    ]


@rule(
    security_meta(
        "aws.s3.tls_only",
        "S3 bucket accepts plain-HTTP requests",
        Severity.MEDIUM,
        risk="Requests without TLS can be read and altered on the way.",
        remediation="Add a bucket policy statement that denies every request with "
        'aws:SecureTransport "false".',
        reference="https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html",
        controls=("cis-aws:2.1.1", "soc2:CC6.7", "hipaa:164.312(e)(1)"),
    ),
    ACCOUNT,
)
async def s3_tls_only(ctx: SweepContext, region: str) -> list[Hit]:
    policies, partition = await s3_policies(ctx), (await identity(ctx)).partition
    hits = []
    for bucket in await s3_buckets(ctx):
        name = bucket["Name"]
        if name not in policies:  # deleted since it was listed
            continue
        try:
            tls = requires_tls(policies[name])
        except PolicyError:
            tls = False
        if not tls:
            if policies[name] is None:
                evidence = f"bucket {name} has no bucket policy: nothing denies plain HTTP"
            else:
                evidence = (
                    f"bucket {name}'s policy has no Deny of requests with aws:SecureTransport false"
                )
            hits.append(
                Hit(f"arn:{partition}:s3:::{name}", evidence, location=bucket.get("BucketRegion"))
            )
    return hits


@rule(
    security_meta(
        "aws.s3.versioning",
        "Critical S3 bucket lacks versioning or MFA delete",
        Severity.MEDIUM,
        risk="An overwrite, a delete or ransomware with the bucket owner's keys destroys the "
        "data for good.",
        remediation="Turn on versioning, and MFA delete (only the root user can, with its MFA "
        "device); or use S3 Object Lock.",
        remediation_cli="aws s3api put-bucket-versioning --bucket {bucket} "
        "--versioning-configuration Status=Enabled,MFADelete=Enabled "
        '--mfa "<root MFA serial> <code>"',
        reference="https://docs.aws.amazon.com/AmazonS3/latest/userguide/MultiFactorAuthenticationDelete.html",
        controls=("cis-aws:2.1.2", "soc2:A1.2", "hipaa:164.312(c)(1)"),
    ),
    ACCOUNT,
)
async def s3_versioning_rule(ctx: SweepContext, region: str) -> list[Hit]:
    """Only buckets matching the sweep option `critical_buckets` (globs): versioning costs
    storage, and MFA delete makes every deletion a root-user task, so it is asked where the
    data matters."""
    globs = list(ctx.options.get("critical_buckets") or [])
    if not globs:
        return []
    partition, versioning = (await identity(ctx)).partition, await s3_versioning(ctx)
    hits = []
    for bucket in await s3_buckets(ctx):
        name = bucket["Name"]
        if name not in versioning or not any(fnmatchcase(name, g) for g in globs):
            continue
        state = versioning[name]
        missing = [
            f"{what} {state.get(key, 'off')}"
            for what, key in (("versioning", "Status"), ("MFA delete", "MFADelete"))
            if state.get(key) != "Enabled"
        ]
        if missing:
            evidence = f"critical bucket {name}: {', '.join(missing)}"
            hits.append(
                Hit(
                    f"arn:{partition}:s3:::{name}",
                    evidence,
                    {"bucket": name},
                    location=bucket.get("BucketRegion"),
                )
            )
    return hits


RULES: list[Rule] = [
    sns_public,
    sqs_public,
    lambda_public,
    lambda_url_no_auth,
    ecr_public,
    ecr_scan_on_push,
    kms_public,
    kms_rotation,
    secretsmanager_public,
    secretsmanager_rotation,
    s3_tls_only,
    s3_versioning_rule,
]
