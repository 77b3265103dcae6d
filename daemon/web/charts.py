"""Charts as server-rendered SVG: no JavaScript, no CDN, nothing fetched at run time.

Pure functions from numbers to markup. Every label goes through `escape` — model names and
check names come from config and providers, and an SVG is as able to carry a script as HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    """Known amount (e.g. USD with a known price)."""
    unknown: int = 0
    """How many items of this bar have no known value: shown, never counted as zero."""
    title: str = ""
    """The tooltip (SVG <title>): the exact figure."""


def sparkline(values: Sequence[float | None], *, width: int = 120, height: int = 24) -> Markup:
    """A latency sparkline, oldest first; gaps (no latency: an error) break the line."""
    known = [v for v in values if v is not None]
    if len(values) < 2 or not known:
        return Markup('<span class="muted">&ndash;</span>')
    top = max(known) or 1.0
    step = width / (len(values) - 1)
    runs: list[list[str]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            runs.append([])
            continue
        y = height - 2 - (value / top) * (height - 4)
        runs[-1].append(f"{i * step:.1f},{y:.1f}")
    lines = "".join(
        f'<polyline points="{" ".join(run)}" />' for run in runs if len(run) > 1
    ) + "".join(
        f'<circle cx="{run[0].split(",")[0]}" cy="{run[0].split(",")[1]}" r="1" />'
        for run in runs
        if len(run) == 1
    )
    label = f"latency, last {len(values)} runs, max {top:.0f} ms"
    return Markup(  # noqa: S704 — every text inside went through escape()
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>{lines}</svg>'
    )


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    unit: str = "$",
    width: int = 640,
    bar_height: int = 22,
) -> Markup:
    """Horizontal bars, one per label, with the figure at the end; a bar with unknown items
    says so ("+2 unknown") instead of pretending they cost nothing."""
    if not bars:
        return Markup('<p class="muted">{}: nothing in this period</p>').format(title)
    label_w = 200
    plot_w = width - label_w - 150
    top = max((b.value for b in bars), default=0.0) or 1.0
    height = bar_height * len(bars) + 28
    parts = [
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<text class="chart-title" x="0" y="14">{escape(title)}</text>',
    ]
    for i, bar in enumerate(bars):
        y = 24 + i * bar_height
        w = max(1.0, plot_w * bar.value / top) if bar.value > 0 else 0.0
        figure = f"{unit}{bar.value:,.4f}" if unit == "$" else f"{bar.value:,.0f}{unit}"
        if bar.unknown:
            figure += f" +{bar.unknown} unknown"
        tip = bar.title or f"{bar.label}: {figure}"
        parts.append(
            f'<g class="bar"><title>{escape(tip)}</title>'
            f'<text x="{label_w - 6}" y="{y + bar_height * 0.65:.1f}" text-anchor="end">'
            f"{escape(_clip(bar.label, 30))}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{bar_height - 6}" />'
            f'<text x="{label_w + w + 6:.1f}" y="{y + bar_height * 0.65:.1f}">'
            f"{escape(figure)}</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 — texts went through escape()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def radius_graph(center: str, affected: Sequence[str], *, width: int = 560) -> Markup:
    """The blast radius: the failing check, and an edge to each check that depends on it."""
    if not affected:
        return Markup('<p class="muted">no other check depends on it</p>')
    row_h = 26
    height = max(row_h * len(affected), row_h) + 10
    cy = height / 2
    parts = [
        f'<svg class="graph" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="blast radius"><title>blast radius of {escape(center)}</title>',
        f'<g class="node root"><rect x="4" y="{cy - 11:.1f}" width="190" height="22" rx="4" />'
        f'<text x="12" y="{cy + 4:.1f}">{escape(_clip(center, 26))}</text></g>',
    ]
    for i, name in enumerate(affected):
        y = 5 + i * row_h + row_h / 2
        parts.append(
            f'<line x1="194" y1="{cy:.1f}" x2="330" y2="{y:.1f}" />'
            f'<g class="node"><rect x="330" y="{y - 11:.1f}" width="220" height="22" rx="4" />'
            f'<text x="338" y="{y + 4:.1f}">{escape(_clip(name, 30))}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 — texts went through escape()
