"""Write the JSON and HTML reports at the end of the run, both from one report dict."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .state import State


def write_reports(st: State) -> None:
    from ..cache import write_json_atomic
    from ..report.json_report import build_report

    assert st.gate is not None and st.config is not None
    # Through JSON and back, so the HTML sees exactly what `quantgate show --html` will read.
    report = json.loads(json.dumps(build_report(st.gate, comparison(st)), default=str))
    if st.config.json:
        write_json_atomic(Path(st.config.json), report)
        st.outcomes["json"] = str(st.config.json)
    if st.config.html:
        from ..report.html import write_html

        st.outcomes["html"] = str(write_html(report, Path(st.config.html)))


def comparison(st: State) -> dict[str, Any] | None:
    """The baseline-against-now deltas of this run, when a baseline was compared."""
    cmp = st.compare
    if cmp is None or cmp.baseline is None:
        return None
    return {"baseline": str(cmp.path), "warnings": list(cmp.warnings),
            "deltas": [asdict(d) for ds in cmp.deltas.values() for d in ds]}
