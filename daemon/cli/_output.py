"""How every command prints: tables, key/value blocks, Markdown, lines of text and JSON.

On a terminal, rich lays them out to its width (`COLUMNS` wins), wraps free text at word
boundaries — never cutting it — and colours statuses and severities unless `NO_COLOR` is set,
`--no-color` is given or `TERM=dumb` (a dumb terminal gets plain text). On a pipe or a file:
plain text, no colour, no box drawing, one table row per line, nothing clipped — what grep
and scripts want. rich is imported only when a terminal is printed to.

Untrusted text (evidence, labels, logs, model output) is shown, never run: every string goes
through `printable` (after Markdown parsing, so an entity such as `&#27;` cannot smuggle an
escape in either), and reaches rich only as `Text` — never as markup, so `[bold red]` or
`[link=…]` in evidence prints literally.
"""

from __future__ import annotations

import json as jsonlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

F = TypeVar("F", bound=Callable[..., Any])

NO_COLOR_KEY = "watchkeeper.no_color"
WIDE_KEY = "watchkeeper.wide"


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


def terminal(stream: IO[str] | None = None) -> Terminal:
    stream = sys.stdout if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        tty = False
    meta = _meta()
    fancy = tty and os.environ.get("TERM", "") != "dumb"
    color = fancy and not os.environ.get("NO_COLOR") and not meta.get(NO_COLOR_KEY, False)
    return Terminal(fancy=fancy, color=color, wide=bool(meta.get(WIDE_KEY, False)))


def _meta() -> dict[str, Any]:
    ctx = click.get_current_context(silent=True)
    return ctx.meta if ctx is not None else {}


# -- printing ------------------------------------------------------------------------------------


def show(*blocks: Block, err: bool = False) -> None:
    """Print `blocks` one after another (a block adds no blank lines of its own)."""
    stream = sys.stderr if err else sys.stdout
    term = terminal(stream)
    try:
        if term.fancy:
            _show_rich(blocks, stream, term)
        else:
            click.echo(plain(blocks), file=stream)
    except BrokenPipeError:
        if err:
            raise
        stdout_gone()


def text(message: str, *, err: bool = False) -> None:
    """One message, as is (controls made visible): errors, progress, single lines."""
    from daemon.util.text import printable

    try:
        click.echo(printable(message), err=err)
    except BrokenPipeError:
        if err:
            raise
        stdout_gone()


def json(data: Any) -> None:
    """JSON for scripts: every control character arrives \\u-escaped (ensure_ascii)."""
    try:
        click.echo(jsonlib.dumps(data, indent=2, default=str))
    except BrokenPipeError:
        stdout_gone()


def stdout_gone() -> NoReturn:
    """The reader went away (`watchkeeper incidents --all | head -1`): stop quietly, exit 1.

    As Python's documentation on SIGPIPE advises, stdout is pointed at /dev/null so the
    interpreter's final flush cannot fail again. Restoring SIGPIPE's default action instead
    would kill the process whenever any socket it writes to (a webhook, a model API, SMTP)
    closes early — not what a program that talks to the network may do.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real descriptor (an in-memory stream)
        pass
    sys.exit(1)


# -- plain text (pipes, files, dumb terminals) -------------------------------------------------


def plain(blocks: Sequence[Block]) -> str:
    """The blocks as plain text: no colour, no box drawing, rows on one line, nothing cut."""
    from daemon.util.text import printable

    out: list[str] = []
    for block in blocks:
        if isinstance(block, Table):
            out += _plain_table(block)
        elif isinstance(block, Fields):
            out += _plain_fields(block)
        elif isinstance(block, Lines):
            out += list(block.lines)
        elif isinstance(block, Framed):
            out.append(block.title)
            out += ["  " + text if text else "" for text in plain([block.body]).split("\n")]
        else:
            from daemon.cli._markdown import to_plain

            out.append(to_plain(block.text))
    return printable("\n".join(out))


def flat(value: str) -> str:
    """One line: controls made visible first (a carriage return stays `\\x0d`, not a space),
    then every run of whitespace and line breaks as one space."""
    from daemon.util.text import one_line, printable

    return one_line(printable(value))


def _plain_table(block: Table) -> list[str]:
    from daemon.util.tables import table

    if not block.rows:
        return [" " * block.indent + block.empty] if block.empty else []
    align = "".join("r" if c.align == "right" else "l" for c in block.columns)
    rows = [[flat(v) for v in row] for row in block.rows]
    header = [c.header if block.header else "" for c in block.columns]
    lines = table(header, rows, align, indent=" " * block.indent).split("\n")
    return lines if block.header else lines[1:]


def _plain_fields(block: Fields) -> list[str]:
    if not block.items:
        return []
    width = max(len(key) for key, _ in block.items) + 1
    pad = " " * block.indent
    return [f"{pad}{key + ':':<{width}} {flat(value)}".rstrip() for key, value in block.items]


# -- rich (terminals) ------------------------------------------------------------------------------

STYLES = {
    "OK": "green",
    "DEGRADED": "yellow",
    "FAILING": "bold red",
    "ERROR": "magenta",
    "CRITICAL": "bold red",
    "HIGH": "red",
    "MEDIUM": "yellow",
    "LOW": "cyan",
    "INFO": "blue",
    "OPEN": "bold red",
    "RESOLVED": "green",
    "FAILED": "bold red",
    "YES": "green",
    "NO": "red",
    "FLAPPING": "yellow",
}
"""Colour by a cell's first word (case-insensitive): statuses, severities, states."""


def style_of(value: str) -> str | None:
    words = value.split(maxsplit=1)
    return STYLES.get(words[0].upper()) if words else None


def _console(stream: IO[str], term: Terminal, width: int | None = None) -> Console:
    from rich.console import Console

    return Console(
        file=stream,
        force_terminal=True,
        color_system="auto" if term.color else None,
        no_color=not term.color,
        markup=False,
        emoji=False,
        highlight=False,
        width=width,
    )


def _show_rich(blocks: Sequence[Block], stream: IO[str], term: Terminal) -> None:
    console = _console(stream, term)
    for block in blocks:
        renderable = _renderable(block, term, console.width)
        if isinstance(block, Table) and block.rows and term.wide:
            from rich.measure import Measurement

            unbounded = console.options.update_width(1_000_000)
            natural = Measurement.get(console, unbounded, renderable).maximum
            wide = _console(stream, term, max(console.width, natural))
            wide.print(renderable, crop=False, overflow="fold")
            continue
        console.print(renderable, crop=False, overflow="fold")


def _renderable(block: Block, term: Terminal, width: int) -> RenderableType:
    from rich.padding import Padding
    from rich.text import Text

    from daemon.util.text import printable

    if isinstance(block, Table):
        if not block.rows:
            return Text(" " * block.indent + printable(block.empty)) if block.empty else Text("")
        table = _rich_table(block, term, width - block.indent)
        return Padding(table, (0, 0, 0, block.indent))
    if isinstance(block, Fields):
        return Padding(_rich_fields(block), (0, 0, 0, block.indent))
    if isinstance(block, Framed):
        from rich.panel import Panel

        return Panel(
            _renderable(block.body, term, width - 4),
            title=Text(printable(block.title)),
            title_align="left",
            border_style="dim" if term.color else "",
        )
    if isinstance(block, Lines):
        return Text(printable("\n".join(block.lines)), style=block.style or "")
    from daemon.cli._markdown import rich_markdown

    return rich_markdown(block.text)


MIN_FREE_WIDTH = 24
"""A free-text column is not squeezed below this while other columns can give room."""
LAST_RESORT_WIDTH = 8
COLUMN_GAP = 3
"""Between two columns: a cell's right padding, the separator and the next left padding."""


def allocate(
    natural: Sequence[int], shortest: Sequence[int], free: Sequence[bool], width: int
) -> list[int] | None:
    """Column widths that fit `width`, or None when the natural widths already fit.

    Free columns (evidence) give way first, down to MIN_FREE_WIDTH; then the other columns,
    widest first — none below its longest word, so lines break between words. Only when even
    that does not fit are words folded (by rich), and then still shown whole.
    """
    room = width - COLUMN_GAP * (len(natural) - 1)
    if sum(natural) <= room:
        return None
    widths = list(natural)
    words = [min(n, w) for n, w in zip(natural, shortest, strict=True)]
    roomy = [
        min(n, max(MIN_FREE_WIDTH, w)) if f else w
        for n, w, f in zip(natural, words, free, strict=True)
    ]
    last = [min(n, LAST_RESORT_WIDTH) for n in natural]
    # Free columns give way first (to MIN_FREE_WIDTH or their longest word), then the others
    # (to their longest word), then free columns again (to their longest word), and at last
    # free columns fold their longest words rather than the other columns theirs.
    for give_way, floor in ((True, roomy), (False, roomy), (True, words), (True, last)):
        while sum(widths) > room:
            candidates = [i for i, w in enumerate(widths) if free[i] == give_way and w > floor[i]]
            if not candidates:
                break
            widest = max(candidates, key=lambda i: widths[i] - floor[i])
            widths[widest] -= 1
    return widths


def _rich_table(block: Table, term: Terminal, width: int) -> Any:
    """Columns wrap at word boundaries so the table fits the terminal (see `allocate`);
    `--wide` keeps every row on one line instead."""
    from rich import box
    from rich.cells import cell_len
    from rich.table import Table as RichTable
    from rich.text import Text

    cells = [[flat(v) for v in row] for row in block.rows]
    columns = list(zip(*([c.header for c in block.columns], *cells), strict=True))
    natural = [max(cell_len(text) for text in column) for column in columns]
    shortest = [
        max((cell_len(word) for text in column for word in text.split()), default=1)
        for column in columns
    ]
    free = [c.free for c in block.columns]
    widths = None if term.wide else allocate(natural, shortest, free, width)
    table = RichTable(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        show_header=block.header,
        pad_edge=False,
        header_style="bold",
        expand=False,
    )
    for index, column in enumerate(block.columns):
        table.add_column(
            Text(column.header),
            justify=column.align,
            no_wrap=term.wide,
            overflow="fold",
            width=None if widths is None else widths[index],
        )
    for row in cells:
        table.add_row(
            *(
                Text(text, style=(style_of(text) if column.coloured else None) or "")
                for column, text in zip(block.columns, row, strict=True)
            )
        )
    return table


def _rich_fields(block: Fields) -> Any:
    from rich.table import Table as RichTable
    from rich.text import Text

    grid = RichTable.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in block.items:
        grid.add_row(Text(flat(key) + ":"), Text(flat(value)))
    return grid


# -- options -------------------------------------------------------------------------------------


def _remember(key: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if value:
            ctx.meta[key] = True

    return callback


def no_color_option() -> click.Option:
    return click.Option(
        ["--no-color"],
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_remember(NO_COLOR_KEY),
        help="No colour (also: NO_COLOR=1, TERM=dumb; never on a pipe).",
    )


def wide_option(fn: F) -> F:
    """`--wide`: table rows at full width on a terminal (a pipe always gets them whole)."""
    return click.option(
        "--wide",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_remember(WIDE_KEY),
        help="On a terminal, print each row on one line at full width instead of wrapping.",
    )(fn)


class AppGroup(click.Group):
    """The `watchkeeper` group: every command added to it (and to its groups) takes
    `--no-color`, so no command can forget it."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        _add_no_color(cmd)
        super().add_command(cmd, name)


def _add_no_color(cmd: click.Command) -> None:
    if not any(p.name == "no_color" for p in cmd.params):
        cmd.params.append(no_color_option())
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _add_no_color(sub)
