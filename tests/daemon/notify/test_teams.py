"""The native Teams channel: an Adaptive Card that validates against the official schema,
posted to a Workflows webhook peer that answers as the real trigger does (202, 400, 401, 404,
429 with Retry-After); untrusted text only where Markdown is not processed; no mention can
ever be created; the URL's signature kept out of logs, the database and errors."""

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
from daemon.notify.teams_card import teams_message
from daemon.secrets import resolve
from daemon.store import Store
from daemon.store.database import DB_NAME
from tests.daemon.notify.chat_common import (
    DELIVERY,
    FORGED,
    T0,
    Clock,
    commit,
    costs,
    event,
    full,
    outbox,
    rca,
    triage,
)
from tests.peers.chat import ChatPeers, teams_message_problems

AI_OFF = "AI off: no model reachable — run `watchkeeper models`"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path)
    yield s
    s.close()


def teams(name: str = "teams", **kw: Any) -> NotifyTarget:
    return NotifyTarget(name=name, kind="teams", **kw)


def notifier(store: Store | None, targets: list[NotifyTarget], clock: Clock) -> Notifier:
    return Notifier(store, targets, DELIVERY, resolve, clock)


def card_of(kind: str = "opened", sections: Sections | None = None, **kw: Any) -> dict[str, Any]:
    e = event(kind, **kw)
    message: dict[str, Any] = teams_message(
        event_payload(e, render_event(e), sections), "ref: incident #42 · event 7"
    )
    return message


def elements(node: Any) -> Iterator[dict[str, Any]]:
    """Every element (and inline) of a card, depth first."""
    if isinstance(node, list):
        for item in node:
            yield from elements(item)
    elif isinstance(node, dict):
        if "type" in node:
            yield node
        for value in node.values():
            if isinstance(value, dict | list):
                yield from elements(value)


def markdown_texts(card: dict[str, Any]) -> list[str]:
    """The texts Teams runs through Markdown: TextBlocks and facts (never TextRuns)."""
    found = [e["text"] for e in elements(card) if e["type"] == "TextBlock"]
    found += [
        f[key]
        for e in elements(card)
        if e["type"] == "FactSet"
        for f in e["facts"]
        for key in ("title", "value")
    ]
    return found


def runs_of(card: dict[str, Any]) -> list[str]:
    return [e["text"] for e in elements(card) if e["type"] == "TextRun"]


# -- the card -----------------------------------------------------------------------------


def test_an_opened_event_is_a_valid_card_with_facts_evidence_triage_and_cost() -> None:
    message = card_of(sections=Sections(triage=triage(), costs=costs()))
    assert teams_message_problems(message) == []
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["version"] == "1.4"
    title = card["body"][0]
    assert title == {
        "type": "TextBlock",
        "text": "🟠 \\[HIGH\\] session-cache failing — incident \\#42",
        "wrap": True,
        "weight": "Bolder",
        "size": "Medium",
        "color": "Attention",
    }
    (facts,) = [e for e in elements(card) if e["type"] == "FactSet"]
    assert [(f["title"], f["value"]) for f in facts["facts"]] == [
        ("Check", "session-cache"),
        ("Severity", "high (raised by triage from medium)"),
        ("Since", "14:02 UTC (2026-11-27)"),
        ("Status", "open"),
        ("Blast radius", "checkout-api, cart-worker"),
    ]
    assert all(e.get("wrap") is True for e in elements(card) if e["type"] == "TextBlock")
    runs = runs_of(card)
    assert "Triage" in runs and "Redis behind session-cache stopped answering" in " ".join(runs)
    assert (
        "AI cost: triage $0.00 (ollama/gemma4:27b: 1,204 in / 151 out, local) · RCA $0.0236 "
        "(anthropic/claude-opus-4-6: 2,310 in / 480 out, anthropic)\nIncident total $0.0236 · "
        "today $0.06 · month $1.84 · local triage saved $0.31 today"
    ) in runs
    assert "ref: incident #42 · event 7" in runs


def test_json_evidence_is_one_monospace_block_never_double_escaped() -> None:
    card = card_of()["attachments"][0]["content"]
    (mono,) = [e for e in elements(card) if e.get("fontType") == "Monospace"]
    assert mono == {
        "type": "TextRun",
        "text": "GET http://cache.internal:8080/health returned 503 in 41 ms; expected 200\n\n"
        '{\n  "status": "down",\n  "error": "OOM > \'maxmemory\'"\n}',
        "fontType": "Monospace",
    }
    container = next(e for e in elements(card) if e["type"] == "Container")
    assert container["style"] == "emphasis"


def test_an_investigation_card_has_root_cause_and_numbered_steps() -> None:
    message = card_of("investigation", Sections(rca=rca()))
    assert teams_message_problems(message) == []
    runs = runs_of(message)
    assert "Root cause" in runs and "Next steps" in runs
    assert "\n1. kubectl -n prod describe pod session-cache-0\n2. the cache hit" in " ".join(runs)


def test_ai_off_is_one_line_instead_of_the_triage() -> None:
    deterministic = triage("no model summary; severity high as the rules set it")
    message = card_of(sections=Sections(triage=deterministic, ai_note=AI_OFF, ai_off=True))
    assert teams_message_problems(message) == []
    runs = runs_of(message)
    assert "Triage" not in runs
    note = next(
        e for e in elements(message) if e["type"] == "RichTextBlock" and "AI off" in json.dumps(e)
    )
    assert [(r["text"], r.get("fontType")) for r in note["inlines"]] == [
        ("AI off: no model reachable — run ", None),
        ("watchkeeper models", "Monospace"),
    ]


def test_resolved_is_green_with_how_long_it_was_open() -> None:
    card = card_of("resolved", evidence="GET /health returned 200")["attachments"][0]["content"]
    assert card["body"][0]["color"] == "Good"
    assert card["body"][0]["text"].startswith("✅ \\[RESOLVED\\] session-cache")
    facts = next(e for e in elements(card) if e["type"] == "FactSet")["facts"]
    assert facts[3] == {"title": "Status", "value": "resolved after 5m"}


def test_an_acknowledgement_is_blue_and_names_who() -> None:
    message = card_of("acknowledged", acknowledged_by="alice_ops")
    assert teams_message_problems(message) == []
    card = message["attachments"][0]["content"]
    assert card["body"][0]["color"] == "Accent"
    facts = next(e for e in elements(card) if e["type"] == "FactSet")["facts"]
    assert facts[-1] == {"title": "Acknowledged by", "value": "alice\\_ops"}


def test_forged_text_never_reaches_markdown_and_no_mention_exists() -> None:
    message = card_of(sections=full(FORGED), evidence=FORGED, detail=FORGED)
    assert teams_message_problems(message) == []
    for text in markdown_texts(message):  # our own words; none of the forged ones
        for forged in ("RESOLVED] api", "**bold**", "[click]", "<!here>", "@everyone", "\x1b"):
            assert forged not in text, (forged, text)
    runs = " ".join(runs_of(message))
    assert "**bold** *also* _it_" in runs  # shown literally, where Markdown never applies
    assert "\x1b" not in runs and "\\x1b" in runs
    wire = json.dumps(message)
    assert "msteams" not in wire and "mention" not in wire and "<at>" not in wire
    prose = [e["text"] for e in elements(message) if e["type"] == "TextRun" and "fontType" not in e]
    for run in prose:  # only the evidence block, boxed and monospace, keeps its own lines
        assert not re.search(r"\n\[RESOLVED\]|\nref:", run)


def test_limits_keep_the_card_small_and_valid() -> None:
    huge = "x" * 20000
    message = card_of(sections=full(huge), evidence=huge, detail=huge)
    assert teams_message_problems(message) == []
    assert len(json.dumps(message)) < 28 * 1024  # Teams' message size limit


def test_a_long_report_is_cut_to_fit_a_teams_message() -> None:
    body = "\n\n".join(f"**Finding {n}:** " + "y" * 900 for n in range(200))
    payload = message_payload(Message("security sweep", body, "warning"), "report")
    message = teams_message(payload)
    assert teams_message_problems(message) == []
    assert len(json.dumps(message)) < 28 * 1024
    assert runs_of(message)[-1] == "(more was cut to fit a Teams message)"


def test_reports_are_plain_runs_without_markdown() -> None:
    body = "**Checks:** 3 results\nNot ok now: db\\_main (failing)\n\n**AI:** no model calls"
    payload = message_payload(Message("watchkeeper daily digest — 27 Nov", body, "info"), "report")
    message = teams_message(payload, "ref: message 9")
    assert teams_message_problems(message) == []
    assert runs_of(message) == [
        "Checks: 3 results\nNot ok now: db_main (failing)",
        "AI: no model calls",
        "ref: message 9",
    ]


def test_the_peer_refuses_what_teams_cannot_read() -> None:
    """The schema check can fail: a misspelt property, an unknown colour, an element newer
    than the version the card declares, a missing envelope."""
    good = card_of()
    assert teams_message_problems(good) == []
    card = good["attachments"][0]["content"]
    for broken in (
        {**card, "body": [{"type": "TextBlock", "txt": "x"}]},
        {**card, "body": [{"type": "TextBlock", "text": "x", "color": "Purple"}]},
        {**card, "body": [{"type": "TextBlock", "text": "x", "style": "heading"}]},  # 1.5
        {**card, "version": "1.1"},  # RichTextBlock is 1.2
    ):
        assert teams_message_problems(
            {**good, "attachments": [{**good["attachments"][0], "content": broken}]}
        )
    assert teams_message_problems(card) == ["the body is not a message activity"]


# -- delivery -----------------------------------------------------------------------------


async def test_a_workflows_webhook_accepts_the_card_with_202(
    store: Store, chat_peers: ChatPeers
) -> None:
    peer = chat_peers.teams()
    targets = [teams(url=peer.url)]
    commit(store, targets, event(), event("resolved"))
    assert (await notifier(store, targets, Clock()).deliver_due()).delivered == 2
    assert [r.status for r in peer.requests] == [202, 202]
    assert all(teams_message_problems(m) == [] for m in peer.accepted)


@pytest.mark.parametrize(
    ("url", "status", "reason"),
    [
        ("sig", 401, "DirectApiAuthorizationRequired: the URL's signature is not valid"),
        ("path", 404, "WorkflowNotFound: the workflow was deleted or its URL is wrong"),
    ],
)
async def test_a_bad_signature_or_a_deleted_workflow_is_final(
    store: Store, chat_peers: ChatPeers, url: str, status: int, reason: str
) -> None:
    peer = chat_peers.teams()
    bad = (
        peer.url.replace(peer.sig, "forged")
        if url == "sig"
        else peer.url.replace("workflows/", "workflows/x")
    )
    targets = [teams(url=bad)]
    commit(store, targets, event())
    assert (await notifier(store, targets, Clock()).deliver_due()).failed == 1
    ((_, _, error, state, _),) = outbox(store)
    assert state == "failed"
    assert error is not None and error.startswith(
        f"https://127.0.0.1:{peer.port}/... answered HTTP {status} {reason}"
    )


async def test_a_refused_card_is_final_and_429_waits_for_retry_after(
    store: Store, chat_peers: ChatPeers
) -> None:
    peer = chat_peers.teams()
    peer.answer_next(429, "", Retry_After="45")
    targets = [teams(url=peer.url)]
    clock = Clock()
    commit(store, targets, event())
    n = notifier(store, targets, clock)
    assert (await n.deliver_due()).retried == 1
    ((_, _, error, _, due),) = outbox(store)
    assert error == (
        f"https://127.0.0.1:{peer.port}/... answered HTTP 429: Teams asks to slow down; "
        "retrying after 45s"
    )
    assert datetime.fromisoformat(due) == T0 + timedelta(seconds=45)
    peer.answer_next(
        400, json.dumps({"error": {"code": "TriggerInputSchemaMismatch", "message": "x"}})
    )
    clock.now = T0 + timedelta(seconds=45)
    assert (await n.deliver_due()).failed == 1
    ((_, _, error, state, _),) = outbox(store)
    assert state == "failed"
    assert str(error).startswith(
        f"https://127.0.0.1:{peer.port}/... answered HTTP 400 TriggerInputSchemaMismatch: the "
        "workflow refused the card (please report it); last error: "
    )


async def test_the_workflow_signature_never_reaches_logs_the_db_or_errors(
    tmp_path: Path,
    chat_peers: ChatPeers,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    peer = chat_peers.teams()
    peer.answer_next(503, "", Retry_After="5")
    monkeypatch.setenv("WK_TEAMS_URL", peer.url)
    targets = [teams("by-secret", url="secret:WK_TEAMS_URL"), teams("literal", url=peer.url)]
    store = Store.open(tmp_path)
    commit(store, targets, event())
    clock = Clock()
    n = notifier(store, targets, clock)
    with structlog.testing.capture_logs() as logs:
        await n.deliver_due()
        clock.now += timedelta(seconds=20)
        await n.deliver_due()
        outcomes = await n.send_test()
    assert all(o.ok for o in outcomes)
    assert "HTTP Request: POST https://127.0.0.1" in caplog.text
    captured = capsys.readouterr()
    store.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob(f"{DB_NAME}*"))
    for secret in (peer.sig, peer.workflow):
        assert secret not in repr(logs) + caplog.text + captured.out + captured.err
        assert secret.encode() not in stored


async def test_an_http_teams_url_is_refused_before_anything_is_sent(
    store: Store, chat_peers: ChatPeers, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = chat_peers.teams()
    monkeypatch.setenv("WK_TEAMS_URL", peer.url.replace("https://", "http://"))
    targets = [teams(url="secret:WK_TEAMS_URL")]
    commit(store, targets, event())
    await notifier(store, targets, Clock()).deliver_due()
    assert peer.requests == []
    assert outbox(store)[0][2] == "target teams: a Teams Workflows URL must start with https://"
