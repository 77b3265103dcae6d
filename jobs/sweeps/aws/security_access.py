"""AWS security rules over who gets in and how: IAM hygiene (console users without MFA, the
password policy, `*:*` policies), load balancer listeners (plain HTTP, TLS 1.0/1.1) and
CloudFront distributions (plain HTTP to viewers, TLS older than TLSv1.2_2021).

Rules only judge datasets from the collectors; they never call AWS themselves.
"""

from __future__ import annotations

from typing import Any

from daemon.models import Severity
from jobs.sweeps.aws.collect import identity
from jobs.sweeps.aws.collect_edge import distributions
from jobs.sweeps.aws.collect_services import (
    attached_policies,
    iam_users,
    listeners,
    password_policy,
)
from jobs.sweeps.aws.policy import PolicyError, full_admin
from jobs.sweeps.aws.rule import ACCOUNT, REGION, security_meta
from jobs.sweeps.base import Rule, SweepContext
from jobs.sweeps.rule import Hit, rule

AC = "hipaa:164.312(a)(1)"
OLD_TLS_POLICIES = frozenset(
    {
        "ELBSecurityPolicy-2015-05",
        "ELBSecurityPolicy-2016-08",
        "ELBSecurityPolicy-TLS-1-0-2015-04",
        "ELBSecurityPolicy-TLS-1-1-2017-01",
        "ELBSecurityPolicy-FS-2018-06",
        "ELBSecurityPolicy-FS-1-1-2019-08",
    }
)
"""elbv2 policies that still accept TLS 1.0 or 1.1."""
VIEWER_TLS_ORDER = (
    "SSLv3",
    "TLSv1",
    "TLSv1_2016",
    "TLSv1.1_2016",
    "TLSv1.2_2018",
    "TLSv1.2_2019",
    "TLSv1.2_2021",
)
"""CloudFront viewer security policies, oldest first; everything before TLSv1.2_2021 (the one
AWS recommends) accepts TLS 1.0/1.1 or, for the 2018/2019 TLS 1.2 ones, CBC ciphers. Policies
newer than this list (TLSv1.2_2025, TLSv1.3_2025) pass."""
OLD_ORIGIN_PROTOCOLS = ("SSLv3", "TLSv1", "TLSv1.1")
MIN_PASSWORD_LENGTH = 14  # CIS AWS 1.8
MIN_REUSE_PREVENTION = 24  # CIS AWS 1.9 asks that reuse is prevented; 24 is the maximum


# --- IAM ---------------------------------------------------------------------------------


@rule(
    security_meta(
        "aws.iam.console_no_mfa",
        "IAM user with console access has no MFA",
        Severity.HIGH,
        risk="A phished or reused password is enough to sign in as the user.",
        remediation="Assign an MFA device to the user (or remove their console password).",
        reference="https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_mfa_enable.html",
        controls=("cis-aws:1.10", "soc2:CC6.1", "hipaa:164.312(d)"),
    ),
    ACCOUNT,
)
async def iam_console_no_mfa(ctx: SweepContext, region: str) -> list[Hit]:
    return [
        Hit(u["Arn"], f"IAM user {u['UserName']} can sign in to the console and has no MFA device")
        for u in await iam_users(ctx)
        if u["HasConsole"] and not u["MfaDevices"]
    ]


@rule(
    security_meta(
        "aws.iam.password_policy",
        "IAM password policy is weak",
        Severity.MEDIUM,
        risk="Short or reused passwords are guessed and replayed.",
        remediation=f"Require at least {MIN_PASSWORD_LENGTH} characters and prevent the reuse "
        f"of the last {MIN_REUSE_PREVENTION} passwords.",
        remediation_cli=f"aws iam update-account-password-policy --minimum-password-length "
        f"{MIN_PASSWORD_LENGTH} --password-reuse-prevention {MIN_REUSE_PREVENTION}",
        reference="https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_passwords_account-policy.html",
        controls=("cis-aws:1.8", "cis-aws:1.9", "soc2:CC6.1", "hipaa:164.312(d)"),
    ),
    ACCOUNT,
)
async def iam_password_policy(ctx: SweepContext, region: str) -> list[Hit]:
    policy, account = await password_policy(ctx), (await identity(ctx)).account
    if policy is None:
        return [Hit(account, f"account {account} has no IAM password policy")]
    weak = []
    if policy.get("MinimumPasswordLength", 0) < MIN_PASSWORD_LENGTH:
        weak.append(f"minimum length {policy.get('MinimumPasswordLength')}")
    if policy.get("PasswordReusePrevention", 0) < MIN_REUSE_PREVENTION:
        weak.append(f"reuse prevention {policy.get('PasswordReusePrevention', 'off')}")
    if not weak:
        return []
    return [Hit(account, f"account {account}'s password policy is weak: {', '.join(weak)}")]


@rule(
    security_meta(
        "aws.iam.admin_policy",
        "IAM policy grants full administrative access",
        Severity.HIGH,
        risk="Everyone it is attached to can do anything in the account, including erase it.",
        remediation="Replace `Action: *` on `Resource: *` with the actions and resources the "
        "holders need; keep administrator access to a few break-glass roles.",
        reference="https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html",
        controls=("cis-aws:1.16", "soc2:CC6.3", AC),
    ),
    ACCOUNT,
)
async def iam_admin_policy(ctx: SweepContext, region: str) -> list[Hit]:
    hits = []
    for policy in await attached_policies(ctx):
        try:
            admin = full_admin(policy["Document"])
        except PolicyError:
            continue
        if admin:
            evidence = (
                f"customer-managed policy {policy['PolicyName']} allows * on * without a "
                f"condition and is attached {policy.get('AttachmentCount', 0)} time(s)"
            )
            hits.append(Hit(policy["Arn"], evidence))
    return hits


# --- load balancer listeners -------------------------------------------------------------


@rule(
    security_meta(
        "aws.elb.plain_http",
        "Load balancer serves plain HTTP",
        Severity.MEDIUM,
        risk="Requests and responses (sessions, credentials) cross the network readable and "
        "alterable.",
        remediation="Make the HTTP listener redirect to HTTPS, or remove it.",
        reference="https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html",
        controls=("soc2:CC6.7", "hipaa:164.312(e)(1)"),
    ),
    REGION,
)
async def elb_plain_http(ctx: SweepContext, region: str) -> list[Hit]:
    hits = []
    for listener in await listeners(ctx, region):
        if listener.get("Protocol") != "HTTP":
            continue
        actions = listener.get("DefaultActions", [])
        if actions and all(
            a.get("Type") == "redirect" and a.get("RedirectConfig", {}).get("Protocol") == "HTTPS"
            for a in actions
        ):
            continue
        evidence = (
            f"load balancer {listener['LoadBalancerName']} serves plain HTTP on port "
            f"{listener.get('Port')} without redirecting to HTTPS"
        )
        hits.append(Hit(listener["ListenerArn"], evidence))
    return hits


@rule(
    security_meta(
        "aws.elb.old_tls",
        "Load balancer accepts TLS 1.0 or 1.1",
        Severity.MEDIUM,
        risk="Old TLS versions have known weaknesses; compliance regimes forbid them.",
        remediation="Use a TLS 1.2+ policy such as ELBSecurityPolicy-TLS13-1-2-2021-06.",
        remediation_cli="aws elbv2 modify-listener --region {region} --listener-arn {arn} "
        "--ssl-policy ELBSecurityPolicy-TLS13-1-2-2021-06",
        reference="https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html",
        controls=("soc2:CC6.7", "hipaa:164.312(e)(1)"),
    ),
    REGION,
)
async def elb_old_tls(ctx: SweepContext, region: str) -> list[Hit]:
    return [
        Hit(
            listener["ListenerArn"],
            f"load balancer {listener['LoadBalancerName']}'s {listener.get('Protocol')} listener "
            f"on port {listener.get('Port')} uses {listener['SslPolicy']}, which accepts TLS "
            "1.0/1.1",
            {"arn": listener["ListenerArn"]},
        )
        for listener in await listeners(ctx, region)
        if listener.get("Protocol") in ("HTTPS", "TLS")  # moto names a policy on HTTP too
        and listener.get("SslPolicy") in OLD_TLS_POLICIES
    ]


# --- CloudFront ----------------------------------------------------------------------------


def behaviours(distribution: dict[str, Any]) -> list[tuple[str, str]]:
    """(path pattern, viewer protocol policy) of the default and every other cache behaviour."""
    default = distribution.get("DefaultCacheBehavior") or {}
    found = [("default (*)", str(default.get("ViewerProtocolPolicy", "")))]
    for item in (distribution.get("CacheBehaviors") or {}).get("Items") or []:
        found.append((str(item.get("PathPattern", "?")), str(item.get("ViewerProtocolPolicy", ""))))
    return found


@rule(
    security_meta(
        "aws.cloudfront.plain_http",
        "CloudFront distribution serves viewers over plain HTTP",
        Severity.MEDIUM,
        risk="A cache behaviour with viewer protocol policy allow-all answers plain HTTP: "
        "cookies, tokens and pages cross the network readable and alterable.",
        remediation="Set every cache behaviour's viewer protocol policy to redirect-to-https "
        "or https-only.",
        reference="https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-https-viewers-to-cloudfront.html",
        controls=("soc2:CC6.7", "hipaa:164.312(e)(1)"),
    ),
    ACCOUNT,
)
async def cloudfront_plain_http(ctx: SweepContext, region: str) -> list[Hit]:
    hits = []
    for distribution in await distributions(ctx):
        plain = [path for path, policy in behaviours(distribution) if policy == "allow-all"]
        if plain:
            evidence = (
                f"distribution {distribution['Id']} ({distribution.get('DomainName')}) answers "
                f"plain HTTP (viewer protocol policy allow-all) on: {', '.join(plain)}"
            )
            hits.append(Hit(distribution["ARN"], evidence))
    return hits


def viewer_tls(distribution: dict[str, Any]) -> str | None:
    """Why the viewer side's security policy is outdated, or None. The default
    *.cloudfront.net certificate is not judged: with it CloudFront fixes the policy at TLSv1
    and offers no choice until the distribution has its own certificate."""
    certificate = distribution.get("ViewerCertificate") or {}
    if certificate.get("CloudFrontDefaultCertificate"):
        return None
    minimum = str(certificate.get("MinimumProtocolVersion") or "")
    if minimum in VIEWER_TLS_ORDER[: VIEWER_TLS_ORDER.index("TLSv1.2_2021")]:
        return f"viewers may connect with security policy {minimum} (below TLSv1.2_2021)"
    return None


def origin_tls(distribution: dict[str, Any]) -> list[str]:
    """The custom origins CloudFront may reach over SSLv3, TLS 1.0 or 1.1."""
    found = []
    for origin in (distribution.get("Origins") or {}).get("Items") or []:
        custom = origin.get("CustomOriginConfig")
        if not custom or custom.get("OriginProtocolPolicy") == "http-only":
            continue
        allowed = (custom.get("OriginSslProtocols") or {}).get("Items") or []
        old = [p for p in OLD_ORIGIN_PROTOCOLS if p in allowed]
        if old:
            found.append(f"origin {origin.get('Id')} accepts {'/'.join(old)}")
    return found


@rule(
    security_meta(
        "aws.cloudfront.old_tls",
        "CloudFront distribution allows outdated TLS",
        Severity.MEDIUM,
        risk="SSLv3, TLS 1.0 and 1.1 (and TLS 1.2 with CBC ciphers) have known weaknesses; "
        "compliance regimes forbid them for data in transit.",
        remediation="Set the viewer certificate's minimum protocol version to TLSv1.2_2021 (or "
        "newer) and remove SSLv3/TLSv1/TLSv1.1 from custom origins' SSL protocols.",
        reference="https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/secure-connections-supported-viewer-protocols-ciphers.html",
        controls=("soc2:CC6.7", "hipaa:164.312(e)(1)"),
    ),
    ACCOUNT,
)
async def cloudfront_old_tls(ctx: SweepContext, region: str) -> list[Hit]:
    hits = []
    for distribution in await distributions(ctx):
        viewer = viewer_tls(distribution)
        says = ([viewer] if viewer else []) + origin_tls(distribution)
        if not says:
            continue
        minimum = (distribution.get("ViewerCertificate") or {}).get("MinimumProtocolVersion")
        severity = Severity.HIGH if minimum == "SSLv3" else None
        evidence = f"distribution {distribution['Id']}: {'; '.join(says)}"
        hits.append(Hit(distribution["ARN"], evidence, severity=severity))
    return hits


RULES: list[Rule] = [
    iam_console_no_mfa,
    iam_password_policy,
    iam_admin_policy,
    elb_plain_http,
    elb_old_tls,
    cloudfront_plain_http,
    cloudfront_old_tls,
]
