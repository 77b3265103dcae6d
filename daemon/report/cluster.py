"""What `status` shows of a sharded cluster: each member, its location, the age of its last
heartbeat, how many checks it runs, whether it leads — and the locations checks run from that
have no live member (so a vantage point that is missing is said, not silently skipped)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.store import Store
    from daemon.store.members import Member


@dataclass(frozen=True)
class ClusterView:
    members: list[Member]
    now: datetime
    """The database's time."""
    term: timedelta
    leader: str | None
    """The lease holder's node, when its lease runs."""
    unstaffed: dict[str, list[str]]
    """Listed locations without a live member → the checks listing them."""

    def live(self, member: Member) -> bool:
        return member.live(self.now, self.term)


def load_cluster(store: Store, settings: Settings) -> ClusterView | None:
    """None unless `[cluster] mode = "sharded"`."""
    if settings.cluster.mode != "sharded":
        return None
    from daemon.engine.shards import unstaffed

    members, now = store.members.all()
    term = settings.store.lease
    lease, lease_now = store.lease.current()
    leader = lease.node if lease is not None and not lease.expired(lease_now) else None
    live = [m for m in members if m.live(now, term)]
    return ClusterView(members, now, term, leader, unstaffed(settings.enabled_checks, live))


def cluster_json(view: ClusterView) -> dict[str, Any]:
    return {
        "members": [
            {
                "node": m.node,
                "location": m.location,
                "live": view.live(m),
                "leader": m.node == view.leader,
                "heartbeat_age_s": round((view.now - m.heartbeat_at).total_seconds(), 1),
                "since": m.started_at.isoformat(),
                "checks": m.owned,
            }
            for m in view.members
        ],
        "unstaffed_locations": view.unstaffed,
    }
