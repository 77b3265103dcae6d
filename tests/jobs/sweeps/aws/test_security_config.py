"""The configuration rules of jobs.sweeps.aws.security_config and security_access against
moto: for each rule a resource (or account setting) that fails and one that passes, through
the real APIs."""

from __future__ import annotations

import json
from typing import Any

from jobs.sweeps.aws import security_access as access
from jobs.sweeps.aws import security_config as rules
from jobs.sweeps.base import SweepContext
from tests.jobs.sweeps.aws.helpers import judge
from tests.jobs.sweeps.aws.test_security import database
from tests.peers.aws import ACCOUNT, REGION, Aws

pytest_plugins = ["tests.peers.aws_fixtures", "tests.jobs.sweeps.aws.fixtures"]

AMI = "ami-12c6146b"  # one of moto's default images


def fresh(ctx: SweepContext) -> SweepContext:
    """The same sweep, its datasets forgotten (to judge again after a change)."""
    ctx._data.clear()
    return ctx


# --- logging and detection -------------------------------------------------------------------


async def test_cloudtrail_needs_a_multi_region_trail_logging_with_validation(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    [finding] = await judge(rules.cloudtrail_multi_region, aws_sweep)
    assert finding.evidence == f"account {ACCOUNT} has no CloudTrail trail"
    aws.client("s3").create_bucket(
        Bucket="trail-logs", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    trail = aws.client("cloudtrail")
    trail.create_trail(Name="main", S3BucketName="trail-logs", IsMultiRegionTrail=True)
    trail.start_logging(Name="main")
    [finding] = await judge(rules.cloudtrail_multi_region, fresh(aws_sweep))
    assert finding.evidence == (
        f"account {ACCOUNT} has no multi-region trail that is logging with log file "
        "validation: main (multi-region, logging, validation off)"
    )
    trail.update_trail(Name="main", EnableLogFileValidation=True)
    assert await judge(rules.cloudtrail_multi_region, fresh(aws_sweep)) == []


async def test_guardduty_must_be_enabled(aws: Aws, aws_sweep: SweepContext) -> None:
    [finding] = await judge(rules.guardduty_disabled, aws_sweep)
    assert finding.evidence == f"GuardDuty in {REGION} has no detector"
    assert finding.remediation_cli == f"aws guardduty create-detector --region {REGION} --enable"
    aws.client("guardduty").create_detector(Enable=True)
    assert await judge(rules.guardduty_disabled, fresh(aws_sweep)) == []


async def test_config_must_be_recording(aws: Aws, aws_sweep: SweepContext) -> None:
    [finding] = await judge(rules.config_recorder, aws_sweep)
    assert finding.evidence == f"AWS Config in {REGION} has no configuration recorder"
    config = aws.client("config")
    role = f"arn:aws:iam::{ACCOUNT}:role/config"
    config.put_configuration_recorder(ConfigurationRecorder={"name": "default", "roleARN": role})
    [finding] = await judge(rules.config_recorder, fresh(aws_sweep))
    assert finding.evidence.endswith("has a recorder that is not recording: default")
    aws.client("s3").create_bucket(
        Bucket="config-logs", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "config-logs"})
    config.start_configuration_recorder(ConfigurationRecorderName="default")
    assert await judge(rules.config_recorder, fresh(aws_sweep)) == []


async def test_vpcs_without_flow_logs(aws: Aws, aws_sweep: SweepContext) -> None:
    ec2 = aws.client("ec2")
    default = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    logged = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    aws.client("s3").create_bucket(
        Bucket="flow-logs", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    ec2.create_flow_logs(
        ResourceIds=[logged],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="s3",
        LogDestination="arn:aws:s3:::flow-logs",
    )
    [finding] = await judge(rules.vpc_flow_logs, aws_sweep)
    assert finding.resource == f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/{default}"
    assert finding.evidence == f"VPC {default} (default) has no flow log"


# --- instances and storage -------------------------------------------------------------------


async def test_instances_must_require_imdsv2(aws: Aws, aws_sweep: SweepContext) -> None:
    ec2 = aws.client("ec2")
    old = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    new = ec2.run_instances(
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        MetadataOptions={"HttpTokens": "required"},
    )
    old_id, new_id = old["Instances"][0]["InstanceId"], new["Instances"][0]["InstanceId"]
    [finding] = await judge(rules.ec2_imdsv2, aws_sweep)
    assert finding.resource.endswith(f":instance/{old_id}") and new_id not in finding.resource
    assert finding.evidence == f"instance {old_id} accepts IMDSv1 (HttpTokens: optional)"


async def test_ebs_default_encryption(aws: Aws, aws_sweep: SweepContext) -> None:
    [finding] = await judge(rules.ebs_default_encryption_off, aws_sweep)
    assert finding.evidence == (
        f"EBS encryption by default is off in {REGION} (EbsEncryptionByDefault: false)"
    )
    aws.client("ec2").enable_ebs_encryption_by_default()
    assert await judge(rules.ebs_default_encryption_off, fresh(aws_sweep)) == []


async def test_public_amis_and_snapshots(aws: Aws, aws_sweep: SweepContext) -> None:
    ec2 = aws.client("ec2")
    instance = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]
    shared = ec2.create_image(InstanceId=instance["InstanceId"], Name="golden")["ImageId"]
    ec2.create_image(InstanceId=instance["InstanceId"], Name="private")
    ec2.modify_image_attribute(ImageId=shared, LaunchPermission={"Add": [{"Group": "all"}]})
    [ami] = await judge(rules.ec2_ami_public, aws_sweep)
    assert ami.resource.endswith(f":image/{shared}")
    assert ami.evidence == f"AMI {shared} (golden) is public (launch permission: all)"
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]
    public = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    private = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    ec2.modify_snapshot_attribute(
        SnapshotId=public,
        Attribute="createVolumePermission",
        OperationType="add",
        GroupNames=["all"],
    )
    ec2.modify_snapshot_attribute(
        SnapshotId=private,
        Attribute="createVolumePermission",
        OperationType="add",
        UserIds=["210987654321"],
    )
    [snapshot] = await judge(rules.ebs_snapshot_public, aws_sweep)
    assert snapshot.resource.endswith(f":snapshot/{public}")
    assert snapshot.severity == "critical"


async def test_default_security_groups_with_rules(aws: Aws, aws_sweep: SweepContext) -> None:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])[
        "SecurityGroups"
    ]
    for group in groups:  # empty every default group but the new VPC's
        if group["VpcId"] != vpc:
            if group["IpPermissions"]:
                ec2.revoke_security_group_ingress(
                    GroupId=group["GroupId"], IpPermissions=group["IpPermissions"]
                )
            if group["IpPermissionsEgress"]:
                ec2.revoke_security_group_egress(
                    GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"]
                )
    [finding] = await judge(rules.sg_default_rules, aws_sweep)
    assert f"({vpc})" in finding.evidence
    assert finding.evidence.startswith("default security group sg-")


# --- IAM -------------------------------------------------------------------------------------


async def test_console_users_without_mfa(aws: Aws, aws_sweep: SweepContext) -> None:
    iam = aws.client("iam")
    for name in ("alice", "bob", "robot"):
        iam.create_user(UserName=name)
    iam.create_login_profile(UserName="alice", Password="Not-a-real-password-1")
    iam.create_login_profile(UserName="bob", Password="Not-a-real-password-2")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="bob")["VirtualMFADevice"][
        "SerialNumber"
    ]
    iam.enable_mfa_device(
        UserName="bob",
        SerialNumber=serial,
        AuthenticationCode1="123456",
        AuthenticationCode2="654321",
    )
    [finding] = await judge(access.iam_console_no_mfa, aws_sweep)
    assert finding.resource == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert finding.evidence == "IAM user alice can sign in to the console and has no MFA device"


async def test_password_policy(aws: Aws, aws_sweep: SweepContext) -> None:
    [finding] = await judge(access.iam_password_policy, aws_sweep)
    assert finding.evidence == f"account {ACCOUNT} has no IAM password policy"
    iam = aws.client("iam")
    iam.update_account_password_policy(MinimumPasswordLength=8)
    [finding] = await judge(access.iam_password_policy, fresh(aws_sweep))
    assert finding.evidence == (
        f"account {ACCOUNT}'s password policy is weak: minimum length 8, reuse prevention off"
    )
    iam.update_account_password_policy(MinimumPasswordLength=14, PasswordReusePrevention=24)
    assert await judge(access.iam_password_policy, fresh(aws_sweep)) == []


async def test_attached_policies_granting_star_on_star(aws: Aws, aws_sweep: SweepContext) -> None:
    iam = aws.client("iam")
    iam.create_user(UserName="ops")

    def managed(name: str, statement: dict[str, Any], attach: bool = True) -> str:
        document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        arn: str = iam.create_policy(PolicyName=name, PolicyDocument=document)["Policy"]["Arn"]
        if attach:
            iam.attach_user_policy(UserName="ops", PolicyArn=arn)
        return arn

    admin = managed("everything", {"Effect": "Allow", "Action": "*", "Resource": "*"})
    managed("unused-admin", {"Effect": "Allow", "Action": "*", "Resource": "*"}, attach=False)
    managed("s3-admin", {"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    [finding] = await judge(access.iam_admin_policy, aws_sweep)
    assert finding.resource == admin
    assert finding.evidence == (
        "customer-managed policy everything allows * on * without a condition and is attached "
        "1 time(s)"
    )


# --- RDS and load balancers ------------------------------------------------------------------


async def test_rds_backups_and_deletion_protection(aws: Aws, aws_sweep: SweepContext) -> None:
    database(aws, "orders", public=False)
    rds = aws.client("rds")
    rds.modify_db_instance(
        DBInstanceIdentifier="orders", BackupRetentionPeriod=0, ApplyImmediately=True
    )
    database(aws, "ledger", public=False)
    rds.modify_db_instance(
        DBInstanceIdentifier="ledger",
        BackupRetentionPeriod=7,
        DeletionProtection=True,
        ApplyImmediately=True,
    )
    [backups] = await judge(rules.rds_backups, aws_sweep)
    assert backups.resource.endswith(":db:orders")
    assert backups.evidence.endswith("keeps no automated backups (BackupRetentionPeriod: 0)")
    [protection] = await judge(rules.rds_deletion_protection, aws_sweep)
    assert protection.resource.endswith(":db:orders")


async def test_load_balancer_listeners(aws: Aws, aws_sweep: SweepContext) -> None:
    ec2, elb = aws.client("ec2"), aws.client("elbv2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    lb = elb.create_load_balancer(Name="web", Subnets=subnets)["LoadBalancers"][0]
    arn = lb["LoadBalancerArn"]
    vpc = lb["VpcId"]
    group = elb.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc)
    forward = [{"Type": "forward", "TargetGroupArn": group["TargetGroups"][0]["TargetGroupArn"]}]
    plain = elb.create_listener(
        LoadBalancerArn=arn, Protocol="HTTP", Port=8080, DefaultActions=forward
    )
    redirect = [
        {
            "Type": "redirect",
            "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"},
        }
    ]
    elb.create_listener(LoadBalancerArn=arn, Protocol="HTTP", Port=80, DefaultActions=redirect)
    cert = aws.client("acm").request_certificate(DomainName="shop.example.com")
    certificate = {"CertificateArn": cert["CertificateArn"]}
    old = elb.create_listener(
        LoadBalancerArn=arn,
        Protocol="HTTPS",
        Port=443,
        SslPolicy="ELBSecurityPolicy-2016-08",
        Certificates=[certificate],
        DefaultActions=forward,
    )
    elb.create_listener(
        LoadBalancerArn=arn,
        Protocol="HTTPS",
        Port=8443,
        SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06",
        Certificates=[certificate],
        DefaultActions=forward,
    )
    [http] = await judge(access.elb_plain_http, aws_sweep)
    assert http.resource == plain["Listeners"][0]["ListenerArn"]
    assert http.evidence == (
        "load balancer web serves plain HTTP on port 8080 without redirecting to HTTPS"
    )
    [tls] = await judge(access.elb_old_tls, aws_sweep)
    assert tls.resource == old["Listeners"][0]["ListenerArn"]
    assert "uses ELBSecurityPolicy-2016-08, which accepts TLS 1.0/1.1" in tls.evidence


async def test_security_hub_must_be_enabled(aws: Aws, aws_sweep: SweepContext) -> None:
    [finding] = await judge(rules.securityhub_disabled, aws_sweep)
    assert finding.evidence == (
        f"Security Hub in {REGION} is not enabled (DescribeHub: not subscribed)"
    )
    aws.client("securityhub").enable_security_hub()
    assert await judge(rules.securityhub_disabled, fresh(aws_sweep)) == []
