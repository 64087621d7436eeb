"""``quantgate show REPORT.json --html OUT.html``: render a stored JSON report."""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import DataError, problem
from . import write_html


def render_stored(report_path: Path, out: Path) -> Path:
    """Render a stored quantgate JSON report (version 1 or 2) to ``out``."""
    data = json.loads(report_path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != "pytest-quantgate-report":
        raise DataError(problem(f"{report_path}: format", data.get("format") if isinstance(
            data, dict) else type(data).__name__, "a quantgate JSON report (--quantgate-json)",
            "pass the file --quantgate-json wrote; pytest-benchmark runs have no charts"))
    return write_html(data, out)
