"""The incident engine as a state machine: drive `evaluate` cycle by cycle, no I/O, no clock."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.engine.incidents import (
    REMOVED_DETAIL,
    CheckPolicy,
    Evaluation,
    IncidentPolicy,
    evaluate,
    reminders,
)
from daemon.models import CheckResult, EngineState, IncidentEvent, Severity, Status, fingerprint

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
QUIET = IncidentPolicy(flap_threshold=1000)
"""Flap detection out of the way, for tests about something else."""


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def result(check: str, status: Status, minute: float, subject: str | None = None) -> CheckResult:
    return CheckResult(
        check=check,
        status=status,
        evidence=f"{check}{'/' + subject if subject else ''} is {status} at minute {minute:g}",
        started_at=at(minute),
        subject=subject,
    )


def policy(
    name: str,
    severity: Severity = Severity.HIGH,
    *,
    failures: int = 2,
    successes: int = 1,
    depends_on: tuple[str, ...] = (),
) -> CheckPolicy:
    return CheckPolicy(name, severity, failures, successes, depends_on)


@dataclass
class Engine:
    """Feeds one cycle at a time and keeps every event, like the pipeline does."""

    checks: dict[str, CheckPolicy]
    rules: IncidentPolicy = QUIET
    state: EngineState = field(default_factory=EngineState)
    events: list[IncidentEvent] = field(default_factory=list)
    minute: float = 0

    def cycle(self, **statuses: Status) -> Evaluation:
        self.minute += 1
        results = [result(name, status, self.minute) for name, status in statuses.items()]
        return self.feed(results)

    def feed(self, results: list[CheckResult]) -> Evaluation:
        evaluation = evaluate(self.state, results, self.checks, self.rules, at(self.minute))
        self.state = evaluation.state
        self.events.extend(evaluation.events)
        return evaluation

    def restart(self) -> None:
        self.state = EngineState.model_validate_json(self.state.model_dump_json())

    def kinds(self, check: str | None = None) -> list[str]:
        return [e.kind for e in self.events if check is None or e.check == check]


def kinds(evaluation: Evaluation) -> list[str]:
    return [event.kind for event in evaluation.events]


def one(evaluation: Evaluation, kind: str) -> IncidentEvent:
    matching = [event for event in evaluation.events if event.kind == kind]
    assert len(matching) == 1, evaluation.events
    return matching[0]


# --- opening and resolving --------------------------------------------------------------------


def test_no_incident_before_the_failure_threshold() -> None:
    engine = Engine({"api": policy("api", failures=3)})
    assert kinds(engine.cycle(api="failing")) == []
    assert kinds(engine.cycle(api="error")) == []
    assert engine.state.incidents == {}
    opened = one(engine.cycle(api="degraded"), "opened")
    assert opened.check == "api"
    assert opened.incident_id == 1
    assert engine.state.incidents[1].fingerprint == fingerprint("api")


def test_an_ok_result_resets_the_failure_streak() -> None:
    engine = Engine({"api": policy("api")})
    for status in ("failing", "ok", "failing", "ok"):
        assert kinds(engine.cycle(api=status)) == []
    assert engine.state.incidents == {}


def test_resolves_after_the_success_threshold_with_its_duration() -> None:
    engine = Engine({"api": policy("api", successes=2)})
    engine.cycle(api="failing")
    engine.cycle(api="failing")  # opened at minute 2
    assert kinds(engine.cycle(api="ok")) == []
    evaluation = engine.cycle(api="ok")
    resolved = one(evaluation, "resolved")
    assert resolved.duration_s == 120.0
    assert resolved.evidence == "api is ok at minute 4"
    assert evaluation.state.incidents == {}
    assert [i.id for i in evaluation.resolved] == [1]
    assert evaluation.resolved[0].status == "resolved"
    assert evaluation.resolved[0].resolved_at == at(4)


def test_opened_exactly_once_across_many_failing_cycles() -> None:
    engine = Engine({"api": policy("api")})
    for _ in range(20):
        engine.cycle(api="failing")
    assert engine.kinds() == ["opened"]
    assert list(engine.state.incidents) == [1]


def test_opening_sets_last_notified_at() -> None:
    engine = Engine({"api": policy("api")})
    engine.cycle(api="failing")
    engine.cycle(api="failing")
    assert engine.state.incidents[1].last_notified_at == at(2)


def test_a_second_outage_gets_a_new_incident_id() -> None:
    engine = Engine({"api": policy("api")})
    for status in ("failing", "failing", "ok", "failing", "failing"):
        engine.cycle(api=status)
    assert engine.kinds() == ["opened", "resolved", "opened"]
    assert list(engine.state.incidents) == [2]
    assert engine.state.next_incident_id == 3


# --- several results per check, unknown checks ------------------------------------------------


def test_a_check_takes_the_worst_status_of_its_subjects_and_joins_their_evidence() -> None:
    engine = Engine({"pods": policy("pods", failures=1)})
    engine.minute = 1
    evaluation = engine.feed(
        [
            result("pods", "ok", 1, subject="a"),
            result("pods", "failing", 1, subject="c"),
            result("pods", "degraded", 1, subject="b"),
        ]
    )
    opened = one(evaluation, "opened")
    assert opened.severity == Severity.HIGH  # failing, not merely degraded
    assert opened.evidence == "pods/b is degraded at minute 1\npods/c is failing at minute 1"


def test_results_for_checks_not_configured_are_ignored() -> None:
    engine = Engine({"api": policy("api", failures=1)})
    evaluation = engine.cycle(ghost="failing")
    assert kinds(evaluation) == []
    assert "ghost" not in evaluation.state.checks


# --- severity ---------------------------------------------------------------------------------


def test_degraded_opens_one_step_lower_and_failing_raises_it_once() -> None:
    engine = Engine({"api": policy("api", Severity.HIGH)})
    engine.cycle(api="degraded")
    assert one(engine.cycle(api="degraded"), "opened").severity == Severity.MEDIUM
    changed = one(engine.cycle(api="failing"), "changed")
    assert changed.severity == Severity.HIGH
    assert changed.previous_severity == Severity.MEDIUM
    assert kinds(engine.cycle(api="failing")) == []


def test_back_to_degraded_within_the_same_streak_keeps_full_severity() -> None:
    engine = Engine({"api": policy("api", Severity.HIGH)})
    engine.cycle(api="failing")
    engine.cycle(api="failing")
    assert kinds(engine.cycle(api="degraded")) == []
    assert engine.state.incidents[1].severity == Severity.HIGH


def test_config_severity_change_on_reload_emits_one_changed() -> None:
    engine = Engine({"api": policy("api", Severity.HIGH)})
    engine.cycle(api="failing")
    engine.cycle(api="failing")
    engine.checks = {"api": policy("api", Severity.CRITICAL)}
    changed = one(engine.cycle(), "changed")  # picked up even before the next result
    assert (changed.previous_severity, changed.severity) == (Severity.HIGH, Severity.CRITICAL)
    assert kinds(engine.cycle(api="failing")) == []


# --- reminders --------------------------------------------------------------------------------


def test_reminders_come_at_the_interval_while_open() -> None:
    engine = Engine({"api": policy("api")}, IncidentPolicy(reminder_interval=timedelta(minutes=5)))
    engine.cycle(api="failing")
    engine.cycle(api="failing")  # opened at minute 2
    for _ in range(10):  # minutes 3..12
        engine.cycle(api="failing")
    assert engine.kinds() == ["opened", "reminder", "reminder"]
    reminder_times = [e.at for e in engine.events if e.kind == "reminder"]
    assert reminder_times == [at(7), at(12)]
    assert engine.state.incidents[1].last_reminder_at == at(12)


def test_no_reminders_when_the_interval_is_off() -> None:
    engine = Engine({"api": policy("api")})
    engine.cycle(api="failing")
    engine.cycle(api="failing")
    later = reminders(engine.state, IncidentPolicy(), at(600))
    assert later.events == []


def test_reminders_can_run_on_their_own_timer_without_mutating_the_input() -> None:
    engine = Engine({"api": policy("api")})
    engine.cycle(api="failing")
    engine.cycle(api="failing")
    before = engine.state.model_dump()
    evaluation = reminders(
        engine.state, IncidentPolicy(reminder_interval=timedelta(hours=1)), at(62)
    )
    assert kinds(evaluation) == ["reminder"]
    assert evaluation.events[0].detail == "still open after 1h"
    assert evaluation.state.incidents[1].last_notified_at == at(62)
    assert engine.state.model_dump() == before


def test_a_changed_notice_restarts_the_reminder_clock() -> None:
    rules = IncidentPolicy(reminder_interval=timedelta(minutes=5), flap_threshold=1000)
    engine = Engine({"api": policy("api")}, rules)
    engine.cycle(api="degraded")
    engine.cycle(api="degraded")  # opened at 2
    engine.minute = 5
    engine.cycle(api="failing")  # changed at 6
    engine.cycle(api="failing")  # 7: five minutes since opening, one since the change
    assert engine.kinds() == ["opened", "changed"]


# --- flapping ---------------------------------------------------------------------------------

FLAPPY = IncidentPolicy(flap_window=timedelta(minutes=30), flap_threshold=4)


def flap(engine: Engine, times: int) -> None:
    """failing/ok alternately: with thresholds 1/1, every cycle flips the failing flag."""
    for i in range(times):
        engine.cycle(api="failing" if i % 2 == 0 else "ok")


def test_flapping_emits_one_flapping_event_then_mutes_open_and_resolve() -> None:
    engine = Engine({"api": policy("api", failures=1)}, FLAPPY)
    flap(engine, 5)  # flips 1..5: the fifth is one more than the threshold
    assert engine.kinds() == ["opened", "resolved", "opened", "resolved", "opened", "flapping"]
    flap(engine, 10)
    assert engine.kinds().count("flapping") == 1
    assert engine.kinds()[-1] == "flapping"
    assert len(engine.state.incidents) == 1
    assert engine.state.incidents[3].flapping is True


def test_flapping_detected_on_a_recovery_keeps_the_incident_open() -> None:
    engine = Engine({"api": policy("api", failures=1)}, IncidentPolicy(flap_threshold=3))
    flap(engine, 4)  # the fourth flip is a recovery
    assert engine.kinds() == ["opened", "resolved", "opened", "flapping"]
    flapping = engine.events[-1]
    assert flapping.incident_id == 2
    assert list(engine.state.incidents) == [2]


def test_flapping_settles_healthy_with_one_resolved_after_a_stable_window() -> None:
    engine = Engine({"api": policy("api", failures=1)}, FLAPPY)
    flap(engine, 6)  # ends healthy (last flip at minute 6)
    count = len(engine.events)
    engine.minute = 34
    assert kinds(engine.cycle(api="ok")) == []  # minute 35: the last flip is 29 minutes old
    evaluation = engine.cycle(api="ok")
    resolved = one(evaluation, "resolved")
    assert resolved.detail == "stable again after flapping"
    assert kinds(evaluation) == ["resolved"]
    assert evaluation.state.checks["api"].flapping is False
    assert len(engine.events) == count + 1


def test_flapping_settles_failing_by_keeping_the_open_incident() -> None:
    engine = Engine({"api": policy("api", failures=1)}, FLAPPY)
    flap(engine, 5)  # ends failing with incident 3 open
    engine.minute = 40
    evaluation = engine.cycle(api="failing")
    assert kinds(evaluation) == []
    assert evaluation.state.incidents[3].flapping is False
    assert kinds(engine.cycle(api="ok")) == ["resolved"]  # no longer muted


def test_a_flapping_dependant_reports_on_its_root_and_settles_failing_with_its_own() -> None:
    checks = {"db": policy("db", failures=1), "api": policy("api", failures=1, depends_on=("db",))}
    engine = Engine(checks, FLAPPY)
    for i in range(4):  # db down throughout; api flips every cycle
        engine.cycle(db="failing", api="failing" if i % 2 == 0 else "ok")
    flapping = one(engine.cycle(db="failing", api="failing"), "flapping")
    assert engine.kinds()[-1:] == ["flapping"]  # the flip that tipped it is not a `changed`
    assert (flapping.kind, flapping.check, flapping.incident_id) == ("flapping", "db", 1)
    assert flapping.detail.startswith("api flapping")
    assert kinds(engine.cycle(db="ok", api="failing")) == ["resolved"]  # db is not muted
    engine.minute = 40
    evaluation = engine.cycle(api="failing")  # api stable for a whole window, still failing
    opened = one(evaluation, "opened")
    assert (opened.check, opened.incident_id) == ("api", 2)
    assert "stable again after flapping" in opened.detail


def test_flapping_settles_without_any_result_in_that_cycle() -> None:
    engine = Engine({"api": policy("api", failures=1)}, FLAPPY)
    flap(engine, 6)
    engine.minute = 40
    assert kinds(engine.cycle()) == ["resolved"]


# --- dependencies -----------------------------------------------------------------------------


def test_dependant_and_dependency_failing_in_one_cycle_make_one_incident() -> None:
    engine = Engine({"db": policy("db"), "api": policy("api", depends_on=("db",))})
    engine.cycle(db="failing", api="failing")
    evaluation = engine.cycle(db="failing", api="failing")
    opened = one(evaluation, "opened")
    assert opened.check == "db"
    assert opened.blast_radius == ["api"]
    assert kinds(evaluation) == ["opened"]
    assert evaluation.state.checks["api"].incident_id == opened.incident_id


def test_a_chain_groups_under_the_deepest_failing_dependency() -> None:
    checks = {
        "net": policy("net"),
        "db": policy("db", depends_on=("net",)),
        "api": policy("api", depends_on=("db",)),
    }
    engine = Engine(checks)
    engine.cycle(net="failing", db="failing", api="failing")
    opened = one(engine.cycle(net="failing", db="failing", api="failing"), "opened")
    assert opened.check == "net"
    assert opened.blast_radius == ["api", "db"]


def test_evaluation_does_not_depend_on_the_order_of_results() -> None:
    checks = {
        "net": policy("net"),
        "db": policy("db", depends_on=("net",), failures=1),
        "api": policy("api", depends_on=("db",)),
        "web": policy("web", depends_on=("api", "net")),
    }
    statuses: list[dict[str, Status]] = [
        {"net": "failing", "db": "failing", "api": "degraded", "web": "failing"},
        {"net": "failing", "db": "error", "api": "failing", "web": "ok"},
        {"net": "ok", "db": "failing", "api": "failing", "web": "failing"},
        {"net": "ok", "db": "ok", "api": "failing", "web": "failing"},
    ]
    outcomes = []
    for seed in range(6):
        engine = Engine(checks)
        for step, cycle in enumerate(statuses, start=1):
            batch = [result(name, status, step) for name, status in cycle.items()]
            random.Random(seed).shuffle(batch)
            engine.minute = step
            engine.feed(batch)
        outcomes.append((engine.events, engine.state))
    assert all(outcome == outcomes[0] for outcome in outcomes)
    opened = [(e.check, e.blast_radius) for e in outcomes[0][0] if e.kind == "opened"]
    assert opened == [("net", ["api", "db"]), ("db", ["api"]), ("api", ["web"])]


def test_dependant_waits_while_its_dependency_is_below_its_threshold() -> None:
    engine = Engine({"db": policy("db", failures=3), "api": policy("api", depends_on=("db",))})
    engine.cycle(db="failing", api="failing")
    assert kinds(engine.cycle(db="failing", api="failing")) == []  # api at threshold, db not
    opened = one(engine.cycle(db="failing", api="failing"), "opened")
    assert (opened.check, opened.blast_radius) == ("db", ["api"])


def test_a_dependant_already_open_stays_open_and_joins_the_dependency_blast_radius() -> None:
    engine = Engine({"db": policy("db"), "api": policy("api", depends_on=("db",))})
    engine.cycle(api="failing")
    assert one(engine.cycle(api="failing"), "opened").check == "api"
    engine.cycle(db="failing", api="failing")
    evaluation = engine.cycle(db="failing", api="failing")
    opened = one(evaluation, "opened")
    assert (opened.check, opened.blast_radius) == ("db", ["api"])
    assert kinds(evaluation) == ["opened"]
    assert sorted(i.check for i in evaluation.state.incidents.values()) == ["api", "db"]


def test_a_grouped_dependant_with_a_higher_severity_raises_the_incident() -> None:
    checks = {
        "cache": policy("cache", Severity.LOW),
        "checkout": policy("checkout", Severity.CRITICAL, depends_on=("cache",)),
    }
    engine = Engine(checks)
    engine.cycle(cache="failing", checkout="failing")
    opened = one(engine.cycle(cache="failing", checkout="failing"), "opened")
    assert (opened.check, opened.severity) == ("cache", Severity.CRITICAL)
    changed = one(engine.cycle(cache="failing", checkout="ok"), "changed")
    assert (changed.previous_severity, changed.severity) == (Severity.CRITICAL, Severity.LOW)


def test_a_dependant_failing_later_grows_the_blast_radius_with_one_changed() -> None:
    checks = {
        "db": policy("db"),
        "api": policy("api", depends_on=("db",)),
        "worker": policy("worker", depends_on=("db",)),
    }
    engine = Engine(checks)
    engine.cycle(db="failing")
    engine.cycle(db="failing")
    engine.cycle(db="failing", api="failing", worker="failing")
    evaluation = engine.cycle(db="failing", api="failing", worker="failing")
    changed = one(evaluation, "changed")
    assert changed.blast_radius == ["api", "worker"]
    assert changed.detail == "blast radius grew: api, worker"
    assert changed.previous_severity is None
    assert kinds(evaluation) == ["changed"]


def test_a_grouped_dependant_that_recovers_leaves_the_blast_radius_silently() -> None:
    engine = Engine({"db": policy("db"), "api": policy("api", depends_on=("db",))})
    engine.cycle(db="failing", api="failing")
    engine.cycle(db="failing", api="failing")
    evaluation = engine.cycle(db="failing", api="ok")
    assert kinds(evaluation) == []
    assert evaluation.state.incidents[1].blast_radius == []
    assert evaluation.state.checks["api"].incident_id is None


def test_when_the_root_resolves_a_still_failing_dependant_opens_its_own() -> None:
    engine = Engine({"db": policy("db"), "api": policy("api", depends_on=("db",))})
    engine.cycle(db="failing", api="failing")
    engine.cycle(db="failing", api="failing")
    evaluation = engine.cycle(db="ok", api="failing")
    assert kinds(evaluation) == ["resolved", "opened"]
    resolved, opened = evaluation.events
    assert (resolved.check, opened.check) == ("db", "api")
    assert opened.incident_id == 2
    assert evaluation.state.checks["api"].incident_id == 2


def test_when_a_chain_root_resolves_the_next_deepest_takes_over_the_group() -> None:
    checks = {
        "net": policy("net"),
        "db": policy("db", depends_on=("net",)),
        "api": policy("api", depends_on=("db",)),
    }
    engine = Engine(checks)
    engine.cycle(net="failing", db="failing", api="failing")
    engine.cycle(net="failing", db="failing", api="failing")
    evaluation = engine.cycle(net="ok", db="failing", api="failing")
    assert kinds(evaluation) == ["resolved", "opened"]
    opened = evaluation.events[1]
    assert (opened.check, opened.blast_radius) == ("db", ["api"])


# --- restarts, configuration changes, purity --------------------------------------------------


def test_a_restart_mid_incident_neither_duplicates_nor_loses_it() -> None:
    engine = Engine({"db": policy("db"), "api": policy("api", depends_on=("db",))})
    engine.cycle(db="failing", api="failing")
    engine.restart()
    engine.cycle(db="failing", api="failing")  # opened
    for _ in range(3):
        engine.restart()
        engine.cycle(db="failing", api="failing")
    engine.restart()
    engine.cycle(db="ok", api="ok")
    assert engine.kinds() == ["opened", "resolved"]
    assert engine.state.incidents == {}


def test_duplicate_incidents_of_one_check_are_owned_lowest_id_first() -> None:
    """A state holding two open incidents of one check (a bad restore): the lowest id is the
    check's own and resolves first, then the other on the next cycle, as when every open
    incident was scanned. (The lookup is an index kept up to date as incidents open and
    resolve.)"""
    engine = Engine({"db": policy("db"), "api": policy("api", depends_on=("db",))})
    engine.cycle(db="failing")
    engine.cycle(db="failing")  # opened: 1
    copy = engine.state.incidents[1].model_copy(update={"id": 5})
    engine.state.incidents[5] = copy
    engine.state.next_incident_id = 6
    assert [i.fingerprint for i in engine.state.incidents.values()] == [fingerprint("db")] * 2
    first = engine.cycle(db="ok", api="ok")
    assert [i.id for i in first.resolved] == [1] and list(engine.state.incidents) == [5]
    second = engine.cycle(db="ok", api="ok")
    assert [i.id for i in second.resolved] == [5]
    assert engine.state.incidents == {}


def test_a_stale_incident_id_counter_never_reuses_an_open_id() -> None:
    engine = Engine({"db": policy("db"), "api": policy("api")})
    engine.cycle(db="failing")
    engine.cycle(db="failing")
    engine.state.next_incident_id = 1  # e.g. a hand-edited or partially restored state
    engine.cycle(api="failing")
    opened = one(engine.cycle(api="failing"), "opened")
    assert opened.incident_id == 2


def test_a_check_removed_from_configuration_resolves_its_incident() -> None:
    engine = Engine({"db": policy("db"), "api": policy("api")})
    engine.cycle(db="failing")
    engine.cycle(db="failing")
    engine.checks = {"api": policy("api")}
    evaluation = engine.cycle(db="failing")
    resolved = one(evaluation, "resolved")
    assert resolved.detail == REMOVED_DETAIL
    assert evaluation.state.incidents == {}
    assert "db" not in evaluation.state.checks
    assert [i.check for i in evaluation.resolved] == ["db"]


def test_evaluate_does_not_mutate_its_input_state() -> None:
    engine = Engine({"db": policy("db"), "api": policy("api", depends_on=("db",))})
    engine.cycle(db="failing", api="failing")
    before = engine.state.model_dump()
    snapshot = engine.state
    engine.cycle(db="failing", api="failing")
    assert snapshot.model_dump() == before
    assert snapshot is not engine.state


# --- properties -------------------------------------------------------------------------------


def open_per_fingerprint(state: EngineState) -> Mapping[str, int]:
    counts: dict[str, int] = {}
    for incident in state.incidents.values():
        counts[incident.fingerprint] = counts.get(incident.fingerprint, 0) + 1
    return counts


@settings(max_examples=200, deadline=None)
@given(
    statuses=st.lists(st.sampled_from(["ok", "degraded", "failing", "error"]), max_size=60),
    failures=st.integers(1, 3),
    successes=st.integers(1, 3),
    gaps=st.lists(st.integers(1, 20), min_size=60, max_size=60),
    restart_every=st.integers(2, 7),
)
def test_opened_and_resolved_alternate_with_at_most_one_open_incident(
    statuses: list[Status], failures: int, successes: int, gaps: list[int], restart_every: int
) -> None:
    engine = Engine({"api": policy("api", failures=failures, successes=successes)}, FLAPPY)
    for step, (status, gap) in enumerate(zip(statuses, gaps, strict=False), start=1):
        engine.minute += gap - 1
        engine.cycle(api=status)
        if step % restart_every == 0:
            engine.restart()
        assert all(count <= 1 for count in open_per_fingerprint(engine.state).values())
    lifecycle = [k for k in engine.kinds() if k in ("opened", "resolved")]
    assert lifecycle == ["opened", "resolved"] * (len(lifecycle) // 2) + (
        ["opened"] if len(lifecycle) % 2 else []
    )
    assert bool(engine.state.incidents) == (len(lifecycle) % 2 == 1)
    assert engine.kinds().count("flapping") <= len(lifecycle)


CHAIN = ("net", "db", "api")
MAYBE: list[Status | None] = [None, "ok", "degraded", "failing"]
"""None: the check has no result in that cycle (it runs on another schedule)."""


@settings(max_examples=150, deadline=None)
@given(
    cycles=st.lists(
        st.tuples(*(st.sampled_from(MAYBE) for _ in CHAIN)),
        max_size=40,
    ),
    failures=st.tuples(*(st.integers(1, 3) for _ in CHAIN)),
    gap=st.integers(1, 12),
)
def test_a_dependency_chain_never_duplicates_and_each_check_alternates(
    cycles: list[tuple[Status | None, ...]], failures: tuple[int, ...], gap: int
) -> None:
    checks = {
        name: policy(name, failures=threshold, depends_on=CHAIN[:i][-1:])
        for i, (name, threshold) in enumerate(zip(CHAIN, failures, strict=True))
    }
    engine = Engine(checks, FLAPPY)
    for statuses in cycles:
        engine.minute += gap - 1
        engine.cycle(**{n: s for n, s in zip(CHAIN, statuses, strict=True) if s is not None})
        engine.restart()
        assert all(count <= 1 for count in open_per_fingerprint(engine.state).values())
    for name in CHAIN:
        lifecycle = [k for k in engine.kinds(name) if k in ("opened", "resolved")]
        assert lifecycle[::2] == ["opened"] * len(lifecycle[::2])
        assert lifecycle[1::2] == ["resolved"] * len(lifecycle[1::2])
        is_open = any(i.check == name for i in engine.state.incidents.values())
        assert is_open == (len(lifecycle) % 2 == 1)


def test_a_severity_raised_by_triage_is_never_lowered_by_the_rules() -> None:
    checks = {"api": policy("api", Severity.MEDIUM, failures=1)}
    first = evaluate(EngineState(), [result("api", "failing", 0)], checks, QUIET, at(0))
    [incident] = first.state.incidents.values()
    incident.severity = Severity.CRITICAL
    incident.severity_floor = Severity.CRITICAL
    second = evaluate(first.state, [result("api", "failing", 1)], checks, QUIET, at(1))
    assert second.events == []
    assert second.state.incidents[incident.id].severity is Severity.CRITICAL
