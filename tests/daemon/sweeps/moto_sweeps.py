"""Sweeps with the real AWS rules against moto's server, run as the daemon runs them (the runner,
the store, the report files). Test modules load the moto fixtures with `pytest_plugins =
["tests.peers.aws_fixtures", "tests.jobs.sweeps.aws.fixtures"]`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from daemon.config.load import load_settings
from daemon.config.settings import Settings
from daemon.store import Store
from daemon.sweeps.runner import SweepRun, run_sweep
from jobs.base import CheckContext
from tests.peers.aws import REGION, Aws

TARGET = '[[notify]]\nname = "oncall"\nurl = "json://127.0.0.1:9/hook"\n'


def security_settings(tmp_path: Path, extra: str = "") -> Settings:
    """One AWS security sweep over moto's region, and a target to queue its message for."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "state"\n{TARGET}'
        f'[[sweeps]]\nname = "nightly"\nkind = "security"\naws = {{ regions = ["{REGION}"] }}\n'
        f"{extra}",
        encoding="utf-8",
    )
    return load_settings(path)


async def sweep_now(settings: Settings, store: Store, now: datetime | None = None) -> SweepRun:
    config = next(s for s in settings.sweeps if s.name == "nightly")
    async with httpx.AsyncClient() as http:
        ctx = CheckContext(http=http)
        return await run_sweep(settings, config, store, None, ctx, now or datetime.now(UTC))


def report(run: SweepRun, ext: str) -> str:
    return Path(run.record.detail["reports"][ext]).read_text(encoding="utf-8")


def sarif_of(run: SweepRun) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(report(run, "sarif"))
    return data


def open_to_the_internet(aws: Aws, name: str, port: int) -> str:
    """A security group in the default VPC letting anyone reach `port`; its id."""
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group: str = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": port,
                "ToPort": port,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    return group
