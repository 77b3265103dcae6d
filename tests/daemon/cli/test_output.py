"""The output layer's pure parts: fitting columns to a width, Markdown made plain, and
untrusted text that stays text whichever way it is printed."""

from __future__ import annotations

import io
import sys

import click
import pytest

from daemon.cli._blocks import Column, Fields, Framed, Lines, Markdown, Table
from daemon.cli._markdown import to_plain
from daemon.cli._output import plain, show
from daemon.cli._rich import COLUMN_GAP, allocate
from daemon.util.text import untrusted


def test_columns_that_fit_keep_their_natural_width() -> None:
    assert allocate([5, 10, 30], [5, 10, 8], [False, False, True], 80) is None


def test_the_free_column_gives_way_first_and_no_column_goes_below_its_longest_word() -> None:
    natural, words, free = [10, 20, 100], [10, 8, 12], [False, False, True]
    widths = allocate(natural, words, free, 70)
    assert widths is not None and sum(widths) + 2 * COLUMN_GAP <= 70
    assert widths[:2] == [10, 20]  # the evidence column absorbed it all
    narrow = allocate(natural, words, free, 50)
    assert narrow is not None and sum(narrow) + 2 * COLUMN_GAP <= 50
    assert narrow[1] < 20 and all(w >= m for w, m in zip(narrow, words, strict=True))


def test_markdown_becomes_the_text_it_means() -> None:
    text = "**Checks:** 2 failing\nNot ok: `db_primary`, api\n\n- one\n- two [docs](https://x.example/a)"
    assert to_plain(text) == (
        "Checks: 2 failing\nNot ok: db_primary, api\n\n- one\n- two docs (https://x.example/a)"
    )


def test_escaped_untrusted_text_reads_as_written_on_a_pipe() -> None:
    raw = "disk_usage *high* on [db-1](http://evil.example) `rm -rf` <@here> # 1. not a list"
    shown = to_plain(untrusted(raw))
    assert shown == raw  # exactly what was written: nothing rendered, nothing escaped


@pytest.mark.parametrize("entity", ["&#x1b;", "&#27;", "&#x07;", "&#x202e;"])
def test_an_entity_cannot_smuggle_a_control_character(entity: str) -> None:
    # untrusted() leaves `&` alone; Markdown decodes entities, so the escape must come after
    text = untrusted(f"a{entity}]0;owned b")
    assert not any(c in plain([Markdown(text)]) for c in "\x1b\x07\u202e")
    assert not any(c in rendered_on_a_terminal(Markdown(text)) for c in "\x07\u202e")
    assert "\x1b]" not in rendered_on_a_terminal(Markdown(text))


def test_plain_blocks_have_no_box_drawing_and_keep_every_row_whole() -> None:
    evidence = "connect to 10.0.0.7:5432 refused; retried 3 times " * 5
    text = plain(
        [
            Lines(["status"]),
            Table([Column("CHECK"), Column("EVIDENCE", free=True)], [["db", evidence]]),
            Fields([("opened", "14:02"), ("blast radius", "api, web")]),
            Framed("notification: [HIGH] db failing", Markdown("**down**\nsince 14:02")),
        ]
    )
    assert text.splitlines() == [
        "status",
        "CHECK  EVIDENCE",
        "db     " + evidence.strip(),
        "opened:       14:02",
        "blast radius: api, web",
        "notification: [HIGH] db failing",
        "  down",
        "  since 14:02",
    ]


def rendered_on_a_terminal(*blocks: object) -> str:
    """What `show` writes when stdout is a (colour) terminal."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    real = sys.stdout
    sys.stdout = stream
    try:
        with click.Context(click.Command("x")):
            show(*blocks)  # type: ignore[arg-type]
    finally:
        sys.stdout = real
    return stream.getvalue()


def test_on_a_terminal_markdown_is_rendered_and_markup_stays_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "100")
    out = rendered_on_a_terminal(
        Markdown("**Checks:** " + untrusted("[bold red]x[/bold red] a_b")),
        Table([Column("E", free=True)], [["[link=https://e.example]y[/link]"]]),
    )
    assert "**" not in out and "\\_" not in out and "\\[" not in out
    assert "[bold red]x[/bold red] a_b" in out
    assert "[link=https://e.example]y[/link]" in out
    assert "\x1b]8;" not in out  # no hyperlink escape
    assert "\x1b[1m" in out  # bold: rendered, not shown as asterisks
