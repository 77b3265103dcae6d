"""Hand-built result histories for the uptime tests: one run per `every`, statuses spelled out,
written with the store's own `insert_results` (the daemon's write path)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from daemon.models import CheckResult, Status
from daemon.store import Store
from daemon.store.results import insert_results

MINUTE = timedelta(minutes=1)


def runs(
    check: str,
    until: datetime,
    statuses: Sequence[Status | Sequence[Status] | None],
    every: timedelta = MINUTE,
) -> list[CheckResult]:
    """Runs ending just before `until`: the last status is the run at `until - every`, the one
    before it at `until - 2 * every`, … `None` is no run at all (a gap); a sequence of statuses
    is one run with several results (a check that reports per resource)."""
    out: list[CheckResult] = []
    for back, status in enumerate(reversed(statuses), start=1):
        if status is None:
            continue
        started = until - back * every
        for n, one in enumerate([status] if isinstance(status, str) else status):
            out.append(
                CheckResult.model_construct(
                    check=check,
                    status=one,
                    evidence=f"{check} {one} #{n}",
                    started_at=started,
                    latency_ms=12.0,
                    subject=None if isinstance(status, str) else f"resource-{n}",
                    values={},
                    labels={},
                )
            )
    return out


def write(store: Store, *series: Iterable[CheckResult]) -> None:
    with store.db.transaction() as conn:
        for one in series:
            insert_results(conn, list(one))
