"""The precision of a user's ONNX file, inferred from its graph (backends/onnx_precision.py), and
config.py setting it on the declaration so that thresholds follow."""

from __future__ import annotations

import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
from onnx_graphs import save, token_classifier

from pytest_quantgate.backends import registry
from pytest_quantgate.backends.fake_model import write_fake_model
from pytest_quantgate.backends.onnx_precision import (
    InferredPrecision,
    infer_precision,
    precision_of_model,
)
from pytest_quantgate.config import load
from pytest_quantgate.thresholds import resolve

needs_onnx = pytest.mark.skipif(find_spec("onnx") is None, reason="onnx is not installed")
VOCAB = 20


@pytest.fixture(autouse=True)
def _no_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "all_kinds", lambda: dict(registry.BUILTIN))


@needs_onnx
def test_dynamic_int8_graph_is_int8_by_its_integer_ops() -> None:
    got = precision_of_model(token_classifier(VOCAB, kind="int8-dynamic"))
    assert got == InferredPrecision("int8", True, "1 DynamicQuantizeLinear, 1 MatMulInteger")


@needs_onnx
def test_qdq_graph_is_int8_through_a_transposed_weight() -> None:
    got = precision_of_model(token_classifier(VOCAB, kind="int8-qdq"))
    assert got == InferredPrecision("int8", True, "1 MatMul with int8 Q/DQ inputs")


@needs_onnx
def test_qdq_with_16_bit_zero_points_is_not_int8() -> None:
    import onnx

    model = token_classifier(VOCAB, kind="int8-qdq")
    for t in model.graph.initializer:  # activations and weights quantised to 16 bits instead
        if t.name in ("a_zp", "w_zp"):
            t.CopyFrom(onnx.numpy_helper.from_array(
                onnx.numpy_helper.to_array(t).astype("int16"), t.name))
        if t.name == "w_qt":
            t.CopyFrom(onnx.numpy_helper.from_array(
                onnx.numpy_helper.to_array(t).astype("int16"), t.name))
    assert precision_of_model(model).precision == "fp32"


@needs_onnx
@pytest.mark.parametrize(("kind", "dtype"), [("fp16", "float16"), ("bf16", "bfloat16")])
def test_half_precision_weights_make_most_of_the_graph(kind: str, dtype: str) -> None:
    got = precision_of_model(token_classifier(VOCAB, kind=kind))
    n = VOCAB * 8 + 8 * 3
    assert got == InferredPrecision(kind, True, f"{dtype} weights: 100% of {n:,} elements")


@needs_onnx
def test_fp32_graph_stays_fp32_and_says_why() -> None:
    got = precision_of_model(token_classifier(VOCAB, kind="fp32"))
    assert got == InferredPrecision("fp32", True,
                                    f"no integer ops; float weights of {VOCAB * 8 + 24:,} "
                                    "elements: float32 100%")


@needs_onnx
def test_a_file_is_read_without_its_external_weights(tmp_path: Path) -> None:
    import onnx

    path = tmp_path / "model.onnx"
    onnx.save(token_classifier(VOCAB, kind="fp16"), str(path), save_as_external_data=True,
              all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    (tmp_path / "weights.bin").unlink()  # never read: dtypes and shapes are in the graph
    assert infer_precision(path).precision == "fp16"


@needs_onnx
def test_an_unreadable_file_stays_fp32_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x00not a model")
    got = infer_precision(path)
    assert (got.precision, got.inferred) == ("fp32", False)
    assert got.why.startswith("broken.onnx is not a readable ONNX model: ")


def test_without_onnx_installed_it_stays_fp32_and_says_so(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    got = infer_precision(tmp_path / "model.onnx")
    assert got == InferredPrecision("fp32", False, "onnx is not installed here; pip install "
                                                   "'pytest-quantgate[onnx]'")
    assert got.header_line("mine") == (
        "mine precision fp32: could not be inferred from its graph (onnx is not installed here; "
        "pip install 'pytest-quantgate[onnx]'), so fp32 thresholds apply; declare precision = "
        '"..." in its [[tool.quantgate.backend]] table to override')


# -- config.py: the declaration gets the inferred precision ---------------------------------------

def _project(root: Path, backend: str) -> dict[str, object]:
    write_fake_model(root / "model", ("a", "b", "c"), ["some words here"])
    (root / "eval.jsonl").write_text('{"text": "some words", "label": "a"}\n')
    return {"model": "model", "eval": "eval.jsonl", "reference": "ref",
            "backend": [{"name": "ref", "kind": "fake"}, {"name": "mine", "kind": "onnx",
                                                          "path": "models/mine.onnx",
                                                          **({"precision": backend}
                                                             if backend else {})}]}


def _load(root: Path, table: dict[str, object]):  # type: ignore[no-untyped-def]
    return load(table, base_dir=root, cli={}, cli_dir=root, source="pyproject.toml")


@needs_onnx
def test_config_sets_the_inferred_precision_and_thresholds_follow(tmp_path: Path) -> None:
    save(token_classifier(VOCAB, kind="int8-dynamic"), tmp_path / "models" / "mine.onnx")
    cfg = _load(tmp_path, _project(tmp_path, ""))
    assert cfg.decl("mine").precision == "int8"
    assert cfg.inferred_precision == {"mine": InferredPrecision(
        "int8", True, "1 DynamicQuantizeLinear, 1 MatMulInteger")}
    assert resolve("mine", cfg.decl("mine").precision, cfg.thresholds) == resolve("x", "int8", {})
    assert cfg.inferred_precision["mine"].header_line("mine") == (
        "mine precision int8, inferred from its graph (1 DynamicQuantizeLinear, 1 MatMulInteger); "
        'declare precision = "..." in its [[tool.quantgate.backend]] table to override')


@needs_onnx
def test_a_declared_precision_wins_and_the_graph_is_not_read(tmp_path: Path) -> None:
    save(token_classifier(VOCAB, kind="int8-dynamic"), tmp_path / "models" / "mine.onnx")
    cfg = _load(tmp_path, _project(tmp_path, "fp16"))
    assert cfg.decl("mine").precision == "fp16" and cfg.inferred_precision == {}


def test_a_missing_file_is_left_to_the_runner(tmp_path: Path) -> None:
    cfg = _load(tmp_path, _project(tmp_path, ""))  # no models/mine.onnx: building it says so
    assert cfg.decl("mine").precision == "fp32" and cfg.inferred_precision == {}


@needs_onnx
def test_an_unselected_file_is_not_read(tmp_path: Path) -> None:
    save(token_classifier(VOCAB, kind="int8-dynamic"), tmp_path / "models" / "mine.onnx")
    table = _project(tmp_path, "")
    table["backend"] = [*table["backend"], {"name": "other", "kind": "fake"}]  # type: ignore[misc]
    cfg = _load(tmp_path, {**table, "backends": ["other"]})
    assert cfg.unselected == ("mine",) and cfg.inferred_precision == {}
