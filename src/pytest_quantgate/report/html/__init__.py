"""The self-contained HTML report: one file, inline SVG charts, no script, no network.

It is drawn only from the JSON report's dict (the run snapshot's ``to_dict``), so a stored report
renders to the same page: ``quantgate show REPORT.json --html OUT.html``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...atomic import write_text_atomic
from .page import render_page

__all__ = ["render_html", "write_html"]


def render_html(report: dict[str, Any]) -> str:
    return render_page(report)


def write_html(report: dict[str, Any], path: Path) -> Path:
    return write_text_atomic(Path(path), render_html(report))
