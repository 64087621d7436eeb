"""int8_coverage.py on hand-built graphs: the recipe's share against ONNX Runtime's fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from pytest_quantgate.inspect.int8_coverage import fallback_ops, onnx_counts  # noqa: E402


def _qdq_matmul(path: Path, weights: type) -> str:
    """x -> Q/DQ (uint8) -> MatMul <- DQ <- weights of type ``weights``: a MatMul the graph
    marks for integer execution. ORT fuses int8 weights into an integer kernel; int32 ones
    (a quantiser bug) it cannot, and runs the MatMul in float."""
    w = (np.arange(12).reshape(4, 3) % 5).astype(weights)
    inits = [numpy_helper.from_array(w, "w_q"),
             numpy_helper.from_array(np.array(0.1, np.float32), "scale"),
             numpy_helper.from_array(np.array(0, np.uint8), "zp_x"),
             numpy_helper.from_array(np.array(0, weights), "zp_w")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "scale", "zp_x"], ["x_q"]),
             helper.make_node("DequantizeLinear", ["x_q", "scale", "zp_x"], ["x_dq"]),
             helper.make_node("DequantizeLinear", ["w_q", "scale", "zp_w"], ["w_dq"]),
             helper.make_node("MatMul", ["x_dq", "w_dq"], ["y"], name="mm")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


def test_a_fused_qdq_matmul_is_integer_with_no_fallback(tmp_path: Path) -> None:
    model = _qdq_matmul(tmp_path / "int8.onnx", np.int8)
    integer, floating = onnx_counts(model)
    assert (dict(integer), dict(floating)) == ({"MatMul (Q/DQ)": 1}, {})
    assert fallback_ops(model) == {}


def test_a_marked_matmul_ort_runs_in_float_is_fallback(tmp_path: Path) -> None:
    model = _qdq_matmul(tmp_path / "int32.onnx", np.int32)
    integer, _ = onnx_counts(model)
    assert dict(integer) == {"MatMul (Q/DQ)": 1}  # the recipe marks it...
    assert fallback_ops(model) == {"MatMul": 1}  # ...and the runtime runs it in float


def test_an_unreadable_file_gives_no_fallback_figure(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    assert fallback_ops(str(bad)) is None


def test_a_tensorrt_engine_s_matmul_layers_above_int8_are_fallback() -> None:
    from collections import Counter

    from pytest_quantgate.inspect.int8_coverage import engine_fallback

    # trt_inspect.summarize of an engine whose graph marks every matrix multiply for INT8
    details = {"non_int8_layer_types": {"CaskGemmMatrixMultiply": 1, "CaskSoftmax": 1,
                                        "Normalization": 1}}
    assert engine_fallback(details, Counter()) == {"CaskGemmMatrixMultiply": 1}
    # a graph that leaves some in float on purpose: the engine's float layers are its choice
    assert engine_fallback(details, Counter({"MatMul": 2})) is None
    assert engine_fallback({}, Counter()) is None  # no layer precisions reported
