"""The ``contract`` check: does the backend get the inputs, and give the outputs, we think?

Declared inputs (names, dtypes, static axes) against what the tokenizer produces; integer casts
the runner base made; the outputs' count and shape against the labels; the label map of the
model config against the eval data and any label metadata the artifact carries; a static
sequence length that truncates eval inputs; and a probe: when the backend disagrees with the
reference on a small golden batch, the wiring faults we can name are undone **on the backend**
(swapped inputs fed back in the right places, permuted label columns put back in order) and the
one that restores agreement within the backend's own thresholds is the cause. Undoing a fault on
the backend, not replaying it on the reference, matters: torch and an exported graph treat an
all-zero attention mask differently, and an INT8 graph that lost its mask looks like the
reference fed a swapped mask (issue 19). int64 ids read as int32 bytes, a fault of a raw-buffer
path inside a runner, can only be replayed on the reference.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..checks import CheckContext
from ..records import CheckResult, Measure
from ..tasks.classification import classification
from .probes import (
    PROBE_SIZE,
    agreement,
    column_permutation,
    feed_candidates,
    input_notes,
    logits_of,
    static_length,
    undone_swap,
)

CHECK = "contract"


def check(gate: CheckContext, backend: str) -> CheckResult:
    if gate.config.task == "causal-lm":  # next-token logits: its own probe (lm_contract.py)
        from .lm_contract import check as lm_check

        return lm_check(gate, backend)
    if gate.config.task == "embeddings":  # vectors: its own probe (embedding_contract.py)
        from .embedding_contract import check as embedding_check

        return embedding_check(gate, backend)
    runner = gate.runner(backend)
    labels = gate.facts.labels
    specs = runner.input_specs()
    notes: list[str] = []
    causes: list[str] = []
    probe = gate.task.probe(runner, PROBE_SIZE)
    n = len(probe.rows)
    outputs = runner.infer(probe.feed)
    notes += input_notes(specs, runner.casts, runner.dropped_inputs)
    if len(outputs) > 1 and "logits" not in outputs:
        notes.append(f"{len(outputs)} outputs {sorted(outputs)} and none named 'logits': the "
                     "first is read as the logits")
    first = outputs["logits"] if "logits" in outputs else next(iter(outputs.values()))
    if first.ndim != 2 or first.shape[1] != len(labels):
        causes.append(f"output shape {tuple(first.shape)} does not match {len(labels)} labels "
                      f"(expected (batch, {len(labels)})); check the model's head and id2label")
    causes += _label_map(gate, runner)
    lengths = [len(e) for e in classification(gate.task, CHECK).encoded]
    shape_cause, shape_note = static_length(gate, specs, lengths)
    causes += shape_cause
    notes += shape_note
    measures: list[Measure] = []
    if not causes:
        out = np.asarray(first, dtype=np.float64)[:n]
        ref = _reference_rows(gate, probe)
        diff, top1 = agreement(ref, out)
        need = float(gate.thresholds(backend)["top1_agreement"])
        measures.append(Measure("probe_top1_agreement", top1, None, ">=", True, n))
        if top1 < need:
            cause, fixed = _explain(gate, backend, probe, ref, out, need)
            if cause:
                causes.append(f"{cause} (probe of {n} golden inputs: top-1 agreement "
                              f"{top1:.3f} as fed, {fixed:.3f} with the fault undone)")
            else:
                notes.append(f"the probe disagrees with the reference (top-1 {top1:.3f}, mean "
                             f"|diff| {diff:.3g}) and no wiring fault we know of explains it")
    verdict = "failed" if causes else "passed"
    reason = "; ".join(causes) if causes else (
        f"inputs {sorted(specs)} as the tokenizer makes them, {len(labels)} output columns, "
        "no wiring fault found")
    return CheckResult(backend, CHECK, verdict, reason, tuple(measures), n,
                       details={"causes": causes, "notes": notes,
                                "inputs": {k: [s.dtype, list(s.shape)] for k, s in specs.items()},
                                "outputs": {k: list(v.shape) for k, v in outputs.items()}})


def _reference_rows(gate: CheckContext, probe: Any) -> np.ndarray:
    """The reference's logits of the probe rows, from its (cached) run over the eval set."""
    run = gate.run(gate.config.reference)
    if run.logits is None:
        from ..errors import BackendUnavailable

        raise BackendUnavailable(f"the reference {run.name!r} could not run: {run.reason}")
    return np.asarray(run.logits, dtype=np.float64)[probe.rows]


def _explain(gate: CheckContext, backend: str, probe: Any, ref: np.ndarray, out: np.ndarray,
             need: float) -> tuple[str | None, float]:
    """The wiring fault that restores agreement, and the agreement it restores."""
    runner = gate.runner(backend)
    n = len(probe.rows)
    # Undone on the backend, the fault must leave only the backend's own precision noise: within
    # its mean |logit diff| threshold, or two broken outputs that agree on top-1 by accident (a
    # constant answer) would pass for a cause.
    close = float(gate.thresholds(backend)["mean_abs_logit"])
    perm = column_permutation(ref, out)
    if perm is not None and not np.array_equal(perm, np.arange(len(perm))):
        diff, top1 = agreement(ref, out[:, np.argsort(perm)])
        if top1 >= need and diff <= close:
            names = gate.facts.labels
            columns = [f"column {i} holds {names[j]!r} (id2label says {names[i]!r})"
                       for i, j in enumerate(perm) if i != j][:3]
            return (f"the label order is permuted: {'; '.join(columns)}; re-export with the "
                    "model's id2label or fix the label map", top1)
    specs = runner.input_specs()

    def undone(feed: dict[str, np.ndarray]) -> tuple[float, float] | None:
        diff, top1 = agreement(ref, logits_of(runner, {k: v for k, v in feed.items()
                                                       if k in specs}, n))
        return (diff, top1) if top1 >= need and diff <= close else None

    swap = undone_swap(runner, probe.feed, undone)
    if swap is not None:
        return swap
    found = _replayed_on_reference(gate, probe, out, need, close)
    if not found:
        return None, 0.0
    _, text, top1 = min(found)
    return text, top1


def _replayed_on_reference(gate: CheckContext, probe: Any, out: np.ndarray, need: float,
                           close: float) -> list[tuple[float, str, float]]:
    """Faults a feed cannot undo (int64 ids read as int32 bytes inside a runner): the reference
    fed the fault agrees with the backend. Runtimes differ where every position is masked, so
    the bar is also relative (a twentieth of the disagreement as fed), but never looser than
    0.1 logit stds."""
    thr = gate.thresholds(gate.config.reference)
    limit = min(close, 0.1 * float(thr["logit_scale"])) if "logit_scale" in thr else close
    ref = _reference_rows(gate, probe)
    bar = max(limit, 0.05 * agreement(ref, out)[0])
    reference = gate.runner(gate.config.reference)
    n, specs = len(probe.rows), reference.input_specs()
    found: list[tuple[float, str, float]] = []
    for text, transform in feed_candidates(probe.feed, swaps=False):
        moved = transform(dict(probe.feed))
        try:
            logits = logits_of(reference, {k: v for k, v in moved.items() if k in specs}, n)
        except Exception:
            continue
        diff, top1 = agreement(logits, out)
        if top1 >= need and diff <= bar:
            found.append((diff, text, top1))
    return found


def _label_map(gate: CheckContext, runner: Any) -> list[str]:
    """Label metadata an ONNX artifact carries (metadata_props id2label) against config.json."""
    path = getattr(runner, "model_file", None)
    if path is None:
        return []
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    if "id2label" not in meta:
        return []
    try:
        carried = [v for _, v in sorted((int(k), str(v))
                                        for k, v in json.loads(meta["id2label"]).items())]
    except (ValueError, AttributeError):
        return [f"the artifact's metadata id2label is not a JSON object of id -> label: "
                f"{meta['id2label'][:60]!r}"]
    labels = list(gate.facts.labels)
    if carried != labels:
        return [f"the artifact's label map {carried} differs from the model config's {labels}; "
                "re-export from the same checkpoint or fix config.json"]
    return []
