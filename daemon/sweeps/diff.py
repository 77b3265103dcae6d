"""Compare a sweep's findings with an earlier run: new, open, resolved or not re-checked, what
is muted, and what the targets have not heard yet. Pure: no I/O, no clock.

A finding whose rule failed this time is never resolved, and a muted one is never told.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from fnmatch import fnmatchcase
from typing import Any

from daemon.config.sweeps import MuteEntry
from daemon.models import Finding
from daemon.store.sweeps import SweepRunRecord, TrackedFinding


@dataclass(frozen=True)
class Changes:
    """What the targets have not heard yet (compared with the last notified run)."""

    new: list[TrackedFinding] = field(default_factory=list)
    changed: list[TrackedFinding] = field(default_factory=list)
    resolved: list[TrackedFinding] = field(default_factory=list)
    errors_changed: bool = False

    @property
    def empty(self) -> bool:
        return not (self.new or self.changed or self.resolved or self.errors_changed)


def mute_for(finding: Finding, mutelist: Sequence[MuteEntry], today: date) -> str | None:
    """The reason of the first live mutelist entry covering `finding`, else None."""
    for entry in mutelist:
        if not entry.active(today):
            continue
        if fnmatchcase(finding.rule, entry.rule) and fnmatchcase(finding.resource, entry.resource):
            return entry.reason + (f" (until {entry.until.isoformat()})" if entry.until else "")
    return None


def track(
    findings: Sequence[Finding],
    previous: SweepRunRecord | None,
    ran: set[str],
    errored: set[str],
    mutelist: Sequence[MuteEntry],
    now: datetime,
) -> list[TrackedFinding]:
    """Each finding's state against `previous`: new or open; a finding seen then but not now is
    resolved when its rule ran cleanly, `unknown` when its rule failed, and dropped when its
    rule did not run at all (out of scope now: not swept is not fixed)."""
    today = now.astimezone(UTC).date()
    before = (
        {t.finding.id: t for t in previous.findings if t.state != "resolved"} if previous else {}
    )
    tracked: list[TrackedFinding] = []
    for finding in findings:
        mute = mute_for(finding, mutelist, today)
        prior = before.pop(finding.id, None)
        if prior is None:
            tracked.append(TrackedFinding(finding, "new", now, mute))
        else:
            change = _change(prior, finding, mute)
            tracked.append(TrackedFinding(finding, "open", prior.first_seen, mute, change))
    for prior in before.values():
        mute = mute_for(prior.finding, mutelist, today)
        if prior.finding.rule in errored:
            tracked.append(TrackedFinding(prior.finding, "unknown", prior.first_seen, mute))
        elif prior.finding.rule in ran:
            tracked.append(TrackedFinding(prior.finding, "resolved", prior.first_seen, mute))
    return tracked


def _change(prior: TrackedFinding, finding: Finding, mute: str | None) -> str | None:
    old = prior.finding.severity
    if finding.severity != old:
        return f"severity {'raised' if finding.severity > old else 'lowered'} from {old.value}"
    if prior.muted and mute is None:
        return "no longer muted"
    return None


def changes(
    tracked: Sequence[TrackedFinding], errored: set[str], baseline: SweepRunRecord | None
) -> Changes:
    """What to tell, from findings tracked against `baseline`: muted ones never count. The
    rules that could not run (`errored`) are news when they differ from the baseline's."""
    before = errored_rules(baseline.detail) if baseline else set()
    return Changes(
        new=[t for t in tracked if t.state == "new" and not t.muted],
        changed=[t for t in tracked if t.state == "open" and t.change and not t.muted],
        resolved=[t for t in tracked if t.state == "resolved" and not t.muted],
        errors_changed=errored != before,
    )


def errored_rules(detail: Mapping[str, Any]) -> set[str]:
    """The rules a stored run could not run: those that failed, and those a scope failure
    (no credentials) kept from running."""
    failed = {e["rule"] for e in detail.get("rule_errors", [])}
    return failed | {rule for e in detail.get("scope_errors", []) for rule in e["rules"]}


def dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per id (rule + resource): the most severe, first come on a tie."""
    kept: dict[str, Finding] = {}
    for finding in findings:
        held = kept.get(finding.id)
        if held is None or finding.severity > held.severity:
            kept[finding.id] = finding
    return list(kept.values())
