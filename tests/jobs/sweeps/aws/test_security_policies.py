"""The resource-policy rules of jobs.sweeps.aws.security_policies against moto: for each rule a
resource that fails and one that passes, through the real APIs."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from jobs.sweeps.aws import security_policies as rules
from jobs.sweeps.base import SweepContext
from tests.jobs.sweeps.aws.helpers import judge
from tests.peers.aws import ACCOUNT, REGION, Aws, add_mfa_delete

pytest_plugins = ["tests.peers.aws_fixtures", "tests.jobs.sweeps.aws.fixtures"]

OTHER = "210987654321"


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def anyone(action: str, resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": "*", "Action": action, "Resource": resource, **extra}


# --- SNS and SQS ---------------------------------------------------------------------------


async def test_sns_topic_open_to_anyone_is_reported_and_one_restricted_is_not(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    sns = aws.client("sns")
    open_arn = sns.create_topic(Name="alerts")["TopicArn"]
    sns.set_topic_attributes(
        TopicArn=open_arn,
        AttributeName="Policy",
        AttributeValue=policy(anyone("sns:Publish", open_arn, Sid="Everyone")),
    )
    closed = sns.create_topic(Name="billing")["TopicArn"]
    owned = {"Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}
    sns.set_topic_attributes(
        TopicArn=closed,
        AttributeName="Policy",
        AttributeValue=policy(anyone("sns:Publish", closed, **owned)),
    )
    [finding] = await judge(rules.sns_public, aws_sweep)
    assert finding.resource == open_arn
    assert finding.severity == "high"
    assert finding.evidence == (
        "SNS topic alerts's policy: Everyone allows sns:Publish to anyone (no condition)"
    )
    assert finding.location == REGION


async def test_sqs_queue_open_under_a_wildcard_source_ip_is_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    wide = {"Condition": {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy(anyone("sqs:*", **wide))})
    private = sqs.create_queue(QueueName="internal")["QueueUrl"]
    mine = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "sqs:*",
    }
    sqs.set_queue_attributes(QueueUrl=private, Attributes={"Policy": policy(mine)})
    sqs.create_queue(QueueName="no-policy")
    [finding] = await judge(rules.sqs_public, aws_sweep)
    assert finding.resource == f"arn:aws:sqs:{REGION}:{ACCOUNT}:jobs"
    assert finding.evidence.endswith("allows sqs:* to anyone (aws:SourceIp allows 0.0.0.0/0)")


async def test_trusted_accounts_and_cross_account_grants_are_not_public(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="shared")["QueueUrl"]
    other = {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "sqs:SendMessage"}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy(other)})
    aws_sweep.options["trusted_accounts"] = [OTHER]
    assert await judge(rules.sqs_public, aws_sweep) == []


# --- Lambda --------------------------------------------------------------------------------


def function(aws: Aws, name: str) -> str:
    role = aws.client("iam").create_role(
        RoleName=f"{name}-role",
        AssumeRolePolicyDocument=policy(
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return 1\n")
    arn: str = aws.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
    )["FunctionArn"]
    return arn


async def test_lambda_function_anyone_may_invoke_is_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    lam = aws.client("lambda")
    open_arn = function(aws, "resize")
    lam.add_permission(
        FunctionName="resize", StatementId="anyone", Action="lambda:InvokeFunction", Principal="*"
    )
    function(aws, "thumbs")
    lam.add_permission(
        FunctionName="thumbs",
        StatementId="s3",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceArn="arn:aws:s3:::uploads",
        SourceAccount=ACCOUNT,
    )
    function(aws, "plain")
    [finding] = await judge(rules.lambda_public, aws_sweep)
    assert finding.resource == open_arn
    assert "anyone allows lambda:InvokeFunction to anyone (no condition)" in finding.evidence


async def test_lambda_url_without_auth_is_reported(aws: Aws, aws_sweep: SweepContext) -> None:
    lam = aws.client("lambda")
    open_arn = function(aws, "webhook")
    lam.create_function_url_config(FunctionName="webhook", AuthType="NONE")
    function(aws, "api")
    lam.create_function_url_config(FunctionName="api", AuthType="AWS_IAM")
    [finding] = await judge(rules.lambda_url_no_auth, aws_sweep)
    assert finding.resource == open_arn
    assert finding.evidence.startswith("Lambda function webhook has a URL (")
    assert finding.evidence.endswith(") with AuthType NONE")
    assert finding.remediation_cli == (
        f"aws lambda update-function-url-config --region {REGION} --function-name webhook "
        "--auth-type AWS_IAM"
    )


# --- ECR -----------------------------------------------------------------------------------


async def test_ecr_public_repository_and_scan_on_push(aws: Aws, aws_sweep: SweepContext) -> None:
    ecr = aws.client("ecr")
    public = ecr.create_repository(repositoryName="base")["repository"]["repositoryArn"]
    ecr.set_repository_policy(
        repositoryName="base", policyText=policy({"Sid": "Pull", **anyone("ecr:BatchGetImage")})
    )
    scanned = ecr.create_repository(
        repositoryName="app", imageScanningConfiguration={"scanOnPush": True}
    )["repository"]["repositoryArn"]
    ecr.set_repository_policy(
        repositoryName="app",
        policyText=policy(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "ecr:*",
            }
        ),
    )
    [finding] = await judge(rules.ecr_public, aws_sweep)
    assert finding.resource == public
    assert finding.evidence == (
        "ECR repository base's policy: Pull allows ecr:BatchGetImage to anyone (no condition)"
    )
    [unscanned] = await judge(rules.ecr_scan_on_push, aws_sweep)
    assert unscanned.resource == public != scanned
    assert unscanned.evidence == "ECR repository base has scanOnPush off"


# --- KMS -----------------------------------------------------------------------------------


async def test_kms_public_key_and_rotation(aws: Aws, aws_sweep: SweepContext) -> None:
    kms = aws.client("kms")
    root = {
        "Sid": "Root",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    wide = kms.create_key(Policy=policy(root, anyone("kms:Decrypt", Sid="Oops")))["KeyMetadata"]
    safe = kms.create_key(Policy=policy(root))["KeyMetadata"]
    kms.enable_key_rotation(KeyId=safe["KeyId"])
    [finding] = await judge(rules.kms_public, aws_sweep)
    assert finding.resource == wide["Arn"]
    assert finding.severity == "critical"
    assert finding.evidence == (
        f"KMS key {wide['KeyId']}'s key policy: Oops allows kms:Decrypt to anyone (no condition)"
    )
    [unrotated] = await judge(rules.kms_rotation, aws_sweep)
    assert unrotated.resource == wide["Arn"]
    assert unrotated.remediation_cli == (
        f"aws kms enable-key-rotation --region {REGION} --key-id {wide['KeyId']}"
    )


# --- Secrets Manager -----------------------------------------------------------------------


async def test_secrets_public_policy_and_rotation(aws: Aws, aws_sweep: SweepContext) -> None:
    sm = aws.client("secretsmanager")
    leaky = sm.create_secret(Name="db-password", SecretString="x")["ARN"]
    sm.put_resource_policy(
        SecretId=leaky, ResourcePolicy=policy(anyone("secretsmanager:GetSecretValue", Sid="All"))
    )
    kept = sm.create_secret(Name="api-token", SecretString="y")["ARN"]
    vpce = {"Condition": {"StringEquals": {"aws:SourceVpce": "vpce-0abc"}}}
    sm.put_resource_policy(
        SecretId=kept, ResourcePolicy=policy(anyone("secretsmanager:GetSecretValue", **vpce))
    )
    [finding] = await judge(rules.secretsmanager_public, aws_sweep)
    assert finding.resource == leaky
    assert finding.evidence == (
        "secret db-password's resource policy: All allows secretsmanager:GetSecretValue to "
        "anyone (no condition)"
    )
    assert {f.resource for f in await judge(rules.secretsmanager_rotation, aws_sweep)} == {
        leaky,
        kept,
    }
    # moto's RotateSecret invokes the rotation function (in Docker): set the flag it answers
    # DescribeSecret/ListSecrets from instead; the rule still reads it over the wire.
    secret = aws.backend("secretsmanager").secrets["api-token"]
    secret.rotation_requested = secret.rotation_enabled = True
    aws_sweep._data.clear()
    [unrotated] = await judge(rules.secretsmanager_rotation, aws_sweep)
    assert unrotated.resource == leaky


# --- S3 TLS only ---------------------------------------------------------------------------


async def test_buckets_without_a_tls_only_policy_are_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    s3 = aws.client("s3")
    config = {"CreateBucketConfiguration": {"LocationConstraint": REGION}}
    for name in ("plain", "strict", "allow-only"):
        s3.create_bucket(Bucket=name, **config)
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::strict", "arn:aws:s3:::strict/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    s3.put_bucket_policy(Bucket="strict", Policy=policy(deny))
    mine = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::allow-only/*",
    }
    s3.put_bucket_policy(Bucket="allow-only", Policy=policy(mine))
    found = {f.resource: f.evidence for f in await judge(rules.s3_tls_only, aws_sweep)}
    assert found == {
        "arn:aws:s3:::plain": "bucket plain has no bucket policy: nothing denies plain HTTP",
        "arn:aws:s3:::allow-only": "bucket allow-only's policy has no Deny of requests with "
        "aws:SecureTransport false",
    }


async def test_critical_buckets_need_versioning_and_mfa_delete(
    aws: Aws, aws_sweep: SweepContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_mfa_delete(monkeypatch, {"ledger-safe"})
    s3 = aws.client("s3")
    config = {"CreateBucketConfiguration": {"LocationConstraint": REGION}}
    for name in ("ledger-main", "ledger-safe", "scratch"):
        s3.create_bucket(Bucket=name, **config)
    s3.put_bucket_versioning(Bucket="ledger-main", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_versioning(Bucket="ledger-safe", VersioningConfiguration={"Status": "Enabled"})
    assert await judge(rules.s3_versioning_rule, aws_sweep) == []  # none configured: none asked
    aws_sweep.options["critical_buckets"] = ["ledger-*"]
    [finding] = await judge(rules.s3_versioning_rule, aws_sweep)
    assert finding.resource == "arn:aws:s3:::ledger-main"
    assert finding.evidence == "critical bucket ledger-main: MFA delete off"
