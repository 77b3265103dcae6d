"""A watchkeeper payload as a Microsoft Teams message: one Adaptive Card (version 1.4, valid
against the 1.5 schema) in the envelope a Teams Workflows webhook posts to a channel.

Adaptive Cards render a subset of Markdown in TextBlock and FactSet text, so text from a
monitored system or a model never goes there: it goes into RichTextBlock TextRuns, which the
schema defines as plain text ("Markdown is not supported"), evidence in a monospace run. The
TextBlocks and facts hold our own structure, with any name in them escaped by `untrusted`.
Teams mentions need explicit `msteams.entities`; none are ever created, so nobody is pinged.

Pure: payload in, JSON-ready dict out.
"""

from __future__ import annotations

from typing import Any

from daemon.notify.facts import (
    clock,
    cost_lines,
    evidence_view,
    flat,
    mark,
    plain,
    severity_text,
    status_text,
    triage_text,
)
from daemon.util.text import clip, printable, untrusted

CARD_VERSION = "1.4"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
EVIDENCE_MAX = 4000
PROSE_MAX = 2000
LIST_MAX = 10
MESSAGE_MAX = 16000
"""Characters of a report's text a card carries: Teams refuses messages over about 28 KB."""

Element = dict[str, Any]


def teams_message(payload: dict[str, Any], reference: str = "") -> dict[str, Any]:
    """The Workflows envelope: `type: message` with the card as its only attachment."""
    if str(payload.get("schema", "")).startswith("watchkeeper.event/"):
        body = event_body(payload)
    else:
        body = message_body(payload)
    if reference:
        body.append(runs([run(reference, subtle=True)]))
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "fallbackText": untrusted(str(payload.get("title", "")), 300),
        "body": body,
    }
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


# -- elements ---------------------------------------------------------------------------------


def text_block(markdown: str, **style: Any) -> Element:
    """Our own text (names in it escaped by the caller), wrapped."""
    return {"type": "TextBlock", "text": markdown, "wrap": True, **style}


def run(text: str, *, subtle: bool = False, bold: bool = False, mono: bool = False) -> Element:
    """A TextRun: shown literally, whatever it contains (controls made visible)."""
    element: Element = {"type": "TextRun", "text": printable(text)}
    if subtle:
        element["isSubtle"] = True
    if bold:
        element["weight"] = "Bolder"
    if mono:
        element["fontType"] = "Monospace"
    return element


def runs(inlines: list[Element], **extra: Any) -> Element:
    return {"type": "RichTextBlock", "inlines": inlines, **extra}


def labelled(label: str, text: str, detail: str = "") -> Element:
    """**Label** (detail): text — one RichTextBlock, the label bold, the rest literal."""
    inlines = [run(label, bold=True)]
    if detail:
        inlines.append(run(f" ({detail})", subtle=True))
    inlines.append(run("\n" + text if "\n" in text else ": " + text))
    return runs(inlines)


def code_runs(text: str) -> list[Element]:
    """`AI off: … run `watchkeeper models`` as runs: the back-quoted parts monospace."""
    parts = text.split("`")
    return [run(part, mono=index % 2 == 1) for index, part in enumerate(parts) if part]


# -- messages ---------------------------------------------------------------------------------


def event_body(payload: dict[str, Any]) -> list[Element]:
    incident = payload.get("incident") or {}
    radius = [str(n) for n in incident.get("blast_radius") or []]
    title = f"{mark(payload)} {payload.get('title', '')}".strip()
    body: list[Element] = [
        text_block(untrusted(title, 300), weight="Bolder", size="Medium", color=_color(payload)),
        {
            "type": "FactSet",
            "facts": [
                {"title": "Check", "value": untrusted(str(incident.get("check", "")), 200)},
                {"title": "Severity", "value": untrusted(severity_text(payload), 200)},
                {"title": "Since", "value": untrusted(clock(incident.get("opened_at")), 200)},
                {"title": "Status", "value": untrusted(status_text(payload), 200)},
                {"title": "Blast radius", "value": untrusted(", ".join(radius), 1000) or "none"},
                *(
                    [{"title": "Acknowledged by", "value": untrusted(str(who), 200)}]
                    if (who := incident.get("acknowledged_by"))
                    else []
                ),
            ],
        },
    ]
    body += evidence_elements(str(payload.get("evidence") or ""))
    if payload.get("detail"):
        body.append(runs([run(flat(payload["detail"], PROSE_MAX), subtle=True)]))
    triage = payload.get("triage")
    if triage and not payload.get("ai_off"):
        body.append(
            labelled(
                "Triage",
                clip(triage_text(triage), PROSE_MAX, flat=False),
                flat(triage.get("by", ""), 200),
            )
        )
    if payload.get("rca"):
        body += rca_elements(payload["rca"])
    if payload.get("ai_note"):
        body.append(runs(code_runs(flat(payload["ai_note"], 300)), separator=True))
    elif payload.get("rca_skipped"):
        why = f"No root-cause analysis: {flat(payload['rca_skipped'], 1000)}"
        body.append(runs([run(why, subtle=True)], separator=True))
    costs = cost_lines(payload.get("costs"))
    if costs:
        body.append(runs([run("\n".join(costs), subtle=True)]))
    return body


def evidence_elements(evidence: str) -> list[Element]:
    view = evidence_view(evidence)
    text = "\n\n".join(part for part in (view.summary, view.block) if part)
    if not text:
        return [runs([run("(no evidence recorded)", subtle=True)])]
    return [
        text_block("Evidence", weight="Bolder", spacing="Medium"),
        {
            "type": "Container",
            "style": "emphasis",
            "items": [runs([run(clip(text, EVIDENCE_MAX, flat=False), mono=True)])],
        },
    ]


def rca_elements(rca: dict[str, Any]) -> list[Element]:
    detail = f"{rca.get('model') or 'no model'}, confidence {rca.get('confidence', 'unknown')}"
    elements = [
        labelled("Root cause", flat(rca.get("root_cause", ""), PROSE_MAX), flat(detail, 200))
    ]
    evidence = [flat(e, 500) for e in rca.get("evidence") or []][:LIST_MAX]
    if evidence:
        elements.append(labelled("Evidence", "\n".join(f"• {e}" for e in evidence)))
    radius = [flat(n, 200) for n in rca.get("blast_radius") or []][:LIST_MAX]
    if radius:
        elements.append(labelled("Blast radius", ", ".join(radius)))
    steps = [flat(s, 500) for s in rca.get("next_steps") or []][:LIST_MAX]
    if steps:
        numbered = "\n".join(f"{n}. {s}" for n, s in enumerate(steps, 1))
        elements.append(labelled("Next steps", numbered, "suggested, never run by watchkeeper"))
    why = f"Investigated because {flat(rca.get('reason', ''), 300)}."
    elements.append(runs([run(why, subtle=True)]))
    return elements


def message_body(payload: dict[str, Any]) -> list[Element]:
    """A report, budget notice or test message: the title, then each paragraph of our
    Markdown as literal text (the reports quote resource names and model output)."""
    color = {"failure": "Attention", "warning": "Warning", "success": "Good"}.get(
        str(payload.get("notify_type")), "Default"
    )
    body = [
        text_block(
            untrusted(str(payload.get("title", "")), 300),
            weight="Bolder",
            size="Medium",
            color=color,
        )
    ]
    text = plain(str(payload.get("text", "")))
    budget = MESSAGE_MAX
    for paragraph in (p.strip() for p in text.split("\n\n")):
        if not paragraph:
            continue
        if budget <= 0:  # Teams refuses a message over 28 KB
            body.append(runs([run("(more was cut to fit a Teams message)", subtle=True)]))
            break
        shown = clip(paragraph, min(PROSE_MAX, budget), flat=False)
        body.append(runs([run(shown)]))
        budget -= len(shown)
    return body


def _color(payload: dict[str, Any]) -> str:
    """Green when resolved, blue when acknowledged, red for critical and high, amber for the
    rest (and flapping)."""
    incident = payload.get("incident") or {}
    if incident.get("status") == "resolved":
        return "Good"
    if payload.get("event") == "acknowledged":
        return "Accent"
    if payload.get("event") != "flapping" and incident.get("severity") in ("critical", "high"):
        return "Attention"
    return "Warning"
