"""Uptime over windows, read from the store: the data of `watchkeeper uptime`, the console's
overview and the public status page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from daemon.util.uptime import Target, UptimeReport, Window, bounds, build

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.store import Store
    from jobs.base import CheckSpec


def collect_from(
    store: Store,
    settings: Settings,
    specs: Sequence[CheckSpec],
    report_windows: list[Window],
    now: datetime,
    *,
    tags: tuple[str, ...] = (),
) -> UptimeReport:
    """The report for `specs`. Disabled checks appear only when they have results in a
    window."""
    targets = [Target.of(spec) for spec in specs]
    exact = [t.name for t in targets if not t.single_result]
    counts = store.results.run_counts(bounds(report_windows, now), now, exact=exact)
    oldest = store.results.oldest()
    enabled = {s.name for s in specs if s.enabled}
    targets = [
        t for t in targets if t.name in enabled or any(c.total for c in counts.get(t.name, []))
    ]
    return build(
        targets,
        report_windows,
        counts,
        now=now,
        stored_since=oldest,
        retention=settings.daemon.retention,
        tags=tags or None,
    )
