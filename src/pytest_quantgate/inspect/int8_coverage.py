"""The ``int8-coverage`` check: how much of an "INT8" backend really computes in integers.

ONNX: every matrix multiply (MatMul, Gemm, Conv and their integer forms) is counted once; it is
integer when it is an integer op (MatMulInteger, QLinearMatMul, DynamicQuantizeMatMul, QGemm,
ConvInteger, QLinearConv, QAttention...) or a float op whose inputs all come from
DequantizeLinear (a Q/DQ pair around it: ORT fuses those into integer kernels).
PyTorch: quantised Linear modules against float ones (from the build's details).
A runner that reports neither gets "missing", never "passed".

Two findings, kept apart (issue 19): the **recipe's share** (how many matrix multiplies the
artifact marks for integer execution) is information, since quantising only some op types is a
choice whose quality the drift checks judge; it fails only below ``min_int8_share`` (default:
anything at all, so an "INT8" file with nothing quantised fails). **Fallback** fails: a matrix
multiply the graph marks for integer execution (Q/DQ around it) that ONNX Runtime leaves as a
float MatMul on dequantised inputs in the graph it actually runs (its optimised graph), or, for
a TensorRT engine, a matrix-multiply layer its engine inspector reports above INT8 where the
graph marks every one for integer execution.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from ..checks import CheckContext
from ..records import CheckResult, Measure

CHECK = "int8-coverage"
FLOAT_MATMULS = ("MatMul", "Gemm", "Conv", "Attention")
INTEGER_MATMULS = ("MatMulInteger", "QLinearMatMul", "DynamicQuantizeMatMul", "QGemm",
                   "ConvInteger", "QLinearConv", "QAttention", "MatMulIntegerToFloat",
                   "DynamicQuantizeLSTM", "QOrderedMatMul", "MatMulNBits")


def onnx_counts(model_file: str) -> tuple[Counter[str], Counter[str]]:
    """(integer, float) matrix-multiply ops by type in an ONNX graph (weights not loaded)."""
    import onnx

    graph = onnx.load(model_file, load_external_data=False).graph
    produced_by = {o: n.op_type for n in graph.node for o in n.output}
    integer: Counter[str] = Counter()
    floating: Counter[str] = Counter()
    for node in graph.node:
        if node.op_type in INTEGER_MATMULS:
            integer[node.op_type] += 1
        elif node.op_type in FLOAT_MATMULS:
            inputs = [i for i in node.input[:2] if i]
            if inputs and all(produced_by.get(i) == "DequantizeLinear" for i in inputs):
                integer[f"{node.op_type} (Q/DQ)"] += 1
            else:
                floating[node.op_type] += 1
    return integer, floating


def fallback_ops(model_file: str) -> Counter[str] | None:
    """Matrix multiplies that ONNX Runtime's optimised graph (what the CPU provider runs) still
    computes in float on DequantizeLinear outputs: marked for integer execution, not fused into
    an integer kernel. None when the optimised graph cannot be written."""
    import tempfile

    import onnx
    import onnxruntime as ort

    from ..backends.onnx_runner import session_options

    with tempfile.TemporaryDirectory(prefix="quantgate-ort-") as folder:
        path = f"{folder}/optimised.onnx"
        opts = session_options(ort)
        opts.optimized_model_filepath = path
        try:
            ort.InferenceSession(model_file, opts, providers=["CPUExecutionProvider"])
            graph = onnx.load(path, load_external_data=False).graph
        except Exception:  # a check explains; it never turns a run into an error
            return None
    produced_by = {o: n.op_type for n in graph.node for o in n.output}
    left: Counter[str] = Counter()
    for node in graph.node:
        inputs = [i for i in node.input[:2] if i]
        if node.op_type in FLOAT_MATMULS and inputs and \
                all(produced_by.get(i) == "DequantizeLinear" for i in inputs):
            left[node.op_type] += 1
    return left


# TensorRT layer types that multiply matrices (the engine inspector's LayerType)
ENGINE_MATMULS = ("MatrixMultiply", "Gemm", "Convolution", "FullyConnected", "CaskGemm",
                  "CaskConvolution", "Myelin")


def engine_fallback(details: Mapping[str, Any], floating: Counter[str]) -> Counter[str] | None:
    """Matrix-multiply layers a TensorRT engine ran above INT8 (its inspector's
    ``non_int8_layer_types``, trt_inspect.summarize) where the ONNX graph it was built from marks
    every matrix multiply for integer execution: those fell back. None when the engine reports no
    layer precisions, or when the graph leaves some in float on purpose (the layers cannot then
    be told from the recipe's choice)."""
    above = details.get("non_int8_layer_types")
    if not isinstance(above, Mapping) or floating:
        return None
    return Counter({str(kind): int(n) for kind, n in above.items()
                    if any(word in str(kind) for word in ENGINE_MATMULS)})


def counts_of(details: Mapping[str, Any], model_file: str | None
              ) -> tuple[Counter[str], Counter[str]] | None:
    if model_file is not None:
        return onnx_counts(model_file)
    if "quantized_linear" in details:  # torch-int8-dynamic
        return (Counter({"quantized Linear": int(details["quantized_linear"])}),
                Counter({"Linear": int(details.get("float_linear", 0))}))
    return None


def check(gate: CheckContext, backend: str) -> CheckResult:
    runner = gate.runner(backend)
    model_file = getattr(runner, "model_file", None)
    counts = counts_of(runner.describe().details, str(model_file) if model_file else None)
    if counts is None:
        return CheckResult(backend, CHECK, "missing",
                           f"runner {runner.kind!r} reports no op precisions, so its INT8 "
                           "coverage cannot be counted")
    integer, floating = counts
    n_int, n_float = sum(integer.values()), sum(floating.values())
    total = n_int + n_float
    share = n_int / total if total else 0.0
    limit = float(gate.thresholds(backend)["min_int8_share"])
    share_ok = total > 0 and n_int > 0 and share >= limit
    listed = (f"integer {dict(sorted(integer.items())) or 'none'}, "
              f"float {dict(sorted(floating.items())) or 'none'}")
    measures = [Measure("int8_share", share, limit, ">=", share_ok, total, n_float)]
    details: dict[str, Any] = {"integer_ops": dict(integer), "float_ops": dict(floating)}
    causes: list[str] = []
    if n_int == 0:
        causes.append(f"backend {backend!r} claims INT8 but none of its {total} matrix "
                      f"multiplies runs in integer precision ({listed}): the artifact was not "
                      "quantised; quantise it (onnx-int8-dynamic / onnx-int8-static) or declare "
                      "its real precision")
    elif not share_ok:
        # never "quantise more": a recipe may leave ops in float because they drift, and the
        # drift checks, not this count, say whether it does
        causes.append(f"only {n_int}/{total} matrix multiplies are marked for integer "
                      f"execution ({share:.0%} < min_int8_share {limit:.0%}): {listed}")
    details_of_run = runner.describe().details
    engine = engine_fallback(details_of_run, floating) if n_int else None
    fallback = engine if engine is not None else (
        fallback_ops(str(model_file)) if model_file and n_int and runner.kind.startswith("onnx")
        else None)
    if fallback is not None:
        n_back = sum(fallback.values())
        details["fallback_ops"] = dict(fallback)
        measures.append(Measure("int8_fallback", float(n_back), 0.0, "<=", n_back == 0, n_int,
                                n_back))
        if n_back:
            if engine is not None:
                causes.append(f"{n_back} matrix-multiply layers of the TensorRT engine run "
                              f"above INT8 ({dict(sorted(fallback.items()))}, from its engine "
                              f"inspector) although the graph marks all {n_int} for integer "
                              "execution: silent fallback; check the builder's INT8 flag and "
                              "that TensorRT has INT8 kernels for these layers")
            else:
                causes.append(f"{n_back} of the {n_int} matrix multiplies the graph marks for "
                              "integer execution run in float in ONNX Runtime (DequantizeLinear "
                              f"-> {', '.join(sorted(fallback))} left unfused in its optimised "
                              "graph): silent fallback; check the Q/DQ types and axes ORT "
                              "supports for these ops, or quantise with its QOperator format")
    if causes:
        return CheckResult(backend, CHECK, "failed", "; ".join(causes), tuple(measures), total,
                           details={**details, "causes": causes})
    ran = "" if fallback is None else ("; the engine runs every one of them in INT8"
                                        if engine is not None else
                                        "; ONNX Runtime runs every one of them in integer kernels")
    return CheckResult(backend, CHECK, "passed", f"the recipe marks {n_int}/{total} matrix "
                       f"multiplies for integer precision ({share:.0%}): {listed}{ran}",
                       tuple(measures), total, details=details)
