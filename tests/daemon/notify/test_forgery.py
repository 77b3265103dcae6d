"""Text from monitored systems and models cannot forge a message: the attack review's alert
name — a fake resolved line, a fake de-duplication footer, Slack `<!here>`/`<!channel>` and
`<url|text>` links, Discord `@everyone` — through the rules' rendering, the triage and RCA
lines, and apprise's real Slack, Discord and email plugins aimed at loopback receivers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from apprise.plugins.discord import NotifyDiscord
from apprise.plugins.slack import NotifySlack

from daemon.config.settings import DeliverySettings, NotifyTarget
from daemon.engine.messages import investigation, with_triage
from daemon.engine.rca import RcaOutput
from daemon.engine.triage import TriageDecision, TriageOutput, TriageReport, apply
from daemon.models import EngineState, Incident, IncidentEvent, Severity, fingerprint
from daemon.notify.delivery import Notifier
from daemon.notify.render import render_event
from daemon.notify.routing import route
from daemon.store import Store
from daemon.util.text import ZERO_WIDTH_SPACE, printable, untrusted
from tests.peers.receivers import SmtpSink, WebhookReceiver

T0 = datetime(2026, 11, 27, 14, 2, tzinfo=UTC)
FORGED = (
    "disk full\n\n[RESOLVED] api — incident #1 after 2m\nref: incident #1 · event 2 "
    "<!here> <!channel> <https://evil.example/login|Open the runbook> @everyone <@4242> "
    "[click](https://evil.example) \x1b]0;pwned\x07\u202etxt.exe"
)


def event(evidence: str = FORGED) -> IncidentEvent:
    return IncidentEvent(
        incident_id=42,
        kind="opened",
        at=T0,
        check="api",
        severity=Severity.HIGH,
        evidence=evidence,
        opened_at=T0,
        status="failing",
    )


def assert_defused(markdown: str) -> None:
    for line in markdown.splitlines():
        assert not line.lstrip("\\").startswith(("[RESOLVED]", "ref:")), line
    assert re.search(r"(?<!\\)[<>\[\]]", markdown) is None  # no tag, link or Slack anchor
    for live in ("@everyone", "@4242", "\x1b", "\x07", "\u202e"):
        assert live not in markdown, live


def test_the_rules_message_keeps_forged_evidence_on_one_defused_line() -> None:
    body = render_event(event()).body
    lines = body.splitlines()
    assert len(lines) == 3  # evidence, since, incident/fingerprint: nothing added
    assert lines[0].startswith("disk full; \\[RESOLVED\\] api — incident \\#1 after 2m; ref:")
    assert f"@{ZERO_WIDTH_SPACE}everyone" in lines[0]
    assert "\\<!here\\>" in lines[0] and "\\\\x1b\\]0;pwned\\\\x07" in lines[0]
    assert_defused(body)


def test_model_output_in_triage_and_rca_lines_is_defused_too() -> None:
    rendered = render_event(event("GET /health returned 503"))
    decision = TriageDecision(42, FORGED, Severity.HIGH, None, True, FORGED)
    report = TriageReport(correlations=[FORGED], label="ollama/gemma4:27b, local")
    triaged = with_triage(rendered, decision, report)
    assert_defused(triaged.body)
    assert len(triaged.body.splitlines()) == len(rendered.body.splitlines()) + 4
    incident = Incident(
        id=42, fingerprint=fingerprint("api"), check="api", severity=Severity.HIGH, opened_at=T0
    )
    rca = RcaOutput(
        root_cause=FORGED, confidence="low", evidence=[FORGED], blast_radius=[FORGED],
        next_steps=[FORGED, "restart"],
    )  # fmt: skip
    message = investigation(incident, rca, "anthropic/claude-opus-4-6, api.anthropic.com", "x", [])
    assert_defused(message.body)
    assert len(message.body.splitlines()) == 9  # one line per field, as rendered


def test_a_model_that_gives_no_verdict_falls_back_to_the_rules_not_the_evidence() -> None:
    report = apply(TriageOutput(incidents=[]), [event()], "ollama/gemma4:27b, local")
    decision = report.decisions[42]
    assert decision.summary == "no model summary; severity high as the rules set it"
    assert "RESOLVED" not in decision.summary


def test_terminal_output_shows_escapes_instead_of_running_them() -> None:
    assert printable("a\x1b]0;pwned\x07b\rc\u202ed\ne") == "a\\x1b]0;pwned\\x07b\\x0dc\\u202ed\ne"
    assert untrusted("x" * 5000, limit=100).endswith("…") and len(untrusted("x" * 5000, 100)) == 100


@pytest.fixture
def chat(
    monkeypatch: pytest.MonkeyPatch, make_webhook_receiver: Callable[[], WebhookReceiver]
) -> WebhookReceiver:
    """apprise's real Slack and Discord plugins, posting to a loopback receiver."""
    receiver = make_webhook_receiver()
    receiver.reply = b"ok"  # what Slack's incoming webhooks answer
    monkeypatch.setattr(NotifySlack, "webhook_url", f"http://127.0.0.1:{receiver.port}/slack")
    monkeypatch.setattr(NotifyDiscord, "notify_url", f"http://127.0.0.1:{receiver.port}/discord")
    return receiver


async def test_slack_discord_and_email_receive_nothing_they_would_act_on(
    tmp_path: Path, chat: WebhookReceiver, smtp_sink: SmtpSink
) -> None:
    targets = [
        NotifyTarget(name="slack", url="slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/"),
        NotifyTarget(name="discord", url="discord://417429632418316298/Wqx3ntUtoken/"),
        NotifyTarget(name="mail", url=smtp_sink.url()),
    ]
    store = Store.open(tmp_path)
    opened = Incident(
        id=42, fingerprint=fingerprint("api"), check="api", severity=Severity.HIGH, opened_at=T0
    )
    items = route([event()], targets, {})
    store.incidents.commit_cycle([], EngineState(incidents={42: opened}), [event()], [], items)
    delivered = await Notifier(
        store, targets, DeliverySettings(), lambda ref: ref, lambda: datetime.now(UTC)
    ).deliver_due()
    rows = store.outbox.due(datetime(2100, 1, 1, tzinfo=UTC))
    store.close()
    assert delivered.delivered == 3, [(r.target, r.last_error) for r in rows]
    by_path: dict[str, Any] = {r.path.split("/")[1]: r.json() for r in chat.requests}
    slack_text = json.dumps(by_path["slack"], ensure_ascii=False)
    assert "&lt;!here&gt;" in slack_text and "<!here>" not in slack_text
    assert "<!channel>" not in slack_text and "<https://evil" not in slack_text
    discord = by_path["discord"]
    assert "allow_mentions" not in discord and "allowed_mentions" not in discord
    assert "@everyone" not in json.dumps(discord, ensure_ascii=False)
    assert "<@4242>" not in json.dumps(discord, ensure_ascii=False)
    (mail,) = smtp_sink.wait_for(1)
    assert isinstance(mail, EmailMessage)
    html = "".join(
        str(part.get_content()) for part in mail.walk() if part.get_content_type() == "text/html"
    )
    assert "<a href" not in html and "<!here>" not in html and "&lt;!here&gt;" in html
