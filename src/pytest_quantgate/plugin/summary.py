"""The terminal summary: the run snapshot's table and lines, the reports written, latency and
the baseline comparison. It reads the snapshot only (plugin/finish.py took it)."""

from __future__ import annotations

import pytest

from .state import State


def write_summary(reporter: pytest.TerminalReporter, st: State) -> None:
    from ..report.table import summary_lines

    assert st.snapshot is not None
    reporter.write_sep("=", "quantgate")
    for line in summary_lines(st.snapshot):
        reporter.write_line(line)
    for kind, what in (("json", "JSON report"), ("html", "HTML report")):
        if kind in st.outcomes:
            reporter.write_line(f"quantgate {what}: {st.outcomes[kind]}")
        if f"{kind}_error" in st.outcomes:
            reporter.write_line(st.outcomes[f"{kind}_error"])
    from .comparing import write_comparison
    from .latency import write_latency

    write_latency(reporter, st)
    write_comparison(reporter, st)


def write_cache_line(reporter: pytest.TerminalReporter, st: State) -> None:
    """The cache's one line, when the session's end removed stale entries (finish.prune_cache):
    after the table, or alone when no gate item ran (a run of the fixtures only)."""
    from .finish import PRUNED

    if PRUNED in st.outcomes:
        reporter.write_line(st.outcomes[PRUNED])
