"""The CloudFront rules against moto's CloudFront: plain HTTP to viewers (any cache behaviour
with viewer protocol policy allow-all) and TLS older than TLSv1.2_2021 (viewer security policy,
custom origins' SSL protocols), each with a distribution that fails and one that passes."""

from __future__ import annotations

from typing import Any

from jobs.sweeps.aws import security_access as rules
from jobs.sweeps.base import SweepContext
from tests.jobs.sweeps.aws.helpers import judge
from tests.peers.aws import Aws

pytest_plugins = ["tests.peers.aws_fixtures", "tests.jobs.sweeps.aws.fixtures"]

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0f2c-example"


def distribution(
    aws: Aws,
    name: str,
    *,
    viewer: str = "redirect-to-https",
    minimum: str | None = "TLSv1.2_2021",
    paths: dict[str, str] | None = None,
    origin_protocols: list[str] | None = None,
) -> tuple[str, str]:
    """A distribution with one origin (S3, or a custom HTTPS origin accepting
    `origin_protocols`), the default behaviour's viewer policy `viewer`, more behaviours by
    path pattern, and its own certificate at `minimum` (None: the default certificate);
    (id, ARN)."""
    if origin_protocols is None:
        origin: dict[str, Any] = {
            "Id": "site",
            "DomainName": f"{name}.s3.amazonaws.com",
            "S3OriginConfig": {"OriginAccessIdentity": ""},
        }
    else:
        origin = {
            "Id": "app",
            "DomainName": f"{name}.example.org",
            "CustomOriginConfig": {
                "HTTPPort": 80,
                "HTTPSPort": 443,
                "OriginProtocolPolicy": "https-only",
                "OriginSslProtocols": {
                    "Quantity": len(origin_protocols),
                    "Items": origin_protocols,
                },
            },
        }
    behaviour = {
        "TargetOriginId": origin["Id"],
        "MinTTL": 0,
        "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
    }
    certificate = (
        {"CloudFrontDefaultCertificate": True}
        if minimum is None
        else {
            "CloudFrontDefaultCertificate": False,
            "ACMCertificateArn": CERTIFICATE,
            "SSLSupportMethod": "sni-only",
            "MinimumProtocolVersion": minimum,
        }
    )
    more = [
        {**behaviour, "PathPattern": path, "ViewerProtocolPolicy": policy}
        for path, policy in (paths or {}).items()
    ]
    config: dict[str, Any] = {
        "CallerReference": name,
        "Comment": name,
        "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [origin]},
        "DefaultCacheBehavior": {**behaviour, "ViewerProtocolPolicy": viewer},
        "ViewerCertificate": certificate,
    }
    if more:
        config["CacheBehaviors"] = {"Quantity": len(more), "Items": more}
    made = aws.client("cloudfront").create_distribution(DistributionConfig=config)
    return made["Distribution"]["Id"], made["Distribution"]["ARN"]


async def test_a_behaviour_answering_plain_http_is_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    fid, arn = distribution(aws, "shop", viewer="allow-all")
    distribution(aws, "docs")  # redirect-to-https everywhere: passes
    [finding] = await judge(rules.cloudfront_plain_http, aws_sweep)
    assert (finding.resource, finding.severity, finding.location) == (arn, "medium", "global")
    assert finding.evidence.startswith(f"distribution {fid} (")
    assert finding.evidence.endswith(
        "answers plain HTTP (viewer protocol policy allow-all) on: default (*)"
    )


async def test_plain_http_on_a_path_behaviour_only_is_reported_by_path(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    distribution(aws, "api", paths={"/legacy/*": "allow-all", "/v2/*": "https-only"})
    [finding] = await judge(rules.cloudfront_plain_http, aws_sweep)
    assert finding.evidence.endswith(": /legacy/*")


async def test_https_only_distributions_pass(aws: Aws, aws_sweep: SweepContext) -> None:
    distribution(aws, "a", viewer="https-only", paths={"/x/*": "redirect-to-https"})
    assert await judge(rules.cloudfront_plain_http, aws_sweep) == []


async def test_a_viewer_policy_below_tlsv1_2_2021_is_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    fid, arn = distribution(aws, "old", minimum="TLSv1.1_2016")
    distribution(aws, "new", minimum="TLSv1.2_2021")
    distribution(aws, "newest", minimum="TLSv1.2_2025")
    [finding] = await judge(rules.cloudfront_old_tls, aws_sweep)
    assert (finding.resource, finding.severity) == (arn, "medium")
    assert finding.evidence == (
        f"distribution {fid}: viewers may connect with security policy TLSv1.1_2016 (below "
        "TLSv1.2_2021)"
    )


async def test_sslv3_is_high_and_tls_1_2_2019_still_medium(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    _, sslv3 = distribution(aws, "ancient", minimum="SSLv3")
    _, cbc = distribution(aws, "cbc", minimum="TLSv1.2_2019")
    found = {f.resource: f.severity for f in await judge(rules.cloudfront_old_tls, aws_sweep)}
    assert found == {sslv3: "high", cbc: "medium"}


async def test_custom_origins_accepting_tls_1_0_are_reported(
    aws: Aws, aws_sweep: SweepContext
) -> None:
    fid, arn = distribution(aws, "app", origin_protocols=["TLSv1", "TLSv1.1", "TLSv1.2"])
    distribution(aws, "app2", origin_protocols=["TLSv1.2"])
    [finding] = await judge(rules.cloudfront_old_tls, aws_sweep)
    assert finding.resource == arn
    assert finding.evidence == f"distribution {fid}: origin app accepts TLSv1/TLSv1.1"


async def test_the_default_certificate_is_not_judged(aws: Aws, aws_sweep: SweepContext) -> None:
    distribution(aws, "plain", minimum=None)
    assert await judge(rules.cloudfront_old_tls, aws_sweep) == []
