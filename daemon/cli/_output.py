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
from typing import IO, Any, NoReturn, TypeVar

import click

from daemon.cli._blocks import (
    Block,
    Fields,
    Framed,
    Lines,
    Table,
    Terminal,
    flat,
)

F = TypeVar("F", bound=Callable[..., Any])

NO_COLOR_KEY = "watchkeeper.no_color"
WIDE_KEY = "watchkeeper.wide"


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
            from daemon.cli._rich import show_rich

            show_rich(blocks, stream, term)
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
