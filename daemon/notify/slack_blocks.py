"""A watchkeeper payload as a Slack message: Block Kit blocks plus the plain `text` Slack shows
in notifications and where blocks cannot be drawn.

Text that came from a monitored system or a model never gets Slack's markup: it goes into
`plain_text` objects (no formatting, no mentions, no links) or inside a ``` code block, with
`&`, `<` and `>` escaped as Slack asks for every text object, so `<!here>`, `<@U123>` and
`<https://evil|click>` arrive as text. `mrkdwn` is used only for our own structure (bold
labels, code spans of check names) with `verbatim` set, so Slack does not turn bare names
into links or mentions either. Slack's limits are kept by clipping, never by failing: header
150 characters, section text 3000, 10 fields of 2000, 10 context elements, 50 blocks.

Pure: payload in, JSON-ready dict out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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
from daemon.util.text import ZERO_WIDTH_SPACE, printable

HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
FIELDS_MAX = 10
CONTEXT_MAX = 10
CONTEXT_TEXT_MAX = 2000
BLOCKS_MAX = 50
FALLBACK_MAX = 3000
LIST_MAX = 10
ELLIPSIS = "…"

Block = dict[str, Any]
_BROADCAST = re.compile(r"@(?=(?:here|channel|everyone)\b)", re.I)


# -- escaping ---------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Slack's three control characters as entities (its documented escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def inert(text: str) -> str:
    """Untrusted text for a plain_text object or the fallback `text`: controls visible, the
    control characters escaped, and a zero-width space after every `@` so neither `@here`
    nor `@everyone` can notify anyone even where Slack parses bare names."""
    return escape(printable(text)).replace("@", "@" + ZERO_WIDTH_SPACE)


def code_span(text: str) -> str:
    """`name` in mrkdwn: escaped, with no backtick that could end the span."""
    return "`" + _quiet(escape(printable(text))).replace("`", "\u02cb").replace("\n", " ") + "`"


def code_block(text: str) -> str:
    """```text``` in mrkdwn: escaped, and no run of three backticks that could close it."""
    body = _quiet(escape(printable(text))).replace("```", "`" + ZERO_WIDTH_SPACE + "``")
    return f"```\n{body}\n```"


def _quiet(text: str) -> str:
    """Slack's broadcast words defused inside code too (`@here`, `@channel`, `@everyone`),
    leaving other `@`s — e-mail addresses in evidence — as they are, for copying."""
    return _BROADCAST.sub("@" + ZERO_WIDTH_SPACE, text)


def fit(text: str, limit: int, render: Callable[[str], str]) -> str:
    """`render(text)`, clipped so the result is at most `limit` characters: the text is cut
    (with an ellipsis) before it is rendered, so no entity or code fence is cut in half."""
    rendered = render(text)
    size = len(text)
    while len(rendered) > limit and size > 0:
        size = max(size - (len(rendered) - limit) - 1, 0)
        rendered = render(text[:size].rstrip() + ELLIPSIS)
    return rendered


# -- text objects and blocks ------------------------------------------------------------------


def plain_text(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": fit(text.strip() or "—", limit, inert), "emoji": False}


def mrkdwn(text: str) -> dict[str, Any]:
    """Our own markup (already escaped by the caller)."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def header(text: str) -> Block:
    return {"type": "header", "text": plain_text(text, HEADER_MAX)}


def section_plain(text: str) -> Block:
    return {"type": "section", "text": plain_text(text, SECTION_MAX)}


def section_label(label: str, detail: str = "") -> Block:
    """`*Label* detail` — `label` is ours; `detail` is untrusted and goes in as a code span."""
    text = f"*{label}*" + (
        f"  {fit(detail, SECTION_MAX - len(label) - 8, code_span)}" if detail else ""
    )
    return {"type": "section", "text": mrkdwn(text)}


def section_code(label: str, text: str) -> Block:
    head = f"*{label}*\n"
    return {
        "type": "section",
        "text": mrkdwn(head + fit(text, SECTION_MAX - len(head), code_block)),
    }


def fields(pairs: list[tuple[str, str]]) -> Block:
    """`*Check*\\n`api``: our labels with values already rendered as mrkdwn."""
    return {
        "type": "section",
        "fields": [
            mrkdwn(f"*{label}*\n{value}"[:FIELD_MAX]) for label, value in pairs[:FIELDS_MAX]
        ],
    }


def names(items: list[str], limit: int = FIELD_MAX - 40) -> str:
    """`a`, `b` and 3 more — check names as code spans, as many as fit in a field."""
    shown: list[str] = []
    size = 0
    for index, item in enumerate(items):
        span = fit(item, 200, code_span)
        if size + len(span) + 20 > limit:
            return ", ".join(shown) + f" and {len(items) - index} more"
        shown.append(span)
        size += len(span) + 2
    return ", ".join(shown)


def context(lines: list[str]) -> Block:
    """A small grey line per entry; the entries are plain text."""
    return {
        "type": "context",
        "elements": [plain_text(line, CONTEXT_TEXT_MAX) for line in lines[:CONTEXT_MAX]],
    }


def context_mrkdwn(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(text[:CONTEXT_TEXT_MAX])]}


# -- messages ---------------------------------------------------------------------------------


def slack_message(payload: dict[str, Any], reference: str = "") -> dict[str, Any]:
    """`{"text": …, "blocks": […]}` for one payload (an incident event or another message)."""
    if str(payload.get("schema", "")).startswith("watchkeeper.event/"):
        blocks = event_blocks(payload)
    else:
        blocks = message_blocks(payload)
    if reference:
        blocks.append(context([reference]))
    if len(blocks) > BLOCKS_MAX:
        blocks = [*blocks[: BLOCKS_MAX - 1], context(["(more was cut: Slack shows 50 blocks)"])]
    return {"text": fallback(payload), "blocks": blocks}


def fallback(payload: dict[str, Any]) -> str:
    """What a phone's notification shows: the title and the evidence, inert."""
    title = str(payload.get("title", ""))
    evidence = evidence_view(str(payload.get("evidence") or "")).summary  # not the document
    line = f"{title}: {' '.join(evidence.split())}" if evidence else title
    return fit(line, FALLBACK_MAX, inert)


def event_blocks(payload: dict[str, Any]) -> list[Block]:
    incident = payload.get("incident") or {}
    title = f"{mark(payload)} {payload.get('title', '')}".strip()
    radius = incident.get("blast_radius") or []
    blocks: list[Block] = [
        header(title),
        fields(
            [
                ("Check", code_span(str(incident.get("check", "")))),
                ("Severity", escape(severity_text(payload))),
                ("Since", escape(clock(incident.get("opened_at")))),
                ("Status", escape(status_text(payload))),
                ("Blast radius", names([str(n) for n in radius]) or "none"),
                *acknowledged(incident),
            ]
        ),
    ]
    blocks += evidence_blocks(str(payload.get("evidence") or ""))
    if payload.get("detail"):
        blocks.append(context([flat(payload["detail"])]))
    if payload.get("triage") and not payload.get("ai_off"):
        blocks += triage_blocks(payload["triage"])
    if payload.get("rca"):
        blocks += rca_blocks(payload["rca"])
    if payload.get("ai_note"):
        blocks.append(context_mrkdwn(note_markup(str(payload["ai_note"]))))
    elif payload.get("rca_skipped"):
        blocks.append(context([f"No root-cause analysis: {flat(payload['rca_skipped'], 1000)}"]))
    costs = cost_lines(payload.get("costs"))
    if costs:
        blocks.append(context(costs))
    return blocks


def acknowledged(incident: dict[str, Any]) -> list[tuple[str, str]]:
    who = incident.get("acknowledged_by")
    return [("Acknowledged by", fit(str(who), 200, code_span))] if who else []


def evidence_blocks(evidence: str) -> list[Block]:
    view = evidence_view(evidence)
    if not view.summary and not view.block:
        return [section_plain("(no evidence recorded)")]
    text = "\n\n".join(part for part in (view.summary, view.block) if part)
    return [section_code("Evidence", text)]


def triage_blocks(triage: dict[str, Any]) -> list[Block]:
    return [section_label("Triage", flat(triage.get("by", ""))), section_plain(triage_text(triage))]


def rca_blocks(rca: dict[str, Any]) -> list[Block]:
    by = f"{rca.get('model') or 'no model'}, confidence {rca.get('confidence', 'unknown')}"
    blocks = [section_label("Root cause", flat(by)), section_plain(flat(rca.get("root_cause", "")))]
    evidence = [flat(e, 500) for e in rca.get("evidence") or []][:LIST_MAX]
    if evidence:
        blocks += [section_label("Evidence"), section_plain("\n".join(f"• {e}" for e in evidence))]
    radius = [flat(n, 200) for n in rca.get("blast_radius") or []][:LIST_MAX]
    if radius:
        blocks += [section_label("Blast radius"), section_plain(", ".join(radius))]
    steps = [flat(s, 500) for s in rca.get("next_steps") or []][:LIST_MAX]
    if steps:
        blocks.append(section_label("Next steps", "suggested, never run by watchkeeper"))
        blocks.append(section_plain("\n".join(f"{n}. {s}" for n, s in enumerate(steps, 1))))
    why = [f"Investigated because {flat(rca.get('reason', ''), 300)}."]
    if rca.get("dropped"):
        why.append("Context trimmed to fit: " + flat(", ".join(map(str, rca["dropped"])), 300))
    blocks.append(context(why))
    return blocks


def note_markup(note: str) -> str:
    """Our one-line AI note (`AI off: … run `watchkeeper models``) in mrkdwn: escaped, its
    code spans kept."""
    return escape(printable(note))


def message_blocks(payload: dict[str, Any]) -> list[Block]:
    """A report, budget notice or test message: the title, then each paragraph of our
    Markdown as plain text (the reports quote resource names and model output)."""
    blocks: list[Block] = [header(str(payload.get("title", "")))]
    text = plain(str(payload.get("text", "")))
    for paragraph in (p.strip() for p in text.split("\n\n")):
        if paragraph:
            blocks.append(section_plain(paragraph))
    return blocks
