"""Quiet periods, pure: which checks a silence or a maintenance window covers, until when,
what is held, and the one `released` notice when the quiet ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from daemon.config.maintenance import MaintenanceWindow
from daemon.engine import incidents
from daemon.engine.quiet import Quietness, hold, release, window_until
from daemon.models import CheckResult, EngineState, Severity, Silence

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)  # a Sunday
BERLIN = ZoneInfo("Europe/Berlin")
TAGS = {"db-main": ["db", "prod"], "db-replica": ["db"], "web": ["prod"]}


def silence(matcher: str, pattern: str, minutes: int = 60, **kw: object) -> Silence:
    values: dict[str, object] = {
        "id": 3,
        "matcher": matcher,
        "pattern": pattern,
        "starts_at": T0,
        "ends_at": T0 + timedelta(minutes=minutes),
        "reason": "schema migration",
        "created_by": "alice",
        "created_at": T0,
    }
    values.update(kw)
    return Silence(**values)  # type: ignore[arg-type]


def window(**kw: object) -> MaintenanceWindow:
    values: dict[str, object] = {"name": "backup", "match": "db-*", "duration": "2h"}
    values.update(kw)
    return MaintenanceWindow.model_validate(values)


def test_a_weekly_window_in_its_timezone_contains_its_hours_only() -> None:
    sunday_2am = window(days=["sun"], at="02:00", timezone="Europe/Berlin")
    start = datetime(2026, 12, 6, 2, 0, tzinfo=BERLIN)
    assert window_until(sunday_2am, start - timedelta(seconds=1)) is None
    assert window_until(sunday_2am, start) == datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    assert window_until(sunday_2am, start + timedelta(minutes=119)) is not None
    assert window_until(sunday_2am, start + timedelta(hours=2)) is None
    assert window_until(sunday_2am, start + timedelta(days=1)) is None  # Monday
    assert sunday_2am.crontab == "0 2 * * sun"


def test_a_cron_window_and_overlapping_starts_end_at_the_last_occurrence() -> None:
    hourly = window(cron="0 * * * *", duration="90m")
    # 09:10 is inside the 08:00 (until 09:30) and the 09:00 (until 10:30) occurrences
    assert window_until(hourly, T0 + timedelta(minutes=10)) == T0 + timedelta(minutes=90)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cron": "0 2 * * *", "days": ["sun"], "at": "02:00"}, "either cron, or days and at"),
        ({"days": ["sun"]}, "needs both days and at"),
        ({"cron": "0 2 * * *", "match": None}, "name the checks it covers"),
        ({"cron": "0 2 * * *", "duration": "8d"}, "at most 7d"),
        ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"days": ["sun"], "at": "25:00"}, "not a time of day"),
    ],
)
def test_a_window_that_cannot_work_is_refused_saying_why(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        window(**fields)


def test_silences_match_a_check_a_tag_or_a_glob_while_in_force() -> None:
    quiet = Quietness(
        [silence("tag", "db"), silence("check", "web", minutes=10, id=4)], [], TAGS, T0
    )
    assert quiet.of("db-main") is not None and quiet.of("db-replica") is not None
    found = quiet.of("web")
    assert found is not None
    assert found.reason == "silence #4 (--check web: schema migration) until 2026-12-06 09:10 UTC"
    assert quiet.of("cache") is None
    later = Quietness([silence("match", "db-*")], [], TAGS, T0 + timedelta(hours=1))
    assert not later and later.of("db-main") is None  # ended: ends_at is exclusive
    expired = silence("match", "db-*", expired_at=T0 + timedelta(minutes=5))
    assert Quietness([expired], [], TAGS, T0 + timedelta(minutes=6)).of("db-main") is None


def test_a_window_names_itself_and_its_reason() -> None:
    quiet = Quietness([], [window(cron="0 9 * * *", reason="nightly dump")], TAGS, T0)
    found = quiet.of("db-replica")
    assert found is not None
    assert found.reason == "maintenance backup: nightly dump until 2026-12-06 11:00 UTC"
    assert quiet.of("web") is None


def _failing_state() -> tuple[EngineState, incidents.Evaluation]:
    policy = incidents.CheckPolicy("db-main", Severity.HIGH, failure_threshold=1)
    result = CheckResult(
        check="db-main", status="failing", started_at=T0, evidence="connection refused"
    )
    evaluation = incidents.evaluate(
        EngineState(), [result], {"db-main": policy}, incidents.IncidentPolicy(), T0
    )
    return evaluation.state, evaluation


def test_held_events_mark_the_incident_and_one_release_follows_the_quiet() -> None:
    state, evaluation = _failing_state()
    quiet = Quietness([silence("tag", "db")], [], TAGS, T0)
    (opened,) = evaluation.events
    assert hold(evaluation.events, state, quiet) == [False]
    assert opened.held is not None and opened.held.startswith("silence #3")
    assert state.incidents[1].held == opened.held

    still_quiet = Quietness([silence("tag", "db")], [], TAGS, T0 + timedelta(minutes=30))
    assert release(state, still_quiet, T0 + timedelta(minutes=30)) == []
    after = T0 + timedelta(hours=1)
    (released,) = release(state, Quietness([], [], TAGS, after), after)
    assert released.kind == "released" and released.incident_id == 1
    assert released.detail.startswith("notifications were held (silence #3")
    assert state.incidents[1].held is None
    assert release(state, Quietness([], [], TAGS, after), after) == []  # exactly once


def test_reminders_skip_acknowledged_incidents() -> None:
    state, _ = _failing_state()
    policy = incidents.IncidentPolicy(reminder_interval=timedelta(minutes=10))
    later = T0 + timedelta(minutes=11)
    assert [e.kind for e in incidents.reminders(state, policy, later).events] == ["reminder"]
    assert incidents.reminders(state, policy, later, acknowledged={1}).events == []


def test_config_validate_names_unknown_checks_and_bad_crontabs_of_windows(tmp_path: Path) -> None:
    from daemon.config.load import load_settings
    from daemon.errors import ConfigError

    path = tmp_path / "c.toml"
    path.write_text(
        '[[checks]]\nname = "db"\ntype = "tcp"\nhost = "127.0.0.1"\nport = 5432\n'
        '[[maintenance]]\nname = "w"\nchecks = ["db", "dbb"]\ncron = "0 25 * * *"\n'
        'duration = "1h"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    text = str(caught.value)
    assert "maintenance[w].checks: 'dbb' is not a configured check" in text
    assert "maintenance[w].cron: '0 25 * * *' is not a crontab expression" in text
