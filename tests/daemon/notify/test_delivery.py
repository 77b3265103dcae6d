from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from daemon.config.settings import DeliverySettings, NotifyTarget
from daemon.models import EngineState, Incident, IncidentEvent, Message, Severity, fingerprint
from daemon.notify.channels import mask_url
from daemon.notify.delivery import Notifier, retry_delay
from daemon.notify.render import render_event
from daemon.notify.routing import route, route_message
from daemon.secrets import resolve
from daemon.store import Store
from daemon.store.database import DB_NAME
from daemon.store.outbox import OutboxItem
from tests.peers.receivers import SmtpSink, WebhookReceiver

T0 = datetime(2026, 11, 27, 14, 2, tzinfo=UTC)
CANARY = "wk-canary-3f9a"
REFUSED = "json://127.0.0.1:9/nobody-listens"  # port 9 (discard) is closed on test hosts


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def event(
    kind: str = "opened", check: str = "api", severity: Severity = Severity.HIGH
) -> IncidentEvent:
    return IncidentEvent(
        incident_id=42,
        kind=kind,
        at=T0,
        check=check,
        severity=severity,
        evidence="GET /health returned 503",
        opened_at=T0,
    )


def target(name: str, url: str = "json://127.0.0.1:1/x", **kw: Any) -> NotifyTarget:
    return NotifyTarget(name=name, url=url, **kw)


DELIVERY = DeliverySettings(
    timeout=timedelta(seconds=2),
    retry_initial=timedelta(seconds=10),
    retry_max=timedelta(seconds=40),
    max_age=timedelta(hours=1),
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path)
    yield s
    s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def _no_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def notifier(store: Store, targets: list[NotifyTarget], clock: Clock, **kw: Any) -> Notifier:
    delivery = kw.pop("delivery", DELIVERY)
    return Notifier(store, targets, delivery, resolve, clock, **kw)


def commit(store: Store, targets: list[NotifyTarget], *events: IncidentEvent) -> None:
    """One engine cycle that opened incident 42 and produced `events`."""
    opened = Incident(
        id=42, fingerprint=fingerprint("api"), check="api", severity=Severity.HIGH, opened_at=T0
    )
    items = route(list(events), targets, {"api": ["prod"]})
    store.incidents.commit_cycle(
        [], EngineState(incidents={42: opened}), list(events), [], items, now=T0
    )


def rows(store: Store) -> list[tuple[str, int, str | None, str]]:
    conn = store.db._conn
    assert conn is not None
    found = conn.execute("SELECT target, attempts, last_error, status FROM outbox ORDER BY id")
    return [tuple(r) for r in found]


# -- routing ------------------------------------------------------------------------------


def test_route_filters_by_severity_tags_and_event_kind() -> None:
    targets = [
        target("all"),
        target("critical-only", min_severity=Severity.CRITICAL),
        target("db-team", tags=["db"]),
        target("prod", tags=["prod", "edge"]),
        target("resolved-only", events=["resolved"]),
    ]
    events = [event("opened"), event("resolved", severity=Severity.CRITICAL)]
    items = route(events, targets, {"api": ["prod"]})
    assert [(i.target, i.event_index) for i in items] == [
        ("all", 0),
        ("prod", 0),
        ("all", 1),
        ("critical-only", 1),
        ("prod", 1),
        ("resolved-only", 1),
    ]
    assert items[0].title == render_event(events[0]).title


def test_route_drops_tagged_targets_for_untagged_checks() -> None:
    assert route([event(check="other")], [target("prod", tags=["prod"])], {}) == []


def test_route_message_goes_to_targets_wanting_that_kind() -> None:
    targets = [target("a"), target("b", events=["opened"])]
    items = route_message(Message("daily", "body", "info"), targets, "report")
    assert items == [OutboxItem("a", "daily", "body", "info", None)]


def test_retry_delay_doubles_up_to_the_cap() -> None:
    delays = [retry_delay(n, DELIVERY).total_seconds() for n in range(1, 6)]
    assert delays == [10, 20, 40, 40, 40]


def test_mask_url_hides_paths_queries_and_credentials() -> None:
    assert mask_url(f"json://u:****@127.0.0.1:8080/{CANARY}?x=1") == "json://127.0.0.1:8080/..."
    assert mask_url("syslog://") == "syslog://"


# -- delivery -----------------------------------------------------------------------------


async def test_delivers_to_a_webhook_with_a_dedup_reference(
    store: Store, clock: Clock, webhook_receiver: WebhookReceiver
) -> None:
    targets = [target("hook", webhook_receiver.url("alerts"))]
    commit(store, targets, event())
    report = await notifier(store, targets, clock).deliver_due()
    assert report.delivered == 1
    (payload,) = webhook_receiver.messages
    assert payload["title"] == "[HIGH] api failing — incident #42"
    assert payload["type"] == "failure"
    assert payload["message"].startswith("GET /health returned 503\n")
    assert payload["message"].endswith("ref: incident #42 · event 1")
    assert webhook_receiver.requests[0].path == "/alerts"
    assert rows(store) == [("hook", 1, None, "delivered")]


async def test_delivers_email_to_an_smtp_server(
    store: Store, clock: Clock, smtp_sink: SmtpSink
) -> None:
    targets = [target("mail", smtp_sink.url())]
    commit(store, targets, event())
    assert (await notifier(store, targets, clock).deliver_due()).delivered == 1
    (mail,) = smtp_sink.wait_for(1)
    assert mail["Subject"] == "[HIGH] api failing — incident #42"
    assert smtp_sink.envelopes[0].rcpt_tos == ["oncall@example.com"]
    text = mail.get_body(("plain",))
    assert text is not None
    assert "GET /health returned 503" in text.get_content()


async def test_failing_receiver_is_retried_with_backoff_then_delivered(
    store: Store, clock: Clock, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.fail_next(2)
    targets = [target("hook", webhook_receiver.url())]
    commit(store, targets, event())
    n = notifier(store, targets, clock)
    assert (await n.deliver_due()).retried == 1
    (row,) = rows(store)
    assert row[:2] == ("hook", 1)
    assert row[2] == (
        f"json://127.0.0.1:{webhook_receiver.port}/... failed: HTTP 500 Internal Server Error"
    )
    assert store.outbox.next_due_at() == T0 + timedelta(seconds=10)
    clock.advance(seconds=9)
    assert (await n.deliver_due()).retried == 0  # not due yet: nothing attempted
    clock.advance(seconds=1)
    assert (await n.deliver_due()).retried == 1
    assert store.outbox.next_due_at() == T0 + timedelta(seconds=30)  # 10 s, then 20 s
    clock.advance(seconds=20)
    assert (await n.deliver_due()).delivered == 1
    assert [r.status for r in webhook_receiver.requests] == [500, 500, 200]
    assert rows(store)[0][1:] == (3, row[2], "delivered")
    # what /metrics exposes as watchkeeper_notifications_total: every attempt, cumulative
    assert (n.totals.delivered, n.totals.retried, n.totals.failed) == (1, 2, 0)


async def test_rows_older_than_max_age_are_failed(
    store: Store, clock: Clock, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.fail_next(100)
    targets = [target("hook", webhook_receiver.url())]
    commit(store, targets, event())
    n = notifier(store, targets, clock)
    await n.deliver_due()
    clock.advance(hours=1)
    with structlog.testing.capture_logs() as logs:
        report = await n.deliver_due()
    assert report.failed == 1
    ((_, attempts, error, status),) = rows(store)
    assert (attempts, status) == (1, "failed")
    assert error is not None
    assert error.startswith("undelivered after 1h; last error: json://127.0.0.1")
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["notify.failed"]
    assert len(webhook_receiver.requests) == 1


async def test_one_failing_target_does_not_block_others(
    store: Store, clock: Clock, make_webhook_receiver: Callable[[], WebhookReceiver]
) -> None:
    good, slow = make_webhook_receiver(), make_webhook_receiver()
    slow.hang_next(5)
    targets = [target("down", REFUSED), target("slow", slow.url()), target("good", good.url())]
    commit(store, targets, event(), event("flapping"))
    delivery = DELIVERY.model_copy(update={"timeout": timedelta(seconds=0.5)})
    report = await notifier(store, targets, clock, delivery=delivery).deliver_due()
    assert (report.delivered, report.retried) == (2, 2)
    assert len(good.messages) == 2
    assert len(slow.requests) == 1  # the second row waits for the first one's retry
    by_target = {(t, e) for t, _, e, _ in rows(store)}
    assert ("down", "json://127.0.0.1:9/... failed: connection refused") in by_target
    assert any(t == "slow" and e and "timed out" in e for t, e in by_target)
    assert len(store.outbox.due(clock() + timedelta(seconds=10), 10)) == 4


async def test_secret_url_is_resolved_from_the_environment(
    store: Store,
    clock: Clock,
    webhook_receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WK_HOOK", webhook_receiver.url())
    targets = [target("hook", "secret:WK_HOOK")]
    commit(store, targets, event())
    assert (await notifier(store, targets, clock).deliver_due()).delivered == 1
    assert len(webhook_receiver.messages) == 1


async def test_missing_secret_is_a_recorded_error_naming_the_secret(
    store: Store, clock: Clock
) -> None:
    targets = [target("hook", "secret:WK_MISSING_HOOK")]
    commit(store, targets, event())
    report = await notifier(store, targets, clock).deliver_due()
    assert report.retried == 1
    ((_, attempts, error, status),) = rows(store)
    assert (attempts, status) == (1, "pending")
    assert error is not None
    assert error.startswith("target hook: secret 'WK_MISSING_HOOK' not found")


async def test_canary_token_never_reaches_db_errors_or_logs(
    store: Store,
    clock: Clock,
    webhook_receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("WK_HOOK", webhook_receiver.url(f"{CANARY}/hook?token={CANARY}"))
    monkeypatch.setenv("WK_BROKEN", f"{CANARY}-not-a-url")
    webhook_receiver.fail_next(1)
    targets = [target("hook", "secret:WK_HOOK"), target("broken", "secret:WK_BROKEN")]
    commit(store, targets, event())
    n = notifier(store, targets, clock)
    with structlog.testing.capture_logs() as logs:
        await n.deliver_due()
        clock.advance(seconds=10)
        await n.deliver_due()
        outcomes = await n.send_test()
    assert [r.status for r in webhook_receiver.requests] == [500, 200, 200]
    assert CANARY in webhook_receiver.requests[0].path  # it really was in the URL
    errors = [e for _, _, e, _ in rows(store)] + [o.error for o in outcomes]
    assert any(errors) and not any(CANARY in (e or "") for e in errors)
    assert CANARY not in repr(logs)
    assert CANARY not in caplog.text
    captured = capsys.readouterr()
    assert CANARY not in captured.out + captured.err
    store.close()
    for path in Path(store.path).parent.glob(f"{DB_NAME}*"):
        assert CANARY.encode() not in path.read_bytes()


async def test_delivered_rows_are_not_sent_again_after_restart(
    tmp_path: Path, clock: Clock, webhook_receiver: WebhookReceiver
) -> None:
    targets = [target("hook", webhook_receiver.url())]
    with Store.open(tmp_path) as first:
        commit(first, targets, event())
        assert (await notifier(first, targets, clock).deliver_due()).delivered == 1
    with Store.open(tmp_path) as second:
        clock.advance(hours=2)
        assert (await notifier(second, targets, clock).deliver_due()).delivered == 0
    assert len(webhook_receiver.requests) == 1


async def test_a_removed_target_fails_its_rows(store: Store, clock: Clock) -> None:
    commit(store, [target("gone")], event())
    n = notifier(store, [target("gone")], clock)
    n.apply([], DeliverySettings())
    assert (await n.deliver_due()).failed == 1
    assert rows(store)[0][2:] == ("target 'gone' is no longer configured", "failed")


async def test_a_reload_uses_the_new_url(
    store: Store, clock: Clock, make_webhook_receiver: Callable[[], WebhookReceiver]
) -> None:
    old, new = make_webhook_receiver(), make_webhook_receiver()
    n = notifier(store, [target("hook", old.url())], clock)
    commit(store, [target("hook")], event())
    assert (await n.deliver_due()).delivered == 1
    n.apply([target("hook", new.url())], DeliverySettings())
    commit(store, [target("hook")], event("reminder"))
    assert (await n.deliver_due()).delivered == 1
    assert (len(old.messages), len(new.messages)) == (1, 1)


async def test_send_test_reports_each_target(
    store: Store, clock: Clock, webhook_receiver: WebhookReceiver
) -> None:
    targets = [
        target("good", webhook_receiver.url()),
        target("down", REFUSED),
        target("bogus", "nope://wk"),
    ]
    outcomes = await notifier(store, targets, clock).send_test()
    assert [(o.target, o.ok) for o in outcomes] == [
        ("good", True),
        ("down", False),
        ("bogus", False),
    ]
    assert outcomes[1].error == "json://127.0.0.1:9/... failed: connection refused"
    assert outcomes[2].error == (
        "target bogus: apprise cannot use this URL (scheme 'nope'); see "
        "https://github.com/caronc/apprise/wiki for the URL of each service"
    )
    assert webhook_receiver.messages[0]["title"] == "[TEST] watchkeeper → good"
    assert store.outbox.counts() == {"pending": 0, "delivered": 0, "failed": 0}


async def test_send_test_to_one_target_or_an_unknown_one(
    store: Store, clock: Clock, webhook_receiver: WebhookReceiver
) -> None:
    n = notifier(store, [target("good", webhook_receiver.url()), target("down", REFUSED)], clock)
    assert [(o.target, o.ok) for o in await n.send_test("good")] == [("good", True)]
    (unknown,) = await n.send_test("nope")
    assert (unknown.ok, unknown.error) == (False, "no notify target named 'nope'")


async def test_run_delivers_when_woken_and_stops(
    store: Store, clock: Clock, webhook_receiver: WebhookReceiver
) -> None:
    targets = [target("hook", webhook_receiver.url())]
    wake, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(notifier(store, targets, clock).run(wake, stop))
    await asyncio.sleep(0)
    commit(store, targets, event())
    wake.set()
    await asyncio.to_thread(webhook_receiver.wait_for, 1)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(webhook_receiver.messages) == 1
