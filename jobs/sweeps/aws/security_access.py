"""AWS security rules over who gets in and how: IAM hygiene (console users without MFA, the
password policy, `*:*` policies) and load balancer listeners (plain HTTP, TLS 1.0/1.1).

Rules only judge datasets from the collectors; they never call AWS themselves.
"""

from __future__ import annotations

from daemon.models import Severity
from jobs.sweeps.aws.collect import identity
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


RULES: list[Rule] = [
    iam_console_no_mfa,
    iam_password_policy,
    iam_admin_policy,
    elb_plain_http,
    elb_old_tls,
]
