"""The native Slack channel: Block Kit that Slack accepts (its documented limits checked by a
peer that answers `invalid_blocks` as Slack does), untrusted text that cannot ping, link or
format, Slack's real answers mapped to clear, final-or-retried errors, and the webhook URL and
bot token kept out of logs, the database and every error."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from daemon.config.settings import NotifyTarget
from daemon.models import Message
from daemon.notify.delivery import Notifier
from daemon.notify.payload import Sections, event_payload, message_payload
from daemon.notify.render import render_event
from daemon.notify.slack_blocks import slack_message
from daemon.secrets import resolve
from daemon.store import Store
from daemon.store.database import DB_NAME
from daemon.util.text import ZERO_WIDTH_SPACE
from tests.daemon.notify.chat_common import (
    DELIVERY,
    FORGED,
    MARKERS,
    T0,
    Clock,
    commit,
    costs,
    event,
    full,
    outbox,
    rca,
    texts,
    triage,
)
from tests.peers.chat import ChatPeers, block_kit_problems
from tests.peers.loopback import free_port

AI_OFF = "AI off: no model reachable — run `watchkeeper models`"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path)
    yield s
    s.close()


def slack(name: str = "slack", **kw: Any) -> NotifyTarget:
    return NotifyTarget(name=name, kind="slack", **kw)


def notifier(store: Store | None, targets: list[NotifyTarget], clock: Clock) -> Notifier:
    return Notifier(store, targets, DELIVERY, resolve, clock)


def rendered(kind: str = "opened", sections: Sections | None = None, **kw: Any) -> dict[str, Any]:
    e = event(kind, **kw)
    message: dict[str, Any] = slack_message(
        event_payload(e, render_event(e), sections), "ref: incident #42 · event 7"
    )
    return message


def block(message: dict[str, Any], kind: str, index: int = 0) -> dict[str, Any]:
    found: dict[str, Any] = [b for b in message["blocks"] if b["type"] == kind][index]
    return found


# -- what the message looks like ----------------------------------------------------------


def test_an_opened_event_has_a_header_fields_evidence_triage_and_the_cost_line() -> None:
    message = rendered(sections=Sections(triage=triage(), costs=costs()))
    assert block_kit_problems(message) == []
    assert block(message, "header")["text"] == {
        "type": "plain_text",
        "text": "🟠 [HIGH] session-cache failing — incident #42",
        "emoji": False,
    }
    fields = {
        f["text"].split("\n")[0]: f["text"].split("\n", 1)[1]
        for f in block(message, "section")["fields"]
    }
    assert fields == {
        "*Check*": "`session-cache`",
        "*Severity*": "high (raised by triage from medium)",
        "*Since*": "14:02 UTC (2026-11-27)",
        "*Status*": "open",
        "*Blast radius*": "`checkout-api`, `cart-worker`",
    }
    sections = [
        b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b
    ]
    assert sections[1] == "*Triage*  `ollama/gemma4:27b, local`"
    assert sections[2].startswith("Redis behind session-cache stopped answering\n")
    contexts = [
        e["text"] for b in message["blocks"] if b["type"] == "context" for e in b["elements"]
    ]
    assert contexts == [
        "AI cost: triage $0.00 (ollama/gemma4:27b: 1,204 in / 151 out, local) · RCA $0.0236 "
        "(anthropic/claude-opus-4-6: 2,310 in / 480 out, anthropic)",
        "Incident total $0.0236 · today $0.06 · month $1.84 · local triage saved $0.31 today",
        "ref: incident #42 · event 7",
    ]
    assert message["text"].startswith("[HIGH] session-cache failing — incident #42: GET http")


def test_json_evidence_is_shown_once_as_a_code_block_never_double_escaped() -> None:
    message = rendered()
    evidence = next(t for t in texts(message["blocks"]) if t.startswith("*Evidence*"))
    assert evidence == (
        "*Evidence*\n```\nGET http://cache.internal:8080/health returned 503 in 41 ms; expected "
        '200\n\n{\n  "status": "down",\n  "error": "OOM &gt; \'maxmemory\'"\n}\n```'
    )
    assert not any('\\"' in t for t in texts(message))  # no JSON inside a JSON string


def test_an_investigation_shows_root_cause_evidence_and_numbered_next_steps() -> None:
    message = rendered("investigation", Sections(rca=rca()))
    assert block_kit_problems(message) == []
    shown = texts(message["blocks"])
    assert "*Root cause*  `anthropic/claude-opus-4-6, confidence medium`" in shown
    assert "the cache hit its memory limit after the 13:55 deploy" in shown
    assert "*Next steps*  `suggested, never run by watchkeeper`" in shown
    assert (
        "1. kubectl -n prod describe pod session-cache-0\n"
        "2. the cache hit its memory limit after the 13:55 deploy"
    ) in shown


def test_resolved_says_how_long_it_was_open_with_a_tick() -> None:
    message = rendered("resolved", evidence="GET /health returned 200 in 8 ms")
    assert block(message, "header")["text"]["text"].startswith("✅ [RESOLVED] session-cache")
    status = block(message, "section")["fields"][3]["text"]
    assert status == "*Status*\nresolved after 5m"


def test_an_acknowledgement_shows_who_with_eyes_and_stays_inert() -> None:
    message = rendered("acknowledged", acknowledged_by="alice <!here> @channel")
    assert block_kit_problems(message) == []
    assert block(message, "header")["text"]["text"].startswith(
        "👀 [HIGH] session-cache acknowledged"
    )
    ack = block(message, "section")["fields"][5]["text"]
    assert ack == f"*Acknowledged by*\n`alice &lt;!here&gt; @{ZERO_WIDTH_SPACE}channel`"


def test_the_ai_off_line_stands_in_for_the_triage_section() -> None:
    deterministic = triage("no model summary; severity high as the rules set it")
    message = rendered(sections=Sections(triage=deterministic, ai_note=AI_OFF, ai_off=True))
    shown = texts(message["blocks"])
    assert "*Triage*" not in " ".join(shown)
    (note,) = [b for b in message["blocks"] if b["type"] == "context" and "AI off" in json.dumps(b)]
    assert note["elements"] == [
        {"type": "mrkdwn", "text": AI_OFF, "verbatim": True}  # `watchkeeper models` as code
    ]


def test_limits_are_kept_by_clipping_never_by_failing() -> None:
    huge = "x" * 9000 + " <!here> & " * 300
    message = rendered(
        sections=full(huge),
        evidence=huge,
        check="c" * 120,
        blast_radius=[f"service-{n:03d}-" + "y" * 100 for n in range(200)],
        detail=huge,
    )
    assert block_kit_problems(message) == []
    header = block(message, "header")["text"]["text"]
    assert len(header) <= 150 and header.endswith("…")
    radius = block(message, "section")["fields"][4]["text"]
    assert radius.endswith("more") and len(radius) <= 2000
    assert all(len(t) <= 3000 for t in texts(message["blocks"]))
    # a clipped text never ends inside an entity or an open code fence
    assert all(not re.search(r"&[a-z]{0,3}$", t) for t in texts(message["blocks"]))
    assert all(t.count("```") % 2 == 0 for t in texts(message["blocks"]))


def test_forged_text_cannot_ping_link_format_or_draw_lines_in_any_field() -> None:
    message = rendered(sections=full(FORGED), evidence=FORGED, detail=FORGED)
    assert block_kit_problems(message) == []
    wire = json.dumps(message, ensure_ascii=False)
    for marker in MARKERS:
        assert marker not in wire, marker
    assert "@everyone" not in wire and f"@{ZERO_WIDTH_SPACE}everyone" in wire
    for text in texts(message, "plain_text"):  # never formatted by Slack
        assert "\n[RESOLVED]" not in text and "\nref:" not in text
    for text in texts(message, "mrkdwn"):
        # mrkdwn carries forged text only inside code, where Slack formats nothing
        outside = re.sub(r"```.*?```|`[^`]*`", "", text, flags=re.S)
        for live in ("*bold*", "_it_", "~gone~", "[click]", "RESOLVED", "@"):
            assert live not in outside, (live, text)
    fallback = message["text"]
    assert "\n" not in fallback and "&lt;!here&gt;" in fallback


def test_reports_and_other_messages_are_plain_paragraphs_without_markdown() -> None:
    body = "**Checks:** 3 results\nNot ok now: db\\_main (failing)\n\n**AI:** no model calls"
    payload = message_payload(Message("watchkeeper daily digest — 27 Nov", body, "info"), "report")
    message = slack_message(payload, "ref: message 9")
    assert block_kit_problems(message) == []
    assert texts(message["blocks"]) == [
        "watchkeeper daily digest — 27 Nov",
        "Checks: 3 results\nNot ok now: db_main (failing)",
        "AI: no model calls",
        "ref: message 9",
    ]


def test_the_peer_refuses_what_slack_refuses() -> None:
    """The Block Kit check can fail: each documented limit broken once."""
    good = rendered()
    assert block_kit_problems(good) == []
    header, fields = good["blocks"][0], good["blocks"][1]
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    for blocks in (
        [{**header, "text": {"type": "plain_text", "text": "x" * 151}}],
        [{**header, "text": {"type": "mrkdwn", "text": "*x*"}}],
        [{**fields, "fields": fields["fields"] * 3}],
        [{"type": "section", "text": {"type": "plain_text", "text": "x" * 3001}}],
        [{"type": "section", "text": {"type": "plain_text", "text": " "}}],
        [{"type": "context", "elements": [{"type": "plain_text", "text": "x"}] * 11}],
        [{"type": "markdown_please", "text": "x"}],
        [section] * 51,
    ):
        assert block_kit_problems({"text": "x", "blocks": blocks}), blocks


# -- an incoming webhook ------------------------------------------------------------------


async def test_an_incoming_webhook_gets_valid_block_kit_and_the_row_is_delivered(
    store: Store, chat_peers: ChatPeers
) -> None:
    peer = chat_peers.slack_webhook()
    targets = [slack(url=peer.url)]
    commit(store, targets, event())
    report = await notifier(store, targets, Clock()).deliver_due()
    assert report.delivered == 1
    (request,) = peer.requests
    assert (request.status, request.headers["Content-Type"]) == (
        200,
        "application/json; charset=utf-8",
    )
    (message,) = peer.accepted
    assert message["unfurl_links"] is False and message["unfurl_media"] is False
    assert texts(message["blocks"])[-1] == "ref: incident #42 · event 1"


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (400, "invalid_blocks", "Slack refused the message's blocks (please report it)"),
        (
            400,
            "invalid_payload",
            "Slack could not read the message watchkeeper built (please report it)",
        ),
        (403, "action_prohibited", "a workspace admin restricted who may post to this channel"),
        (
            410,
            "channel_is_archived",
            "the channel is archived: unarchive it or post somewhere else",
        ),
    ],
)
async def test_what_slack_refuses_for_good_fails_the_row_at_once(
    store: Store, chat_peers: ChatPeers, status: int, body: str, reason: str
) -> None:
    peer = chat_peers.slack_webhook()
    peer.answer_next(status, body)
    targets = [slack(url=peer.url)]
    commit(store, targets, event())
    assert (await notifier(store, targets, Clock()).deliver_due()).failed == 1
    ((_, attempts, error, state, _),) = outbox(store)
    assert (attempts, state) == (0, "failed")
    assert error == f"https://127.0.0.1:{peer.port}/... answered HTTP {status} {body}: {reason}"


async def test_a_removed_webhook_is_no_service_and_final(
    store: Store, chat_peers: ChatPeers
) -> None:
    peer = chat_peers.slack_webhook()
    targets = [slack(url=peer.base + "/services/T0WATCHKP/B0WATCHKP/revoked")]
    commit(store, targets, event())
    assert (await notifier(store, targets, Clock()).deliver_due()).failed == 1
    error = outbox(store)[0][2]
    assert error == (
        f"https://127.0.0.1:{peer.port}/... answered HTTP 404 no_service: this incoming webhook "
        "was removed or its URL is wrong: create a new one"
    )


async def test_429_waits_for_retry_after_and_5xx_is_retried(
    store: Store, chat_peers: ChatPeers
) -> None:
    peer = chat_peers.slack_webhook()
    peer.answer_next(429, "rate_limited", Retry_After="120")
    peer.answer_next(500, "")
    targets = [slack(url=peer.url)]
    clock = Clock()
    commit(store, targets, event())
    n = notifier(store, targets, clock)
    assert (await n.deliver_due()).retried == 1
    ((_, attempts, error, state, due),) = outbox(store)
    assert (attempts, state) == (1, "pending")
    assert error == (
        f"https://127.0.0.1:{peer.port}/... answered HTTP 429 rate_limited: Slack asks to slow "
        "down; retrying after 120s"
    )
    assert datetime.fromisoformat(due) == T0 + timedelta(seconds=120)
    clock.now = T0 + timedelta(seconds=120)
    assert (await n.deliver_due()).retried == 1  # the 500
    assert outbox(store)[0][2] == f"https://127.0.0.1:{peer.port}/... answered HTTP 500"
    clock.now += timedelta(seconds=20)
    assert (await n.deliver_due()).delivered == 1


# -- a bot token and chat.postMessage -----------------------------------------------------


async def test_a_bot_token_posts_to_the_channel_through_chat_post_message(
    store: Store, chat_peers: ChatPeers, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = chat_peers.slack_api()
    monkeypatch.setenv("WK_SLACK_BOT", peer.token)
    targets = [slack(token="secret:WK_SLACK_BOT", channel="#ops", api_url=peer.api_url)]
    commit(store, targets, event())
    assert (await notifier(store, targets, Clock()).deliver_due()).delivered == 1
    (request,) = peer.requests
    assert request.path == "/api/chat.postMessage"
    assert request.headers["Authorization"] == f"Bearer {peer.token}"
    message = request.json()
    assert message["channel"] == "#ops" and block_kit_problems(message) == []
    assert "warning" not in json.loads(peer.answer(request)[1])  # the charset was sent


@pytest.mark.parametrize(
    ("channel", "token", "reason", "final"),
    [
        (
            "#nowhere",
            None,
            "channel_not_found: no such channel for this token: check `channel`",
            True,
        ),
        ("#private", None, "not_in_channel: the bot is not in the channel: invite it", True),
        ("#ops", "xoxb-000-111-wrong", "invalid_auth: the bot token is not valid", True),
    ],
)
async def test_web_api_errors_are_named_and_final(
    store: Store,
    chat_peers: ChatPeers,
    monkeypatch: pytest.MonkeyPatch,
    channel: str,
    token: str | None,
    reason: str,
    final: bool,
) -> None:
    peer = chat_peers.slack_api()
    monkeypatch.setenv("WK_SLACK_BOT", token or peer.token)
    targets = [slack(token="secret:WK_SLACK_BOT", channel=channel, api_url=peer.api_url)]
    commit(store, targets, event())
    report = await notifier(store, targets, Clock()).deliver_due()
    assert (report.failed, report.retried) == (1, 0)
    error = outbox(store)[0][2]
    assert error is not None
    prefix = f"https://127.0.0.1:{peer.port}/api/chat.postMessage {channel} answered "
    assert error.startswith(prefix + reason), error


async def test_web_api_rate_limits_and_fatal_errors_are_retried(
    store: Store, chat_peers: ChatPeers, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = chat_peers.slack_api()
    peer.answer_next(429, json.dumps({"ok": False, "error": "ratelimited"}), Retry_After="30")
    peer.answer_next(200, json.dumps({"ok": False, "error": "fatal"}))
    monkeypatch.setenv("WK_SLACK_BOT", peer.token)
    targets = [slack(token="secret:WK_SLACK_BOT", channel="C0OPS", api_url=peer.api_url)]
    clock = Clock()
    commit(store, targets, event())
    n = notifier(store, targets, clock)
    assert (await n.deliver_due()).retried == 1
    row = outbox(store)[0]
    assert row[2] is not None and row[2].endswith(
        "answered HTTP 429 ratelimited: Slack asks to slow down; retrying after 30s"
    )
    assert datetime.fromisoformat(row[4]) == T0 + timedelta(seconds=30)
    clock.now = T0 + timedelta(seconds=30)
    assert (await n.deliver_due()).retried == 1
    assert str(outbox(store)[0][2]).endswith("C0OPS answered fatal")
    clock.now += timedelta(seconds=20)
    assert (await n.deliver_due()).delivered == 1


# -- secrets and reasons ------------------------------------------------------------------


async def test_the_webhook_url_and_bot_token_never_reach_logs_the_db_or_errors(
    tmp_path: Path,
    chat_peers: ChatPeers,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    hook, api = chat_peers.slack_webhook(), chat_peers.slack_api()
    hook_secret = hook.path.rsplit("/", 1)[1]
    monkeypatch.setenv("WK_SLACK_BOT", api.token)
    hook.answer_next(500, "")
    api.answer_next(200, json.dumps({"ok": False, "error": "internal_error"}))
    targets = [
        slack("hook", url=hook.url),  # a literal URL in the config is still a secret
        slack("bot", token="secret:WK_SLACK_BOT", channel="#ops", api_url=api.api_url),
    ]
    store = Store.open(tmp_path)
    commit(store, targets, event())
    clock = Clock()
    n = notifier(store, targets, clock)
    with structlog.testing.capture_logs() as logs:
        assert (await n.deliver_due()).retried == 2
        clock.now += timedelta(seconds=10)
        assert (await n.deliver_due()).delivered == 2
        outcomes = await n.send_test()
    assert all(o.ok for o in outcomes)
    assert "HTTP Request: POST https://127.0.0.1" in caplog.text  # httpx logged, masked
    captured = capsys.readouterr()
    store.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob(f"{DB_NAME}*"))
    for secret in (hook_secret, api.token):
        assert secret not in repr(logs)
        assert secret not in caplog.text
        assert secret not in captured.out + captured.err
        assert secret.encode() not in stored
        assert all(secret not in r.body.decode() for r in hook.requests + api.requests)


async def test_notify_test_says_why_each_slack_target_failed(chat_peers: ChatPeers) -> None:
    peer = chat_peers.slack_webhook()
    port = free_port()
    targets = [
        slack("good", url=peer.url),
        slack("gone", url=peer.base + "/services/T0/B0/removed"),
        slack("down", url=f"https://127.0.0.1:{port}/services/T0/B0/x"),
    ]
    outcomes = {o.target: o for o in await notifier(None, targets, Clock()).send_test()}
    assert outcomes["good"].ok
    assert outcomes["gone"].error is not None and outcomes["gone"].error.startswith(
        f"https://127.0.0.1:{peer.port}/... answered HTTP 404 no_service: "
    )
    assert (
        outcomes["down"].error
        == f"https://127.0.0.1:{port}/... could not be reached: connection refused"
    )
    (test,) = peer.accepted
    assert test["blocks"][0]["text"]["text"] == "[TEST] watchkeeper → good"
