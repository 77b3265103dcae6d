"""Untrusted text made short and flat: one line, bounded, with an ellipsis when cut."""

from __future__ import annotations


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
