"""The terminal summary: the table, then the diagnosis of each failing backend."""

from __future__ import annotations

import pytest

from .state import State


def write_summary(reporter: pytest.TerminalReporter, st: State) -> None:
    from ..report.table import backend_verdict, render, rows

    gate = st.session()
    reporter.write_sep("=", "quantgate")
    cfg = gate.config
    reporter.write_line(f"reference {cfg.reference} on {len(gate.examples)} inputs of "
                        f"{cfg.eval.name}; model {cfg.model}")
    for line in render(rows(gate)):
        reporter.write_line(line)
    reporter.write_line("build s: * = loaded from the cache (the figure is the original build)")
    for name in gate.judged():
        word, reason = backend_verdict(gate, name)
        if word != "PASS" and reason:
            reporter.write_line(f"{name}: {word}: {reason}")
    if "json" in st.outcomes:
        reporter.write_line(f"quantgate JSON report: {st.outcomes['json']}")
