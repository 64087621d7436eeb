"""Put the cause into a failing built-in record: what the diagnostic checks and localisation
found, as ``details["causes"]`` lines (the diagnosis shows them as ``cause:``).

Called by ``GateSession.results`` only when one of the task's built-in checks failed, so a
passing backend pays nothing. A finder that itself breaks adds no cause (the item of that check
shows its error).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..checks import CheckContext
from ..records import CheckResult

FINDERS = ("contract", "determinism", "int8-coverage", "calibration", "saturation")


def explain(gate: CheckContext, backend: str, records: dict[str, CheckResult]
            ) -> dict[str, CheckResult]:
    if not any(r.verdict == "failed" for r in records.values()):
        return records
    from ..checks import checks_for

    causes: list[str] = []
    applicable = checks_for(gate, backend)
    for check in FINDERS:
        if check in applicable:
            found = gate.check(backend, check)
            if found.verdict == "failed":
                causes += [f"{c} ({check} check)" for c in found.details.get("causes", ())]
    causes += _localise(gate, backend)
    if not causes:
        return records
    return {name: replace(r, details={**r.details, "causes": causes})
            if r.verdict == "failed" else r for name, r in records.items()}


def _localise(gate: CheckContext, backend: str) -> list[str]:
    """Where an ONNX backend's graph first holds NaN/Inf, or first parts from the float graph."""
    from .localise import first_divergence, first_nonfinite, float_counterpart
    from .probes import PROBE_SIZE

    runner = gate.runner(backend)
    model_file = getattr(runner, "model_file", None)
    run = gate.run(backend)
    # a classifier's logits or an embedder's vectors, one row per eval input
    outputs = run.logits if run.logits is not None else \
        run.embedded.vectors if run.embedded is not None else None
    if model_file is None or outputs is None:
        return []
    try:
        bad = np.flatnonzero(~np.all(np.isfinite(outputs.reshape(len(outputs), -1)), axis=1))
        feed = gate.task.rows_feed(bad[:8].tolist()) if len(bad) else None
        if feed is not None:
            found = first_nonfinite(model_file, feed, float_counterpart(runner, gate))
            return [found + " (localised)"] if found else []
        float_file = float_counterpart(runner, gate)
        if float_file is None:
            return []
        found = first_divergence(model_file, float_file, gate.task.probe(runner, PROBE_SIZE).feed)
        return [found + " (localised)"] if found else []
    except Exception:  # localisation explains; it must never turn a diagnosis into an error
        return []
