"""localise.py on hand-built graphs: which non-finite tensor is named the cause (issue 19)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from pytest_quantgate.inspect.localise import constants, first_nonfinite  # noqa: E402


def _graph(path: Path, gain: float) -> Path:
    """x -> masked = x + fill (a -inf Constant, as an FP16 export's attention-mask fill) ->
    scores = max(masked, x) -> ffn = scores * gain (past float32's range when ``gain`` is
    huge) -> y. The healthy graph (gain 1) holds -inf in ``fill`` and ``masked`` too."""
    nodes = [
        helper.make_node("Constant", [], ["fill"], name="mask_fill",
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [-np.inf])),
        helper.make_node("Add", ["x", "fill"], ["masked"], name="add_mask"),
        helper.make_node("Max", ["masked", "x"], ["scores"], name="max"),
        helper.make_node("Mul", ["scores", "gain"], ["ffn"], name="ffn_mul"),
        helper.make_node("Identity", ["ffn"], ["y"], name="out"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor("gain", TensorProto.FLOAT, [1], [gain])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


FEED = {"x": np.array([[1.0, 20.0, 300.0]], dtype=np.float32)}  # 300 * 1e38: past float32


def test_the_overflow_is_named_not_the_mask_constant_or_what_the_healthy_graph_shares(
        tmp_path: Path) -> None:
    faulty = _graph(tmp_path / "faulty.onnx", 1e38)
    healthy = _graph(tmp_path / "healthy.onnx", 1.0)
    found = first_nonfinite(faulty, FEED, healthy)
    assert found == "the first non-finite tensor is 'ffn' (Inf, output of Mul 'ffn_mul')"


def test_without_a_healthy_graph_the_first_computed_tensor_is_named(tmp_path: Path) -> None:
    # a user's file has no healthy counterpart: constants are still skipped
    faulty = _graph(tmp_path / "faulty.onnx", 1e38)
    assert first_nonfinite(faulty, FEED) == (
        "the first non-finite tensor is 'masked' (Inf, output of Add 'add_mask')")


def test_a_healthy_graph_names_nothing(tmp_path: Path) -> None:
    healthy = _graph(tmp_path / "healthy.onnx", 1.0)
    assert first_nonfinite(healthy, FEED, healthy) is None


def test_constants_are_what_no_input_reaches(tmp_path: Path) -> None:
    graph = onnx.load(str(_graph(tmp_path / "g.onnx", 1.0))).graph
    assert constants(graph) == {"fill"}
