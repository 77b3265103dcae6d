"""Helpers for the AWS sweep rule tests (the fixtures are in `fixtures.py`): judging a rule at a
later date, and the root-user flags moto's API cannot set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from moto.backends import get_backend

from daemon.models import Finding
from jobs.sweeps.base import Rule, SweepContext
from tests.peers.aws import ACCOUNT


async def judge(rule: Rule, ctx: SweepContext, days_later: float = 0) -> list[Finding]:
    """The rule's findings as if judged `days_later` from this moment (rules measure age
    against `ctx.now`, so nothing in moto needs backdating)."""
    ctx.now = datetime.now(UTC) + timedelta(days=days_later)
    return await rule.evaluate(ctx)


def root_account(*, mfa: bool, access_keys: bool) -> None:
    """moto cannot enrol the root user's MFA or give it keys through the API: set the flags its
    GetAccountSummary answers from (the rule still reads them over the wire)."""
    summary = get_backend("iam")[ACCOUNT]["global"].account_summary
    summary._account_mfa_enabled = int(mfa)
    summary._account_access_keys_present = int(access_keys)
