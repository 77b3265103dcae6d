"""Vantage points: one verdict from a check's latest results in several locations.

A check with `locations = ["eu-1", "us-1", "ap-1"]` and `quorum = 2` runs once from each
location; a network blip between one location and the target must not page anyone. The
verdict is the status at least `quorum` locations agree on: the locations' latest statuses
ordered worst first, the quorum-th of them. Two locations failing and one ok → failing; one
failing and two ok → ok (the evidence still names the one). The engine then treats the verdict
as the check's result, so thresholds, flapping and dependencies apply as to any check, and the
incident resolves by the same rule (fewer than `quorum` locations failing).

A location counts only with a fresh result (younger than `fresh_for`): a stale or missing one
does not vote. When fewer than `quorum` of the listed locations have a live node, the quorum
cannot be met and nothing can be concluded: there is no verdict (`None`), so the engine
changes nothing about the check — an open incident stays open, none opens — and the caller
reports the locations without a node (log, `status`). Paging "shop failing" because watchkeeper
lost sight of it would be the very false positive vantage points exist to prevent. Pure: no
I/O, no clock reads.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from daemon.models import STATUS_RANK, CheckResult, Status, format_duration, worst_status

if TYPE_CHECKING:
    from jobs.base import CheckSpec


@dataclass(frozen=True)
class Vantage:
    """What is known of one location: its latest run's results, and whether a live node is
    there to run it again."""

    location: str
    results: Sequence[CheckResult]
    live: bool


def verdict(
    check: str,
    vantages: Sequence[Vantage],
    quorum: int,
    now: datetime,
    fresh_for: timedelta,
) -> CheckResult | None:
    """The check's result as the quorum of its locations sees it, its evidence one line per
    location (status, latency, age, evidence); None when the quorum cannot be reached (fewer
    than `quorum` locations have a live node: `unreachable` names them)."""
    votes: list[Status] = []
    lines: list[str] = []
    for vantage in vantages:
        line, vote = _line(vantage, now, fresh_for)
        lines.append(line)
        if vote is not None:
            votes.append(vote)
    if unreachable(vantages, quorum):
        return None
    failing = [s for s in votes if s != "ok"]
    started = [r.started_at for v in vantages for r in v.results]
    at = max(started) if started else now
    ranked = sorted(votes, key=lambda s: STATUS_RANK[s], reverse=True)
    status: Status = ranked[quorum - 1] if len(ranked) >= quorum else "ok"
    agree = "agree" if status != "ok" else "below the quorum"
    head = f"{len(failing)} of {len(vantages)} locations not ok (quorum {quorum}, {agree})"
    return CheckResult(
        check=check,
        status=status,
        evidence="\n".join([head, *lines]),
        started_at=at,
        values={"locations_not_ok": len(failing), "locations_voting": len(votes)},
        labels={"quorum": str(quorum)},
    )


def fresh_for(spec: CheckSpec, term: timedelta) -> timedelta:
    """How long a location's result still votes: two of its runs (a late one is not a dead
    one), its timeout, and one term for a takeover within its location."""
    period = spec.interval or timedelta(seconds=60)
    return 2 * period + spec.timeout + term


def vantages(
    spec: CheckSpec, latest: Mapping[str, Sequence[CheckResult]], staffed: Collection[str]
) -> list[Vantage]:
    """What is known of each of the check's locations: its latest run (`latest`, by
    location) and whether a live member is there (`staffed`: the live members' locations)."""
    return [Vantage(where, latest.get(where, []), where in staffed) for where in spec.locations]


def unreachable(vantages: Sequence[Vantage], quorum: int) -> list[str]:
    """The locations without a live node, when they leave fewer than `quorum` with one (else
    empty: the quorum can be met)."""
    missing = [v.location for v in vantages if not v.live]
    return missing if len(vantages) - len(missing) < quorum else []


def _line(vantage: Vantage, now: datetime, fresh_for: timedelta) -> tuple[str, Status | None]:
    """One location's line in the evidence, and its vote (None: it does not vote)."""
    where = vantage.location
    if not vantage.results:
        why = "no result yet" if vantage.live else "no live node in this location"
        return f"{where}: {why}", None
    status = worst_status(list(vantage.results))
    first = max(vantage.results, key=lambda r: (STATUS_RANK[r.status], r.started_at))
    age = now - first.started_at
    latency = f"{first.latency_ms:.0f} ms" if first.latency_ms is not None else "-"
    evidence = "; ".join(r.evidence for r in vantage.results if not r.ok) or first.evidence
    fresh = age <= fresh_for
    note = "" if fresh else ", stale: not counted"
    if not vantage.live:
        note += ", no live node now"
    text = f"{where}: {status.upper()}, {latency}, {format_duration(age)} ago{note} — {evidence}"
    return text, status if fresh else None
