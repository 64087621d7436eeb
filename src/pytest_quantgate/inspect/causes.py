"""Put the cause into a failing built-in record: what the diagnostic checks and localisation
found, as ``details["causes"]`` lines (the diagnosis shows them as ``cause:``).

Called by ``GateSession.results`` only when one of ``logits``/``topk``/``accuracy`` failed, so a
passing backend pays nothing. A finder that itself breaks adds no cause (the item of that check
shows its error).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..records import CheckResult
from ..session import GateSession

FINDERS = ("contract", "determinism", "int8-coverage", "calibration")


def explain(gate: GateSession, backend: str, records: dict[str, CheckResult]
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


def _localise(gate: GateSession, backend: str) -> list[str]:
    """Where an ONNX backend's graph first holds NaN/Inf, or first parts from the float graph."""
    from .localise import first_divergence, first_nonfinite, float_counterpart
    from .probes import make_probe

    runner = gate.runner(backend)
    model_file = getattr(runner, "model_file", None)
    run = gate.run(backend)
    if model_file is None or run.logits is None:
        return []
    try:
        bad = np.flatnonzero(~np.all(np.isfinite(run.logits), axis=1))
        if len(bad):
            from ..tasks.batching import make_feed

            items = [gate.encoded[i] for i in bad[:8]]
            feed = make_feed(items, gate.encoder.pad_id, max(len(i.ids) for i in items))
            found = first_nonfinite(model_file, feed)
            return [found + " (localised)"] if found else []
        float_file = float_counterpart(runner, gate)
        if float_file is None:
            return []
        found = first_divergence(model_file, float_file, make_probe(gate, runner).feed)
        return [found + " (localised)"] if found else []
    except Exception:  # localisation explains; it must never turn a diagnosis into an error
        return []
