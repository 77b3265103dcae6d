"""Plain-text tables for the terminal: columns padded to width, the last one free."""

from __future__ import annotations

from collections.abc import Sequence


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    align: str | None = None,
    *,
    indent: str = "",
) -> str:
    """`align` has one `l` or `r` per column (default: all left); the last left-aligned
    column is not padded, so long evidence runs free."""
    align = align or "l" * len(header)
    widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]
    lines = []
    for line in [header, *rows]:
        cells = [
            cell.ljust(w) if a == "l" else cell.rjust(w)
            for cell, w, a in zip(line, widths, align, strict=True)
        ]
        lines.append(indent + "  ".join(cells).rstrip())
    return "\n".join(lines)
