"""Where in the graph a failing ONNX backend goes wrong.

Two questions, both answered by running the graph with its intermediate tensors as outputs on
one probe batch (as ONNX Runtime's ``qdq_loss_debug`` does):

- NaN/Inf: the first *computed* tensor, in graph order, that holds a non-finite value (FP16
  overflow in LayerNorm, a feed-forward block or softmax is the usual cause). Constants (an
  attention mask's -inf fill value) and tensors that are just as non-finite in the healthy
  float graph (the mask added to the scores) are skipped: a healthy FP16 export has them too;
- drift: the first computed tensor shared by name with the float (fp32 export) graph whose
  relative error ``||q - f|| / ||f||`` exceeds ``PARTS`` (about -20 dB SQNR).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

PARTS = 0.1


FP16_MAX = 65504.0  # the largest finite float16

def intermediates(model_file: Path, feed: Mapping[str, np.ndarray],
                  names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Every node output (or ``names``) of the graph, by name, on one feed; graph order kept."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_file))
    known = {o.name for o in model.graph.output}
    order = [o for n in model.graph.node for o in n.output if o]
    wanted = [o for o in order if names is None or o in names]
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(o)
                              for o in wanted if o not in known)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # names kept
    session = ort.InferenceSession(model.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    values = session.run(wanted, {k: v for k, v in feed.items() if k in inputs})
    return dict(zip(wanted, values, strict=True))


def first_nonfinite(model_file: Path, feed: Mapping[str, np.ndarray],
                    healthy: Path | None = None) -> str | None:
    """'tensor 'x' (output of LayerNormalization 'n')' holding the first NaN/Inf, or None.
    ``healthy``: the float graph the backend was built from, where known."""
    import onnx

    graph = onnx.load(str(model_file), load_external_data=False).graph
    producer = {o: n for n in graph.node for o in n.output}
    fixed = constants(graph)
    values = intermediates(model_file, feed)
    candidates = [name for name, value in values.items() if name not in fixed
                  and np.asarray(value).dtype.kind == "f" and not np.all(np.isfinite(value))]
    if candidates and healthy is not None:
        expected = _nonfinite_in(healthy, feed, candidates)
        candidates = [name for name in candidates if name not in expected]
    if not candidates:
        return None
    name = candidates[0]
    node = producer[name]
    kind = "Inf" if np.isinf(values[name]).any() else "NaN"
    return (f"the first non-finite tensor is {name!r} ({kind}, output of {node.op_type} "
            f"{node.name!r})")


def constants(graph: Any) -> set[str]:
    """Tensors whose values no graph input reaches: Constant and ConstantOfShape outputs (a
    fill value; only its shape follows the input) and what is computed from them and the
    initializers alone. A graph holds their values whatever it is fed."""
    known = {i.name for i in graph.initializer} | {""}
    fixed: set[str] = set()
    for node in graph.node:  # graph order is topological
        if node.op_type in ("Constant", "ConstantOfShape") or \
                all(i in known or i in fixed for i in node.input):
            fixed.update(o for o in node.output if o)
    return fixed


def _nonfinite_in(healthy: Path, feed: Mapping[str, np.ndarray], names: list[str]) -> set[str]:
    """Of ``names``, those that hold NaN/Inf in the healthy graph too (on the same feed)."""
    import onnx

    graph = onnx.load(str(healthy), load_external_data=False).graph
    present = {o for n in graph.node for o in n.output} & set(names)
    if not present:
        return set()
    values = intermediates(healthy, feed, sorted(present))
    return {name for name, value in values.items()
            if np.asarray(value).dtype.kind == "f" and not np.all(np.isfinite(value))}


def first_divergence(model_file: Path, float_file: Path, feed: Mapping[str, np.ndarray],
                     parts: float = PARTS) -> str | None:
    """The first tensor shared with the float graph whose relative error exceeds ``parts``."""
    import onnx

    float_graph = onnx.load(str(float_file), load_external_data=False).graph
    float_names = [o for n in float_graph.node for o in n.output if o]
    quant_graph = onnx.load(str(model_file), load_external_data=False).graph
    quant_names = {o for n in quant_graph.node for o in n.output}
    fixed = constants(float_graph)  # the same whatever the feed: never where a run parts
    shared = [n for n in float_names if n in quant_names and n not in fixed]
    if not shared:
        return None
    reference = intermediates(float_file, feed, shared)
    quantised = intermediates(model_file, feed, shared)
    producer = {o: n for n in float_graph.node for o in n.output}
    for name in shared:
        f = np.asarray(reference[name], dtype=np.float64)
        q = np.asarray(quantised[name], dtype=np.float64)
        if f.shape != q.shape or f.dtype.kind != "f" or f.size < 2:
            continue
        # Beyond float16's range the float graph holds sentinels (an attention mask's -3.4e38
        # where the fp16 export has -65504): different by construction, never the cause.
        finite = np.isfinite(f) & np.isfinite(q) & (np.abs(f) <= FP16_MAX)
        if not np.array_equal(np.isfinite(f), np.isfinite(q)) or not finite.any():
            error = float("inf")  # NaN/Inf on one side only
        else:
            norm = float(np.linalg.norm(f[finite]))
            gap = float(np.linalg.norm(q[finite] - f[finite]))
            error = gap / norm if norm else gap
        if not np.isfinite(error) or error > parts:
            node = producer[name]
            how = (f"relative error {error:.3g} > {parts}" if np.isfinite(error)
                   else "NaN/Inf on one side only")
            return (f"it parts from the float model first at {name!r} (output of "
                    f"{node.op_type} {node.name!r}): {how} "
                    f"(first of {len(shared)} tensors compared by name)")
    return None


def float_counterpart(runner: Any, gate: Any) -> Path | None:
    """The fp32 export an ONNX conversion was built from (None for a user's file)."""
    decl = gate.config.decl(runner.name)
    if decl.kind not in ("onnx-fp16", "onnx-int8-dynamic", "onnx-int8-static"):
        return None
    from ..backends.onnx_export import MODEL_FILE, fp32_export

    export = fp32_export(gate.context(), str(decl.options.get("exporter", "legacy")),
                         int(decl.options.get("opset", 17)))
    return Path(export.path) / MODEL_FILE
