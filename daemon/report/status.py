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
    from daemon.store import Store


class StatusView:
    """What `watchkeeper status` knows: the configured checks, their latest results, the
    engine's memory of them (flapping), open incidents, the outbox, and who holds the state."""

    def __init__(
        self,
        configured: list[str],
        last: Mapping[str, list[CheckResult]],
        open_incidents: list[Incident],
        outbox: Mapping[Any, int],
        *,
        engine: EngineState | None = None,
        holder: int | None = None,
    ) -> None:
        self.configured = configured
        self.last = last
        self.open_incidents = open_incidents
        self.outbox = outbox
        self.engine = engine or EngineState()
        self.holder = holder

    @property
    def last_cycle(self) -> datetime | None:
        """When the newest committed cycle ran: results are committed with their cycle."""
        starts = [r.started_at for results in self.last.values() for r in results]
        return max(starts) if starts else None

    def marks(self, name: str) -> list[str]:
        """What is special about a check now. Silences, once they exist, add "silenced"
        here (and to `marks` in --json); nothing else needs to change."""
        state = self.engine.checks.get(name)
        return ["flapping"] if state is not None and state.flapping else []

    def flapping(self) -> list[str]:
        return [n for n in self.configured if "flapping" in self.marks(n)]


def load_status(store: Store, configured: list[str], holder: int | None) -> StatusView:
    """The status as the store has it now (`holder`: the daemon's pid, 0 unknown, None none)."""
    return StatusView(
        configured,
        store.results.latest(),
        store.incidents.recent(include_resolved=False),
        store.outbox.counts(),
        engine=store.incidents.engine_state(),
        holder=holder,
    )


def status_json(view: StatusView) -> dict[str, Any]:
    last_cycle = view.last_cycle
    return {
        "daemon": {
            "running": view.holder is not None,
            "pid": view.holder or None,
            "last_cycle_at": last_cycle.isoformat() if last_cycle else None,
        },
        "checks": {
            name: {
                "status": worst_status(view.last[name]) if view.last.get(name) else None,
                "marks": view.marks(name),
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
