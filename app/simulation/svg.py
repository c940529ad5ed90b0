"""Tiny inline SVG charts for the run's HTML report (no scripts, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT, PAD = 860, 220, 40


def line_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[float], Sequence[float], str]],
    markers: Sequence[tuple[float, str, str]] = (),
    y_label: str = "",
) -> str:
    """`series`: (name, xs, ys, colour); `markers`: (x, label, colour) vertical lines."""
    xs_all = [x for _, xs, _, _ in series for x in xs] + [m[0] for m in markers]
    ys_all = [y for _, _, ys, _ in series for y in ys]
    if not xs_all or not ys_all:
        return f"<p><em>{escape(title)}: no data</em></p>"
    x0, x1 = min(xs_all), max(xs_all)
    y0, y1 = min(ys_all), max(ys_all)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1

    def sx(x: float) -> float:
        return PAD + (x - x0) / (x1 - x0) * (WIDTH - 2 * PAD)

    def sy(y: float) -> float:
        return HEIGHT - PAD + (y - y0) / (y1 - y0) * (2 * PAD - HEIGHT)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="{PAD}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
        f'<text x="4" y="{PAD}" font-size="10">{y1:.4g}</text>',
        f'<text x="4" y="{HEIGHT - PAD}" font-size="10">{y0:.4g}</text>',
        f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="10">{escape(y_label)}</text>',
    ]
    for i, (x, label, colour) in enumerate(markers):
        px = sx(x)
        parts.append(
            f'<line x1="{px:.1f}" y1="{PAD}" x2="{px:.1f}" y2="{HEIGHT - PAD}" stroke="{colour}" '
            f'stroke-dasharray="4 3"><title>{escape(label)}</title></line>'
        )
        parts.append(
            f'<text x="{px + 2:.1f}" y="{PAD + 10 + 11 * (i % 6)}" font-size="9" fill="{colour}">{escape(label)}</text>'
        )
    for name, xs, ys, colour in series:
        points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=True))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.4" points="{points}">'
            f"<title>{escape(name)}</title></polyline>"
        )
    legend_x = WIDTH - PAD - 160
    for i, (name, _, _, colour) in enumerate(series):
        parts.append(
            f'<text x="{legend_x}" y="{16 + 12 * i}" font-size="10" fill="{colour}">&#9632; {escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def spans_chart(title: str, rows: Sequence[tuple[str, Sequence[tuple[float, float, str, str]]]]) -> str:
    """Horizontal bars per row: (label, [(start, end, text, colour)]) — which version was live when."""
    starts = [s for _, spans in rows for s, _, _, _ in spans]
    ends = [e for _, spans in rows for _, e, _, _ in spans]
    if not starts:
        return f"<p><em>{escape(title)}: no data</em></p>"
    x0, x1 = min(starts), max(ends)
    x1 = x1 if x1 > x0 else x0 + 1
    height = 30 + 24 * len(rows)
    left = 90

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (WIDTH - left - PAD)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" role="img" '
        f'aria-label="{escape(title)}">',
        f'<text x="4" y="14" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, spans) in enumerate(rows):
        y = 24 + 24 * i
        parts.append(f'<text x="4" y="{y + 14}" font-size="11">{escape(label)}</text>')
        for start, end, text, colour in spans:
            w = max(1.0, sx(end) - sx(start))
            parts.append(
                f'<rect x="{sx(start):.1f}" y="{y}" width="{w:.1f}" height="18" fill="{colour}" opacity="0.8">'
                f"<title>{escape(text)}</title></rect>"
            )
            parts.append(f'<text x="{sx(start) + 3:.1f}" y="{y + 13}" font-size="10">{escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)
