"""What `watchkeeper status` and `incidents show` know, built from the store — shared by the
CLI's `--json`, the web console's pages and `/api/…`, and the MCP tools, so they never
disagree. Pure builders over models plus thin `load_*` readers of an open `Store`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from daemon.models import (
    CheckResult,
    EngineState,
    Incident,
    IncidentEvent,
    Investigation,
    worst_status,
)

if TYPE_CHECKING:
    from daemon.config.settings import Settings
    from daemon.engine.quiet import Quiet, Quietness
    from daemon.report.cluster import ClusterView
    from daemon.store import Store
    from daemon.store.lease import Lease


class StatusView:
    """What `watchkeeper status` knows: the configured checks, their latest results, the
    engine's memory of them (flapping), what holds their notifications (silences and
    maintenance), open incidents, the outbox, and who holds the state."""

    def __init__(
        self,
        configured: list[str],
        last: Mapping[str, list[CheckResult]],
        open_incidents: list[Incident],
        outbox: Mapping[Any, int],
        *,
        engine: EngineState | None = None,
        holder: int | None = None,
        quiet: Quietness | None = None,
        lease: tuple[Lease | None, datetime] | None = None,
        cluster: ClusterView | None = None,
    ) -> None:
        self.configured = configured
        self.last = last
        self.open_incidents = open_incidents
        self.outbox = outbox
        self.engine = engine or EngineState()
        self.holder = holder
        self.quiet = quiet
        self.lease = lease
        """With a shared PostgreSQL store: the leader lease, and the database's time."""
        self.cluster = cluster
        """Sharded mode: the members and the locations without one."""

    @property
    def last_cycle(self) -> datetime | None:
        """When the newest committed cycle ran: results are committed with their cycle."""
        starts = [r.started_at for results in self.last.values() for r in results]
        return max(starts) if starts else None

    def marks(self, name: str) -> list[str]:
        """What is special about a check now: "flapping" (one notice sent, quiet until
        stable) and "held" (a silence or a maintenance window holds its notifications)."""
        state = self.engine.checks.get(name)
        found = ["flapping"] if state is not None and state.flapping else []
        return found + (["held"] if self.held(name) is not None else [])

    def held(self, name: str) -> Quiet | None:
        """The silence or maintenance window holding NAME's notifications now, if any."""
        return self.quiet.of(name) if self.quiet is not None else None

    def note(self, name: str) -> str:
        """The NOTE column: the marks, with why and until when a check is held."""
        quiet = self.held(name)
        return ", ".join(
            f"held by {quiet.reason}" if mark == "held" and quiet is not None else mark
            for mark in self.marks(name)
        )

    def flapping(self) -> list[str]:
        return [n for n in self.configured if "flapping" in self.marks(n)]


def load_status(
    store: Store, settings: Settings, holder: int | None, now: datetime | None = None
) -> StatusView:
    """The status as the store has it at `now` (`holder`: the daemon's pid, 0 unknown, None
    none), with the silences and maintenance windows in force then."""
    from daemon.engine.quiet import Quietness
    from daemon.report.cluster import load_cluster
    from daemon.util.time import utcnow

    now = now or utcnow()
    quiet = Quietness(
        store.controls.silences(active_at=now),
        settings.maintenance,
        {spec.name: spec.tags for spec in settings.checks},
        now,
    )
    cluster = load_cluster(store, settings)
    return StatusView(
        [c.name for c in settings.checks],
        _with_verdicts(store, settings, store.results.latest(), cluster),
        store.incidents.recent(include_resolved=False),
        store.outbox.counts(),
        engine=store.incidents.engine_state(),
        holder=holder,
        quiet=quiet,
        lease=store.lease.current() if settings.store.url else None,
        cluster=cluster,
    )


def _with_verdicts(
    store: Store,
    settings: Settings,
    latest: dict[str, list[CheckResult]],
    cluster: ClusterView | None,
) -> dict[str, list[CheckResult]]:
    """The latest results, a vantage check's replaced by its quorum's verdict as the leader
    judges it (`daemon.engine.vantage`): its newest row is one location's view, and showing
    one location failing as the check failing is the false alarm quorums exist to prevent.
    A check whose quorum cannot be reached keeps its raw rows (the cluster section names the
    locations without a node)."""
    if cluster is None:
        return latest
    from daemon.engine.vantage import fresh_for, vantages, verdict

    staffed = {m.location for m in cluster.members if cluster.live(m) and m.location}
    for spec in settings.enabled_checks:
        if not spec.locations:
            continue
        seen = vantages(spec, store.results.latest_from(spec.name, spec.locations), staffed)
        judged = verdict(spec.name, seen, spec.needed, cluster.now, fresh_for(spec, cluster.term))
        if judged is not None:
            latest[spec.name] = [judged]
    return latest


def _held_json(quiet: Quiet | None) -> dict[str, str] | None:
    if quiet is None:
        return None
    return {"reason": quiet.reason, "until": quiet.until.isoformat()}


def active_json(lease: Lease | None, now: datetime) -> dict[str, Any] | None:
    """Which process of several sharing the database is active (`[store] url`)."""
    if lease is None:
        return None
    return {
        "node": lease.node,
        "holder": lease.holder,
        "epoch": lease.epoch,
        "since": lease.acquired_at.isoformat(),
        "expires_at": lease.expires_at.isoformat(),
        "expired": lease.expired(now),
    }


def status_json(view: StatusView) -> dict[str, Any]:
    from daemon.report.cluster import cluster_json

    last_cycle = view.last_cycle
    return {
        "daemon": {
            "running": view.holder is not None,
            "pid": view.holder or None,
            "last_cycle_at": last_cycle.isoformat() if last_cycle else None,
        },
        **({"active": active_json(*view.lease)} if view.lease is not None else {}),
        **({"cluster": cluster_json(view.cluster)} if view.cluster is not None else {}),
        "checks": {
            name: {
                "status": worst_status(view.last[name]) if view.last.get(name) else None,
                "marks": view.marks(name),
                "held": _held_json(view.held(name)),
                "results": [r.model_dump(mode="json") for r in view.last.get(name, [])],
            }
            for name in view.configured
        },
        "flapping": view.flapping(),
        "open_incidents": [i.model_dump(mode="json") for i in view.open_incidents],
        "outbox": dict(view.outbox),
    }


def investigation_json(inv: Investigation) -> dict[str, Any]:
    """The `incidents show --json` form: costs as JSON numbers (null when unknown)."""
    data = inv.model_dump(mode="json")
    for call, raw in zip(data["calls"], inv.calls, strict=True):
        call["cost_usd"] = None if raw.cost_usd is None else float(raw.cost_usd)
    cost = inv.cost if inv.calls else None
    data["cost_usd"] = None if cost is None else float(cost)
    return data


def incident_json(
    incident: Incident, events: list[IncidentEvent], investigations: list[Investigation]
) -> dict[str, Any]:
    """The `incidents show --json` form."""
    return {
        "incident": incident.model_dump(mode="json"),
        "events": [e.model_dump(mode="json") for e in events],
        "investigations": [investigation_json(i) for i in investigations],
    }


def load_incident(store: Store, incident_id: int) -> dict[str, Any] | None:
    """`incident_json` of incident `incident_id`, None when there is none."""
    found = store.incidents.get(incident_id)
    if found is None:
        return None
    incident, events = found
    return incident_json(incident, events, store.incidents.investigations(incident_id))
