"""The account and data rules of jobs.sweeps.aws.security_account against moto: one failing and
one passing scenario per rule, with the evidence they give."""

from __future__ import annotations

import json

import pytest

from jobs.sweeps.aws import security_account as rules
from jobs.sweeps.base import CollectError, SweepContext
from tests.jobs.sweeps.aws.helpers import judge, root_account
from tests.peers.aws import ACCOUNT, REGION, Aws, restricted_user

pytest_plugins = ["tests.peers.aws_fixtures", "tests.jobs.sweeps.aws.fixtures"]

BLOCK_ALL = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def bucket(aws: Aws, name: str) -> None:
    aws.client("s3").create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
    )


def public_policy(name: str) -> str:
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{name}/*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def block_account(aws: Aws, **settings: bool) -> None:
    aws.client("s3control").put_public_access_block(
        AccountId=ACCOUNT, PublicAccessBlockConfiguration=BLOCK_ALL | settings
    )


# --- S3 ----------------------------------------------------------------------------------


async def test_bucket_with_a_public_policy_is_critical(aws: Aws, aws_sweep: SweepContext) -> None:
    bucket(aws, "site")
    aws.client("s3").put_bucket_policy(Bucket="site", Policy=public_policy("site"))
    [finding] = await judge(rules.s3_public, aws_sweep)
    assert finding.severity == "critical"
    assert finding.resource == "arn:aws:s3:::site"
    assert finding.location == "global"  # moto's ListBuckets does not report BucketRegion
    assert finding.evidence == (
        "bucket site is public: its bucket policy is public (GetBucketPolicyStatus: IsPublic)"
    )
    assert finding.remediation_cli == (
        "aws s3api put-public-access-block --bucket site --public-access-block-configuration "
        "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,"
        "RestrictPublicBuckets=true"
    )


async def test_bucket_with_a_public_acl_is_critical(aws: Aws, aws_sweep: SweepContext) -> None:
    bucket(aws, "exports")
    aws.client("s3").put_bucket_acl(Bucket="exports", ACL="public-read")
    [finding] = await judge(rules.s3_public, aws_sweep)
    assert finding.severity == "critical"
    assert finding.evidence == "bucket exports is public: its ACL grants READ to AllUsers"


async def test_public_acl_ignored_by_the_account_block_is_not_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    bucket(aws, "exports")
    aws.client("s3").put_bucket_acl(Bucket="exports", ACL="authenticated-read")
    block_account(aws, BlockPublicAcls=False, BlockPublicPolicy=False)
    assert await judge(rules.s3_public, aws_sweep) == []


async def test_private_bucket_is_not_reported(aws: Aws, aws_sweep: SweepContext) -> None:
    bucket(aws, "private")
    assert await judge(rules.s3_public, aws_sweep) == []


async def test_bucket_without_a_public_access_block_is_medium(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    bucket(aws, "unguarded")
    bucket(aws, "guarded")
    aws.client("s3").put_public_access_block(
        Bucket="guarded", PublicAccessBlockConfiguration=BLOCK_ALL
    )
    [finding] = await judge(rules.s3_no_public_access_block, aws_sweep)
    assert finding.severity == "medium"
    assert finding.resource == "arn:aws:s3:::unguarded"
    assert finding.evidence == (
        "bucket unguarded has no public access block (NoSuchPublicAccessBlockConfiguration)"
    )


async def test_bucket_block_with_settings_off_names_them(aws: Aws, aws_sweep: SweepContext) -> None:
    bucket(aws, "half")
    settings = BLOCK_ALL | {"BlockPublicPolicy": False, "RestrictPublicBuckets": False}
    aws.client("s3").put_public_access_block(Bucket="half", PublicAccessBlockConfiguration=settings)
    [finding] = await judge(rules.s3_no_public_access_block, aws_sweep)
    assert finding.evidence == (
        "bucket half's public access block leaves BlockPublicPolicy, RestrictPublicBuckets off"
    )


async def test_bucket_without_its_own_block_is_covered_by_the_account_block(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    bucket(aws, "unguarded")
    block_account(aws)
    assert await judge(rules.s3_no_public_access_block, aws_sweep) == []


async def test_account_without_a_public_access_block_is_medium(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    [finding] = await judge(rules.s3_account_public_access_block, aws_sweep)
    assert finding.severity == "medium"
    assert finding.resource == ACCOUNT
    assert finding.location == "global"
    assert finding.evidence == (
        f"account {ACCOUNT} has no S3 public access block (s3control GetPublicAccessBlock: "
        "NoSuchPublicAccessBlockConfiguration)"
    )
    assert finding.remediation_cli is not None
    assert finding.remediation_cli.startswith(
        f"aws s3control put-public-access-block --account-id {ACCOUNT} "
    )


async def test_account_with_a_full_public_access_block_is_not_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    block_account(aws)
    assert await judge(rules.s3_account_public_access_block, aws_sweep) == []


async def test_denied_bucket_calls_raise_collect_error_naming_the_action(
    aws: Aws, aws_sweep: SweepContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket(aws, "site")
    restricted_user(aws, monkeypatch, allow=["s3:ListAllMyBuckets"])
    with pytest.raises(CollectError, match=r"^AccessDenied on s3:GetPublicAccessBlock: .*site"):
        await judge(rules.s3_no_public_access_block, aws_sweep)


# --- IAM ---------------------------------------------------------------------------------


async def test_root_without_mfa_is_critical(aws: Aws, aws_sweep: SweepContext) -> None:
    [finding] = await judge(rules.iam_root_mfa, aws_sweep)  # moto's root has no MFA
    assert finding.severity == "critical"
    assert finding.resource == f"arn:aws:iam::{ACCOUNT}:root"
    assert finding.location == "global"
    assert finding.evidence == (
        f"the root user of account {ACCOUNT} has no MFA device (AccountMFAEnabled: 0)"
    )
    assert finding.remediation_cli is None


async def test_root_with_mfa_is_not_reported(aws: Aws, aws_sweep: SweepContext) -> None:
    root_account(mfa=True, access_keys=False)
    assert await judge(rules.iam_root_mfa, aws_sweep) == []


async def test_root_with_access_keys_is_critical(aws: Aws, aws_sweep: SweepContext) -> None:
    root_account(mfa=True, access_keys=True)
    [finding] = await judge(rules.iam_root_access_keys, aws_sweep)
    assert finding.severity == "critical"
    assert finding.evidence == (
        f"the root user of account {ACCOUNT} has access keys (AccountAccessKeysPresent: 1)"
    )


async def test_root_without_access_keys_is_not_reported(aws: Aws, aws_sweep: SweepContext) -> None:
    assert await judge(rules.iam_root_access_keys, aws_sweep) == []


def access_key(aws: Aws, user: str = "deploy") -> dict[str, str]:
    iam = aws.client("iam")
    iam.create_user(UserName=user)
    key: dict[str, str] = iam.create_access_key(UserName=user)["AccessKey"]
    return key


def use(aws: Aws, key: dict[str, str]) -> None:
    """Sign one request with the key: moto records it as the key's last use."""
    sts = aws.client(
        "sts", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    sts.get_caller_identity()


async def test_active_key_older_than_90_days_is_medium(aws: Aws, aws_sweep: SweepContext) -> None:
    key = access_key(aws)
    [finding] = await judge(rules.iam_old_access_key, aws_sweep, days_later=120)
    key_id, created = key["AccessKeyId"], f"{key['CreateDate']:%Y-%m-%d}"
    assert finding.severity == "medium"
    assert finding.resource == f"arn:aws:iam::{ACCOUNT}:user/deploy:access-key/{key_id}"
    assert finding.evidence == (
        f"access key {key_id} of IAM user deploy is 120 days old (created {created}; limit 90 days)"
    )
    assert finding.remediation_cli == (
        f"aws iam update-access-key --user-name deploy --access-key-id {key_id} --status Inactive"
    )


async def test_key_within_the_rotation_window_is_not_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    access_key(aws)
    assert await judge(rules.iam_old_access_key, aws_sweep, days_later=89) == []


async def test_inactive_old_key_is_not_reported(aws: Aws, aws_sweep: SweepContext) -> None:
    key = access_key(aws)
    aws.client("iam").update_access_key(
        UserName="deploy", AccessKeyId=key["AccessKeyId"], Status="Inactive"
    )
    assert await judge(rules.iam_old_access_key, aws_sweep, days_later=400) == []


async def test_key_age_limit_is_a_sweep_option(aws: Aws, aws_sweep: SweepContext) -> None:
    access_key(aws)
    aws_sweep.options["iam_key_max_age_days"] = 30
    [finding] = await judge(rules.iam_old_access_key, aws_sweep, days_later=31)
    assert finding.evidence.endswith("; limit 30 days)")


async def test_key_never_used_since_creation_45_days_ago_is_low(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    key = access_key(aws)
    [finding] = await judge(rules.iam_unused_access_key, aws_sweep, days_later=50)
    assert finding.severity == "low"
    assert finding.evidence == (
        f"access key {key['AccessKeyId']} of IAM user deploy has never been used; it was "
        f"created 50 days ago ({key['CreateDate']:%Y-%m-%d}; limit 45 days)"
    )


async def test_key_last_used_long_ago_is_low(aws: Aws, aws_sweep: SweepContext) -> None:
    key = access_key(aws)
    use(aws, key)
    [finding] = await judge(rules.iam_unused_access_key, aws_sweep, days_later=60)
    assert "was last used 60 days ago (" in finding.evidence


async def test_recently_used_key_is_not_reported(aws: Aws, aws_sweep: SweepContext) -> None:
    use(aws, access_key(aws))
    assert await judge(rules.iam_unused_access_key, aws_sweep, days_later=30) == []


# --- encryption --------------------------------------------------------------------------


def database(aws: Aws, name: str, *, encrypted: bool) -> None:
    aws.client("rds").create_db_instance(
        DBInstanceIdentifier=name,
        Engine="mysql",
        DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="not-a-real-password",
        StorageEncrypted=encrypted,
    )


async def test_unencrypted_database_is_medium(aws: Aws, aws_sweep: SweepContext) -> None:
    database(aws, "orders", encrypted=False)
    [finding] = await judge(rules.rds_unencrypted, aws_sweep)
    assert finding.severity == "medium"
    assert finding.resource == f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders"
    assert finding.location == REGION
    assert finding.evidence == (
        "RDS instance orders (mysql) stores its data unencrypted (StorageEncrypted: false)"
    )


async def test_encrypted_database_is_not_reported(aws: Aws, aws_sweep: SweepContext) -> None:
    database(aws, "orders", encrypted=True)
    assert await judge(rules.rds_unencrypted, aws_sweep) == []


async def test_unencrypted_volume_is_medium(aws: Aws, aws_sweep: SweepContext) -> None:
    volume = aws.client("ec2").create_volume(AvailabilityZone=f"{REGION}a", Size=50)
    [finding] = await judge(rules.ebs_unencrypted, aws_sweep)
    vid = volume["VolumeId"]
    assert finding.severity == "medium"
    assert finding.resource == f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/{vid}"
    assert finding.evidence == f"EBS volume {vid} (50 GiB gp2, not attached) is not encrypted"
    assert finding.remediation_cli == f"aws ec2 enable-ebs-encryption-by-default --region {REGION}"


async def test_encrypted_volume_is_not_reported(aws: Aws, aws_sweep: SweepContext) -> None:
    aws.client("ec2").create_volume(AvailabilityZone=f"{REGION}a", Size=50, Encrypted=True)
    assert await judge(rules.ebs_unencrypted, aws_sweep) == []


def test_rule_ids_are_unique_and_every_rule_is_a_security_rule() -> None:
    ids = [rule.meta.id for rule in rules.RULES]
    assert len(ids) == len(set(ids))
    assert {rule.meta.kind for rule in rules.RULES} == {"security"}
    assert {rule.meta.service for rule in rules.RULES} == {
        "aws:s3",
        "aws:iam",
        "aws:rds",
        "aws:ec2",
    }
