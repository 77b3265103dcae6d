from __future__ import annotations

import json
import logging
import re
import sqlite3
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import structlog

import daemon.notify.webhook
from daemon.config.load import load_settings
from daemon.config.settings import DeliverySettings, NotifyTarget
from daemon.errors import ConfigError
from daemon.models import EngineState, Incident, IncidentEvent, Message, Severity, fingerprint
from daemon.notify.delivery import Notifier
from daemon.notify.payload import event_payload
from daemon.notify.render import render_event
from daemon.notify.routing import route, route_message
from daemon.notify.webhook import build_request, signature
from daemon.secrets import resolve
from daemon.store import Store
from daemon.store.database import DB_NAME
from daemon.store.outbox import OutboxItem
from daemon.store.schema import _MIGRATIONS
from tests.peers.receivers import ReceivedRequest, WebhookReceiver
from tests.peers.scripted import FakeServer, Scripted, serving

T0 = datetime(2026, 11, 27, 14, 2, tzinfo=UTC)
CANARY = "wk-canary-7c1e"
SIGNING_KEY = "wk-signing-key-5d2b"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DELIVERY = DeliverySettings(
    timeout=timedelta(seconds=2),
    retry_initial=timedelta(seconds=10),
    retry_max=timedelta(seconds=40),
    max_age=timedelta(hours=1),
)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path)
    yield s
    s.close()


def event(kind: str = "opened", **kw: Any) -> IncidentEvent:
    fields: dict[str, Any] = {
        "incident_id": 42,
        "kind": kind,
        "at": T0,
        "check": "api",
        "severity": Severity.HIGH,
        "evidence": "GET /health returned 503",
        "opened_at": T0,
    }
    return IncidentEvent(**(fields | kw))


def hook(name: str, url: str, **kw: Any) -> NotifyTarget:
    return NotifyTarget(name=name, kind="webhook", url=url, **kw)


def notifier(store: Store | None, targets: list[NotifyTarget], clock: Clock, **kw: Any) -> Notifier:
    return Notifier(store, targets, DELIVERY, resolve, clock, **kw)


def commit(store: Store, targets: list[NotifyTarget], *events: IncidentEvent) -> None:
    opened = Incident(
        id=42, fingerprint=fingerprint("api"), check="api", severity=Severity.HIGH, opened_at=T0
    )
    items = route(list(events), targets, {"api": ["prod"]})
    store.incidents.commit_cycle(
        [], EngineState(incidents={42: opened}), list(events), [], items, now=T0
    )


def outbox(store: Store) -> list[tuple[int, str, int, str | None, str]]:
    conn = store.db._conn
    assert conn is not None
    found = conn.execute("SELECT id, target, attempts, last_error, status FROM outbox ORDER BY id")
    return [tuple(r) for r in found]


def documented_verify(now: datetime) -> Callable[..., bool]:
    """The verifier from the webhook module's docstring, verbatim, its clock set to `now`."""
    doc = daemon.notify.webhook.__doc__ or ""
    code = textwrap.dedent(doc[doc.index("    import hashlib, hmac, time") :])
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    namespace["time"] = SimpleNamespace(time=now.timestamp)
    verify: Callable[..., bool] = namespace["verify"]
    return verify


def headers_of(request: ReceivedRequest) -> httpx.Headers:
    return httpx.Headers(request.headers)


# -- payload ------------------------------------------------------------------------------


def test_opened_event_payload_has_the_documented_shape() -> None:
    payload = event_payload(event(blast_radius=["web"], detail="since deploy 7"))
    assert list(payload) == [
        "schema",
        "event",
        "event_id",
        "at",
        "incident",
        "evidence",
        "detail",
        "title",
        "text",
        "triage",
        "rca",
        "costs",
        "ai_off",
        "ai_note",
        "links",
        "sent_at",
    ]
    assert payload["schema"] == "watchkeeper.event/1"
    assert payload["event"] == "opened"
    assert payload["at"] == "2026-11-27T14:02:00Z"
    assert payload["incident"] == {
        "id": 42,
        "fingerprint": fingerprint("api"),
        "check": "api",
        "severity": "high",
        "previous_severity": None,
        "status": "open",
        "opened_at": "2026-11-27T14:02:00Z",
        "duration_s": 0.0,
        "blast_radius": ["web"],
        "acknowledged_by": None,
    }
    assert (payload["evidence"], payload["detail"]) == (
        "GET /health returned 503",
        "since deploy 7",
    )
    message = render_event(event(blast_radius=["web"], detail="since deploy 7"))
    assert (payload["title"], payload["text"]) == (message.title, message.body)
    assert {
        k: payload[k] for k in ("event_id", "triage", "rca", "costs", "sent_at")
    } == dict.fromkeys(("event_id", "triage", "rca", "costs", "sent_at"))
    assert (payload["ai_off"], payload["ai_note"]) == (False, None)
    assert payload["links"] == {}
    assert json.loads(json.dumps(payload)) == payload  # JSON-native values only


def test_resolved_and_changed_payloads_carry_status_duration_and_previous_severity() -> None:
    resolved = event_payload(
        event("resolved", at=T0 + timedelta(minutes=5, microseconds=7), duration_s=300.000007)
    )
    assert resolved["incident"]["status"] == "resolved"
    assert resolved["incident"]["duration_s"] == 300.0
    assert resolved["at"] == "2026-11-27T14:07:00Z"
    assert resolved["title"].startswith("[RESOLVED] api")
    changed = event_payload(
        event("changed", severity=Severity.CRITICAL, previous_severity=Severity.HIGH)
    )
    assert changed["incident"]["previous_severity"] == "high"
    assert changed["incident"]["severity"] == "critical"
    assert changed["incident"]["status"] == "open"


def test_route_puts_the_payload_on_every_item_of_either_kind() -> None:
    targets = [hook("hook", "https://hooks.example.com/x"), NotifyTarget(name="a", url="json://x")]
    items = route([event()], targets, {})
    assert [i.payload for i in items] == [event_payload(event())] * 2
    (report,) = route_message(Message("Daily", "all fine", "info"), targets[:1], "report")
    assert report.payload == {
        "schema": "watchkeeper.message/1",
        "event": "report",
        "title": "Daily",
        "text": "all fine",
        "notify_type": "info",
        "links": {},
        "sent_at": None,
    }


async def test_delivered_body_fills_event_id_and_sent_at(
    store: Store, clock: Clock, webhook_receiver: WebhookReceiver
) -> None:
    targets = [hook("hook", webhook_receiver.url("alerts", scheme="http"))]
    commit(store, targets, event(), event("resolved", duration_s=60.0))
    clock.advance(seconds=3)
    assert (await notifier(store, targets, clock).deliver_due()).delivered == 2
    opened, resolved = webhook_receiver.messages
    assert (opened["event"], opened["event_id"]) == ("opened", 1)
    assert (resolved["event"], resolved["event_id"]) == ("resolved", 2)
    assert resolved["incident"]["status"] == "resolved"
    for payload in (opened, resolved):
        assert payload["sent_at"] == "2026-11-27T14:02:03Z"
        assert all(RFC3339.match(payload[k]) for k in ("at", "sent_at"))
        assert RFC3339.match(payload["incident"]["opened_at"])
        assert "ref:" not in payload["text"]
    request = webhook_receiver.requests[0]
    assert (request.method, request.path) == ("POST", "/alerts")
    headers = headers_of(request)
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "watchkeeper/0.1"
    assert headers["x-watchkeeper-event"] == "opened"
    assert headers["x-watchkeeper-delivery"] == str(outbox(store)[0][0])


# -- signing ------------------------------------------------------------------------------


async def test_signature_verifies_with_the_documented_recipe(
    store: Store, clock: Clock, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WK_SIGNING", SIGNING_KEY)
    url = webhook_receiver.url(scheme="http")
    targets = [hook("hook", url, signing_secret="secret:WK_SIGNING")]
    commit(store, targets, event())
    await notifier(store, targets, clock).deliver_due()
    (request,) = webhook_receiver.requests
    headers = headers_of(request)
    assert headers["x-watchkeeper-timestamp"] == str(int(T0.timestamp()))
    assert re.fullmatch(r"v1=[0-9a-f]{64}", headers["x-watchkeeper-signature"])
    verify = documented_verify(T0 + timedelta(seconds=30))
    assert verify(SIGNING_KEY.encode(), headers, request.body)
    assert not verify(b"another-secret", headers, request.body)
    assert not verify(SIGNING_KEY.encode(), headers, request.body + b" ")
    assert not documented_verify(T0 + timedelta(minutes=6))(
        SIGNING_KEY.encode(), headers, request.body
    )


def test_signature_covers_delivery_timestamp_event_and_the_exact_body() -> None:
    body, headers = build_request(
        {"event": "opened"}, delivery_id="7", sent_at=T0, signing_secret=SIGNING_KEY
    )
    assert body == b'{"event":"opened","sent_at":"2026-11-27T14:02:00Z"}'
    ts = int(T0.timestamp())
    signed = signature(SIGNING_KEY, "7", ts, "opened", body)
    assert headers["X-Watchkeeper-Signature"] == signed
    assert signature(SIGNING_KEY, "7", ts + 1, "opened", body) != signed
    assert signature(SIGNING_KEY, "8", ts, "opened", body) != signed
    assert signature(SIGNING_KEY, "7", ts, "resolved", body) != signed


def test_a_replay_under_another_delivery_id_or_event_does_not_verify() -> None:
    body, sent = build_request(
        {"event": "opened"}, delivery_id="7", sent_at=T0, signing_secret=SIGNING_KEY
    )
    verify = documented_verify(T0)
    assert verify(SIGNING_KEY.encode(), httpx.Headers(sent), body)
    for name, forged in (("X-Watchkeeper-Delivery", "8"), ("X-Watchkeeper-Event", "resolved")):
        replayed = httpx.Headers({**sent, name: forged})
        assert not verify(SIGNING_KEY.encode(), replayed, body)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Watchkeeper-Signature", "v1=\u00e9t\u00e9"),  # not ASCII
        ("X-Watchkeeper-Timestamp", "soon"),
        ("X-Watchkeeper-Timestamp", "\u0661\u0662\u0663"),  # digits, but not ASCII ones
        ("X-Watchkeeper-Timestamp", ""),
        ("X-Watchkeeper-Delivery", "\u00e9"),
        ("X-Watchkeeper-Timestamp", None),
        ("X-Watchkeeper-Signature", None),
        ("X-Watchkeeper-Delivery", None),
        ("X-Watchkeeper-Event", None),
    ],
)
def test_the_documented_recipe_says_false_to_malformed_headers(
    header: str, value: str | None
) -> None:
    body, sent = build_request(
        {"event": "opened"}, delivery_id="7", sent_at=T0, signing_secret=SIGNING_KEY
    )
    headers = {k: v for k, v in sent.items() if k != header}
    if value is not None:
        headers[header] = value
    assert documented_verify(T0)(SIGNING_KEY.encode(), headers, body) is False


async def test_timestamp_and_signature_headers_only_when_signing(
    store: Store, clock: Clock, webhook_receiver: WebhookReceiver
) -> None:
    targets = [hook("hook", webhook_receiver.url(scheme="http"))]
    commit(store, targets, event())
    await notifier(store, targets, clock).deliver_due()
    headers = headers_of(webhook_receiver.requests[0])
    assert "x-watchkeeper-timestamp" not in headers
    assert "x-watchkeeper-signature" not in headers
    assert headers["x-watchkeeper-delivery"] == "1"


async def test_custom_headers_are_sent_with_secret_values_resolved(
    store: Store, clock: Clock, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WK_HOOK_AUTH", f"Bearer {CANARY}")
    headers = {"Authorization": "secret:WK_HOOK_AUTH", "X-Source": "watchkeeper"}
    targets = [hook("hook", webhook_receiver.url(scheme="http"), headers=headers)]
    commit(store, targets, event())
    await notifier(store, targets, clock).deliver_due()
    sent = headers_of(webhook_receiver.requests[0])
    assert (sent["authorization"], sent["x-source"]) == (f"Bearer {CANARY}", "watchkeeper")


# -- retries and failures -----------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 404])
async def test_an_error_status_is_retried_with_backoff_then_delivered(
    store: Store, clock: Clock, webhook_receiver: WebhookReceiver, status: int
) -> None:
    webhook_receiver.fail_next(1, status=status)
    targets = [hook("hook", webhook_receiver.url("secret-path", scheme="http"))]
    commit(store, targets, event())
    n = notifier(store, targets, clock)
    assert (await n.deliver_due()).retried == 1
    port = webhook_receiver.port
    assert outbox(store) == [
        (1, "hook", 1, f"http://127.0.0.1:{port}/... answered HTTP {status}", "pending")
    ]
    assert store.outbox.next_due_at() == T0 + timedelta(seconds=10)
    clock.advance(seconds=10)
    assert (await n.deliver_due()).delivered == 1
    assert [r.status for r in webhook_receiver.requests] == [status, 200]
    assert outbox(store)[0][2:] == (
        2,
        f"http://127.0.0.1:{port}/... answered HTTP {status}",
        "delivered",
    )


async def test_delivery_id_is_stable_across_a_retry(
    store: Store, clock: Clock, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WK_SIGNING", SIGNING_KEY)
    webhook_receiver.fail_next(1)
    url = webhook_receiver.url(scheme="http")
    targets = [hook("hook", url, signing_secret="secret:WK_SIGNING")]
    commit(store, targets, event(), event("flapping"))
    n = notifier(store, targets, clock)
    await n.deliver_due()
    clock.advance(seconds=10)
    await n.deliver_due()
    first, retry, second = (headers_of(r) for r in webhook_receiver.requests)
    assert first["x-watchkeeper-delivery"] == retry["x-watchkeeper-delivery"] == "1"
    assert second["x-watchkeeper-delivery"] == "2"
    assert int(retry["x-watchkeeper-timestamp"]) == int(first["x-watchkeeper-timestamp"]) + 10
    verify = documented_verify(clock())
    assert all(
        verify(SIGNING_KEY.encode(), headers_of(r), r.body) for r in webhook_receiver.requests
    )


@dataclass
class Redirector:
    url: str
    server: FakeServer

    @property
    def hits(self) -> list[str]:
        return [request.path for request in self.server.requests]


@pytest.fixture
def redirector(webhook_receiver: WebhookReceiver) -> Iterator[Redirector]:
    """Answers every POST with 307 to the webhook receiver: following it would deliver there."""
    location = webhook_receiver.url("stolen", scheme="http")
    with serving(lambda request: Scripted(307, b"", headers={"Location": location})) as server:
        yield Redirector(f"{server.url}/hook", server)


async def test_a_redirect_is_not_followed_and_is_a_failure(
    store: Store, clock: Clock, redirector: Redirector, webhook_receiver: WebhookReceiver
) -> None:
    targets = [hook("hook", redirector.url)]
    commit(store, targets, event())
    assert (await notifier(store, targets, clock).deliver_due()).retried == 1
    assert redirector.hits == ["/hook"]
    assert webhook_receiver.requests == []
    ((_, _, attempts, error, status),) = outbox(store)
    assert (attempts, status) == (1, "pending")
    assert error is not None
    assert error.startswith(
        f"{redirector.url.rsplit('/', 1)[0]}/... answered HTTP 307 (a redirect)"
    )
    assert "does not follow" in error
    assert "stolen" not in error


async def test_a_refused_connection_and_a_timeout_are_retried(
    store: Store, clock: Clock, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.hang_next(1)
    targets = [
        hook("down", "http://127.0.0.1:9/nobody-listens"),
        hook("slow", webhook_receiver.url(scheme="http")),
    ]
    commit(store, targets, event())
    delivery = DELIVERY.model_copy(update={"timeout": timedelta(seconds=0.5)})
    n = Notifier(store, targets, delivery, resolve, clock)
    assert (await n.deliver_due()).retried == 2
    errors = {target: error for _, target, _, error, _ in outbox(store)}
    assert errors == {
        "down": "http://127.0.0.1:9/... could not be reached: connection refused",
        "slow": f"http://127.0.0.1:{webhook_receiver.port}/... timed out after 0.5s",
    }


async def test_a_transport_timeout_reads_as_a_timeout(store: Store, clock: Clock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    targets = [hook("hook", f"https://hooks.example.com/{CANARY}")]
    commit(store, targets, event())
    n = notifier(store, targets, clock, webhook_transport=httpx.MockTransport(handler))
    await n.deliver_due()
    assert outbox(store)[0][3] == "https://hooks.example.com/... timed out after 2s"


async def test_an_unusable_secret_url_is_an_error_that_does_not_quote_it(
    store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WK_HOOK", f"json://127.0.0.1/{CANARY}")
    targets = [hook("hook", "secret:WK_HOOK")]
    commit(store, targets, event())
    assert (await notifier(store, targets, clock).deliver_due()).retried == 1
    error = outbox(store)[0][3]
    assert error is not None
    assert error.startswith("target hook: a webhook URL must start with http:// or https://")
    assert CANARY not in error


async def test_rows_queued_before_payloads_existed_are_sent_as_messages(
    tmp_path: Path, clock: Clock, webhook_receiver: WebhookReceiver
) -> None:
    conn = sqlite3.connect(tmp_path / DB_NAME)
    for migration in _MIGRATIONS[:2]:
        conn.executescript(migration)
    conn.execute(
        "INSERT INTO outbox (target, title, body, notify_type, created_at, next_attempt_at, "
        "updated_at) VALUES ('hook', 'Daily', 'all fine', 'info', ?, ?, ?)",
        (T0.isoformat(),) * 3,
    )
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    targets = [hook("hook", webhook_receiver.url(scheme="http"))]
    with Store.open(tmp_path) as store:
        (row,) = store.outbox.due(T0, 10)
        assert row.payload is None
        assert (await notifier(store, targets, clock).deliver_due()).delivered == 1
    (payload,) = webhook_receiver.messages
    assert (payload["schema"], payload["event"]) == ("watchkeeper.message/1", "message")
    assert (payload["title"], payload["text"]) == ("Daily", "all fine")


# -- secrets ------------------------------------------------------------------------------


async def test_secrets_never_reach_the_db_errors_or_logs(
    store: Store,
    clock: Clock,
    webhook_receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    monkeypatch.setenv("WK_HOOK", webhook_receiver.url(f"{CANARY}/hook?t={CANARY}", "http"))
    monkeypatch.setenv("WK_SIGNING", SIGNING_KEY)
    webhook_receiver.fail_next(1)
    targets = [hook("hook", "secret:WK_HOOK", signing_secret="secret:WK_SIGNING")]
    commit(store, targets, event())
    n = notifier(store, targets, clock)
    with structlog.testing.capture_logs() as logs:
        await n.deliver_due()
        clock.advance(seconds=10)
        await n.deliver_due()
        outcomes = await n.send_test()
    assert [r.status for r in webhook_receiver.requests] == [500, 200, 200]
    assert CANARY in webhook_receiver.requests[0].path  # it really was in the URL
    assert outcomes[0].ok
    error = outbox(store)[0][3]
    assert error == f"http://127.0.0.1:{webhook_receiver.port}/... answered HTTP 500"
    assert "HTTP Request: POST http://127.0.0.1" in caplog.text  # httpx logged, masked
    captured = capsys.readouterr()
    for secret in (CANARY, SIGNING_KEY):
        assert secret not in repr(logs)
        assert secret not in caplog.text
        assert secret not in captured.out + captured.err
        assert all(secret not in r.body.decode() for r in webhook_receiver.requests)
    store.close()
    for path in Path(store.path).parent.glob(f"{DB_NAME}*"):
        data = path.read_bytes()
        assert CANARY.encode() not in data
        assert SIGNING_KEY.encode() not in data


async def test_a_missing_signing_secret_is_a_recorded_error_naming_it(
    store: Store, clock: Clock, webhook_receiver: WebhookReceiver
) -> None:
    url = webhook_receiver.url(scheme="http")
    targets = [hook("hook", url, signing_secret="secret:WK_NO_SUCH_KEY")]
    commit(store, targets, event())
    assert (await notifier(store, targets, clock).deliver_due()).retried == 1
    error = outbox(store)[0][3]
    assert error is not None
    assert error.startswith("target hook: secret 'WK_NO_SUCH_KEY' not found")
    assert webhook_receiver.requests == []  # never sent unsigned


# -- send_test and mixed targets ----------------------------------------------------------


async def test_send_test_posts_a_signed_test_message(
    clock: Clock, webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WK_SIGNING", SIGNING_KEY)
    url = webhook_receiver.url(scheme="http")
    n = notifier(None, [hook("hook", url, signing_secret="secret:WK_SIGNING")], clock)
    (outcome,) = await n.send_test("hook")
    assert (outcome.target, outcome.ok, outcome.error) == ("hook", True, None)
    (request,) = webhook_receiver.requests
    payload = request.json()
    assert payload["schema"] == "watchkeeper.message/1"
    assert payload["event"] == "test"
    assert payload["title"] == "[TEST] watchkeeper → hook"
    assert payload["sent_at"] == "2026-11-27T14:02:00Z"
    headers = headers_of(request)
    assert headers["x-watchkeeper-event"] == "test"
    assert re.fullmatch(r"test-[0-9a-f]{16}", headers["x-watchkeeper-delivery"])
    assert documented_verify(clock())(SIGNING_KEY.encode(), headers, request.body)


async def test_send_test_reports_a_failing_webhook(
    clock: Clock, webhook_receiver: WebhookReceiver
) -> None:
    webhook_receiver.fail_next(1, status=403)
    n = notifier(None, [hook("hook", webhook_receiver.url(scheme="http"))], clock)
    (outcome,) = await n.send_test()
    assert not outcome.ok
    assert outcome.error == f"http://127.0.0.1:{webhook_receiver.port}/... answered HTTP 403"


async def test_apprise_and_webhook_targets_share_one_cycle(
    store: Store, clock: Clock, make_webhook_receiver: Callable[[], WebhookReceiver]
) -> None:
    apprise_peer, webhook_peer = make_webhook_receiver(), make_webhook_receiver()
    targets = [
        NotifyTarget(name="classic", url=apprise_peer.url()),
        hook("native", webhook_peer.url(scheme="http")),
    ]
    commit(store, targets, event())
    assert (await notifier(store, targets, clock).deliver_due()).delivered == 2
    (classic,) = apprise_peer.messages
    assert classic["title"] == "[HIGH] api failing — incident #42"
    assert classic["message"].endswith("ref: incident #42 · event 1")
    (native,) = webhook_peer.messages
    assert native["schema"] == "watchkeeper.event/1"
    assert native["title"] == classic["title"]


async def test_enqueued_report_goes_to_a_webhook_as_a_message(
    store: Store, clock: Clock, webhook_receiver: WebhookReceiver
) -> None:
    targets = [hook("hook", webhook_receiver.url(scheme="http"))]
    store.outbox.enqueue(
        route_message(Message("Daily", "all fine", "info"), targets, "report"), now=T0
    )
    assert (await notifier(store, targets, clock).deliver_due()).delivered == 1
    (payload,) = webhook_receiver.messages
    assert (payload["schema"], payload["event"]) == ("watchkeeper.message/1", "report")
    assert headers_of(webhook_receiver.requests[0])["x-watchkeeper-event"] == "report"


def test_outbox_item_payload_does_not_change_equality() -> None:
    plain = OutboxItem("a", "t", "b", "info", None)
    assert plain == OutboxItem("a", "t", "b", "info", None, {"schema": "x"})
    assert hash(plain) == hash(OutboxItem("a", "t", "b", "info", None, {"schema": "x"}))


# -- config -------------------------------------------------------------------------------

BASE = """
[daemon]
state_dir = "state"

[[checks]]
name = "api"
type = "tcp"
host = "127.0.0.1"
port = 8080
"""


def load(tmp_path: Path, notify: str) -> list[NotifyTarget]:
    path = tmp_path / "config.toml"
    path.write_text(BASE + "\n[[notify]]\n" + textwrap.dedent(notify), encoding="utf-8")
    return load_settings(path).notify


def problems(tmp_path: Path, notify: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, notify)
    return str(info.value)


def test_webhook_target_config_loads(tmp_path: Path) -> None:
    (target,) = load(
        tmp_path,
        """
        name = "n8n"
        kind = "webhook"
        url = "https://n8n.example.com/webhook/abc"
        signing_secret = "secret:n8n_signing"
        headers = { Authorization = "secret:n8n_auth", X-Team = "sre" }
        min_severity = "high"
        events = ["opened", "resolved"]
        """,
    )
    assert (target.kind, target.signing_secret) == ("webhook", "secret:n8n_signing")
    assert target.headers == {"Authorization": "secret:n8n_auth", "X-Team": "sre"}


def test_webhook_secret_url_is_not_resolved_at_validation(tmp_path: Path) -> None:
    (target,) = load(tmp_path, 'name = "h"\nkind = "webhook"\nurl = "secret:hook_url"\n')
    assert target.url == "secret:hook_url"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("json://127.0.0.1:8788/x", "must start with http:// or https:// (scheme 'json')"),
        ("ftp://files.example.com/x", "must start with http:// or https:// (scheme 'ftp')"),
        ("https:///no-host", "needs a host"),
        ("https://example.com:99999/x", "not a valid URL"),
    ],
)
def test_webhook_url_must_be_http_or_https(tmp_path: Path, url: str, reason: str) -> None:
    text = problems(tmp_path, f'name = "h"\nkind = "webhook"\nurl = "{url}"\n')
    assert ": notify[h].url: " in text
    assert reason in text


def test_signing_secret_must_be_a_secret_reference(tmp_path: Path) -> None:
    text = problems(
        tmp_path,
        f'name = "h"\nkind = "webhook"\nurl = "https://x.example.com"\n'
        f'signing_secret = "{SIGNING_KEY}"\n',
    )
    assert ": notify[h].signing_secret: must be secret:NAME, never the key itself" in text
    assert SIGNING_KEY not in text


def test_apprise_targets_are_still_validated_by_apprise(tmp_path: Path) -> None:
    text = problems(tmp_path, 'name = "ops"\nurl = "nosuchscheme://token@x"\n')
    assert ": notify[ops].url: apprise cannot use this URL (scheme 'nosuchscheme')" in text
    text = problems(tmp_path, 'name = "ops"\nurl = "https://hooks.example.com/x"\n')
    assert "(scheme 'https'); for a JSON POST to this address set kind = \"webhook\"" in text
    (target,) = load(tmp_path, 'name = "ops"\nurl = "json://127.0.0.1:8788/x"\n')
    assert target.kind == "apprise"


def test_webhook_keys_on_an_apprise_target_are_rejected(tmp_path: Path) -> None:
    text = problems(
        tmp_path,
        'name = "ops"\nurl = "json://127.0.0.1/x"\nsigning_secret = "secret:k"\n'
        'headers = { X-A = "b" }\n',
    )
    assert (
        'notify[ops].signing_secret: only webhook targets take this key; set kind = "webhook"'
        in text
    )
    assert "notify[ops].headers: only webhook targets take this key" in text


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ('{ X-Watchkeeper-Event = "x" }', "header 'X-Watchkeeper-Event' is set by watchkeeper"),
        ('{ Content-Type = "text/plain" }', "header 'Content-Type' is set by watchkeeper"),
        ('{ "Bad Name" = "x" }', "'Bad Name' is not a valid HTTP header name"),
        ('{ X-A = "one\\r\\nX-B: two" }', "the value of header 'X-A' contains a line break"),
    ],
)
def test_webhook_headers_are_checked(tmp_path: Path, headers: str, reason: str) -> None:
    text = problems(
        tmp_path,
        f'name = "h"\nkind = "webhook"\nurl = "https://x.example.com"\nheaders = {headers}\n',
    )
    assert ": notify[h].headers: " in text
    assert reason in text
