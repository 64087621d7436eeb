"""The ``int8-coverage`` check: how much of an "INT8" backend really computes in integers.

ONNX: every matrix multiply (MatMul, Gemm, Conv and their integer forms) is counted once; it is
integer when it is an integer op (MatMulInteger, QLinearMatMul, DynamicQuantizeMatMul, QGemm,
ConvInteger, QLinearConv, QAttention...) or a float op whose inputs all come from
DequantizeLinear (a Q/DQ pair around it: ORT fuses those into integer kernels).
PyTorch: quantised Linear modules against float ones (from the build's details).
A runner that reports neither gets "missing", never "passed".
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
    passed = total > 0 and share >= limit
    measure = Measure("int8_share", share, limit, ">=", passed, total, n_float)
    listed = (f"integer {dict(sorted(integer.items())) or 'none'}, "
              f"float {dict(sorted(floating.items())) or 'none'}")
    details: dict[str, Any] = {"integer_ops": dict(integer), "float_ops": dict(floating)}
    if passed:
        return CheckResult(backend, CHECK, "passed", f"{n_int}/{total} matrix multiplies run in "
                           f"integer precision ({share:.0%}): {listed}", (measure,), total,
                           details=details)
    if n_int == 0:
        cause = (f"backend {backend!r} claims INT8 but none of its {total} matrix multiplies "
                 f"runs in integer precision ({listed}): the artifact was not quantised; "
                 "quantise it (onnx-int8-dynamic / onnx-int8-static) or declare its real "
                 "precision")
    else:
        cause = (f"only {n_int}/{total} matrix multiplies run in integer precision "
                 f"({share:.0%} < {limit:.0%}): {listed}; quantise more op types or lower "
                 "min_int8_share")
    return CheckResult(backend, CHECK, "failed", cause, (measure,), total,
                       details={**details, "causes": [cause]})
