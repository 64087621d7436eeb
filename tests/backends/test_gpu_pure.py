"""The GPU backends' parts that need no GPU: TensorRT profiles, dtype rules, binding plans,
calibration batches and inspector parsing; ONNX Runtime provider and placement checks (on a
real CPU-provider profile); the base's refusal of wrapping casts; skip reasons on this machine.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_quantgate.backends import ort_placement as placement
from pytest_quantgate.backends import registry
from pytest_quantgate.backends.base import Runner, TensorSpec
from pytest_quantgate.backends.trt_inspect import (
    parse_engine_information,
    summarize,
    tensor_type,
)
from pytest_quantgate.backends.trt_plan import (
    Profile,
    ShapeRange,
    calibration_batches,
    check_feed_shape,
    numpy_dtype,
    plan_bindings,
    profile_from_options,
    row_chunks,
)
from pytest_quantgate.errors import BackendError, BackendUnavailable, ConfigError

SAMPLE = Path(__file__).parent / "data" / "trt_engine_info_bert_int8.json"
NAMES = ("input_ids", "attention_mask", "token_type_ids")


# -- profiles ----------------------------------------------------------------------------------

def test_profile_from_options_fills_max_length_and_formats_for_ort() -> None:
    profile = profile_from_options({"batch": [1, 8, 32], "sequence": [1, 64, 0]}, max_length=48)
    assert profile == Profile(ShapeRange(1, 8, 32), ShapeRange(1, 48, 48))  # opt capped at max
    assert profile.shapes(["input_ids"]) == {"input_ids": ((1, 1), (8, 48), (32, 48))}
    ort = profile.ort_trt_options(["input_ids", "attention_mask"])
    assert ort["trt_profile_min_shapes"] == "input_ids:1x1,attention_mask:1x1"
    assert ort["trt_profile_max_shapes"] == "input_ids:32x48,attention_mask:32x48"


@pytest.mark.parametrize(("value", "message"), [
    ([1, 8], r"TensorRT option batch: got \[1, 8\], expected \[min, opt, max\] as three whole "
             r"numbers; write e\.g\. batch = \[1, 16, 32\]"),
    ([4, 2, 8], r"got \[4, 2, 8\], expected 1 <= min <= opt <= max; write e\.g\. batch = "
                r"\[1, 4, 8\]"),
    ([0, 1, 1], r"expected 1 <= min <= opt <= max"),
])
def test_bad_profile_ranges_say_how_to_write_them(value: list[int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        profile_from_options({"batch": value}, max_length=128)


def test_feed_outside_the_profile_and_chunks() -> None:
    profile = Profile(ShapeRange(1, 4, 8), ShapeRange(1, 16, 32))
    check_feed_shape("e", (3, 32), profile)
    with pytest.raises(BackendError, match=r"inference: got 'sequence 33', expected 1 to 32 "
                                           r"\(the engine's profile\); check the feed shapes"):
        check_feed_shape("e", (3, 33), profile)
    assert row_chunks(19, 8) == [slice(0, 8), slice(8, 16), slice(16, 19)]


# -- dtypes and bindings -----------------------------------------------------------------------

def test_trt_dtype_names_map_to_numpy() -> None:
    assert numpy_dtype("DataType.INT32") == "int32"
    assert numpy_dtype("HALF") == "float16" and numpy_dtype("DataType.BF16") == "bfloat16"
    with pytest.raises(BackendError, match=r"data type: got 'DataType.FP4', expected one of"):
        numpy_dtype("DataType.FP4")


def test_binding_plan_reads_dtypes_from_the_engine() -> None:
    plan = plan_bindings("e", [("input_ids", True, "DataType.INT32", (-1, -1)),
                               ("attention_mask", True, "DataType.INT64", (-1, -1)),
                               ("logits", False, "DataType.HALF", (-1, 9))], NAMES)
    assert [(b.name, b.is_input, b.dtype) for b in plan] == [
        ("input_ids", True, "int32"), ("attention_mask", True, "int64"),
        ("logits", False, "float16")]


@pytest.mark.parametrize(("tensors", "message"), [
    ([("pixels", True, "FLOAT", (-1, 3)), ("y", False, "FLOAT", (-1,))],
     r"engine inputs: got \['pixels'\], expected a subset of the tokenizer's"),
    ([("input_ids", True, "FLOAT", (-1, -1)), ("y", False, "FLOAT", (-1,))],
     r"engine input 'input_ids': got 'float32 \[-1, -1\]', expected integer ids of rank 2"),
    ([("input_ids", True, "INT32", (-1, -1))], r"engine outputs: got 'none'"),
])
def test_binding_plan_errors(tensors: list[Any], message: str) -> None:
    with pytest.raises(BackendError, match=message):
        plan_bindings("e", tensors, NAMES)


class _Int32Engine(Runner):
    """The smallest runner that declares int32 inputs, like a TensorRT engine often does."""

    def _activate_impl(self) -> None: ...

    def _input_specs_impl(self) -> list[TensorSpec]:
        return [TensorSpec("input_ids", "int32", (None, None))]

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> Mapping[str, Any]:
        return {"logits": feed["input_ids"].astype(np.float32)}

    def _describe_impl(self) -> Any: ...


def test_int64_feed_is_cast_when_it_fits_and_refused_when_it_would_wrap() -> None:
    runner = _Int32Engine("e", "fp32").activate()
    out = runner.infer({"input_ids": np.array([[101, 2023]], dtype=np.int64)})
    assert out["logits"].tolist() == [[101.0, 2023.0]]
    assert (runner.casts["input_ids"].given, runner.casts["input_ids"].declared) == ("int64",
                                                                                     "int32")
    with pytest.raises(BackendError, match=r"input 'input_ids': got 'int64 ids in \[5, "
                                           r"4294967301\]', expected values that fit its "
                                           r"declared int32; these are not token ids"):
        runner.infer({"input_ids": np.array([[5, 2**32 + 5]], dtype=np.int64)})


# -- calibration batches -----------------------------------------------------------------------

def test_calibration_batches_have_the_profile_shape_and_keep_every_text() -> None:
    def feed(rows: int, length: int, start: int) -> dict[str, np.ndarray]:
        ids = np.full((rows, length), 7, dtype=np.int64)
        ids[:, 0] = np.arange(start, start + rows)  # row identity
        mask = np.ones_like(ids)
        mask[:, -1] = 0
        ids[:, -1] = 3  # [PAD] id under the mask
        return {"input_ids": ids, "attention_mask": mask}

    out = list(calibration_batches([feed(5, 4, 0), feed(6, 12, 100)], batch=4, sequence=8))
    assert len(out) == 3 and all(b["input_ids"].shape == (4, 8) for b in out)
    firsts = np.concatenate([b["input_ids"][:, 0] for b in out]).tolist()
    assert firsts[:11] == [0, 1, 2, 3, 4, 100, 101, 102, 103, 104, 105]
    assert firsts[11] == 0  # the last batch is filled with the first rows again
    assert out[0]["input_ids"][0, 4:].tolist() == [3, 3, 3, 3]  # padded with [PAD]
    assert out[0]["attention_mask"][0, 3:].tolist() == [0] * 5


# -- engine inspector --------------------------------------------------------------------------

def test_inspector_json_gives_layer_precisions_and_int8_share() -> None:
    assert tensor_type("Thirty-two wide channel vectorized row major Int8 format") == "int8"
    assert tensor_type("Row major linear FP16 format") == "fp16"
    summary = summarize(parse_engine_information(SAMPLE.read_text()))
    assert summary["layer_precisions"] == {"fp16": 1, "fp32": 3, "int8": 1, "other": 2}
    assert summary["int8_share"] == 0.25
    assert summary["non_int8_layer_types"] == {"CaskGemmMatrixMultiply": 1, "CaskSoftmax": 1,
                                               "Normalization": 1}
    assert summary["qdq_reformats"] == 1


def test_inspector_errors_say_how_to_get_details() -> None:
    with pytest.raises(BackendError, match=r"got 'layer names only'.*ProfilingVerbosity\.DETAILED"):
        parse_engine_information(json.dumps({"Layers": ["a", "b"]}))
    with pytest.raises(BackendError, match=r"got 'invalid JSON.*pass the JSON format"):
        parse_engine_information("Layers: a")


# -- ONNX Runtime providers and placement ------------------------------------------------------

def test_provider_missing_from_the_build_is_a_skip_missing_from_the_session_an_error() -> None:
    with pytest.raises(BackendUnavailable, match=r"needs ONNX Runtime's CUDAExecutionProvider: "
                                                 r"got \['CPUExecutionProvider'\].*onnxruntime-gpu"):
        placement.check_providers("g", [placement.CUDA], [placement.CPU], [placement.CPU])
    with pytest.raises(BackendError, match=r"ONNX Runtime fell back to the CPU: got "
                                           r"\['CPUExecutionProvider'\], expected "
                                           r"CUDAExecutionProvider among the session's"):
        placement.check_providers("g", [placement.CUDA], [placement.CUDA, placement.CPU],
                                  [placement.CPU])
    placement.check_providers("g", [placement.CUDA], [placement.CUDA], [placement.CUDA])


def test_placement_from_a_real_profile_catches_compute_on_the_cpu(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Shape", ["y"], ["s"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2]),
         helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
        [helper.make_tensor("w", TensorProto.FLOAT, [3, 2], [1.0] * 6)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp_path / "p")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=[placement.CPU])
    session.run(None, {"x": np.ones((2, 3), np.float32)})
    events = json.loads(Path(session.end_profiling()).read_text())
    placed = placement.node_placement(events)
    assert placed == {placement.CPU: {"MatMul": 1, "Shape": 1}}
    with pytest.raises(BackendError, match=r"compute ops ran on the CPU, not "
                                           r"CUDAExecutionProvider: got \{'MatMul': 1\}"):
        placement.check_placement("g", placement.CUDA, placed)
    ok = placement.check_placement("g", placement.CUDA, {placement.CUDA: {"MatMul": 1},
                                                         placement.CPU: {"Shape": 1}})
    assert ok["cpu_nodes"] == {"Shape": 1} and ok["node_placement"][placement.CUDA] == 1


# -- registry and skip reasons -----------------------------------------------------------------

def test_gpu_kinds_are_registered_with_the_extra_and_validated_options() -> None:
    kinds = registry.BUILTIN
    for kind in ("torch-cuda-fp16", "torch-cuda-bf16", "onnx-cuda", "onnx-trt"):
        assert kinds[kind].extra == "gpu"
    assert kinds["trt-int8"].extra == "tensorrt" and "tensorrt" in kinds["trt-int8"].requires
    decl = registry.declare("t", "trt-int8", {"int8_mode": "calibrator", "batch": [1, 4, 8]}, "x")
    assert decl.precision == "int8" and decl.options["sequence"] == [1, 64, 0]
    with pytest.raises(ConfigError, match=r"option 'int8_mode' of backend 't': got 'implicit', "
                                          r"expected one of \['qdq', 'calibrator'\]"):
        registry.declare("t", "trt-int8", {"int8_mode": "implicit"}, "x")
    with pytest.raises(ConfigError, match=r"backend 'mine' \(tensorrt\): got \"no 'engine'\""):
        registry.declare("mine", "tensorrt", {}, "x")


def test_torch_cuda_without_a_gpu_is_unavailable_with_the_reason() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU; the conformance suite runs the kind")
    from pytest_quantgate.backends.torch_cuda import require_cuda

    with pytest.raises(BackendUnavailable, match=r"backend 'g' needs a CUDA (build of torch|GPU)"
                                                 r": got torch .*; (install|run it)"):
        require_cuda("g")
