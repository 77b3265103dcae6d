from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.models import IncidentEvent, Severity, fingerprint
from daemon.notify.render import render_event, render_test

OPENED = datetime(2026, 11, 27, 14, 2, tzinfo=UTC)
EVIDENCE = "GET http://cache.internal:8080/health returned 503 in 41 ms; expected 200"


def event(kind: str, **overrides: Any) -> IncidentEvent:
    fields: dict[str, Any] = {
        "incident_id": 42,
        "kind": kind,
        "at": OPENED,
        "check": "api-health",
        "severity": Severity.HIGH,
        "evidence": EVIDENCE,
        "opened_at": OPENED,
    }
    return IncidentEvent(**(fields | overrides))


def test_opened_title_and_body() -> None:
    message = render_event(event("opened", blast_radius=["checkout-api", "cart-worker"]))
    assert message.title == "[HIGH] api-health failing — incident #42"
    assert message.notify_type == "failure"
    assert message.body.splitlines() == [
        EVIDENCE,
        "Since: 14:02 UTC (2026-11-27)",
        "Blast radius: checkout-api, cart-worker (depend on api-health)",
        f"Incident #42 · fingerprint {fingerprint('api-health')}",
    ]


def test_blast_radius_line_is_left_out_when_empty() -> None:
    assert "Blast radius" not in render_event(event("opened")).body


def test_detail_line_is_shown() -> None:
    body = render_event(event("opened", detail="3 checks in a row")).body
    assert body.splitlines()[2] == "3 checks in a row"


def test_resolved_shows_duration_in_title_and_body() -> None:
    message = render_event(
        event("resolved", at=OPENED + timedelta(minutes=14), duration_s=14 * 60 + 5)
    )
    assert message.title == "[RESOLVED] api-health — incident #42 after 14m"
    assert message.notify_type == "success"
    assert "Open: 14:02 UTC (2026-11-27) → 14:16 UTC (2026-11-27), 14m" in message.body


def test_resolved_without_duration_uses_the_event_times() -> None:
    message = render_event(event("resolved", at=OPENED + timedelta(hours=1, minutes=3)))
    assert message.title.endswith("after 1h 3m")


def test_flapping_title() -> None:
    message = render_event(event("flapping", detail="5 state changes in 30m"))
    assert message.title == "[HIGH] api-health flapping — incident #42"
    assert message.notify_type == "warning"
    assert "5 state changes in 30m" in message.body


def test_reminder_title_shows_how_long_it_is_open() -> None:
    message = render_event(event("reminder", at=OPENED + timedelta(hours=2, minutes=5)))
    assert message.title == "[HIGH] api-health still failing — incident #42 (open 2h 5m)"
    assert "Since: 14:02 UTC (2026-11-27)" in message.body


def test_changed_title_says_which_way_severity_moved() -> None:
    raised = event("changed", severity=Severity.CRITICAL, previous_severity=Severity.HIGH)
    lowered = event("changed", severity=Severity.MEDIUM, previous_severity=Severity.HIGH)
    assert (
        render_event(raised).title
        == "[CRITICAL] api-health severity raised from high — incident #42"
    )
    assert render_event(lowered).title == (
        "[MEDIUM] api-health severity lowered from high — incident #42"
    )
    assert render_event(lowered).notify_type == "warning"
    assert render_event(event("changed")).title == "[HIGH] api-health changed — incident #42"


def test_times_are_shown_in_utc() -> None:
    from zoneinfo import ZoneInfo

    local = OPENED.astimezone(ZoneInfo("America/New_York"))
    assert "Since: 14:02 UTC (2026-11-27)" in render_event(event("opened", opened_at=local)).body


def test_untrusted_evidence_cannot_inject_markdown_links_or_html() -> None:
    body = render_event(event("opened", evidence="# [fix](http://evil.example) <b>now</b>")).body
    first = body.splitlines()[0]
    assert first == r"\# \[fix\](http://evil.example) \<b\>now\</b\>"


def test_rendering_is_pure() -> None:
    original = event("opened", blast_radius=["a"])
    copy = original.model_copy(deep=True)
    assert render_event(original) == render_event(original)
    assert original == copy


def test_test_message_names_the_target_only() -> None:
    message = render_test("oncall-slack")
    assert message.title == "[TEST] watchkeeper → oncall-slack"
    assert message.notify_type == "info"
    assert "oncall-slack" in message.body
