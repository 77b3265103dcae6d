"""The AWS frames of the one rule style (`jobs.sweeps.rule`): a rule is judged once per region in
scope, or once per account, after the sweep checked once that AWS accepts its credentials; and
the metadata of a security rule, its service from its id.

Frames only name places and the account; the datasets behind them come from `collect`.
"""

from __future__ import annotations

from daemon.models import Severity
from jobs.sweeps.aws.collect import GLOBAL, home, identity, regions
from jobs.sweeps.base import RuleMeta, SweepContext
from jobs.sweeps.rule import Frame, Scope


async def _account(ctx: SweepContext) -> str:
    return (await identity(ctx)).account


async def _home(ctx: SweepContext) -> tuple[str, ...]:
    return (await home(ctx),)  # global services answer from any region: ask one


async def _credentials(ctx: SweepContext) -> None:
    await identity(ctx)  # GetCallerIdentity needs no permission: only working credentials


AWS = Scope("AWS", _credentials)
"""Every AWS rule needs credentials STS accepts; without them the sweep says so once."""
REGION = Frame("region", regions, lambda region: region, _account, AWS)
"""Judged in each region in scope; findings are located in their region."""
ACCOUNT = Frame("region", _home, lambda _: GLOBAL, _account, AWS)
"""Judged once, in the home region; findings are located "global" unless a hit says where."""

SERVICES = {"sg": "aws:ec2", "ebs": "aws:ec2", "vpc": "aws:ec2", "elb": "aws:elbv2"}


def security_meta(
    id: str, title: str, severity: Severity, *, controls: tuple[str, ...] = (), **text: str
) -> RuleMeta:
    """A security rule's metadata; its service (`aws:rds`) follows from the id."""
    family = id.split(".")[1]
    service = SERVICES.get(family, f"aws:{family}")
    return RuleMeta(id, title, "security", severity, service=service, controls=controls, **text)
