"""The ``contract`` check of a causal LM: inputs, the logits' shape, a static sequence length
against the window, and a probe of the corpus's first windows.

The probe runs the backend and the reference runner on the same windows and compares the most
likely next token at every real (unmasked) position. Below the backend's ``top1_agreement`` it
undoes each swap of two inputs on the backend (as the classification contract does, issue 19)
and names the one that restores agreement within the backend's own ``mean_abs_logit``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..checks import CheckContext
from ..records import CheckResult, Measure
from .probes import PROBE_SIZE, input_notes, undone_swap

CHECK = "contract"


def check(gate: CheckContext, backend: str) -> CheckResult:
    runner = gate.runner(backend)
    specs = runner.input_specs()
    notes = input_notes(specs, runner.casts, runner.dropped_inputs)
    causes = _static_window(gate, specs)
    measures: list[Measure] = []
    details: dict[str, Any] = {"inputs": {k: [s.dtype, list(s.shape)] for k, s in specs.items()}}
    if not causes:
        probe = gate.task.probe(runner, PROBE_SIZE)
        out = _logits(runner, probe.feed)
        vocab = gate.facts.vocab_size
        details["outputs"] = {"logits": list(out.shape)}
        if out.ndim != 3 or (vocab and out.shape[2] != vocab):
            causes.append(f"output shape {tuple(out.shape)} is not (batch, sequence, {vocab}) "
                          "next-token logits over the tokenizer's vocabulary; export the LM "
                          "head's logits for every position")
        else:
            mask = probe.feed["attention_mask"].astype(bool)[:out.shape[0], :out.shape[1]] \
                if "attention_mask" in probe.feed else np.ones(out.shape[:2], dtype=bool)
            ref = _logits(gate.runner(gate.config.reference), probe.feed)[:out.shape[0]]
            diff, top1 = _agreement(ref, out, mask)
            positions = int(mask.sum())
            measures.append(Measure("probe_top1_agreement", top1, None, ">=", True, positions))
            thr = gate.thresholds(backend)
            need, close = float(thr["top1_agreement"]), float(thr["mean_abs_logit"])
            if top1 < need:

                def undone(feed: dict[str, np.ndarray]) -> tuple[float, float] | None:
                    d, t = _agreement(ref, _logits(runner, feed), mask)
                    return (d, t) if t >= need and d <= close else None

                swap = undone_swap(runner, probe.feed, undone)
                if swap is not None:
                    text, fixed_top1 = swap
                    causes.append(f"{text} (probe of {len(probe.rows)} windows, {positions} "
                                  f"positions: next-token agreement {top1:.3f} as fed, "
                                  f"{fixed_top1:.3f} with the fault undone)")
                else:
                    notes.append(f"the probe disagrees with the reference (next-token top-1 "
                                 f"{top1:.3f}, mean |diff| {diff:.3g}) and no wiring fault we "
                                 "know of explains it")
    verdict = "failed" if causes else "passed"
    reason = "; ".join(causes) if causes else (
        f"inputs {sorted(specs)} as the tokenizer makes them, next-token logits over "
        f"{gate.facts.vocab_size} tokens, no wiring fault found")
    return CheckResult(backend, CHECK, verdict, reason, tuple(measures),
                       details={**details, "causes": causes, "notes": notes})


def _static_window(gate: CheckContext, specs: Any) -> list[str]:
    """A static sequence axis shorter than the window: every window longer than it cannot be
    fed (the pass refuses it), so the configuration, not the data, is wrong."""
    spec = specs.get("input_ids")
    window = gate.config.window
    if spec is None or not spec.is_static(1) or int(spec.shape[1]) >= window:
        return []
    static = int(spec.shape[1])
    return [f"input 'input_ids' has a static sequence length of {static} tokens, shorter than "
            f"the window of {window}: set window = {static} (and stride below it), or re-export "
            "with a dynamic sequence axis"]


def _logits(runner: Any, feed: dict[str, np.ndarray]) -> np.ndarray:
    outputs = runner.infer(feed)
    logits = outputs["logits"] if "logits" in outputs else next(iter(outputs.values()))
    return np.asarray(logits, dtype=np.float64)


def _agreement(ref: np.ndarray, out: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(mean |logit diff|, next-token top-1 agreement) over the real positions."""
    n = min(len(ref), len(out), len(mask))
    ref, out, mask = ref[:n], out[:n], mask[:n]
    ok = mask & np.isfinite(out).all(axis=2)
    if not ok.any():
        return float("inf"), 0.0
    same = (np.argmax(ref, axis=2) == np.argmax(np.nan_to_num(out, nan=-np.inf), axis=2))
    diff = float(np.abs(ref[ok] - out[ok]).mean())
    return diff, float(same[ok].sum() / mask.sum())
