"""The one rule style (jobs.sweeps.rule) without a cloud: a frame's places, templates and
commands, severity from the metadata, the hit or the saving, and the account asked lazily."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest

from daemon.models import Severity
from jobs.base import CheckContext
from jobs.sweeps.base import CollectError, RuleMeta, SweepContext
from jobs.sweeps.rule import Frame, Hit, by_savings, rule, savings_severity

META = RuleMeta(
    id="test.thing.open",
    title="Thing is open",
    kind="security",
    severity=Severity.MEDIUM,
    risk="risk",
    remediation="close it",
    remediation_cli="close --in {zone} --id {id}",
)


class Places:
    """A frame over zones `a` and `b`, counting how often the account is asked."""

    def __init__(self) -> None:
        self.account_asked = 0
        self.frame = Frame("zone", self.places, lambda zone: f"zone-{zone}", self.account)

    async def places(self, ctx: SweepContext) -> Sequence[str]:
        return ("a", "b")

    async def account(self, ctx: SweepContext) -> str:
        self.account_asked += 1
        return "111122223333"


@pytest.fixture
async def sweep() -> AsyncIterator[SweepContext]:
    async with httpx.AsyncClient() as http:
        yield SweepContext(check=CheckContext(http=http), now=datetime.now(UTC))


async def test_each_place_is_judged_and_fills_the_template(sweep: SweepContext) -> None:
    places = Places()

    @rule(META, places.frame)
    async def judge(ctx: SweepContext, zone: str) -> list[Hit]:
        return [Hit(f"thing-{zone}", f"thing in {zone} is open", {"id": f"t-{zone}"})]

    first, second = await judge.evaluate(sweep)
    assert (first.resource, first.location, first.account) == ("thing-a", "zone-a", "111122223333")
    assert first.remediation_cli == "close --in a --id t-a"
    assert (second.location, second.remediation_cli) == ("zone-b", "close --in b --id t-b")
    assert (first.severity, first.title, first.remediation) == (
        "medium",
        "Thing is open",
        "close it",
    )
    assert places.account_asked == 1


async def test_a_hit_may_say_its_own_command_location_severity_and_title(
    sweep: SweepContext,
) -> None:
    @rule(META, Places().frame)
    async def judge(ctx: SweepContext, zone: str) -> list[Hit]:
        hit = Hit(
            "x",
            "worse",
            command="special fix",
            severity=Severity.CRITICAL,
            location="elsewhere",
            title="Thing is wide open",
        )
        return [hit] if zone == "a" else []

    [found] = await judge.evaluate(sweep)
    assert (found.remediation_cli, found.severity, found.location, found.title) == (
        "special fix",
        "critical",
        "elsewhere",
        "Thing is wide open",
    )


async def test_without_hits_the_account_is_not_asked(sweep: SweepContext) -> None:
    places = Places()

    @rule(META, places.frame)
    async def judge(ctx: SweepContext, zone: str) -> list[Hit]:
        return []

    assert await judge.evaluate(sweep) == []
    assert places.account_asked == 0


async def test_the_first_failing_place_in_order_is_raised(sweep: SweepContext) -> None:
    b_failed = asyncio.Event()

    @rule(META, Places().frame)
    async def judge(ctx: SweepContext, zone: str) -> list[Hit]:
        if zone == "a":
            await b_failed.wait()  # a fails last, yet a comes first
            raise CollectError("a denied")
        b_failed.set()
        raise CollectError("b denied")

    with pytest.raises(CollectError, match=r"^a denied$"):
        await judge.evaluate(sweep)


async def test_severity_by_savings_unless_the_hit_says(sweep: SweepContext) -> None:
    @rule(replace(META, remediation_cli=None), Places().frame, severity=by_savings)
    async def judge(ctx: SweepContext, zone: str) -> list[Hit]:
        if zone == "a":
            return [Hit("big", "saves", savings=1234.5678), Hit("unknown", "price unknown")]
        return [Hit("forced", "saves little", savings=1.0, severity=Severity.HIGH)]

    big, unknown, forced = await judge.evaluate(sweep)
    assert (big.severity, big.est_monthly_savings_usd) == ("high", 1234.57)
    assert (unknown.severity, unknown.est_monthly_savings_usd) == ("low", None)
    assert unknown.remediation_cli is None
    assert (forced.severity, forced.est_monthly_savings_usd) == ("high", 1.0)


def test_savings_set_the_severity() -> None:
    assert [savings_severity(x) for x in (None, 99.99, 100, 999.99, 1000)] == [
        Severity.LOW,
        Severity.LOW,
        Severity.MEDIUM,
        Severity.MEDIUM,
        Severity.HIGH,
    ]
