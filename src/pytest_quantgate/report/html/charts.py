"""Inline SVG charts, drawn from plain numbers; every string that reaches the SVG is escaped.

No JavaScript and no plotting library: a chart is a string, so the page opens offline, weighs a
few kB per chart, and hover details come from SVG ``<title>`` elements.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from ..text import safe_text

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a")
REFERENCE_COLOR = "#111111"




def esc(value: object) -> str:
    """Text for HTML and SVG text or attributes: &, <, >, " and ' escaped, C0/C1 controls other
    than tab and newline removed, bidi controls shown as ``\\u202e``-style text."""
    return html.escape(safe_text(value), quote=True)


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (f'<svg class="chart" role="img" aria-label="{esc(label)}" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(body)}</svg>')


def _text(x: float, y: float, text: object, *, anchor: str = "start", size: int = 11,
          extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
            f"{esc(text)}</text>")


def histogram(counts: Sequence[int], log10_min: float, step: float, threshold: float | None,
              *, label: str, nonfinite: int = 0) -> str:
    """Bars of counts over log10 bins, the threshold as a red dashed line."""
    w, h, left, bottom = 520, 170, 40, 30
    n = len(counts)
    top = max([*counts, 1])
    bw = (w - left - 10) / n
    body = [f'<line x1="{left}" y1="{h - bottom}" x2="{w - 10}" y2="{h - bottom}" stroke="#999"/>']
    for i, c in enumerate(counts):
        lo, hi = log10_min + (i - 1) * step, log10_min + i * step
        bh = (h - bottom - 15) * c / top
        tip = f"|Δ| ≤ 1e{hi:g}: {c}" if i == 0 else f"1e{lo:g} < |Δ| ≤ 1e{hi:g}: {c} inputs"
        body.append(f'<rect class="bar" x="{left + i * bw:.1f}" y="{h - bottom - bh:.1f}" '
                    f'width="{max(bw - 1, 1):.1f}" height="{bh:.1f}" fill="#4c78a8">'
                    f"<title>{esc(tip)}</title></rect>")
    for e in range(int(math.ceil(log10_min)), int(log10_min + (n - 1) * step) + 1):
        x = left + ((e - log10_min) / step + 1) * bw
        body.append(_text(x, h - bottom + 14, f"1e{e}", anchor="middle", size=9))
    body.append(_text(left, 11, f"inputs (max {top})", size=9))
    if threshold is not None and threshold > 0:
        x = left + ((math.log10(threshold) - log10_min) / step + 1) * bw
        x = min(max(x, left), w - 10)
        body.append(f'<line class="threshold" x1="{x:.1f}" y1="12" x2="{x:.1f}" '
                    f'y2="{h - bottom}" stroke="#d62728" stroke-dasharray="4 3"/>')
        body.append(_text(x + 3, 22, f"threshold {threshold:g}", size=9, extra=' fill="#d62728"'))
    if nonfinite:
        body.append(_text(w - 10, 22, f"{nonfinite} NaN/Inf rows", anchor="end", size=10,
                          extra=' fill="#d62728"'))
    body.append(_text(w / 2, h - 2, "max |logit diff| per input (log scale)", anchor="middle",
                      size=10))
    return _svg(w, h, body, label)


def heatmap(matrix: Sequence[Sequence[int]], labels: Sequence[str], *, label: str) -> str:
    """Flip matrix: rows reference top-1, columns backend top-1; off-diagonal cells in red."""
    k = len(labels)
    cell, left, top = 34, 110, 100
    w, h = left + cell * k + 10, top + cell * k + 10
    peak = max([c for i, row in enumerate(matrix) for j, c in enumerate(row) if i != j] + [1])
    body = [_text(left + cell * k / 2, 12, "backend top-1 →", anchor="middle", size=10),
            _text(4, top - 6, "reference top-1 ↓", size=10)]
    for j, name in enumerate(labels):
        x = left + j * cell + cell / 2
        body.append(_text(x, top - 6, str(name)[:14], size=9,
                          extra=f' transform="rotate(-50 {x:.1f} {top - 6})"'))
    for i, row in enumerate(matrix):
        y = top + i * cell
        body.append(_text(left - 4, y + cell / 2 + 4, str(labels[i])[:16], anchor="end", size=9))
        for j, c in enumerate(row):
            if i == j:
                fill = "#e8eef6" if c else "#fafafa"
            else:
                fill = f"rgba(214,39,40,{0.15 + 0.85 * c / peak:.2f})" if c else "#fafafa"
            cls = "cell flip" if i != j and c else "cell"
            tip = f"{labels[i]} → {labels[j]}: {c} inputs"
            body.append(f'<rect class="{cls}" x="{left + j * cell}" y="{y}" width="{cell - 1}" '
                        f'height="{cell - 1}" fill="{fill}"><title>{esc(tip)}</title></rect>')
            if c:
                body.append(_text(left + j * cell + cell / 2, y + cell / 2 + 4, c,
                                  anchor="middle", size=9))
    return _svg(w, h, body, label)


def grouped_bars(categories: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]],
                 *, label: str, value_label: str) -> str:
    """One group per category, one bar per series (reference first, drawn in black)."""
    n, m = len(categories), max(len(series), 1)
    left, bottom, w, h = 46, 60, max(520, 60 + n * (m * 7 + 12)), 230
    values = [v for _, vs in series for v in vs if v is not None and math.isfinite(v)]
    lo, hi = min([*values, 0.0]), max([*values, 0.0])
    hi, lo = (hi + 1e-9, lo) if hi > lo else (1.0, 0.0)
    plot_h = h - bottom - 10

    def y(v: float) -> float:
        return 10 + plot_h * (hi - v) / (hi - lo)

    gw = (w - left - 10) / max(n, 1)
    bw = max((gw - 8) / m, 1.5)
    body = [f'<line x1="{left}" y1="{y(0):.1f}" x2="{w - 10}" y2="{y(0):.1f}" stroke="#999"/>',
            _text(4, 12, value_label, size=9),
            _text(4, y(hi) + 10, f"{hi:.3g}", size=9), _text(4, y(lo), f"{lo:.3g}", size=9)]
    for c, cat in enumerate(categories):
        gx = left + c * gw + 4
        for s, (name, vs) in enumerate(series):
            v = vs[c] if c < len(vs) else None
            if v is None or not math.isfinite(v):
                body.append(_text(gx + s * bw, y(0) - 2, "×", size=8, extra=' fill="#d62728"'))
                continue
            top_, bot = sorted((y(v), y(0)))
            fill = REFERENCE_COLOR if s == 0 else color(s - 1)
            body.append(f'<rect class="bar" x="{gx + s * bw:.1f}" y="{top_:.1f}" '
                        f'width="{max(bw - 0.5, 1):.1f}" height="{max(bot - top_, 0.5):.1f}" '
                        f'fill="{fill}"><title>{esc(f"{name} · {cat}: {v:.4g}")}</title></rect>')
        x = left + c * gw + gw / 2
        body.append(_text(x, h - bottom + 12, str(cat)[:14], size=9,
                          extra=f' transform="rotate(-30 {x:.1f} {h - bottom + 12})" '
                                'text-anchor="end"'))
    return _svg(int(w), h, body, label)


def scatter(points: Sequence[tuple[str, float, float]], *, x_label: str, y_label: str,
            label: str, log_x: bool = False) -> str:
    """One labelled point per backend."""
    w, h, left, bottom = 520, 260, 56, 36
    xs = [math.log10(max(p[1], 1e-12)) if log_x else p[1] for p in points]
    ys = [p[2] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    x0, x1 = (x0 - 0.5, x1 + 0.5) if x1 - x0 < 1e-12 else (x0 - (x1 - x0) * .08, x1 + (x1 - x0) * .08)
    y0, y1 = (y0 - 0.05, y1 + 0.05) if y1 - y0 < 1e-12 else (y0 - (y1 - y0) * .08, y1 + (y1 - y0) * .08)

    def px(v: float) -> float:
        return left + (w - left - 90) * (v - x0) / (x1 - x0)

    def py(v: float) -> float:
        return 10 + (h - bottom - 10) * (y1 - v) / (y1 - y0)

    body = [f'<rect x="{left}" y="10" width="{w - left - 90}" height="{h - bottom - 10}" '
            'fill="none" stroke="#ccc"/>',
            _text(left + (w - left - 90) / 2, h - 6, x_label, anchor="middle", size=10),
            _text(4, 8, y_label, size=10),
            _text(left, h - bottom + 12, f"{10 ** x0 if log_x else x0:.3g}", size=9),
            _text(w - 90, h - bottom + 12, f"{10 ** x1 if log_x else x1:.3g}", anchor="end", size=9),
            _text(left - 3, h - bottom, f"{y0:.3g}", anchor="end", size=9),
            _text(left - 3, 18, f"{y1:.3g}", anchor="end", size=9)]
    for i, ((name, xv, yv), x, y) in enumerate(zip(points, xs, ys, strict=True)):
        body.append(f'<circle class="point" cx="{px(x):.1f}" cy="{py(y):.1f}" r="5" '
                    f'fill="{color(i)}"><title>{esc(f"{name}: {xv:.4g}, {yv:.4g}")}</title></circle>')
        body.append(_text(px(x) + 7, py(y) + 4, name, size=9))
    return _svg(w, h, body, label)


def hbars(items: Sequence[tuple[str, float]], *, label: str, fmt: str = "{:.1%}",
          limit: float | None = None, width: int = 520, left: int = 190,
          texts: Sequence[str] | None = None) -> str:
    """Horizontal bars (name, value in [0, 1]); an optional limit line; ``left`` is the room
    for the names; ``texts``, one per bar, replace ``fmt`` for the text beside each bar."""
    row = 16
    h = row * len(items) + 8
    top = max([v for _, v in items] + [limit or 0.0, 1e-12])
    room = max(60, int(5.5 * max(map(len, texts), default=0)) + 8) if texts else 60
    scale = (width - left - room) / top
    body = []
    for i, (name, v) in enumerate(items):
        y = 4 + i * row
        body.append(_text(left - 4, y + 11, str(name)[:max(left // 6, 8)], anchor="end", size=9))
        body.append(f'<rect class="bar" x="{left}" y="{y}" width="{max(v * scale, 0.5):.1f}" '
                    f'height="{row - 3}" fill="#4c78a8"><title>{esc(f"{name}: {v:.4g}")}</title>'
                    "</rect>")
        body.append(_text(left + v * scale + 4, y + 11,
                          fmt.format(v) if texts is None else texts[i], size=9))
    if limit is not None:
        x = left + limit * scale
        body.append(f'<line class="threshold" x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{h}" '
                    'stroke="#d62728" stroke-dasharray="4 3"/>')
    return _svg(width, h, body, label)
