"""The self-contained HTML report: one file, inline SVG charts, no script, no network.

It is drawn only from the JSON report's dict (``json_report.build_report``), so a stored report
renders to the same page: ``quantgate show REPORT.json --html OUT.html``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .page import render_page

__all__ = ["render_html", "write_html"]


def render_html(report: dict[str, Any]) -> str:
    return render_page(report)


def write_html(report: dict[str, Any], path: Path) -> Path:
    """Write to a temporary sibling and rename it into place (as ``cache.write_json_atomic``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(render_html(report), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
