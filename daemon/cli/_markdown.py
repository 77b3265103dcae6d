"""Markdown for the terminal: parsed once with markdown-it (the parser rich uses), rendered by
rich on a terminal or to plain text for pipes and files.

Plain text is rendered from the parse tree — never stripped with patterns — so a reader (or
grep) sees the text the Markdown means: no `**`, no backslash escapes (`\\_`, `\\[`) that
`daemon.util.text.untrusted` adds for chat targets, no link brackets. A single line break is a
line break, as in the chat targets these messages are written for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token
    from markdown_it.tree import SyntaxTreeNode
    from rich.markdown import Markdown


def parser() -> MarkdownIt:
    """CommonMark with tables and strikethrough, raw HTML off (it stays visible text)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable(["strikethrough", "table"])


def parse(text: str) -> list[Token]:
    """The tokens of `text`, with every control character shown as an escape — after
    parsing, because parsing decodes entities (`&#27;` is ESC). The zero-width space that
    `untrusted` puts after `@` (so chat targets ping nobody) means nothing in a terminal: it
    goes, rather than showing as `\\u200b`."""
    from daemon.util.text import ZERO_WIDTH_SPACE, printable

    unmention = "@" + ZERO_WIDTH_SPACE
    tokens = parser().parse(text)
    stack = list(tokens)
    while stack:
        token = stack.pop()
        token.content = printable(token.content.replace(unmention, "@"))
        if token.attrs:
            token.attrs = {k: printable(str(v)) for k, v in token.attrs.items()}
        stack += token.children or ()
    return tokens


def to_plain(text: str) -> str:
    """The text `text` means, without Markdown syntax: lists keep `- ` / `1. ` markers, code
    blocks are indented four spaces, a link shows its address after its text."""
    from markdown_it.tree import SyntaxTreeNode

    root = SyntaxTreeNode(parse(text))
    return "\n".join(_blocks(root)).strip("\n")


def rich_markdown(text: str) -> Markdown:
    """A rich renderable of `text`: links printed as `text (address)` (no OSC 8 hyperlink
    escapes), a single line break kept as a line break."""
    from rich.markdown import Markdown

    class _Markdown(Markdown):
        def __init__(self, markup: str) -> None:
            super().__init__(markup, hyperlinks=False)
            self.parsed = parse(markup)
            for token in self.parsed:
                for child in token.children or ():
                    if child.type == "softbreak":
                        child.type = "hardbreak"

    return _Markdown(text)


def _blocks(node: SyntaxTreeNode, *, tight: bool = False) -> list[str]:
    lines: list[str] = []
    for child in node.children:
        block = _block(child)
        if lines and block and not tight:
            lines.append("")
        lines += block
    return lines


def _block(node: SyntaxTreeNode) -> list[str]:
    kind = node.type
    if kind in ("paragraph", "heading"):
        return "".join(_inline(c) for c in node.children).split("\n")
    if kind in ("bullet_list", "ordered_list"):
        return _list(node)
    if kind in ("fence", "code_block"):
        return ["    " + line for line in node.content.rstrip("\n").split("\n")]
    if kind == "blockquote":
        return ["  " + line if line else "" for line in _blocks(node)]
    if kind == "hr":
        return ["---"]
    if kind == "table":
        return _table(node)
    if kind == "inline":
        return _inline(node).split("\n")
    return _blocks(node)


def _list(node: SyntaxTreeNode) -> list[str]:
    lines: list[str] = []
    start = int(str(node.attrs.get("start", 1)))
    for index, item in enumerate(node.children):
        marker = "- " if node.type == "bullet_list" else f"{start + index}. "
        paragraphs = [c for c in item.children if c.type == "paragraph"]
        tight = bool(paragraphs) and all(p.hidden for p in paragraphs)
        body = _blocks(item, tight=tight) or [""]
        if lines and not tight:
            lines.append("")
        lines.append(marker + body[0])
        lines += [(" " * len(marker) + line) if line else "" for line in body[1:]]
    return lines


def _table(node: SyntaxTreeNode) -> list[str]:
    from daemon.util.tables import table

    rows = [
        [" ".join("".join(_inline(c) for c in cell.children).split()) for cell in row.children]
        for section in node.children  # thead, tbody
        for row in section.children
    ]
    if not rows:
        return []
    return table(rows[0], rows[1:]).split("\n")


def _inline(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind in ("text", "code_inline", "html_inline"):
        return node.content
    if kind in ("softbreak", "hardbreak"):
        return "\n"
    inner = "".join(_inline(c) for c in node.children)
    if kind == "link":
        href = str(node.attrs.get("href", ""))
        return inner if not href or href in (inner, f"mailto:{inner}") else f"{inner} ({href})"
    return inner
