"""The ``contract`` check of a sentence embedder: inputs, the output the gate reads, a static
sequence length that truncates texts, and a probe of corpus texts.

The probe runs the backend on texts spread over the token lengths and compares its vectors,
pooled as the task pools them, with the reference's cached ones by cosine. Below the backend's
``min_cosine_mean`` it undoes each swap of two inputs **on the backend** (the pooling keeps the
tokenizer's own attention mask) and names the one that brings the vectors back within that
threshold. Pooling and permuted dimensions are named by the ``embedding`` check itself
(tasks/embedding_gate.py), from the reference's token vectors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import CheckContext
from ..records import CheckResult, Measure
from .probes import PROBE_SIZE, input_notes, static_length, undone_swap

CHECK = "contract"


def check(gate: CheckContext, backend: str) -> CheckResult:
    from ..tasks.embeddings import Embeddings
    from ..tasks.pooling import pooled_output

    task = gate.task
    assert isinstance(task, Embeddings)
    runner = gate.runner(backend)
    specs = runner.input_specs()
    notes = input_notes(specs, runner.casts, runner.dropped_inputs)
    causes, shape_notes = static_length(gate, specs, [len(e) for e in task.encoded])
    notes += shape_notes
    measures: list[Measure] = []
    details: dict[str, Any] = {"inputs": {k: [s.dtype, list(s.shape)] for k, s in specs.items()}}
    ref_run = gate.run(gate.config.reference)
    if not causes and ref_run.embedded is not None:
        probe = gate.task.probe(runner, PROBE_SIZE)
        n = len(probe.rows)
        mask = probe.feed["attention_mask"]

        def vectors(feed: dict[str, np.ndarray]) -> np.ndarray:
            out, _, named = pooled_output(runner.infer(feed), mask, task.pooling)
            details["output"] = named
            return np.asarray(out, dtype=np.float64)[:n]

        ref = np.asarray(ref_run.embedded.vectors, dtype=np.float64)[probe.rows]
        cosine = _mean_cosine(ref, vectors(probe.feed))
        measures.append(Measure("probe_cosine_mean", cosine, None, ">=", True, n))
        need = float(gate.thresholds(backend)["min_cosine_mean"])
        if cosine < need:

            def undone(feed: dict[str, np.ndarray]) -> tuple[float, float] | None:
                fixed = _mean_cosine(ref, vectors(feed))
                return (-fixed, fixed) if fixed >= need else None

            swap = undone_swap(runner, probe.feed, undone)
            if swap is not None:
                text, fixed = swap
                causes.append(f"{text} (probe of {n} corpus texts: mean cosine {cosine:.4f} as "
                              f"fed, {fixed:.4f} with the fault undone)")
            else:
                notes.append(f"the probe's vectors part from the reference's (mean cosine "
                             f"{cosine:.4f}) and no wiring fault we know of explains it")
    verdict = "failed" if causes else "passed"
    reason = "; ".join(causes) if causes else (
        f"inputs {sorted(specs)} as the tokenizer makes them, output "
        f"{details.get('output', '?')!r} read as the vector, no wiring fault found")
    return CheckResult(backend, CHECK, verdict, reason, tuple(measures),
                       details={**details, "causes": causes, "notes": notes})


def _mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over rows of cos(a_i, b_i); a row with NaN counts as -1."""
    from ..tasks.embedding_gate import cosines

    return float(np.nan_to_num(cosines(a, b), nan=-1.0).mean())
