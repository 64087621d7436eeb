"""How wide a string is drawn, estimated, and strings shortened to fit: the charts lay out their
labels from these numbers, so no label runs into another or past the chart's edge.

SVG text cannot be measured without a browser, and the page runs no script, so widths are
estimated per character from DejaVu Sans (Debian's default sans-serif) and rounded up: a label
given a little too much room looks the same, one given too little overlaps. The browser test
(tests/browser/test_html_layout.py) measures the real boxes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from ..text import safe_text

ELLIPSIS = "…"
_NARROW = set("iljI.,:;|!'` ()[]{}/\\ft")
_WIDE_LATIN = set("mwMWOQGCDHNU@%&")


def char_em(ch: str) -> float:
    """A character's advance in ems, rounded up."""
    if ch in _NARROW:
        return 0.4
    if ch in _WIDE_LATIN:
        return 0.95
    if unicodedata.east_asian_width(ch) in ("W", "F") or ord(ch) > 0x2E80:
        return 1.05  # CJK, emoji
    if ch.isupper() or ch.isdigit():
        return 0.72
    return 0.64


def text_width(text: object, size: float) -> float:
    """Estimated drawn width in px of ``text`` (as shown: after ``safe_text``) at ``size`` px."""
    return sum(char_em(c) for c in safe_text(text)) * size


def fit(text: object, width: float, size: float) -> str:
    """``text`` as shown, shortened in the middle (``head…tail``) until it fits ``width`` px:
    names differ at either end (``/model/bert/.../MatMul_output_0``), so both ends are kept."""
    shown = safe_text(text)
    if text_width(shown, size) <= width:
        return shown
    head, tail = "", ""
    left, right = 0, len(shown) - 1
    budget = width - char_em(ELLIPSIS) * size
    # take characters alternately from the ends, the tail one more often (it is where names
    # differ most: layer indices, output numbers)
    turn = 0
    while left <= right:
        ch = shown[right] if turn % 3 else shown[left]
        if text_width(head + tail, size) + char_em(ch) * size > budget:
            break
        if turn % 3:
            tail = ch + tail
            right -= 1
        else:
            head += ch
            left += 1
        turn += 1
    return head + ELLIPSIS + tail


def fit_all(names: Sequence[object], width: float, size: float) -> list[str]:
    """Several names to ``width`` px each, their shared ``/``-separated prefix shown once as
    ``…/`` when they are too long: tensor names of one model all start ``/model/bert/encoder``."""
    shown = [safe_text(n) for n in names]
    if len(shown) > 1 and any(text_width(s, size) > width for s in shown):
        cut = _common_prefix(shown).rfind("/")
        if cut > 2:
            shown = [ELLIPSIS + s[cut:] for s in shown]
    return [fit(s, width, size) for s in shown]


def _common_prefix(names: Sequence[str]) -> str:
    first, last = min(names), max(names)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]
