"""What the JSON report stores for the charts (report version 2): labels, per-backend drift
(histogram, flip matrix, threshold) and the logits of the inspected inputs.

Inputs named in ``inspect`` are looked up in the eval set; a text that is not there is run
through the reference and every backend that ran (one small batch each).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..session import GateSession
from . import drift


def drift_entry(gate: GateSession, name: str) -> dict[str, Any] | None:
    """Histogram and flip matrix of one backend, or None when it (or the reference) did not run."""
    ref, run = gate.run(gate.config.reference), gate.run(name)
    if ref.logits is None or run.logits is None:
        return None
    return {"histogram": drift.histogram(drift.row_diff(ref.logits, run.logits)),
            "flips": drift.flip_matrix(ref.logits, run.logits, len(gate.facts.labels))}


def inspected_inputs(gate: GateSession, failing: list[str]) -> list[dict[str, Any]]:
    """The named and worst inputs with every backend's logits (reference first)."""
    ref = gate.run(gate.config.reference)
    if ref.logits is None:
        return []
    names = [gate.config.reference, *gate.judged()]
    texts = [e.text for e in gate.examples]
    where = {t: i for i, t in reversed(list(enumerate(texts)))}
    named = list(dict.fromkeys(gate.config.inspect))
    outside = [t for t in named if t not in where]
    diffs = {n: drift.row_diff(ref.logits, logits) for n in gate.judged()
             if (logits := gate.run(n).logits) is not None}
    picked = drift.pick_inputs(diffs, failing, [where[t] for t in named if t in where])
    out: list[dict[str, Any]] = []
    labels = gate.labels
    for i, why in picked:
        out.append({"index": i, "text": texts[i],
                    "label": gate.facts.labels[labels[i]] if labels is not None else None,
                    "why": why, "logits": {n: _row(gate.run(n).logits, i) for n in names}})
    if outside:
        extra = {n: _run_texts(gate, n, outside) for n in names}
        for j, text in enumerate(outside):
            out.insert(0, {"index": None, "text": text, "label": None,
                           "why": ["named in inspect (not in the eval set)"],
                           "logits": {n: (drift.logits_row(v[j]) if isinstance(v, np.ndarray)
                                          else None) for n, v in extra.items()}})
    return out


def _row(logits: np.ndarray | None, i: int) -> list[float | None] | None:
    return drift.logits_row(logits[i]) if logits is not None else None


def _run_texts(gate: GateSession, name: str, texts: list[str]) -> np.ndarray | None:
    """Logits of texts outside the eval set; None when the backend cannot run here."""
    from ..tasks.text_classification import predict_logits

    if gate.run(name).status != "ok":
        return None
    cfg = gate.config
    try:
        logits, _ = predict_logits(gate.runner(name), gate.encoder.encode(texts),
                                   batch_size=cfg.batch_size, padding=cfg.padding,
                                   pad_id=gate.encoder.pad_id, max_length=cfg.max_length,
                                   num_labels=len(gate.facts.labels))
    except Exception:  # the report must still be written; the chart says it was not measured
        return None
    return logits
