"""AWS security rules over account and service configuration: logging and detection
(CloudTrail, GuardDuty, Config, VPC flow logs), instance and storage settings (IMDSv2, EBS
default encryption, public AMIs and snapshots, default security groups) and RDS resilience
(IAM hygiene and load balancer listeners: security_access).

Rules only judge datasets from the collectors; they never call AWS themselves.
"""

from __future__ import annotations

from daemon.models import Severity
from jobs.sweeps.aws.collect import db_instances, identity, security_groups
from jobs.sweeps.aws.collect_services import (
    config_recorders,
    ebs_default_encryption,
    flow_logs,
    guardduty_detectors,
    instances,
    own_images,
    security_hub,
    snapshot_volume_permissions,
    trails,
    vpcs,
)
from jobs.sweeps.aws.rule import ACCOUNT, REGION, security_meta
from jobs.sweeps.base import Rule, SweepContext
from jobs.sweeps.rule import Hit, rule

AUDIT = "hipaa:164.312(b)"
AT_REST = "hipaa:164.312(a)(2)(iv)"
AC = "hipaa:164.312(a)(1)"


# --- logging and detection ---------------------------------------------------------------


@rule(
    security_meta(
        "aws.cloudtrail.multi_region",
        "No multi-region CloudTrail trail logs with file validation",
        Severity.HIGH,
        risk="API activity in some regions is not recorded, or its log files can be altered "
        "unnoticed: an intrusion leaves no trustworthy trail.",
        remediation="Create (or fix) a multi-region trail that is logging, with log file "
        "validation on.",
        remediation_cli="aws cloudtrail create-trail --name account-trail --s3-bucket-name "
        "<bucket> --is-multi-region-trail --enable-log-file-validation && aws cloudtrail "
        "start-logging --name account-trail",
        reference="https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-create-and-update-a-trail.html",
        controls=("cis-aws:3.1", "cis-aws:3.2", "soc2:CC7.2", AUDIT),
    ),
    ACCOUNT,
)
async def cloudtrail_multi_region(ctx: SweepContext, region: str) -> list[Hit]:
    found = await trails(ctx)
    good = [
        t
        for t in found
        if t.get("IsMultiRegionTrail")
        and t["Status"].get("IsLogging")
        and t.get("LogFileValidationEnabled")
    ]
    if good:
        return []
    account = (await identity(ctx)).account
    if not found:
        why = "has no CloudTrail trail"
    else:
        said = [
            f"{t['Name']} ({'multi-region' if t.get('IsMultiRegionTrail') else 'one region'}, "
            f"{'logging' if t['Status'].get('IsLogging') else 'not logging'}, validation "
            f"{'on' if t.get('LogFileValidationEnabled') else 'off'})"
            for t in found
        ]
        why = "has no multi-region trail that is logging with log file validation: " + ", ".join(
            said
        )
    return [Hit(account, f"account {account} {why}")]


@rule(
    security_meta(
        "aws.guardduty.disabled",
        "GuardDuty is not enabled in the region",
        Severity.MEDIUM,
        risk="Compromised credentials, crypto-mining and reconnaissance in this region go "
        "undetected.",
        remediation="Enable GuardDuty in every region you use (or through the organisation's "
        "delegated administrator).",
        remediation_cli="aws guardduty create-detector --region {region} --enable",
        reference="https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_settingup.html",
        controls=("soc2:CC7.2", AUDIT),
    ),
    REGION,
)
async def guardduty_disabled(ctx: SweepContext, region: str) -> list[Hit]:
    detectors = await guardduty_detectors(ctx, region)
    if any(status == "ENABLED" for status in detectors.values()):
        return []
    account = (await identity(ctx)).account
    why = "has no detector" if not detectors else "has only disabled detectors"
    return [Hit(f"{account}/{region}/guardduty", f"GuardDuty in {region} {why}")]


@rule(
    security_meta(
        "aws.config.recorder",
        "AWS Config is not recording in the region",
        Severity.MEDIUM,
        risk="Configuration changes are not recorded: nobody can say what changed, when.",
        remediation="Set up AWS Config with a recorder for all resources, and start it.",
        reference="https://docs.aws.amazon.com/config/latest/developerguide/gs-console.html",
        controls=("cis-aws:3.5", "soc2:CC7.1", AUDIT),
    ),
    REGION,
)
async def config_recorder(ctx: SweepContext, region: str) -> list[Hit]:
    recorders = await config_recorders(ctx, region)
    if any(r.get("recording") for r in recorders):
        return []
    account = (await identity(ctx)).account
    why = (
        "has no configuration recorder"
        if not recorders
        else "has a recorder that is not recording: " + ", ".join(r["name"] for r in recorders)
    )
    return [Hit(f"{account}/{region}/config", f"AWS Config in {region} {why}")]


@rule(
    security_meta(
        "aws.securityhub.disabled",
        "Security Hub is not enabled in the region",
        Severity.LOW,
        risk="Findings from GuardDuty, Inspector, Config and partners are not gathered in one "
        "place, and its standards' checks do not run.",
        remediation="Enable Security Hub in every region you use (or through the organisation's "
        "delegated administrator).",
        remediation_cli="aws securityhub enable-security-hub --region {region}",
        reference="https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-settingup.html",
        controls=("cis-aws:4.16", "soc2:CC7.2"),
    ),
    REGION,
)
async def securityhub_disabled(ctx: SweepContext, region: str) -> list[Hit]:
    if await security_hub(ctx, region):
        return []
    account = (await identity(ctx)).account
    evidence = f"Security Hub in {region} is not enabled (DescribeHub: not subscribed)"
    return [Hit(f"{account}/{region}/securityhub", evidence)]


@rule(
    security_meta(
        "aws.vpc.flow_logs",
        "VPC has no flow logs",
        Severity.MEDIUM,
        risk="Network traffic is not recorded: an investigation cannot say who talked to what.",
        remediation="Create a flow log for the VPC (to CloudWatch Logs or S3).",
        remediation_cli="aws ec2 create-flow-logs --region {region} --resource-type VPC "
        "--resource-ids {vpc} --traffic-type ALL --log-destination-type s3 "
        "--log-destination <bucket-arn>",
        reference="https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs.html",
        controls=("cis-aws:3.9", "soc2:CC7.2", AUDIT),
    ),
    REGION,
)
async def vpc_flow_logs(ctx: SweepContext, region: str) -> list[Hit]:
    logged = {f.get("ResourceId") for f in await flow_logs(ctx, region)}
    me = await identity(ctx)
    return [
        Hit(
            me.arn("ec2", region, f"vpc/{v['VpcId']}"),
            f"VPC {v['VpcId']}{' (default)' if v.get('IsDefault') else ''} has no flow log",
            {"vpc": v["VpcId"]},
        )
        for v in await vpcs(ctx, region)
        if v["VpcId"] not in logged
    ]


# --- instances and storage ---------------------------------------------------------------


@rule(
    security_meta(
        "aws.ec2.imdsv2",
        "EC2 instance does not require IMDSv2",
        Severity.MEDIUM,
        risk="A server-side request forgery in any app on the instance can read its role's "
        "credentials from the metadata service (IMDSv1 needs no token).",
        remediation="Require session tokens (IMDSv2) on the instance, after checking its SDKs "
        "are recent enough.",
        remediation_cli="aws ec2 modify-instance-metadata-options --region {region} "
        "--instance-id {id} --http-tokens required --http-endpoint enabled",
        reference="https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-existing-instances.html",
        controls=("cis-aws:5.6", "soc2:CC6.1", AC),
    ),
    REGION,
)
async def ec2_imdsv2(ctx: SweepContext, region: str) -> list[Hit]:
    me, hits = await identity(ctx), []
    for instance in await instances(ctx, region):
        options = instance.get("MetadataOptions") or {}
        if options.get("HttpEndpoint") == "disabled" or options.get("HttpTokens") == "required":
            continue
        iid = instance["InstanceId"]
        evidence = f"instance {iid} accepts IMDSv1 (HttpTokens: {options.get('HttpTokens')})"
        hits.append(Hit(me.arn("ec2", region, f"instance/{iid}"), evidence, {"id": iid}))
    return hits


@rule(
    security_meta(
        "aws.ebs.default_encryption",
        "EBS encryption by default is off in the region",
        Severity.MEDIUM,
        risk="Every new volume and snapshot is unencrypted unless someone remembers to ask.",
        remediation="Turn on EBS encryption by default in every region you use.",
        remediation_cli="aws ec2 enable-ebs-encryption-by-default --region {region}",
        reference="https://docs.aws.amazon.com/ebs/latest/userguide/encryption-by-default.html",
        controls=("cis-aws:2.2.1", "soc2:CC6.1", AT_REST),
    ),
    REGION,
)
async def ebs_default_encryption_off(ctx: SweepContext, region: str) -> list[Hit]:
    if await ebs_default_encryption(ctx, region):
        return []
    account = (await identity(ctx)).account
    evidence = f"EBS encryption by default is off in {region} (EbsEncryptionByDefault: false)"
    return [Hit(f"{account}/{region}/ebs-default-encryption", evidence)]


@rule(
    security_meta(
        "aws.ec2.ami_public",
        "AMI is public",
        Severity.HIGH,
        risk="Anyone can launch the image and read what was baked into it: keys, code, data.",
        remediation="Make the image private; share it with named accounts only.",
        remediation_cli="aws ec2 modify-image-attribute --region {region} --image-id {id} "
        '--launch-permission "Remove=[{{Group=all}}]"',
        reference="https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/sharingamis-intro.html",
        controls=("soc2:CC6.1", AC),
    ),
    REGION,
)
async def ec2_ami_public(ctx: SweepContext, region: str) -> list[Hit]:
    me = await identity(ctx)
    return [
        Hit(
            me.arn("ec2", region, f"image/{image['ImageId']}"),
            f"AMI {image['ImageId']} ({image.get('Name', '')}) is public (launch permission: all)",
            {"id": image["ImageId"]},
        )
        for image in await own_images(ctx, region)
        if image.get("Public")
    ]


@rule(
    security_meta(
        "aws.ebs.snapshot_public",
        "EBS snapshot is public",
        Severity.CRITICAL,
        risk="Any AWS account can create a volume from the snapshot and read all of its data.",
        remediation="Remove `all` from the snapshot's create-volume permission.",
        remediation_cli="aws ec2 modify-snapshot-attribute --region {region} --snapshot-id {id} "
        "--attribute createVolumePermission --operation-type remove --group-names all",
        reference="https://docs.aws.amazon.com/ebs/latest/userguide/ebs-modifying-snapshot-permissions.html",
        controls=("soc2:CC6.1", AC),
    ),
    REGION,
)
async def ebs_snapshot_public(ctx: SweepContext, region: str) -> list[Hit]:
    me = await identity(ctx)
    return [
        Hit(
            me.arn("ec2", region, f"snapshot/{sid}"),
            f"EBS snapshot {sid} can be used by any AWS account (createVolumePermission: all)",
            {"id": sid},
        )
        for sid, permissions in (await snapshot_volume_permissions(ctx, region)).items()
        if any(p.get("Group") == "all" for p in permissions or [])
    ]


@rule(
    security_meta(
        "aws.sg.default_rules",
        "Default security group has rules",
        Severity.LOW,
        risk="Anything launched without a group chosen gets the default group's rules.",
        remediation="Remove every inbound and outbound rule from the default group; give "
        "resources their own groups.",
        reference="https://docs.aws.amazon.com/vpc/latest/userguide/default-security-group.html",
        controls=("cis-aws:5.4", "soc2:CC6.6"),
    ),
    REGION,
)
async def sg_default_rules(ctx: SweepContext, region: str) -> list[Hit]:
    me, hits = await identity(ctx), []
    for group in await security_groups(ctx, region):
        if group["GroupName"] != "default":
            continue
        inbound, outbound = len(group["IpPermissions"]), len(group.get("IpPermissionsEgress", []))
        if inbound or outbound:
            gid = group["GroupId"]
            evidence = (
                f"default security group {gid} ({group.get('VpcId', '')}) has {inbound} inbound "
                f"and {outbound} outbound rule{'' if outbound == 1 else 's'}"
            )
            hits.append(Hit(me.arn("ec2", region, f"security-group/{gid}"), evidence))
    return hits


# --- RDS resilience ----------------------------------------------------------------------


@rule(
    security_meta(
        "aws.rds.backups",
        "RDS instance has no automated backups",
        Severity.MEDIUM,
        risk="A deleted table or corrupted volume cannot be restored to a point in time.",
        remediation="Set a backup retention period of at least 7 days.",
        remediation_cli="aws rds modify-db-instance --region {region} --db-instance-identifier "
        "{id} --backup-retention-period 7 --apply-immediately",
        reference="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithAutomatedBackups.html",
        controls=("soc2:A1.2", "hipaa:164.312(c)(1)"),
    ),
    REGION,
)
async def rds_backups(ctx: SweepContext, region: str) -> list[Hit]:
    return [
        Hit(
            db["DBInstanceArn"],
            f"RDS instance {db['DBInstanceIdentifier']} keeps no automated backups "
            "(BackupRetentionPeriod: 0)",
            {"id": db["DBInstanceIdentifier"]},
        )
        for db in await db_instances(ctx, region)
        if not db.get("BackupRetentionPeriod")
        and not db.get("ReadReplicaSourceDBInstanceIdentifier")
    ]


@rule(
    security_meta(
        "aws.rds.deletion_protection",
        "RDS instance has no deletion protection",
        Severity.LOW,
        risk="One mistaken delete (or a compromised key) removes the database.",
        remediation="Turn on deletion protection.",
        remediation_cli="aws rds modify-db-instance --region {region} --db-instance-identifier "
        "{id} --deletion-protection --apply-immediately",
        reference="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_DeleteInstance.html",
        controls=("soc2:A1.2", "hipaa:164.312(c)(1)"),
    ),
    REGION,
)
async def rds_deletion_protection(ctx: SweepContext, region: str) -> list[Hit]:
    return [
        Hit(
            db["DBInstanceArn"],
            f"RDS instance {db['DBInstanceIdentifier']} can be deleted without first turning "
            "off deletion protection (DeletionProtection: false)",
            {"id": db["DBInstanceIdentifier"]},
        )
        for db in await db_instances(ctx, region)
        if not db.get("DeletionProtection")
    ]


RULES: list[Rule] = [
    cloudtrail_multi_region,
    guardduty_disabled,
    config_recorder,
    securityhub_disabled,
    vpc_flow_logs,
    ec2_imdsv2,
    ebs_default_encryption_off,
    ec2_ami_public,
    ebs_snapshot_public,
    sg_default_rules,
    rds_backups,
    rds_deletion_protection,
]
