"""What commands print, as pure data: tables, key/value blocks, lines, Markdown, framed
messages (views build them; `_output` prints them plain, `_rich` on a terminal), and what the
terminal printed to can show. Imports nothing of the CLI, so both printers can import it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

# -- what commands print (pure data; views build these) --------------------------------------


@dataclass(frozen=True)
class Column:
    header: str
    align: Literal["left", "right"] = "left"
    free: bool = False
    """Free text (evidence, titles): wraps on a terminal instead of widening the table."""
    coloured: bool = False
    """Coloured by value on a terminal: statuses, severities, yes/no."""


@dataclass(frozen=True)
class Table:
    columns: Sequence[Column]
    rows: Sequence[Sequence[str]]
    empty: str = ""
    """Printed instead of the table when there are no rows (nothing when empty)."""
    indent: int = 0
    header: bool = True


@dataclass(frozen=True)
class Fields:
    """A key/value block: `opened:  2026-11-27 14:02 UTC`."""

    items: Sequence[tuple[str, str]]
    indent: int = 0


@dataclass(frozen=True)
class Lines:
    lines: Sequence[str]
    style: str | None = None
    """A rich style for the whole block on a colour terminal (headings: "bold")."""


@dataclass(frozen=True)
class Markdown:
    text: str


@dataclass(frozen=True)
class Framed:
    """A titled block — a message as it arrived: in a frame on a terminal; on a pipe, the
    title line and the body indented two spaces (no box drawing)."""

    title: str
    body: Markdown | Lines


Block = Table | Fields | Lines | Markdown | Framed


def line(*texts: str, style: str | None = None) -> Lines:
    return Lines(list(texts), style)


BLANK = Lines([""])


# -- the terminal --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Terminal:
    """What the stream printed to can show."""

    fancy: bool
    """A terminal that is not dumb: rich layout and box drawing."""
    color: bool
    wide: bool = False
    """`--wide`: table rows on one line each, at their full width."""


def flat(value: str) -> str:
    """One line: controls made visible first (a carriage return stays `\\x0d`, not a space),
    then every run of whitespace and line breaks as one space."""
    from daemon.util.text import one_line, printable

    return one_line(printable(value))
