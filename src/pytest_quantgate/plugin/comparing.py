"""``--quantgate-compare BASELINE`` and ``--quantgate-update`` as pytest meets them: the
baseline is read once at start-up (a missing or foreign file stops the run with one line), the
terminal shows the comparison, and the controller (or a serial run) accepts at the end. The
comparison itself is core, without pytest (``compare/comparison.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .state import State


def setup_compare(config: pytest.Config, st: State) -> None:
    """Read the baseline named by ``compare`` / ``--quantgate-compare``; UsageError if unusable."""
    update = bool(config.getoption("quantgate_update", False))
    if st.config is None:
        if update:
            raise pytest.UsageError("quantgate: --quantgate-update: got no quantgate "
                                    "configuration, expected a [tool.quantgate] table; add one")
        return
    path = st.config.compare
    if path is None:
        if update:
            raise pytest.UsageError(
                "quantgate: --quantgate-update: got no baseline to rewrite, expected "
                "--quantgate-compare PATH (or compare = \"...\" in [tool.quantgate]); add it")
        return
    from ..compare.comparison import open_comparison
    from ..compare.tolerances import Tolerances
    from ..errors import QuantgateError

    cli = dict(config.getoption("quantgate_tolerance", None) or [])
    try:
        if st.config.latency:  # latency is judged with scipy.stats: say so now, not at the end
            from ..compare.judge import require_scipy

            require_scipy()
        st.compare = open_comparison(path, Tolerances.build(st.config.tolerances, cli),
                                     update=update)
    except QuantgateError as exc:
        raise pytest.UsageError(f"quantgate: {exc}") from None


def accept(st: State) -> Path | None:
    """Rewrite the baseline with this run's snapshot (the controller or a serial run only)."""
    cmp, snap = st.compare, st.snapshot
    if cmp is None or not cmp.update or snap is None:  # (finish() runs on no worker)
        return None
    few = cmp.accept(snap)
    if few:
        st.outcomes["few_runs"] = few
    return cmp.path


def write_comparison(reporter: pytest.TerminalReporter, st: State) -> None:
    cmp = st.compare
    if cmp is None:
        return
    from ..compare.judge import Comparison, describe_source
    from ..compare.render import render_comparison

    reporter.write_line("")
    if cmp.baseline is None:
        reporter.write_line(f"quantgate baseline: none yet at {cmp.path}; this run records it")
    else:
        result = Comparison(describe_source(cmp.baseline),
                            [d for ds in cmp.deltas.values() for d in ds], list(cmp.warnings))
        busy = [d for d in result.deltas if "oversubscribed" in d.note]
        if busy:
            result.notes.append(f"latency of {len(busy)} item(s) not judged: "
                                + busy[0].note.split("; machine ")[-1].replace(
                                    "oversubscribed", "machine oversubscribed", 1))
        cleared = [f"{d.backend} {d.check} {d.worse_by:+.1%} (second {d.retimed:+.1%})"
                   for d in result.deltas if d.retimed is not None and not d.regressed]
        if cleared:
            result.notes.append(f"latency that looked slower but a second timing did not "
                                f"confirm: {', '.join(cleared)}")
        lines = render_comparison(result, show_all=False)
        if cmp.update and result.regressions:
            lines[-1] += " (accepted: --quantgate-update)"
        for line in lines:
            reporter.write_line(line)
    if "baseline" in st.outcomes:
        reporter.write_line(f"quantgate baseline rewritten: {st.outcomes['baseline']}")
    if "baseline_error" in st.outcomes:
        reporter.write_line(st.outcomes["baseline_error"])
    if "few_runs" in st.outcomes:
        reporter.write_line(f"quantgate baseline: {st.outcomes['few_runs']}")
