"""Tiny ONNX graphs built with onnx.helper, one per way a user's file can be quantised (or not):
what the precision inference (backends/onnx_precision.py) is tested on. Callers skip where onnx
is not importable; nothing here imports it at module level."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

HIDDEN, LABELS = 8, 3


def _model(nodes: list[Any], inits: list[Any], inputs: list[Any], outputs: list[Any]) -> Any:
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                             producer_name="quantgate-tests")


def _tensor(name: str, array: np.ndarray) -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(array, name)


def _io(name: str, dtype: int, shape: list[Any]) -> Any:
    from onnx import helper

    return helper.make_tensor_value_info(name, dtype, shape)


def token_classifier(vocab_size: int, *, kind: str = "int8-dynamic") -> Any:
    """input_ids [B, T] -> embedding -> mean over T -> one matrix multiply -> logits [B, 3].

    kind: "int8-dynamic" (DynamicQuantizeLinear + MatMulInteger, as ORT's quantize_dynamic
    writes), "int8-qdq" (QuantizeLinear/DequantizeLinear pairs around a MatMul, int8 weights
    behind a Transpose, as a static QDQ export), "fp16", "bf16" (weights in that type, I/O in
    float32) or "fp32". Every kind runs on ONNX Runtime's CPU provider except bf16."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    emb = rng.normal(0.0, 1.0, size=(vocab_size, HIDDEN)).astype(np.float32)
    weight = rng.normal(0.0, 1.0, size=(HIDDEN, LABELS)).astype(np.float32)
    inputs = [_io("input_ids", TensorProto.INT64, ["batch", "sequence"])]
    outputs = [_io("logits", TensorProto.FLOAT, ["batch", LABELS])]
    if kind in ("fp16", "bf16"):
        to = TensorProto.FLOAT16 if kind == "fp16" else TensorProto.BFLOAT16
        half_emb = _tensor("emb", emb.astype(np.float16))
        half_w = _tensor("w", weight.astype(np.float16))
        if kind == "bf16":  # numpy has no bfloat16: the raw bytes are written by helper
            half_emb = helper.make_tensor("emb", to, emb.shape, emb.flatten().tolist())
            half_w = helper.make_tensor("w", to, weight.shape, weight.flatten().tolist())
        nodes = [helper.make_node("Gather", ["emb", "input_ids"], ["e"]),
                 helper.make_node("ReduceMean", ["e"], ["m"], axes=[1], keepdims=0),
                 helper.make_node("MatMul", ["m", "w"], ["h"]),
                 helper.make_node("Cast", ["h"], ["logits"], to=TensorProto.FLOAT)]
        return _model(nodes, [half_emb, half_w], inputs, outputs)
    head = [helper.make_node("Gather", ["emb", "input_ids"], ["e"]),
            helper.make_node("ReduceMean", ["e"], ["m"], axes=[1], keepdims=0)]
    inits = [_tensor("emb", emb)]
    if kind == "fp32":
        nodes = [*head, helper.make_node("MatMul", ["m", "w"], ["logits"])]
        return _model(nodes, [*inits, _tensor("w", weight)], inputs, outputs)
    scale = np.float32(np.abs(weight).max() / 127.0)
    w_q = np.round(weight / scale).astype(np.int8)
    if kind == "int8-dynamic":
        nodes = [*head,
                 helper.make_node("DynamicQuantizeLinear", ["m"], ["m_q", "m_scale", "m_zp"]),
                 helper.make_node("MatMulInteger", ["m_q", "w_q", "m_zp", "w_zp"], ["acc"]),
                 helper.make_node("Cast", ["acc"], ["acc_f"], to=TensorProto.FLOAT),
                 helper.make_node("Mul", ["m_scale", "w_scale"], ["s"]),
                 helper.make_node("Mul", ["acc_f", "s"], ["logits"])]
        inits += [_tensor("w_q", w_q), _tensor("w_zp", np.array(0, dtype=np.int8)),
                  _tensor("w_scale", np.array(scale, dtype=np.float32))]
        return _model(nodes, inits, inputs, outputs)
    if kind == "int8-qdq":
        nodes = [*head,
                 helper.make_node("QuantizeLinear", ["m", "a_scale", "a_zp"], ["m_q"]),
                 helper.make_node("DequantizeLinear", ["m_q", "a_scale", "a_zp"], ["m_dq"]),
                 helper.make_node("DequantizeLinear", ["w_qt", "w_scale", "w_zp"], ["w_dqt"]),
                 helper.make_node("Transpose", ["w_dqt"], ["w_dq"], perm=[1, 0]),
                 helper.make_node("MatMul", ["m_dq", "w_dq"], ["logits"])]
        inits += [_tensor("a_scale", np.array(0.05, dtype=np.float32)),
                  _tensor("a_zp", np.array(128, dtype=np.uint8)),
                  _tensor("w_qt", np.ascontiguousarray(w_q.T)),
                  _tensor("w_scale", np.array(scale, dtype=np.float32)),
                  _tensor("w_zp", np.array(0, dtype=np.int8))]
        return _model(nodes, inits, inputs, outputs)
    raise ValueError(f"kind: got {kind!r}, expected int8-dynamic, int8-qdq, fp16, bf16 or fp32")


def save(model: Any, path: Path) -> Path:
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
