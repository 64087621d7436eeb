"""Inline SVG charts, drawn from plain numbers; every string that reaches the SVG is escaped.

No JavaScript and no plotting library: a chart is a string, so the page opens offline, weighs a
few kB per chart, and hover details come from SVG ``<title>`` elements.

Every label is laid out from its estimated width (``textfit``): margins grow to hold the longest
label, a label too long for its room is shortened in the middle (the full text in its
``<title>``), rotated labels get the height their slant needs, and a scatter's names sit in a
column beside the plot with a line to their point, so no text is drawn over another or clipped
by the chart's edge (tests/browser/test_html_layout.py measures it).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from ..text import safe_text
from .textfit import fit, fit_all, text_width

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a")
REFERENCE_COLOR = "#111111"
LINE = 1.3  # a text line's height, in units of its font size


def esc(value: object) -> str:
    """Text for HTML and SVG text or attributes: &, <, >, " and ' escaped, C0/C1 controls other
    than tab and newline removed, bidi controls shown as ``\\u202e``-style text."""
    return html.escape(safe_text(value), quote=True)


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    w, h = int(math.ceil(width)), int(math.ceil(height))
    return (f'<svg class="chart" role="img" aria-label="{esc(label)}" width="{w}" '
            f'height="{h}" viewBox="0 0 {w} {h}" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(body)}</svg>')


def _text(x: float, y: float, text: object, *, anchor: str = "start", size: int = 11,
          extra: str = "", full: object = None) -> str:
    """One text element; ``full`` (the unshortened text) becomes its tooltip."""
    tip = f"<title>{esc(full)}</title>" if full is not None and safe_text(full) != text else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
            f"{tip}{esc(text)}</text>")


def histogram(counts: Sequence[int], log10_min: float, step: float, threshold: float | None,
              *, label: str, nonfinite: int = 0) -> str:
    """Bars of counts over log10 bins, the threshold as a red dashed line."""
    w, left, right, top, bottom = 520, 40, 12, 36, 36  # top: a row for the threshold's label
    h = 196
    n = len(counts)
    peak = max([*counts, 1])
    bw = (w - left - right) / n
    base = h - bottom
    body = [f'<line x1="{left}" y1="{base}" x2="{w - right}" y2="{base}" stroke="#999"/>',
            _text(left, 11, f"inputs (max {peak})", size=9)]
    for i, c in enumerate(counts):
        lo, hi = log10_min + (i - 1) * step, log10_min + i * step
        bh = (base - top) * c / peak
        tip = f"|Δ| ≤ 1e{hi:g}: {c}" if i == 0 else f"1e{lo:g} < |Δ| ≤ 1e{hi:g}: {c} inputs"
        body.append(f'<rect class="bar" x="{left + i * bw:.1f}" y="{base - bh:.1f}" '
                    f'width="{max(bw - 1, 1):.1f}" height="{bh:.1f}" fill="#4c78a8">'
                    f"<title>{esc(tip)}</title></rect>")
    decades = list(range(int(math.ceil(log10_min)), int(log10_min + (n - 1) * step) + 1))
    spacing = bw / step  # px per decade
    stride = max(1, math.ceil((text_width("1e-10", 9) + 6) / max(spacing, 1e-9)))
    for e in decades[::stride]:
        x = left + ((e - log10_min) / step + 1) * bw
        body.append(_text(x, base + 13, f"1e{e}", anchor="middle", size=9))
    if nonfinite:
        body.append(_text(w - right, 11, f"{nonfinite} NaN/Inf rows", anchor="end", size=9,
                          extra=' fill="#d62728"'))
    if threshold is not None and threshold > 0:
        x = left + ((math.log10(threshold) - log10_min) / step + 1) * bw
        x = min(max(x, left), w - right)
        body.append(f'<line class="threshold" x1="{x:.1f}" y1="{top - 14}" x2="{x:.1f}" '
                    f'y2="{base}" stroke="#d62728" stroke-dasharray="4 3"/>')
        text = f"threshold {threshold:.3g}"
        # above the bars, beside the line, on whichever side has room
        if x + 3 + text_width(text, 9) <= w - 2:
            body.append(_text(x + 3, top - 6, text, size=9, extra=' fill="#d62728"'))
        else:
            body.append(_text(x - 3, top - 6, text, anchor="end", size=9,
                              extra=' fill="#d62728"'))
    body.append(_text((left + w - right) / 2, h - 4, "max |logit diff| per input (log scale)",
                      anchor="middle", size=10))
    return _svg(w, h, body, label)


def heatmap(matrix: Sequence[Sequence[int]], labels: Sequence[str], *, label: str) -> str:
    """Flip matrix: rows reference top-1, columns backend top-1; off-diagonal cells in red.
    Column labels run up at 45 degrees; the margins are as large as the labels need."""
    k = len(labels)
    cell = 34 if k <= 12 else 24
    size, slant = 9, math.sqrt(0.5)
    row_title, col_title = "reference top-1 ↓", "backend top-1 →"
    cols = fit_all(labels, 120, size)
    rows = fit_all(labels, 140, size)
    rise = max([text_width(c, size) for c in cols] + [0]) * slant + size * LINE
    left = max(max([text_width(r, size) for r in rows] + [0]) + 10,
               text_width(row_title, 10) + 8)
    top = 18 + rise + 6
    reach = max([left + j * cell + cell / 2 + text_width(c, size) * slant + size * slant
                 for j, c in enumerate(cols)] + [0])
    w, h = max(left + cell * k + 10, reach + 4), top + cell * k + 10
    peak = max([c for i, row in enumerate(matrix) for j, c in enumerate(row) if i != j] + [1])
    body = [_text(left + cell * k / 2, 12, col_title, anchor="middle", size=10),
            _text(4, top - 6, row_title, size=10)]
    for j, name in enumerate(cols):
        x = left + j * cell + cell / 2
        body.append(_text(x, top - 6, name, size=size, full=labels[j],
                          extra=f' transform="rotate(-45 {x:.1f} {top - 6:.1f})"'))
    for i, row in enumerate(matrix):
        y = top + i * cell
        body.append(_text(left - 4, y + cell / 2 + 3, rows[i], anchor="end", size=size,
                          full=labels[i]))
        for j, c in enumerate(row):
            if i == j:
                fill = "#e8eef6" if c else "#fafafa"
            else:
                fill = f"rgba(214,39,40,{0.15 + 0.85 * c / peak:.2f})" if c else "#fafafa"
            cls = "cell flip" if i != j and c else "cell"
            tip = f"{labels[i]} → {labels[j]}: {c} inputs"
            body.append(f'<rect class="{cls}" x="{left + j * cell:.1f}" y="{y:.1f}" '
                        f'width="{cell - 1}" height="{cell - 1}" fill="{fill}">'
                        f"<title>{esc(tip)}</title></rect>")
            if c:
                body.append(_text(left + j * cell + cell / 2, y + cell / 2 + 3, c,
                                  anchor="middle", size=9 if cell > 30 else 8))
    return _svg(w, h, body, label)


def grouped_bars(categories: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]],
                 *, label: str, value_label: str) -> str:
    """One group per category, one bar per series (reference first, drawn in black). Category
    names run down-left from under their group, clear of the bars; a missing value is a red
    tick on the axis (its tooltip says so)."""
    n, m = len(categories), max(len(series), 1)
    size, angle = 9, math.radians(35)
    left, right, top, plot_h = 50, 10, 22, 170
    w = max(520, left + right + n * (m * 7 + 14))
    gw = (w - left - right) / max(n, 1)
    names = []
    for c, cat in enumerate(categories):  # the first ones may not run past the left edge
        anchor = left + c * gw + gw / 2
        names.append(fit(cat, min(100, (anchor - 4) / math.cos(angle)), size))
    drop = max([text_width(s, size) * math.sin(angle) for s in names] + [0])
    h = top + plot_h + 10 + drop + size * LINE + 4
    values = [v for _, vs in series for v in vs if v is not None and math.isfinite(v)]
    lo, hi = min([*values, 0.0]), max([*values, 0.0])
    hi, lo = (hi + 1e-9, lo) if hi > lo else (1.0, 0.0)

    def y(v: float) -> float:
        return top + plot_h * (hi - v) / (hi - lo)

    bw = max((gw - 8) / m, 1.5)
    body = [f'<line x1="{left}" y1="{y(0):.1f}" x2="{w - right}" y2="{y(0):.1f}" stroke="#999"/>',
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#ccc"/>',
            _text(4, 11, value_label, size=9)]
    ticks = [hi, lo] + ([0.0] if min(y(0) - y(hi), y(lo) - y(0)) >= size * LINE else [])
    for tick in ticks:
        body.append(_text(left - 4, y(tick) + 3, f"{tick:.3g}", anchor="end", size=size))
    for c, cat in enumerate(categories):
        gx = left + c * gw + 4
        for s, (name, vs) in enumerate(series):
            v = vs[c] if c < len(vs) else None
            x = gx + s * bw
            if v is None or not math.isfinite(v):
                body.append(f'<rect class="missing" x="{x:.1f}" y="{y(0) - 3:.1f}" '
                            f'width="{max(bw - 0.5, 1):.1f}" height="6" fill="#d62728">'
                            f"<title>{esc(f'{name} · {cat}: no finite value')}</title></rect>")
                continue
            top_, bot = sorted((y(v), y(0)))
            fill = REFERENCE_COLOR if s == 0 else color(s - 1)
            body.append(f'<rect class="bar" x="{x:.1f}" y="{top_:.1f}" '
                        f'width="{max(bw - 0.5, 1):.1f}" height="{max(bot - top_, 0.5):.1f}" '
                        f'fill="{fill}"><title>{esc(f"{name} · {cat}: {v:.4g}")}</title></rect>')
        x, ty = left + c * gw + gw / 2, top + plot_h + 10
        body.append(_text(x, ty, names[c], anchor="end", size=size, full=cat,
                          extra=f' transform="rotate(-35 {x:.1f} {ty:.1f})"'))
    return _svg(w, h, body, label)


def scatter(points: Sequence[tuple[str, float, float]], *, x_label: str, y_label: str,
            label: str, log_x: bool = False) -> str:
    """One point per backend; the names in a column to the right of the plot, in the order of
    their points' heights, each joined to its point by a thin line (points often coincide:
    every lossless backend sits at top-1 agreement 1.0)."""
    size, row = 9, 9 * LINE + 2
    names = fit_all([p[0] for p in points], 200, size)
    column = max([text_width(s, size) for s in names] + [40]) + 18
    left, plot_w, gap, top, bottom = 56, 360, 24, 24, 36
    h = max(260, top + len(points) * row + bottom + 6)
    w = left + plot_w + gap + column
    xs = [math.log10(max(p[1], 1e-12)) if log_x else p[1] for p in points]
    ys = [p[2] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    x0, x1 = (x0 - 0.5, x1 + 0.5) if x1 - x0 < 1e-12 else (x0 - (x1 - x0) * .08, x1 + (x1 - x0) * .08)
    y0, y1 = (y0 - 0.05, y1 + 0.05) if y1 - y0 < 1e-12 else (y0 - (y1 - y0) * .08, y1 + (y1 - y0) * .08)
    base = h - bottom

    def px(v: float) -> float:
        return left + plot_w * (v - x0) / (x1 - x0)

    def py(v: float) -> float:
        return top + (base - top) * (y1 - v) / (y1 - y0)

    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{base - top}" fill="none" '
            'stroke="#ccc"/>',
            _text(left + plot_w / 2, h - 6, x_label, anchor="middle", size=10),
            _text(4, 12, y_label, size=10),
            _text(left, base + 13, f"{10 ** x0 if log_x else x0:.3g}", size=size),
            _text(left + plot_w, base + 13, f"{10 ** x1 if log_x else x1:.3g}", anchor="end",
                  size=size),
            _text(left - 4, base, f"{y0:.3g}", anchor="end", size=size),
            _text(left - 4, top + 8, f"{y1:.3g}", anchor="end", size=size)]
    # label rows: each as near its point's height as the rows above it allow, then pushed up
    # from the bottom where they ran past it
    order = sorted(range(len(points)), key=lambda i: (py(ys[i]), px(xs[i])))
    spots: list[float] = []
    for i in order:
        spots.append(max(py(ys[i]) + 3, (spots[-1] + row) if spots else top + 8))
    for n in range(len(spots) - 1, -1, -1):
        limit = base if n == len(spots) - 1 else spots[n + 1] - row
        spots[n] = min(spots[n], limit)
    col_x = left + plot_w + gap
    for n, i in enumerate(order):
        name, xv, yv = points[i]
        cx, cy = px(xs[i]), py(ys[i])
        body.append(f'<line class="leader" x1="{cx:.1f}" y1="{cy:.1f}" x2="{col_x - 3:.1f}" '
                    f'y2="{spots[n] - 3:.1f}" stroke="{color(i)}" stroke-opacity="0.45"/>')
        body.append(f'<circle class="point" cx="{cx:.1f}" cy="{cy:.1f}" r="5" '
                    f'fill="{color(i)}"><title>{esc(f"{name}: {xv:.4g}, {yv:.4g}")}</title>'
                    "</circle>")
        # the name in the page's text colour (pale palette colours do not read as text),
        # keyed to its point by a dot of the point's colour
        body.append(f'<circle cx="{col_x + 3:.1f}" cy="{spots[n] - 3:.1f}" r="3.5" '
                    f'fill="{color(i)}"/>')
        body.append(_text(col_x + 10, spots[n], names[i], size=size, full=name))
    return _svg(w, h, body, label)


def hbars(items: Sequence[tuple[str, float]], *, label: str, fmt: str = "{:.1%}",
          limit: float | None = None, width: int = 520, left: int | None = None,
          texts: Sequence[str] | None = None) -> str:
    """Horizontal bars (name, value in [0, 1]); an optional limit line; ``left``, the room for
    the names, defaults to what the longest name needs (at most 40% of ``width``); a name
    longer is shortened in the middle; ``texts``, one per bar, replace ``fmt`` beside each bar."""
    size, row = 9, 16
    h = row * len(items) + 8
    shown_values = [fmt.format(v) for _, v in items] if texts is None else list(texts)
    if left is None:
        widest = max([text_width(n, size) for n, _ in items] + [20])
        left = int(min(widest + 10, width * 0.4))
    names = fit_all([n for n, _ in items], left - 8, size)
    room = max([text_width(t, size) for t in shown_values] + [30]) + 8
    peak = max([v for _, v in items] + [limit or 0.0, 1e-12])
    scale = max(width - left - room, 10) / peak
    body = []
    for i, (name, v) in enumerate(items):
        y = 4 + i * row
        body.append(_text(left - 4, y + 10, names[i], anchor="end", size=size, full=name))
        body.append(f'<rect class="bar" x="{left}" y="{y}" width="{max(v * scale, 0.5):.1f}" '
                    f'height="{row - 3}" fill="#4c78a8"><title>{esc(f"{name}: {v:.4g}")}</title>'
                    "</rect>")
        body.append(_text(left + max(v, 0.0) * scale + 4, y + 10, shown_values[i], size=size))
    if limit is not None:
        x = left + limit * scale
        body.append(f'<line class="threshold" x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{h}" '
                    'stroke="#d62728" stroke-dasharray="4 3"/>')
    return _svg(width, h, body, label)
