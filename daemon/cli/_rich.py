"""rich's side of `daemon.cli._output`: the blocks laid out for a terminal of a given width.

Imported only when a terminal is printed to. Every string reaches rich as `Text` (never
markup) after `flat`/`printable`, so evidence cannot style, link or drive the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from daemon.cli._blocks import Block, Fields, Framed, Lines, Table, Terminal, flat

if TYPE_CHECKING:
    from rich.console import Console, RenderableType


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


def show_rich(blocks: Sequence[Block], stream: IO[str], term: Terminal) -> None:
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
