"""The precision of a user's ONNX file (kind ``onnx``), read from its graph when its declaration
names none.

Thresholds follow a backend's precision, and a user's file may be anything: judged against fp32
thresholds, a dynamic-INT8 file fails on drift it is expected to have. So at config time the
graph is read (``onnx.load`` without external data: op types, initializer dtypes and shapes,
never the weights' bytes) and an integer compute op means ``int8``; float16 (bfloat16) weights
making up most of the float weights mean ``fp16`` (``bf16``); anything else stays ``fp32``. A
declared ``precision`` always wins. Light on purpose: ``onnx`` is imported only inside
``infer_precision``, and not at all where the ``onnx`` extra is missing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Ops that compute in integers. The standard ones, and ONNX Runtime's fused contrib
# (com.microsoft) forms that its quantizer and graph optimiser write in their place.
INTEGER_OPS: tuple[str, ...] = (
    "MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv", "DynamicQuantizeLinear",
    "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QGemm", "QAttention",
)
# Float ops that ORT runs as integer kernels when an int8/uint8 DequantizeLinear feeds them (QDQ)
QDQ_CONSUMERS: tuple[str, ...] = ("MatMul", "Gemm", "Conv")
# Ops between a DequantizeLinear and its consumer that change no values (exporters put a
# Transpose on a weight).
_PASS_THROUGH = frozenset({"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})

# onnx.TensorProto data types, by number: the module need not import onnx to name them.
_UINT8, _INT8, _FLOAT, _FLOAT16, _DOUBLE, _BFLOAT16 = 2, 3, 1, 10, 11, 16
_INT8_TYPES = frozenset({_UINT8, _INT8})
_FLOAT_TYPES = {_FLOAT: "float32", _FLOAT16: "float16", _DOUBLE: "float64", _BFLOAT16: "bfloat16"}
_HALF = {_FLOAT16: "fp16", _BFLOAT16: "bf16"}

OVERRIDE = 'declare precision = "..." in its [[tool.quantgate.backend]] table to override'


@dataclass(frozen=True)
class InferredPrecision:
    """What the graph says a user's file computes in, and why."""

    precision: str  # "fp32" | "fp16" | "bf16" | "int8"
    inferred: bool  # False: the graph could not be read, and precision is the fp32 fallback
    why: str  # the evidence ("24 MatMulInteger"), or why it could not be read

    def header_line(self, name: str) -> str:
        if self.inferred:
            return f"{name} precision {self.precision}, inferred from its graph ({self.why}); {OVERRIDE}"
        return (f"{name} precision {self.precision}: could not be inferred from its graph "
                f"({self.why}), so fp32 thresholds apply; {OVERRIDE}")

    def to_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "inferred": self.inferred, "why": self.why}


def user_file(raw: object, base_dir: Path) -> Path:
    """The path of a user's file as its ``path`` option names it: relative to ``base_dir``
    (the pyproject's directory), ``~`` expanded."""
    path = Path(str(raw)).expanduser()
    return path if path.is_absolute() else Path(base_dir) / path


def infer_precision(path: Path) -> InferredPrecision:
    """The precision of the ONNX file at ``path``; fp32, not inferred, when it cannot be read."""
    try:
        import onnx
    except ImportError:
        return InferredPrecision("fp32", False, "onnx is not installed here; pip install "
                                                "'pytest-quantgate[onnx]'")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # any parse failure: the runner reports a broken file itself
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return InferredPrecision("fp32", False, f"{path.name} is not a readable ONNX model: {first}")
    return precision_of_model(proto)


def precision_of_model(proto: Any) -> InferredPrecision:
    """``infer_precision`` of a loaded ``onnx.ModelProto``."""
    graphs = list(_graphs(proto.graph))
    nodes = [n for g in graphs for n in g.node] + [n for f in proto.functions for n in f.node]
    integer = Counter(n.op_type for n in nodes if n.op_type in INTEGER_OPS)
    qdq = _qdq_consumers(graphs, nodes)
    if integer or qdq:
        parts = [f"{c} {op}" for op, c in sorted(integer.items(), key=lambda kv: (-kv[1], kv[0]))]
        parts += [f"{c} {op} with int8 Q/DQ inputs" for op, c in sorted(qdq.items())]
        return InferredPrecision("int8", True, ", ".join(parts))
    weights = _float_weights(graphs, nodes)
    total = sum(weights.values())
    if not total:
        return InferredPrecision("fp32", True, "no integer ops and no float weights")
    for dtype, precision in _HALF.items():
        # "Most": a half-precision model keeps a few float32 tensors (LayerNorm, the I/O casts)
        if weights[dtype] * 2 > total:
            return InferredPrecision(precision, True, f"{_FLOAT_TYPES[dtype]} weights: "
                                     f"{weights[dtype] / total:.0%} of {total:,} elements")
    share = ", ".join(f"{_FLOAT_TYPES[t]} {c / total:.0%}" for t, c in weights.most_common())
    return InferredPrecision("fp32", True, f"no integer ops; float weights of {total:,} "
                             f"elements: {share}")


def _graphs(graph: Any) -> Iterator[Any]:
    """The graph and every subgraph (If/Loop/Scan bodies) in it."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _graphs(attr.g)
            for sub in attr.graphs:
                yield from _graphs(sub)


def _qdq_consumers(graphs: list[Any], nodes: list[Any]) -> Counter[str]:
    """MatMul/Gemm/Conv nodes fed (through pass-through ops) by an int8/uint8 DequantizeLinear."""
    produced_by = {out: n for n in nodes for out in n.output if out}
    types: dict[str, int] = {}
    for g in graphs:
        types.update((t.name, t.data_type) for t in g.initializer)
        for value in [*g.input, *g.output, *g.value_info]:
            if value.type.HasField("tensor_type"):
                types[value.name] = value.type.tensor_type.elem_type
    for n in nodes:
        if n.op_type == "Constant" and n.output:
            for attr in n.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    types[n.output[0]] = attr.t.data_type

    def elem_type(name: str) -> int | None:
        if name in types:
            return types[name]
        node = produced_by.get(name)
        if node is not None and node.op_type == "QuantizeLinear":
            return quantized_type(node)
        return None

    def quantized_type(node: Any) -> int | None:
        """The integer type of a QuantizeLinear's output or a DequantizeLinear's input: that of
        the zero point; without one, QuantizeLinear's output_dtype (uint8 by default) or the
        DequantizeLinear's input."""
        if len(node.input) > 2 and node.input[2]:
            return elem_type(node.input[2])
        if node.op_type == "QuantizeLinear":
            dtype = next((a.i for a in node.attribute if a.name == "output_dtype"), 0)
            return dtype or _UINT8
        return elem_type(node.input[0]) if node.input else None

    def from_int8_dq(name: str) -> bool:
        for _ in range(8):  # a few pass-through ops at most: no walk through the whole graph
            node = produced_by.get(name)
            if node is None:
                return False
            if node.op_type == "DequantizeLinear":
                return quantized_type(node) in _INT8_TYPES
            if node.op_type not in _PASS_THROUGH or not node.input:
                return False
            name = node.input[0]
        return False

    return Counter(n.op_type for n in nodes if n.op_type in QDQ_CONSUMERS
                   and any(from_int8_dq(i) for i in n.input[:2] if i))


def _float_weights(graphs: list[Any], nodes: list[Any]) -> Counter[int]:
    """Elements of float weights by data type: initializers, Constant tensors, and float graph
    inputs that are not initializers (weights fed as inputs; unknown dimensions count 1)."""
    weights: Counter[int] = Counter()

    def add(data_type: int, dims: Any) -> None:
        if data_type in _FLOAT_TYPES:
            count = 1
            for d in dims:
                count *= max(int(d), 1)
            weights[data_type] += count

    for g in graphs:
        names = set()
        for t in g.initializer:
            names.add(t.name)
            add(t.data_type, t.dims)
        for value in g.input:
            tensor = value.type.tensor_type if value.type.HasField("tensor_type") else None
            if tensor is not None and value.name not in names:
                add(tensor.elem_type, [d.dim_value for d in tensor.shape.dim])
    for n in nodes:
        if n.op_type == "Constant":
            for attr in n.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    add(attr.t.data_type, attr.t.dims)
    return weights
