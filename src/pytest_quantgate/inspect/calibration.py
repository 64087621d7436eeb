"""The ``calibration`` check of static INT8 (QDQ) backends: is the calibrated range wide enough?

Each activation ``QuantizeLinear`` of the quantised graph fixes a range,
``[(qmin - zero_point) * scale, (qmax - zero_point) * scale]``; values more than one step
outside it are clipped.
The float model is the same graph with its activation Q/DQ pairs bypassed (so tensor names match
without guessing), run with every quantised activation as an extra output over the golden set
and over the calibration set; per tensor, the share of values outside the range is the clipping
rate. The worst golden tensor is judged against ``max_clipping_rate``. The calibration set's
provenance (path, sha256, size) and its hazards (tiny, near-duplicate) go into the record.

It runs for every static INT8 ONNX model: the plugin's own ``onnx-int8-static`` builds and a
user's INT8 file (declared or inferred) whose graph carries activation ranges (issue 19: a file
calibrated elsewhere on 16 near-identical headlines failed only as generic drift). The ranges
are in the graph, so no calibration set is needed to judge them; with one, its own clipping is
shown beside the eval set's. A dynamically quantised file has no calibrated ranges: skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import CheckContext
from ..errors import ConfigError, problem
from ..records import CheckResult, Measure

CHECK = "calibration"
TINY = 100  # fewer calibration texts than this draw a warning (ORT suggests hundreds)
NEAR_DUPLICATE = 0.5  # mean pairwise word-set Jaccard similarity above this draws a warning
LM_WINDOWS = 256  # eval windows of a causal LM run through the float graph
_QRANGE = {"uint8": (0, 255), "int8": (-128, 127), "uint16": (0, 65535),
           "int16": (-32768, 32767)}


def activation_ranges(proto: Any) -> dict[str, tuple[float, float]]:
    """Calibrated range of every non-constant tensor that a QuantizeLinear quantises."""
    from onnx import numpy_helper

    inits = {t.name: t for t in proto.graph.initializer}
    ranges: dict[str, tuple[float, float]] = {}
    for node in proto.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in inits or len(node.input) < 3:
            continue
        if node.input[1] not in inits or node.input[2] not in inits:
            continue
        scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
        zero = numpy_helper.to_array(inits[node.input[2]])
        qmin, qmax = _QRANGE.get(zero.dtype.name, (0, 255))
        if scale.size != 1:
            continue  # per-channel activations: not produced by quantize_static's defaults
        z = float(zero.reshape(-1)[0])
        step = float(scale.item())
        # One step of slack: the zero point is rounded, so the range's ends move by up to half a
        # step and values that close round into the end bins rather than being clipped.
        ranges[node.input[0]] = ((qmin - z - 1) * step, (qmax - z + 1) * step)
    return ranges


def float_graph(proto: Any, outputs: Sequence[str]) -> Any:
    """The graph with activation Q->DQ pairs bypassed and ``outputs`` added as graph outputs."""
    import onnx

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    graph = model.graph
    quantised = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"}
    bypass = {n.output[0]: quantised[n.input[0]] for n in graph.node
              if n.op_type == "DequantizeLinear" and n.input[0] in quantised}
    for node in graph.node:  # the bypassed Q/DQ nodes stay, unused (cheap, and names stay)
        if node.op_type != "DequantizeLinear":
            for i, name in enumerate(node.input):
                if name in bypass:
                    node.input[i] = bypass[name]
    known = {o.name for o in graph.output}
    graph.output.extend(onnx.helper.make_empty_tensor_value_info(name)
                        for name in outputs if name not in known)
    return model


def clipping(session: Any, feeds: Iterator[dict[str, np.ndarray]],
             ranges: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Share of values outside its range, per tensor, over every batch."""
    names = list(ranges)
    inputs = {i.name for i in session.get_inputs()}
    outside = dict.fromkeys(names, 0)
    total = dict.fromkeys(names, 0)
    for feed in feeds:
        values = session.run(names, {k: v for k, v in feed.items() if k in inputs})
        for name, value in zip(names, values, strict=True):
            lo, hi = ranges[name]
            outside[name] += int(((value < lo) | (value > hi)).sum())
            total[name] += int(value.size)
    return {n: outside[n] / total[n] if total[n] else 0.0 for n in names}


def _feeds(gate: CheckContext) -> tuple[Iterator[dict[str, np.ndarray]],
                                        Iterator[dict[str, np.ndarray]], list[str], int,
                                        np.ndarray | None]:
    """The eval set's and the calibration set's feeds as the backend gets them, the calibration
    texts, how many eval inputs, and their labels. A causal LM's are its windows (the first
    ``LM_WINDOWS`` of the eval corpus: a long corpus's first windows show its ranges)."""
    from itertools import islice

    from ..tasks.batching import batches

    cfg = gate.config
    if cfg.task == "causal-lm":
        from ..tasks.language_model import CausalLM
        from ..tasks.lm_windows import iter_windows, window_batches

        lm = gate.task
        assert isinstance(lm, CausalLM)
        windows = list(islice(iter_windows(lm.source(), cfg.window, cfg.stride), LM_WINDOWS))
        texts = [d for d in lm.source(cfg.calibration).documents()] if cfg.calibration else []

        def lm_feeds(group: Sequence[Any]) -> Iterator[dict[str, np.ndarray]]:
            for _, feed in window_batches(group, batch_size=cfg.batch_size,
                                          pad_id=gate.encoder.pad_id):
                yield feed

        calibration = iter_windows(lm.source(cfg.calibration), cfg.window, cfg.stride) \
            if cfg.calibration else iter(())
        return lm_feeds(windows), lm_feeds(list(calibration)), texts, len(windows), None
    from ..tasks.classification import Classification
    from ..tasks.text_inputs import TextInputs

    def feeds(encoded: Sequence[Any]) -> Iterator[dict[str, np.ndarray]]:
        for batch in batches(encoded, batch_size=cfg.batch_size, padding="longest",
                             pad_id=gate.encoder.pad_id, max_length=cfg.max_length):
            yield batch.feed

    task = gate.task
    if not isinstance(task, TextInputs):
        raise ConfigError(problem(f"check {CHECK!r}", f"task {task.name!r}", "a task of "
                                  "texts, a causal LM's windows or an embedder's corpus",
                                  "register the check for the tasks it supports"))
    # an embedder's eval texts are its corpus and queries, with no labels
    texts = task.calibration_texts() if cfg.calibration else []
    labels = task.labels if isinstance(task, Classification) else None
    return (feeds(task.encoded), feeds(gate.encoder.encode(texts) if texts else []), texts,
            len(task.encoded), labels)


def similarity(texts: Sequence[str], cap: int = 300) -> float:
    """Mean pairwise Jaccard similarity of the texts' word sets (the first ``cap`` texts)."""
    sets = [frozenset(re.findall(r"\w+", t.lower())) for t in texts[:cap]]
    pairs = [(a, b) for a, b in combinations(sets, 2)]
    if not pairs:
        return 1.0
    return float(np.mean([len(a & b) / max(len(a | b), 1) for a, b in pairs]))


def check(gate: CheckContext, backend: str) -> CheckResult:
    import onnx
    import onnxruntime as ort

    cfg = gate.config
    runner = gate.runner(backend)
    model_file = getattr(runner, "model_file", None)
    if model_file is None:
        return CheckResult(backend, CHECK, "missing", f"runner {runner.kind!r} has no ONNX "
                           "model file whose calibrated ranges could be read")
    proto = onnx.load(str(model_file))
    ranges = activation_ranges(proto)
    if not ranges:
        if any(n.op_type == "DynamicQuantizeLinear" for n in proto.graph.node):
            return CheckResult(backend, CHECK, "skipped", f"{Path(model_file).name} quantises "
                               "its activations dynamically (a range per batch at run time): "
                               "there are no calibrated ranges to check")
        return CheckResult(backend, CHECK, "missing", f"{Path(model_file).name} has no "
                           "activation QuantizeLinear nodes, so it has no calibrated ranges")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(float_graph(proto, list(ranges)).SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    eval_feeds, calibration_feeds, texts, n, labels = _feeds(gate)
    golden = clipping(session, eval_feeds, ranges)
    calib = clipping(session, calibration_feeds, ranges) if texts else {}
    calib_worst = max(calib.values()) if calib else None
    worst = sorted(golden, key=lambda n: -golden[n])[:3]
    rate = golden[worst[0]]
    limit = float(gate.thresholds(backend)["max_clipping_rate"])
    sim = similarity(texts) if texts else 0.0
    notes = []
    if not texts:
        notes.append("no calibration set configured (calibration = ...): only the eval set's "
                     "clipping against the ranges in the graph is measured")
    elif len(texts) < TINY:
        notes.append(f"the calibration set is tiny: {len(texts)} texts (fewer than {TINY})")
    if sim > NEAR_DUPLICATE:
        notes.append(f"the calibration set is near-duplicate: mean pairwise word overlap "
                     f"{sim:.2f} (> {NEAR_DUPLICATE})")
    measures = [Measure("max_clipping_rate", rate, limit, "<=", rate <= limit, n,
                        sum(v > limit for v in golden.values())),
                Measure("mean_clipping_rate", float(np.mean(list(golden.values()))), None, "<=",
                        True, n)]
    if calib_worst is not None:
        measures.append(Measure("calibration_set_clipping_rate", calib_worst, None, "<=", True,
                                len(texts)))
    run = gate.run(backend)
    if run.logits is not None and labels is not None:
        acc = float((np.argmax(run.logits, axis=1) == labels).mean())
        measures.append(Measure("golden_accuracy", acc, None, ">=", True, n))
    listed = ", ".join(f"{name} {golden[name]:.1%}" for name in worst)
    details: dict[str, Any] = {
        "calibration_set": {"path": str(cfg.calibration), "rows": len(texts),
                            "sha256": gate.data_hashes.get("calibration"),
                            "mean_word_overlap": round(sim, 4)} if texts else None,
        "quantised_tensors": len(ranges), "notes": notes,
        "worst_tensors": {name: round(golden[name], 6) for name in worst},
        "slices": {"golden": {"n": n, "max_clipping_rate": rate},
                   **({"calibration": {"n": len(texts), "max_clipping_rate": calib_worst}}
                      if calib_worst is not None else {})},
    }
    if rate <= limit:
        return CheckResult(backend, CHECK, "passed", f"worst golden clipping {rate:.2%} over "
                           f"{len(ranges)} quantised tensors (worst: {listed})", tuple(measures),
                           n, details=details)
    hazard = f" ({'; '.join(notes)})" if notes else ""
    versus = (f" vs {calib_worst:.1%} on the calibration set" if calib_worst is not None
              else "")
    cause = (f"activations fall outside the calibrated INT8 ranges: {rate:.1%} of golden values "
             f"clipped in the worst tensor ({listed}){versus}{hazard}; calibrate on texts like "
             "the golden set")
    return CheckResult(backend, CHECK, "failed", cause + f"; max_clipping_rate {rate:.3g} > "
                       f"{limit:.3g}", tuple(measures), n, details={**details, "causes": [cause]})
