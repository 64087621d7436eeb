"""The ``determinism`` check: the same batch twice gives the same logits.

A model exported or converted with dropout left on (``model.train()`` before export, a
``training=True`` flag in a graph) answers differently on every call; its drift from the
reference then looks like a precision problem. Two calls on one probe batch tell them apart.
"""

from __future__ import annotations

import numpy as np

from ..checks import CheckContext
from ..records import CheckResult, Measure
from .probes import PROBE_SIZE, logits_of

CHECK = "determinism"


def check(gate: CheckContext, backend: str) -> CheckResult:
    runner = gate.runner(backend)
    probe = gate.task.probe(runner, PROBE_SIZE)
    n = len(probe.rows)
    first = logits_of(runner, {k: v.copy() for k, v in probe.feed.items()}, n)
    second = logits_of(runner, {k: v.copy() for k, v in probe.feed.items()}, n)
    both = np.isfinite(first) & np.isfinite(second)
    same_nan = (~np.isfinite(first)) & (~np.isfinite(second))
    diff = np.where(both, np.abs(first - second), np.where(same_nan, 0.0, np.inf))
    worst = float(diff.max()) if diff.size else 0.0
    rows = int((diff.max(axis=1) > 0).sum()) if diff.size else 0
    limit = float(gate.thresholds(backend)["max_rerun_diff"])
    passed = worst <= limit
    measure = Measure("max_rerun_diff", worst, limit, "<=", passed, n, rows)
    if passed:
        return CheckResult(backend, CHECK, "passed",
                           f"two runs of {n} golden inputs differ by at most {worst:.3g}",
                           (measure,), n)
    cause = (f"the backend is not deterministic: the same {n} inputs twice differ by up to "
             f"{worst:.3g} (on {rows}/{n} rows); dropout left on at export (call model.eval() "
             "before exporting) is the usual cause")
    return CheckResult(backend, CHECK, "failed", cause + f"; max_rerun_diff {worst:.3g} > "
                       f"{limit:.3g}", (measure,), n, details={"causes": [cause]})
