"""Untrusted text made short and flat: one line, bounded, with an ellipsis when cut."""

from __future__ import annotations

import re


def one_line(text: str) -> str:
    """Every run of whitespace (newlines included) as one space."""
    return " ".join(text.split())


def clip(text: str, limit: int, *, flat: bool = True) -> str:
    """At most `limit` characters, `…` marking a cut; flattened to one line unless asked not
    to."""
    if flat:
        text = one_line(text)
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def first_line(text: str, limit: int = 300) -> str:
    """The first non-empty line, bounded; `(no detail)` when there is none."""
    lines = text.strip().splitlines()
    return lines[0][:limit] if lines else "(no detail)"


# -- untrusted text: evidence, labels, logs and model output --------------------------------

_LINE_BREAKS = re.compile(r"\s*(?:\r\n|[\r\n\u0085\u2028\u2029])+\s*")
_CONTROLS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u2069\ufeff]"
)
"""Everything that can move a terminal's cursor, retitle its window, reverse the text's
direction or hide a character: C0 and C1 controls (ESC, BEL, CR…), DEL, bidi controls and
zero-width characters. Tab and newline are the caller's business."""
_MARKDOWN = re.compile(r"([\\`*_\[\]<>|~#])")
_LEADING_LIST = re.compile(r"^(\s*)(?:([-+])|(\d+)([.)]))")
ZERO_WIDTH_SPACE = "\u200b"


def printable(text: str) -> str:
    """`text` with every control, bidi and zero-width character shown as an escape (`\\x1b`,
    `\\u202e`): what a terminal may print. Tabs and newlines stay."""

    def visible(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _CONTROLS.sub(visible, text.replace("\t", " ") if "\t" in text else text)


def _defuse_list(match: re.Match[str]) -> str:
    indent, bullet, number, delimiter = match.groups()
    return f"{indent}\\{bullet}" if bullet else f"{indent}{number}\\{delimiter}"


def untrusted(text: str, limit: int = 2000) -> str:
    """Text a monitored system or a model wrote, made safe to put into a Markdown message for
    any target (Slack, Discord, Teams, email…): one line (line breaks become `; `), controls
    visible, Markdown, HTML and link syntax escaped, and every `@` followed by a zero-width
    space so no `@everyone`, `@here` or `<@id>` can ping anyone. Bounded to `limit` chars."""
    flat = _LINE_BREAKS.sub("; ", text.strip())
    escaped = _MARKDOWN.sub(r"\\\1", clip(printable(flat), limit, flat=False))
    escaped = _LEADING_LIST.sub(_defuse_list, escaped)  # `#` and `>` are escaped already
    return escaped.replace("@", "@" + ZERO_WIDTH_SPACE)
