"""AWS security rules for the account's identities and stored data: the root user, IAM access
keys, public S3 buckets and missing public access blocks, unencrypted RDS and EBS storage.

Rules only judge collected datasets and measure age against `ctx.now`, never the wall clock.
Options: `iam_key_max_age_days` (default 90) and `iam_key_unused_days` (default 45).
"""

from __future__ import annotations

from datetime import datetime

from daemon.models import Severity
from jobs.sweeps.aws.collect import db_instances, identity, volumes
from jobs.sweeps.aws.collect_account import (
    iam_access_keys,
    iam_account_summary,
    iam_key_last_used,
    s3_account_block,
    s3_acl_grants,
    s3_bucket_blocks,
    s3_buckets,
    s3_policy_public,
)
from jobs.sweeps.aws.resources import AccessKey
from jobs.sweeps.aws.rule import ACCOUNT, REGION, security_meta
from jobs.sweeps.base import Rule, SweepContext
from jobs.sweeps.rule import Hit, rule

BLOCK_SETTINGS = (
    "BlockPublicAcls",
    "IgnorePublicAcls",
    "BlockPublicPolicy",
    "RestrictPublicBuckets",
)
EVERYONE = {
    "http://acs.amazonaws.com/groups/global/AllUsers": "AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers": "AuthenticatedUsers",
}
BLOCK_ALL = ",".join(f"{setting}=true" for setting in BLOCK_SETTINGS)
S3_BLOCK_DOCS = (
    "https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html"
)


# --- S3 ----------------------------------------------------------------------------------


@rule(
    security_meta(
        "aws.s3.public",
        "S3 bucket is public",
        Severity.CRITICAL,
        risk="Anyone on the internet can read (or write) the bucket's objects.",
        remediation="Block public access on the bucket; serve public content through "
        "CloudFront with origin access control instead.",
        remediation_cli="aws s3api put-public-access-block --bucket {bucket} "
        f"--public-access-block-configuration {BLOCK_ALL}",
        reference=S3_BLOCK_DOCS,
        controls=("cis-aws:2.1.4", "soc2:CC6.1", "hipaa:164.312(a)(1)"),
    ),
    ACCOUNT,
)
async def s3_public(ctx: SweepContext, region: str) -> list[Hit]:
    policy_public, grants = await s3_policy_public(ctx), await s3_acl_grants(ctx)
    blocks, account = await s3_bucket_blocks(ctx), await s3_account_block(ctx) or {}
    hits = []
    for bucket in await s3_buckets(ctx):
        name = bucket["Name"]
        block = blocks.get(name) or {}
        on = {s for s in BLOCK_SETTINGS if account.get(s) or block.get(s)}
        why = []
        if policy_public.get(name) and "RestrictPublicBuckets" not in on:
            why.append("its bucket policy is public (GetBucketPolicyStatus: IsPublic)")
        public = [
            f"{g['Permission']} to {EVERYONE[g['Grantee']['URI']]}"
            for g in grants.get(name, [])
            if g["Grantee"].get("URI") in EVERYONE
        ]
        if public and "IgnorePublicAcls" not in on:
            why.append(f"its ACL grants {', '.join(public)}")
        if why:
            arn = f"arn:{(await identity(ctx)).partition}:s3:::{name}"
            evidence = f"bucket {name} is public: {' and '.join(why)}"
            hits.append(Hit(arn, evidence, {"bucket": name}, location=bucket.get("BucketRegion")))
    return hits


@rule(
    security_meta(
        "aws.s3.no_public_access_block",
        "S3 bucket has no public access block",
        Severity.MEDIUM,
        risk="One policy or ACL change can make the bucket public: nothing stops it.",
        remediation="Turn on all four public access block settings on the bucket (or for the "
        "whole account).",
        remediation_cli="aws s3api put-public-access-block --bucket {bucket} "
        f"--public-access-block-configuration {BLOCK_ALL}",
        reference=S3_BLOCK_DOCS,
        controls=("cis-aws:2.1.4", "soc2:CC6.1"),
    ),
    ACCOUNT,
)
async def s3_no_public_access_block(ctx: SweepContext, region: str) -> list[Hit]:
    blocks, account = await s3_bucket_blocks(ctx), await s3_account_block(ctx) or {}
    hits = []
    for bucket in await s3_buckets(ctx):
        name = bucket["Name"]
        if name not in blocks:  # deleted since it was listed
            continue
        block = blocks[name]
        off = [s for s in BLOCK_SETTINGS if not (account.get(s) or (block or {}).get(s))]
        if not off:  # the account-level block covers what the bucket's own block does not
            continue
        if block is None:
            evidence = (
                f"bucket {name} has no public access block (NoSuchPublicAccessBlockConfiguration)"
            )
            if account:
                evidence += f" and the account-level block leaves {', '.join(off)} off"
        else:
            evidence = f"bucket {name}'s public access block leaves {', '.join(off)} off"
            evidence += ", and so does the account-level block" if account else ""
        arn = f"arn:{(await identity(ctx)).partition}:s3:::{name}"
        hits.append(Hit(arn, evidence, {"bucket": name}, location=bucket.get("BucketRegion")))
    return hits


@rule(
    security_meta(
        "aws.s3.account_public_access_block",
        "S3 account-level public access block is off",
        Severity.MEDIUM,
        risk="Every bucket relies on its own settings: one mistake on any bucket makes it public.",
        remediation="Turn on all four public access block settings for the account (after "
        "moving any intentionally public content behind CloudFront).",
        remediation_cli="aws s3control put-public-access-block --account-id {account} "
        f"--public-access-block-configuration {BLOCK_ALL}",
        reference=S3_BLOCK_DOCS,
        controls=("cis-aws:2.1.4", "soc2:CC6.1"),
    ),
    ACCOUNT,
)
async def s3_account_public_access_block(ctx: SweepContext, region: str) -> list[Hit]:
    account, block = (await identity(ctx)).account, await s3_account_block(ctx)
    off = [s for s in BLOCK_SETTINGS if not (block or {}).get(s)]
    if block is None:
        evidence = (
            f"account {account} has no S3 public access block (s3control "
            "GetPublicAccessBlock: NoSuchPublicAccessBlockConfiguration)"
        )
    elif off:
        evidence = f"account {account}'s S3 public access block leaves {', '.join(off)} off"
    else:
        return []
    return [Hit(account, evidence, {"account": account})]


# --- IAM ---------------------------------------------------------------------------------


async def root(ctx: SweepContext) -> tuple[str, str]:
    me = await identity(ctx)
    return f"arn:{me.partition}:iam::{me.account}:root", me.account


@rule(
    security_meta(
        "aws.iam.root_mfa",
        "Root user has no MFA",
        Severity.CRITICAL,
        risk="A leaked or guessed root password gives unlimited control of the account.",
        remediation="Sign in as the root user and assign an MFA device (Security credentials "
        "page); prefer a hardware key.",
        reference="https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_mfa.html",
        controls=("cis-aws:1.5", "soc2:CC6.1", "hipaa:164.312(d)"),
    ),
    ACCOUNT,
)
async def iam_root_mfa(ctx: SweepContext, region: str) -> list[Hit]:
    if (await iam_account_summary(ctx))["AccountMFAEnabled"]:
        return []
    arn, account = await root(ctx)
    evidence = f"the root user of account {account} has no MFA device (AccountMFAEnabled: 0)"
    return [Hit(arn, evidence)]


@rule(
    security_meta(
        "aws.iam.root_access_keys",
        "Root user has access keys",
        Severity.CRITICAL,
        risk="Root keys cannot be limited by any policy; leaked once, the account is lost.",
        remediation="Sign in as the root user and delete its access keys (Security credentials "
        "page); use IAM roles for automation.",
        reference=(
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user_manage_delete-key.html"
        ),
        controls=("cis-aws:1.4", "soc2:CC6.1", "hipaa:164.312(a)(1)"),
    ),
    ACCOUNT,
)
async def iam_root_access_keys(ctx: SweepContext, region: str) -> list[Hit]:
    present = (await iam_account_summary(ctx))["AccountAccessKeysPresent"]
    if not present:
        return []
    arn, account = await root(ctx)
    evidence = (
        f"the root user of account {account} has access keys (AccountAccessKeysPresent: {present})"
    )
    return [Hit(arn, evidence)]


def days(ctx: SweepContext, option: str, default: int) -> int:
    value = ctx.options.get(option, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"sweep option {option} must be a whole number of days, not {value!r}")
    return value


def key_hit(key: AccessKey, evidence: str) -> Hit:
    # Access keys have no ARN: the user's ARN and the key id name one key uniquely.
    resource = f"{key.user_arn}:access-key/{key.id}"
    return Hit(
        resource,
        f"access key {key.id} of IAM user {key.user} {evidence}",
        {"user": key.user, "key": key.id},
    )


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


DEACTIVATE = "aws iam update-access-key --user-name {user} --access-key-id {key} --status Inactive"


@rule(
    security_meta(
        "aws.iam.old_access_key",
        "IAM access key is not rotated",
        Severity.MEDIUM,
        risk="Long-lived keys spread to laptops, CI logs and old configs; the older, the likelier "
        "one has leaked.",
        remediation="Create a new key (aws iam create-access-key), move its users to it, "
        "deactivate the old key, and delete it once nothing broke. Better: use roles.",
        remediation_cli=DEACTIVATE,
        reference=(
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html"
        ),
        controls=("cis-aws:1.14", "soc2:CC6.1"),
    ),
    ACCOUNT,
)
async def iam_old_access_key(ctx: SweepContext, region: str) -> list[Hit]:
    limit = days(ctx, "iam_key_max_age_days", 90)
    hits = []
    for key in await iam_access_keys(ctx):
        age = (ctx.now - key.created).days
        if key.status == "Active" and age > limit:
            hits.append(
                key_hit(key, f"is {age} days old (created {when(key.created)}; limit {limit} days)")
            )
    return hits


@rule(
    security_meta(
        "aws.iam.unused_access_key",
        "Active IAM access key is unused",
        Severity.LOW,
        risk="A key nobody uses is a credential nobody watches: if it leaks, its use stands out "
        "to no one.",
        remediation="Deactivate the key; delete it if nobody asks for it.",
        remediation_cli=DEACTIVATE,
        reference=(
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html"
        ),
        controls=("cis-aws:1.12", "soc2:CC6.2"),
    ),
    ACCOUNT,
)
async def iam_unused_access_key(ctx: SweepContext, region: str) -> list[Hit]:
    limit, last_used = days(ctx, "iam_key_unused_days", 45), await iam_key_last_used(ctx)
    hits = []
    for key in await iam_access_keys(ctx):
        if key.status != "Active" or key.id not in last_used:
            continue
        used = last_used[key.id]
        idle = (ctx.now - (used or key.created)).days
        if idle <= limit:
            continue
        if used:
            seen = f"was last used {idle} days ago ({when(used)}"
        else:
            seen = f"has never been used; it was created {idle} days ago ({when(key.created)}"
        hits.append(key_hit(key, f"{seen}; limit {limit} days)"))
    return hits


# --- encryption at rest ------------------------------------------------------------------


@rule(
    security_meta(
        "aws.rds.unencrypted",
        "RDS instance storage is not encrypted",
        Severity.MEDIUM,
        risk="Data, backups and snapshots are readable by anyone who gets the storage.",
        remediation="Encryption cannot be turned on in place: snapshot the instance, copy the "
        "snapshot with --kms-key-id, restore it as a new instance and switch over.",
        reference="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.Encryption.html",
        controls=("cis-aws:2.3.1", "soc2:CC6.1", "hipaa:164.312(a)(2)(iv)"),
    ),
    REGION,
)
async def rds_unencrypted(ctx: SweepContext, region: str) -> list[Hit]:
    return [
        Hit(
            db["DBInstanceArn"],
            f"RDS instance {db['DBInstanceIdentifier']} ({db['Engine']}) stores its data "
            "unencrypted (StorageEncrypted: false)",
        )
        for db in await db_instances(ctx, region)
        if not db.get("StorageEncrypted")
    ]


@rule(
    security_meta(
        "aws.ebs.unencrypted",
        "EBS volume is not encrypted",
        Severity.MEDIUM,
        risk="The volume and its snapshots are readable by anyone who gets a copy.",
        remediation="Turn on EBS encryption by default for the region; replace the volume with "
        "an encrypted copy (snapshot, copy-snapshot --encrypted, create-volume).",
        remediation_cli="aws ec2 enable-ebs-encryption-by-default --region {region}",
        reference="https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html",
        controls=("cis-aws:2.2.1", "soc2:CC6.1", "hipaa:164.312(a)(2)(iv)"),
    ),
    REGION,
)
async def ebs_unencrypted(ctx: SweepContext, region: str) -> list[Hit]:
    hits = []
    for volume in await volumes(ctx, region):
        if not volume.encrypted:
            attached = [a.instance_id for a in volume.attachments]
            to = f", attached to {', '.join(attached)}" if attached else ", not attached"
            evidence = (
                f"EBS volume {volume.id} ({volume.size_gib} GiB {volume.type}{to}) is not encrypted"
            )
            arn = (await identity(ctx)).arn("ec2", region, f"volume/{volume.id}")
            hits.append(Hit(arn, evidence))
    return hits


RULES: list[Rule] = [
    s3_public,
    s3_no_public_access_block,
    s3_account_public_access_block,
    iam_root_mfa,
    iam_root_access_keys,
    iam_old_access_key,
    iam_unused_access_key,
    rds_unencrypted,
    ebs_unencrypted,
]
