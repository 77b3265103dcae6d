"""bench.sweep: the AWS security sweep over a large moto estate, and what collecting each
dataset once saves.

Seeds moto's server (on 127.0.0.1, started and stopped here) with `--resources` security
groups per region in three regions, plus volumes, queues, topics, instances, buckets, IAM
users, ElastiCache clusters, network load balancers and CloudFront distributions in
proportion; then runs every AWS security rule once the way the daemon does (one SweepContext,
datasets shared), and once more each rule on its own context (as if every rule fetched what it
needs). Reports wall time, API requests and datasets for both: the shared run's requests grow
with the estate, not with the number of rules.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from typing import Any

from bench._common import emit, isolate_this_process, machine, parser, quiet_logs, table

REGIONS = ("eu-west-1", "us-east-1", "eu-central-1")
AMI = "ami-12c6146b"
ACCOUNT = "123456789012"  # moto's


class Counter:
    """Requests moto's server answered (its request log line is the hook)."""

    def __init__(self) -> None:
        self.requests = 0
        self.by_service: dict[str, int] = {}

    def install(self) -> None:
        from werkzeug.serving import WSGIRequestHandler

        counter = self

        def log_request(self: Any, *args: Any, **kwargs: Any) -> None:
            counter.requests += 1
            scope = (self.headers.get("Authorization") or "").split("/")
            service = scope[3] if len(scope) > 4 else "?"
            what = f"{service} {self.headers.get('X-Amz-Target') or ''}".strip()
            counter.by_service[what] = counter.by_service.get(what, 0) + 1

        WSGIRequestHandler.log_request = log_request  # type: ignore[method-assign]


def account_hosts() -> None:
    """s3control puts the account id in front of the endpoint's host: resolve
    `123456789012.127.0.0.1` to the loopback server, as the tests do."""
    import socket

    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.startswith(f"{ACCOUNT}."):
            host = host.removeprefix(f"{ACCOUNT}.")
        return real(host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]


def seed(per_region: int) -> int:
    """The estate; returns how many resources were made. moto ships ~1,300 public snapshots
    per region that it reports as the account's own: they are dropped first, so the estate is
    only what is made here."""
    import boto3
    from moto.backends import get_backend

    for region in REGIONS:
        get_backend("ec2")[ACCOUNT][region].snapshots.clear()  # type: ignore[index]
    made = 0
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage"}],
    }
    for region in REGIONS:
        ec2 = boto3.client("ec2", region_name=region)
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        for i in range(per_region):
            gid = ec2.create_security_group(GroupName=f"g{i}", Description="b", VpcId=vpc)[
                "GroupId"
            ]
            port = (22, 3389, 5432, 443)[i % 4]
            ec2.authorize_security_group_ingress(
                GroupId=gid,
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": port,
                        "ToPort": port,
                        "IpRanges": [{"CidrIp": "0.0.0.0/0" if i % 2 else "10.0.0.0/8"}],
                    }
                ],
            )
            made += 1
        for _ in range(per_region // 2):
            ec2.create_volume(AvailabilityZone=f"{region}a", Size=8)
            made += 1
        ec2.run_instances(
            ImageId=AMI, MinCount=per_region // 10 or 1, MaxCount=per_region // 10 or 1
        )
        made += per_region // 10 or 1
        sqs, sns = boto3.client("sqs", region_name=region), boto3.client("sns", region_name=region)
        for i in range(per_region // 5):
            url = sqs.create_queue(QueueName=f"q{i}")["QueueUrl"]
            if i % 3 == 0:
                sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
            sns.create_topic(Name=f"t{i}")
            made += 2
        made += _network_services(region, per_region, vpc)
    s3, iam = boto3.client("s3", region_name=REGIONS[0]), boto3.client("iam")
    for i in range(per_region // 5):
        s3.create_bucket(
            Bucket=f"bench-bucket-{i}", CreateBucketConfiguration={"LocationConstraint": REGIONS[0]}
        )
        iam.create_user(UserName=f"user{i}")
        made += 2
    cloudfront = boto3.client("cloudfront", region_name=REGIONS[0])
    for i in range(per_region // 20 or 1):
        cloudfront.create_distribution(DistributionConfig=_distribution(i))
        made += 1
    return made


def _network_services(region: str, per_region: int, vpc: str) -> int:
    """A twentieth as many ElastiCache clusters, and one internet-facing network load balancer
    listening on SSH per ten of those: the reachability rules' estate."""
    import boto3

    ec2 = boto3.client("ec2", region_name=region)
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
    cache = boto3.client("elasticache", region_name=region)
    cache.create_cache_subnet_group(
        CacheSubnetGroupName="bench", CacheSubnetGroupDescription="b", SubnetIds=subnets
    )
    made = 0
    for i in range(per_region // 20 or 1):
        cache.create_cache_cluster(
            CacheClusterId=f"c{i}",
            Engine="redis",
            CacheNodeType="cache.t4g.micro",
            NumCacheNodes=1,
            CacheSubnetGroupName="bench",
        )
        made += 1
    elb = boto3.client("elbv2", region_name=region)
    for i in range(per_region // 200 or 1):
        arn = elb.create_load_balancer(
            Name=f"nlb{i}", Subnets=subnets, Scheme="internet-facing", Type="network"
        )["LoadBalancers"][0]["LoadBalancerArn"]
        group = elb.create_target_group(Name=f"t{i}", Protocol="TCP", Port=22, VpcId=vpc)
        target = group["TargetGroups"][0]["TargetGroupArn"]
        elb.create_listener(
            LoadBalancerArn=arn,
            Protocol="TCP",
            Port=22,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": target}],
        )
        made += 1
    return made


def _distribution(i: int) -> dict[str, Any]:
    """A CloudFront distribution; every other one answers plain HTTP on TLSv1."""
    return {
        "CallerReference": f"bench-{i}",
        "Comment": "bench",
        "Enabled": True,
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": "s3",
                    "DomainName": f"bench-bucket-{i}.s3.amazonaws.com",
                    "S3OriginConfig": {"OriginAccessIdentity": ""},
                }
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": "s3",
            "ViewerProtocolPolicy": "allow-all" if i % 2 else "https-only",
            "MinTTL": 0,
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
        },
        "ViewerCertificate": {
            "CloudFrontDefaultCertificate": False,
            "ACMCertificateArn": f"arn:aws:acm:us-east-1:{ACCOUNT}:certificate/bench",
            "SSLSupportMethod": "sni-only",
            "MinimumProtocolVersion": "TLSv1" if i % 2 else "TLSv1.2_2021",
        },
    }


async def sweep(shared: bool, limit_s: float) -> dict[str, Any]:
    import httpx

    from daemon.sweeps.runner import evaluate
    from daemon.util.time import utcnow
    from jobs.base import CheckContext
    from jobs.sweeps import rules
    from jobs.sweeps.base import AwsScope, SweepContext

    chosen = [r for r in rules("security") if r.meta.service.startswith("aws:")]
    async with httpx.AsyncClient() as http:

        def context() -> SweepContext:
            return SweepContext(
                check=CheckContext(http=http), now=utcnow(), aws=AwsScope(regions=REGIONS)
            )

        started = time.perf_counter()
        if shared:
            sctx = context()
            outcomes = await evaluate(chosen, sctx, limit_s)
            datasets = len(sctx._data)
        else:
            outcomes, datasets = [], 0
            for rule in chosen:
                own = context()
                outcomes += await evaluate([rule], own, limit_s)
                datasets += len(own._data)
        elapsed = time.perf_counter() - started
    return {
        "rules": len(chosen),
        "seconds": round(elapsed, 2),
        "datasets": datasets,
        "findings": sum(len(o.findings) for o in outcomes),
        "rule_errors": sorted({o.meta.id for o in outcomes if o.error}),
    }


def run(per_region: int, max_seconds: float) -> dict[str, Any]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    folder = tempfile.mkdtemp(prefix="bench-sweep-")
    for name in ("config", "credentials"):
        open(os.path.join(folder, name), "w").close()
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - moto's fake credentials
        AWS_DEFAULT_REGION=REGIONS[0],
        AWS_CONFIG_FILE=os.path.join(folder, "config"),
        AWS_SHARED_CREDENTIALS_FILE=os.path.join(folder, "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    counter = Counter()
    counter.install()
    account_hosts()
    try:
        started = time.perf_counter()
        resources = seed(per_region)
        seeded = round(time.perf_counter() - started, 1)
        result: dict[str, Any] = {"resources": resources, "seed_s": seeded}
        for label, shared in (("shared", True), ("per_rule", False)):
            before, counter.by_service = counter.requests, {}
            result[label] = asyncio.run(sweep(shared, max_seconds))
            result[label]["requests"] = counter.requests - before
            result[label]["by_service"] = dict(
                sorted(counter.by_service.items(), key=lambda item: -item[1])[:8]
            )
    finally:
        server.stop()
    result["requests_saved"] = round(
        result["per_rule"]["requests"] / max(1, result["shared"]["requests"]), 2
    )
    return {"bench": "sweep", "machine": machine(), "regions": list(REGIONS), **result}


def render(data: dict[str, Any]) -> str:
    m = data["machine"]
    rows = [
        [
            label,
            data[key]["rules"],
            data[key]["datasets"],
            data[key]["requests"],
            f"{data[key]['seconds']:.1f} s",
            data[key]["findings"],
            len(data[key]["rule_errors"]),
        ]
        for label, key in (
            ("one context (the daemon)", "shared"),
            ("a context per rule", "per_rule"),
        )
    ]
    return "\n".join(
        [
            f"bench.sweep — {m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}",
            f"{data['resources']} resources in {len(data['regions'])} regions "
            f"(seeded in {data['seed_s']} s)",
            "",
            table(
                ["run", "rules", "datasets", "API requests", "wall", "findings", "rule errors"],
                rows,
            ),
            "",
            f"collecting each dataset once: {data['requests_saved']}x fewer API requests",
        ]
    )


def main() -> None:
    p = parser("The AWS security sweep over a large moto estate, shared datasets vs per rule.")
    p.add_argument("--resources", type=int, default=200, help="security groups per region")
    p.add_argument("--max-seconds", type=float, default=600, help="each sweep's time limit")
    args = p.parse_args()
    isolate_this_process()
    quiet_logs()
    data = run(max(4, args.resources), args.max_seconds)
    emit(render(data), data, args.json)


if __name__ == "__main__":
    main()
