"""The incident engine: turns check results into incidents and the events people hear about.

Pure functions over `EngineState`: no I/O, no clock reads (`now` is always a parameter), and
the input state is never mutated — every call works on a deep copy and returns it.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from graphlib import TopologicalSorter

from daemon.models import (
    CheckResult,
    CheckState,
    EngineState,
    EventKind,
    Incident,
    IncidentEvent,
    Severity,
    Status,
    fingerprint,
    format_duration,
    worst_status,
)

REMOVED_DETAIL = "check removed from configuration"


@dataclass(frozen=True)
class CheckPolicy:
    """What the engine needs from one `[[checks]]` entry."""

    name: str
    severity: Severity
    failure_threshold: int = 2
    success_threshold: int = 1
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class IncidentPolicy:
    """The `[incidents]` config table."""

    reminder_interval: timedelta | None = None
    """None (or zero) = no reminders."""
    flap_window: timedelta = timedelta(minutes=30)
    flap_threshold: int = 4
    """More than this many `failing` flips inside `flap_window` = flapping."""


@dataclass(frozen=True)
class Evaluation:
    state: EngineState
    events: list[IncidentEvent]
    resolved: list[Incident]
    """Incidents closed by this call: they have left `state.incidents`; the store keeps them."""
    touched: frozenset[str] = frozenset()
    """Checks whose state may differ from the input's (added, changed or removed): what a
    commit must write."""
    watch: frozenset[str] = frozenset()
    """Checks the next evaluation must walk even without a result (failing, flapping,
    inside their flap window, in an incident): pass it back as `watch`."""


@dataclass(frozen=True)
class _Observed:
    """One check's outcome in one evaluation (several results folded into one)."""

    status: Status
    evidence: str
    at: datetime


@dataclass
class _Cycle:
    """Working memory of one `evaluate` call; `state` is the private copy being changed."""

    state: EngineState
    checks: Mapping[str, CheckPolicy]
    policy: IncidentPolicy
    now: datetime
    observed: dict[str, _Observed]
    before: dict[int, tuple[Severity, frozenset[str]]]
    """Severity and blast radius of each incident open when the call started."""
    deps: Mapping[str, frozenset[str]]
    """Transitive dependencies of every configured check."""
    troubled: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    """Checks failing or flapping after phase 1: the only ones a blast radius can hold."""
    events: list[IncidentEvent] = field(default_factory=list)
    resolved: list[Incident] = field(default_factory=list)
    notes: dict[int, list[str]] = field(default_factory=dict)
    flapped: dict[int, list[str]] = field(default_factory=dict)
    started_flapping: set[str] = field(default_factory=set)
    settled: set[str] = field(default_factory=set)
    owners: dict[str, list[Incident]] | None = None
    """Fingerprint -> the open incidents with it, by id (`_own_incident`), built on first use
    and kept up to date by `_open` and `_resolve`: a lookup per placed check, not a scan of
    every open incident (1,000 failing checks made that 1,000 x 1,000 a cycle)."""


@dataclass(frozen=True)
class Topology:
    """What the configured dependencies imply, computed once per configuration (not per
    cycle): names in order, dependencies before dependants, and each check's transitive
    dependencies."""

    names: tuple[str, ...]
    order: tuple[str, ...]
    deps: Mapping[str, frozenset[str]]

    @classmethod
    def of(cls, checks: Mapping[str, CheckPolicy]) -> Topology:
        return cls(
            names=tuple(sorted(checks)),
            order=tuple(topological_order(checks)),
            deps={name: frozenset(dependencies(name, checks)) for name in checks},
        )


def evaluate(
    state: EngineState,
    results: list[CheckResult],
    checks: Mapping[str, CheckPolicy],
    policy: IncidentPolicy,
    now: datetime,
    acknowledged: AbstractSet[int] = frozenset(),
    topology: Topology | None = None,
    watch: AbstractSet[str] | None = None,
) -> Evaluation:
    """Fold one batch of results into the state; return the new state and what to announce.

    `results` may cover any subset of the configured checks: checks without a result keep
    their counters, but time-based transitions (flap settling, reminders) still happen.
    Reminders due at `now` are included (never for `acknowledged` incidents), so calling
    `reminders` separately is optional. `topology` = `Topology.of(checks)` and `watch` = the
    previous evaluation's `watch` of this very state, passed in by a caller that keeps them
    across cycles (without them, every check is looked at once).
    Event order: `resolved` as they happen, then by incident id `opened`/`changed` and
    `flapping`, then `reminder`.

    The work is proportional to what can change: checks with a result, checks failing,
    flapping, inside their flap window or in an incident, and open incidents. Every other
    check's state is shared, unchanged, between the input and the returned state (neither is
    ever mutated in place: a check's state is copied before it changes).
    """
    return _evaluate(
        state, results, checks, policy, now, acknowledged, topology, watch, every=False
    )


def _evaluate(
    state: EngineState,
    results: list[CheckResult],
    checks: Mapping[str, CheckPolicy],
    policy: IncidentPolicy,
    now: datetime,
    acknowledged: AbstractSet[int],
    topology: Topology | None,
    watch: AbstractSet[str] | None = None,
    *,
    every: bool,
) -> Evaluation:
    """`every` walks every configured check (the definition `evaluate` must equal; tests)."""
    topology = topology or Topology.of(checks)
    observed = observe(results, checks)
    active = set(checks) if every else _active(state, observed, checks, watch)
    cycle = _Cycle(
        state=_copy_on_write(state, active),
        checks=checks,
        policy=policy,
        now=now,
        observed=observed,
        before={i.id: (i.severity, frozenset(i.blast_radius)) for i in state.incidents.values()},
        deps=topology.deps,
    )
    _drop_removed(cycle)
    for name in topology.names if every or len(active) * 8 > len(checks) else sorted(active):
        if name in active:
            _record(cycle, name)
    cycle.troubled.update(n for n in active if (c := cycle.state.checks[n]).failing or c.flapping)
    for name in topology.order:
        if name in active:
            _place(cycle, name)
    _refresh_incidents(cycle)
    events = cycle.events + _announce(cycle) + _remind(cycle.state, policy, now, acknowledged)
    touched = active | cycle.removed
    watched = (n for n in active if n in cycle.state.checks and _watched(cycle.state.checks[n]))
    return Evaluation(
        state=cycle.state,
        events=events,
        resolved=cycle.resolved,
        touched=frozenset(touched),
        watch=frozenset(watched),
    )


def _active(
    state: EngineState,
    observed: Mapping[str, _Observed],
    checks: Mapping[str, CheckPolicy],
    watch: AbstractSet[str] | None,
) -> set[str]:
    """The configured checks an evaluation can change (see `evaluate`)."""
    active = set(observed)
    active.update(i.check for i in state.incidents.values() if i.check in checks)
    if watch is None:
        active.update(n for n, check in state.checks.items() if _watched(check))
    else:
        active.update(watch)
    if state.checks.keys() != checks.keys():
        active.update(n for n in checks if n not in state.checks)  # new: get a CheckState
    active &= checks.keys()
    return active


def _watched(check: CheckState) -> bool:
    return check.failing or check.flapping or bool(check.changes) or check.incident_id is not None


def _copy_on_write(state: EngineState, active: AbstractSet[str]) -> EngineState:
    """A new state whose active checks and open incidents are private copies; the rest is
    shared with `state` (CheckState's only mutable field is the `changes` list)."""
    checks = dict(state.checks)
    for name in active:
        check = checks.get(name)
        if check is not None:
            checks[name] = check.model_copy(update={"changes": list(check.changes)})
    incidents = {i: incident.model_copy(deep=True) for i, incident in state.incidents.items()}
    return state.model_copy(update={"checks": checks, "incidents": incidents})


def reminders(
    state: EngineState,
    policy: IncidentPolicy,
    now: datetime,
    acknowledged: AbstractSet[int] = frozenset(),
) -> Evaluation:
    """A `reminder` for every open incident that has been quiet for `reminder_interval`,
    unless someone acknowledged it."""
    new = _copy_on_write(state, frozenset())  # reminders change open incidents only
    return Evaluation(state=new, events=_remind(new, policy, now, acknowledged), resolved=[])


def observe(results: list[CheckResult], checks: Mapping[str, CheckPolicy]) -> dict[str, _Observed]:
    """Fold each configured check's results into one status; others are ignored."""
    by_check: dict[str, list[CheckResult]] = {}
    for result in results:
        if result.check in checks:
            by_check.setdefault(result.check, []).append(result)
    return {name: _fold(batch) for name, batch in by_check.items()}


def _fold(results: list[CheckResult]) -> _Observed:
    ordered = sorted(results, key=lambda r: (r.subject or "", r.started_at, r.evidence))
    bad = [r.evidence for r in ordered if not r.ok]
    evidence = "\n".join(bad) if bad else ordered[0].evidence
    return _Observed(worst_status(ordered), evidence, max(r.started_at for r in ordered))


def topological_order(checks: Mapping[str, CheckPolicy]) -> list[str]:
    """Dependencies before dependants; the same order whatever order `checks` came in."""
    graph = {n: sorted(d for d in checks[n].depends_on if d in checks) for n in sorted(checks)}
    return list(TopologicalSorter(graph).static_order())


def dependencies(name: str, checks: Mapping[str, CheckPolicy]) -> set[str]:
    """Every check `name` depends on, directly or transitively."""
    found: set[str] = set()
    stack = list(checks[name].depends_on)
    while stack:
        dependency = stack.pop()
        if dependency in found or dependency not in checks:
            continue
        found.add(dependency)
        stack.extend(checks[dependency].depends_on)
    return found


# --- phase 1: counters, the failing flag, flapping --------------------------------------------


def _drop_removed(cycle: _Cycle) -> None:
    state = cycle.state
    for incident in sorted(state.incidents.values(), key=lambda i: i.id):
        if incident.check not in cycle.checks:
            _resolve(cycle, incident, REMOVED_DETAIL)
    if state.checks.keys() != cycle.checks.keys():
        for name in [name for name in state.checks if name not in cycle.checks]:
            del state.checks[name]
            cycle.removed.add(name)


def _record(cycle: _Cycle, name: str) -> None:
    check = cycle.state.checks.setdefault(name, CheckState())
    observed = cycle.observed.get(name)
    if observed is not None and _tally(check, observed, cycle.checks[name]):
        check.changes.append(cycle.now)
    horizon = cycle.now - cycle.policy.flap_window
    check.changes = [at for at in check.changes if at > horizon]
    if not check.flapping and len(check.changes) > cycle.policy.flap_threshold:
        check.flapping = True
        cycle.started_flapping.add(name)
    elif check.flapping and not check.changes:
        check.flapping = False
        cycle.settled.add(name)


def _tally(check: CheckState, observed: _Observed, policy: CheckPolicy) -> bool:
    """Count one result and apply the thresholds to `failing`; True when the flag flipped."""
    ok = observed.status == "ok"
    check.consecutive_successes = check.consecutive_successes + 1 if ok else 0
    check.consecutive_failures = 0 if ok else check.consecutive_failures + 1
    check.last_status, check.last_evidence = observed.status, observed.evidence
    check.hard_failure_in_streak = not ok and (
        check.hard_failure_in_streak or observed.status in ("failing", "error")
    )
    check.last_result_at = observed.at
    if not check.failing and check.consecutive_failures >= policy.failure_threshold:
        check.failing = True
        return True
    if check.failing and check.consecutive_successes >= policy.success_threshold:
        check.failing = False
        return True
    return False


# --- phase 2: which incident each check belongs to (dependencies first) -----------------------


def _place(cycle: _Cycle, name: str) -> None:
    check = cycle.state.checks[name]
    own = _own_incident(cycle, name)
    current = own or (
        cycle.state.incidents.get(check.incident_id) if check.incident_id is not None else None
    )
    if name in cycle.started_flapping:
        _start_flapping(cycle, name, current)
    elif check.flapping:  # muted: keep whatever it belongs to until it is stable again
        check.incident_id = current.id if current is not None else None
    elif check.failing:
        _place_failing(cycle, name, own)
    else:
        check.incident_id = None
        if own is not None:
            settled = name in cycle.settled
            _resolve(cycle, own, "stable again after flapping" if settled else "recovered")


def _place_failing(cycle: _Cycle, name: str, own: Incident | None) -> None:
    check = cycle.state.checks[name]
    if own is not None:  # opened before its dependency failed: it stays, already notified
        check.incident_id = own.id
        return
    grouped, target = _group_target(cycle, name)
    if grouped:
        # A symptom of a failing dependency: no page of its own. If no dependency has an
        # incident yet (still below its threshold), wait for it rather than page now.
        check.incident_id = target.id if target is not None else None
        return
    incident = _open(cycle, name)
    check.incident_id = incident.id
    if name in cycle.settled:
        cycle.notes.setdefault(incident.id, []).append("stable again after flapping")


def _start_flapping(cycle: _Cycle, name: str, incident: Incident | None) -> None:
    """One `flapping` event, on the check's incident; attach to or open one if it has none."""
    if incident is None:
        incident = _group_target(cycle, name)[1] or _open(cycle, name)
    cycle.state.checks[name].incident_id = incident.id
    cycle.flapped.setdefault(incident.id, []).append(name)


def _is_failing_now(cycle: _Cycle, name: str) -> bool:
    """Failing for grouping purposes: flagged, flapping, or non-ok in this same evaluation."""
    check = cycle.state.checks[name]
    observed = cycle.observed.get(name)
    return check.failing or check.flapping or (observed is not None and observed.status != "ok")


def _group_target(cycle: _Cycle, name: str) -> tuple[bool, Incident | None]:
    """(whether a dependency is failing, the incident of the deepest one that has one).

    Deepest = no other dependency with an incident below it: the root-cause end of the chain.
    Several independent roots (a diamond) are told apart by name, for determinism.
    """
    failing = {d for d in cycle.deps[name] if _is_failing_now(cycle, d)}
    owned = {d: i for d in failing if (i := _own_incident(cycle, d)) is not None}
    roots = [d for d in owned if not cycle.deps[d] & owned.keys()]
    return bool(failing), (owned[min(roots)] if roots else None)


def _own_incident(cycle: _Cycle, name: str) -> Incident | None:
    """Looked up by fingerprint, so a reloaded state can never grow a duplicate."""
    if cycle.owners is None:
        cycle.owners = {}
        for incident in sorted(cycle.state.incidents.values(), key=lambda i: i.id):
            cycle.owners.setdefault(incident.fingerprint, []).append(incident)
    found = cycle.owners.get(fingerprint(name))
    return found[0] if found else None


def _open(cycle: _Cycle, name: str) -> Incident:
    state = cycle.state
    check = state.checks[name]
    while state.next_incident_id in state.incidents:  # never reuse an id, even from bad state
        state.next_incident_id += 1
    incident = Incident(
        id=state.next_incident_id,
        fingerprint=fingerprint(name),
        check=name,
        severity=_target_severity(check, cycle.checks[name], None) or cycle.checks[name].severity,
        opened_at=cycle.now,
        evidence=check.last_evidence,
        first_evidence=check.last_evidence,
    )
    state.next_incident_id += 1
    state.incidents[incident.id] = incident
    if cycle.owners is not None:  # the highest id yet: an older one stays the owner
        cycle.owners.setdefault(incident.fingerprint, []).append(incident)
    streak = check.consecutive_failures
    if streak:
        cycle.notes[incident.id] = [f"{streak} non-ok result{'s' * (streak != 1)} in a row"]
    return incident


def _resolve(cycle: _Cycle, incident: Incident, detail: str) -> None:
    observed = cycle.observed.get(incident.check)
    if observed is not None:
        incident.evidence = observed.evidence
    incident.status = "resolved"
    incident.resolved_at = cycle.now
    incident.last_notified_at = cycle.now
    del cycle.state.incidents[incident.id]
    if cycle.owners is not None:
        same = cycle.owners.get(incident.fingerprint, [])
        same[:] = [i for i in same if i is not incident]
    cycle.resolved.append(incident)
    cycle.events.append(event_for(incident, "resolved", cycle.now, detail))


# --- phase 3: bring open incidents up to date and say what changed ----------------------------


def _refresh_incidents(cycle: _Cycle) -> None:
    # Who depends on each troubled check's dependencies: one pass over the troubled checks,
    # not one per incident (1,000 incidents x 1,000 troubled checks).
    dependants: dict[str, list[str]] = {}
    for name in cycle.troubled:
        for dependency in cycle.deps[name]:
            dependants.setdefault(dependency, []).append(name)
    for incident in cycle.state.incidents.values():
        root = cycle.state.checks[incident.check]
        observed = cycle.observed.get(incident.check)
        if observed is not None:
            incident.evidence = observed.evidence
        incident.blast_radius = sorted(
            n for n in dependants.get(incident.check, ()) if n != incident.check
        )
        own = _target_severity(root, cycle.checks[incident.check], incident) or incident.severity
        # A grouped dependant has no page of its own, so its severity must not be lost.
        floor = [incident.severity_floor] if incident.severity_floor else []
        incident.severity = max(
            [own, *floor, *(cycle.checks[n].severity for n in incident.blast_radius)]
        )
        incident.flapping = root.flapping
        incident.last_status = root.last_status


def _target_severity(
    check: CheckState, policy: CheckPolicy, incident: Incident | None
) -> Severity | None:
    """The configured severity, one step lower while the streak has only been `degraded`;
    None = keep the incident's current severity (the check is ok again)."""
    if check.last_status is None or check.last_status == "ok":
        return None
    return policy.severity if check.hard_failure_in_streak else policy.severity.lower()


def _announce(cycle: _Cycle) -> list[IncidentEvent]:
    events: list[IncidentEvent] = []
    for incident in sorted(cycle.state.incidents.values(), key=lambda i: i.id):
        news = _news(cycle, incident)
        if incident.id in cycle.flapped:
            detail = (
                f"{', '.join(cycle.flapped[incident.id])} flapping: more than "
                f"{cycle.policy.flap_threshold} state changes in "
                f"{format_duration(cycle.policy.flap_window)}; open/resolve muted until stable"
            )
            news.append(event_for(incident, "flapping", cycle.now, detail))
        if news:
            incident.last_notified_at = cycle.now
        events.extend(news)
    return events


def _news(cycle: _Cycle, incident: Incident) -> list[IncidentEvent]:
    """`opened` for a new incident, one `changed` for a grown or re-rated one, else nothing."""
    notes = cycle.notes.get(incident.id, [])
    if incident.id not in cycle.before:  # the event's blast_radius field carries the rest
        return [event_for(incident, "opened", cycle.now, "; ".join(notes))]
    severity, radius = cycle.before[incident.id]
    flappers = cycle.flapped.get(incident.id, [])  # their `flapping` notice says it already
    added = [n for n in incident.blast_radius if n not in radius and n not in flappers]
    changes: list[str] = []
    if incident.severity != severity:
        verb = "raised" if incident.severity > severity else "lowered"
        changes.append(f"severity {verb} from {severity} to {incident.severity}")
    if added:
        changes.append(f"blast radius grew: {', '.join(added)}")
    if not changes:
        return []
    event = event_for(incident, "changed", cycle.now, "; ".join(changes))
    event.previous_severity = severity if incident.severity != severity else None
    return [event]


def _remind(
    state: EngineState, policy: IncidentPolicy, now: datetime, acknowledged: AbstractSet[int]
) -> list[IncidentEvent]:
    """Mutates `state`: due incidents get `last_reminder_at`/`last_notified_at` = now."""
    interval = policy.reminder_interval
    if interval is None or interval <= timedelta(0):
        return []
    events: list[IncidentEvent] = []
    for incident in sorted(state.incidents.values(), key=lambda i: i.id):
        if incident.id in acknowledged:
            continue  # someone is on it: no more reminders (changes still page)
        if now - (incident.last_notified_at or incident.opened_at) < interval:
            continue
        incident.last_reminder_at = now
        incident.last_notified_at = now
        detail = f"still open after {format_duration(now - incident.opened_at)}"
        events.append(event_for(incident, "reminder", now, detail))
    return events


def event_for(
    incident: Incident, kind: EventKind, now: datetime, detail: str = ""
) -> IncidentEvent:
    """An event about `incident` as it stands now."""
    duration = incident.duration if kind == "resolved" else None
    return IncidentEvent(
        incident_id=incident.id,
        kind=kind,
        at=now,
        check=incident.check,
        severity=incident.severity,
        evidence=incident.evidence,
        blast_radius=list(incident.blast_radius),
        opened_at=incident.opened_at,
        status=incident.last_status,
        duration_s=duration.total_seconds() if duration is not None else None,
        detail=detail,
    )
