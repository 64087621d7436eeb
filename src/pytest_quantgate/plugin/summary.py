"""The terminal summary: the table, then the diagnosis of each failing backend."""

from __future__ import annotations

import pytest

from .state import State


def write_summary(reporter: pytest.TerminalReporter, st: State) -> None:
    from ..report.table import backend_verdict, degraded, header, render, rows

    gate = st.session()
    reporter.write_sep("=", "quantgate")
    cfg = gate.config
    ref = gate.run(cfg.reference)
    how = ("outputs loaded from the cache, not recomputed" if ref.reference_cached
           else f"outputs computed in {ref.seconds:.1f} s and cached" if ref.status == "ok"
           else ref.status)
    what = "inputs"
    if gate.is_lm and ref.lm is not None:
        what = (f"documents ({ref.lm.tokens} tokens scored, window {cfg.window}, stride "
                f"{cfg.stride}, perplexity {ref.lm.ppl:.4g})")
    reporter.write_line(f"reference {cfg.reference} on {gate.n_inputs} {what} of "
                        f"{cfg.eval.name} ({how}); model {cfg.model}")
    for line in render(rows(gate), header(gate)):
        reporter.write_line(line)
    reporter.write_line("build s: * = loaded from the cache (the figure is the original build); "
                        "checks p/f/s = passed/failed/skipped")
    reporter.write_line(degraded(gate))
    for name in gate.judged():
        word, reason = backend_verdict(gate, name)
        if word != "PASS" and reason:
            reporter.write_line(f"{name}: {word}: {reason}")
    for name in gate.judged():
        # Expected failures show no FAILURES entry, so their diagnosis is told here.
        failed = [r for r in gate.results(name).values() if r.verdict == "failed"]
        if name in cfg.expect_fail and failed:
            from ..report.diagnosis import diagnosis

            topk = [r for r in failed if r.check in ("topk", "ppl")]
            reporter.write_line("")
            reporter.write_line("(expected) " + diagnosis((topk or failed)[0]))
    if "json" in st.outcomes:
        reporter.write_line(f"quantgate JSON report: {st.outcomes['json']}")
    if "html" in st.outcomes:
        reporter.write_line(f"quantgate HTML report: {st.outcomes['html']}")
    from .comparing import write_comparison
    from .latency import write_latency

    write_latency(reporter, st)
    write_comparison(reporter, st)
