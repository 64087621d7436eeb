"""User text made safe to show: labels, texts and backend names come from users' data files and
model configs, and reach the terminal (table, diagnosis) as well as the HTML page."""

from __future__ import annotations


def _unsafe_text_table() -> dict[int, str | None]:
    # Labels, texts and backend names come from users' data files and model configs. C0/C1
    # controls (NUL, ESC, BEL...) are invisible or break XML (an SVG with a NUL does not parse),
    # so they go; tab and newline are kept because they are ordinary text. Bidi controls would
    # let a string display in another order than it reads (a "Trojan Source" label), so each is
    # shown as its escape instead of being dropped: the reader sees that something was there.
    table: dict[int, str | None] = {c: None for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]
                                    if c not in (0x09, 0x0A)}
    for c in [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]:
        table[c] = f"\\u{c:04x}"
    return table


_UNSAFE_TEXT = _unsafe_text_table()  # built once: it runs for every string shown


def safe_text(value: object) -> str:
    """``value`` as text with C0/C1 controls other than tab and newline removed (an ESC in a
    label would drive the terminal) and bidi controls shown as ``\\u202e``-style text."""
    return str(value).translate(_UNSAFE_TEXT)
