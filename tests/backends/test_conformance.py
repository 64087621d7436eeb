"""One conformance suite over every built-in backend kind (the fake too, and a user's ONNX file).

Every runner must: build; activate; declare integer inputs the tokenizer produces; return 2-D
float logits for any batch size and sequence length; cast an int32 feed and record it; refuse a
wrong-rank feed and inference before activation; close twice; describe its size and build time;
load from the cache the second time; and agree with torch-fp32 within loose bounds for its
precision. Afterwards, the error messages of the ONNX builders, by their text.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from pytest_quantgate.backends import registry
from pytest_quantgate.backends.base import BackendInfo
from pytest_quantgate.errors import BackendError, DataError

if TYPE_CHECKING:
    from tests.backends.conftest import Backends, Demo

pytestmark = pytest.mark.slow

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
USER_ONNX = "user-onnx"  # the "onnx" kind, fed the fp32 export as a user's file (see conftest)


def conformance_kinds() -> list[str]:
    """Every built-in kind; ``fake`` only once its module exists, ``onnx`` as a user's file."""
    kinds = [k for k in registry.BUILTIN if k not in ("fake", "onnx", "tensorrt")]  # need a file
    if (Path(registry.__file__).parent / "fake.py").is_file():
        kinds.append("fake")
    return [*kinds, USER_ONNX]


KINDS = conformance_kinds()
# GPU kinds that run a CPU kind's artifact (torch-cuda-fp16: torch-fp16's; onnx-cuda: the export)
SHARED_ARTIFACT = ("torch-cuda-fp32", "torch-cuda-fp16", "torch-cuda-bf16", "onnx-cuda",
                   "onnx-cuda-fp16", "onnx-trt", "onnx-trt-fp16")
BUILT_KINDS = [k for k in KINDS if k not in ("torch-fp32", "fake", USER_ONNX, *SHARED_ARTIFACT)]
MODEL_KINDS = [k for k in KINDS if k != "fake"]  # compute the real model's logits
AGREEMENT_TEXTS = 54
# Loose on purpose: this suite checks that a runner works, the gate checks how well.
MAX_ABS = {"fp32": 1e-3, "fp16": 0.1, "bf16": 0.1}
MIN_TOP1 = {"int8": 0.8}


def texts(demo: Demo, n: int, start: int = 0) -> list[str]:
    return [row["text"] for row in demo.golden[start:start + n]]


@pytest.mark.parametrize("kind", KINDS)
def test_builds_activates_and_describes(backends: Backends, kind: str) -> None:
    runner = backends.get(kind)
    info = runner.describe()
    assert isinstance(info, BackendInfo)
    assert (info.name, info.precision) == (runner.name, runner.precision)
    assert info.size_bytes is not None and info.size_bytes > 0
    assert info.build_seconds is not None and info.build_seconds >= 0.0
    assert info.runtime


@pytest.mark.parametrize("kind", KINDS)
def test_input_specs_are_integer_tokenizer_inputs(backends: Backends, kind: str) -> None:
    specs = backends.get(kind).input_specs()
    assert "input_ids" in specs
    assert set(specs) <= set(INPUT_NAMES)
    for name, spec in specs.items():
        assert spec.name == name
        assert np.dtype(spec.dtype).kind in "iu", spec
        assert len(spec.shape) == 2, spec


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("pad_to", [None, 40], ids=["longest", "pad40"])
def test_infer_gives_2d_float_logits(backends: Backends, demo: Demo, kind: str, batch: int,
                                     pad_to: int | None) -> None:
    feed = demo.feed(texts(demo, batch), pad_to)
    out = backends.get(kind).infer(feed)
    assert isinstance(out, dict) and "logits" in out
    logits = out["logits"]
    assert logits.shape == (batch, demo.num_labels)
    assert logits.dtype in (np.float32, np.float64)
    assert np.isfinite(logits).all()


@pytest.mark.parametrize("kind", KINDS)
def test_int32_feed_is_cast_and_recorded(backends: Backends, demo: Demo, kind: str) -> None:
    runner = backends.get(kind)
    feed = demo.feed(texts(demo, 2))
    expected = runner.infer(feed)["logits"]
    runner.casts.clear()
    got = runner.infer({k: v.astype(np.int32) for k, v in feed.items()})["logits"]
    np.testing.assert_array_equal(got, expected)
    declared = {n: s.dtype for n, s in runner.input_specs().items()}
    for name, dtype in declared.items():
        if dtype != "int32":
            assert runner.casts[name].given == "int32"
            assert runner.casts[name].declared == dtype


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_rank_feed_raises(backends: Backends, demo: Demo, kind: str) -> None:
    runner = backends.get(kind)
    feed = {k: v[0] for k, v in demo.feed(texts(demo, 2)).items()}  # (sequence,) not 2-D
    with pytest.raises(BackendError, match=r"rank: got 1, expected rank 2"):
        runner.infer(feed)


@pytest.mark.parametrize("kind", KINDS)
def test_lifecycle_infer_before_activate_and_close_twice(backends: Backends, demo: Demo,
                                                         kind: str) -> None:
    backends.get(kind)  # build first, so this one loads
    runner, _ = backends.create(kind)
    with pytest.raises(BackendError, match=r"state: got 'inactive'.*call activate\(\)"):
        runner.infer(demo.feed(texts(demo, 1)))
    runner.activate()
    runner.infer(demo.feed(texts(demo, 1)))
    runner.close()
    runner.close()
    with pytest.raises(BackendError, match=r"got 'inactive'"):
        runner.infer(demo.feed(texts(demo, 1)))


@pytest.mark.parametrize("kind", BUILT_KINDS)
def test_second_create_hits_the_cache(backends: Backends, kind: str) -> None:
    backends.get(kind)
    first = backends.built[kind]
    assert first.runner.describe().cache_hit is False
    again, seconds = backends.create(kind)
    info = again.describe()
    assert info.cache_hit is True
    assert info.artifact == first.runner.describe().artifact
    assert info.build_seconds == pytest.approx(first.runner.describe().build_seconds)
    assert seconds < first.create_seconds


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_agrees_with_torch_fp32(backends: Backends, demo: Demo, kind: str) -> None:
    runner = backends.get(kind)
    backends.skip_if_unavailable("torch-fp32")
    reference = backends.get("torch-fp32")
    ref, out = [], []
    for start in range(0, AGREEMENT_TEXTS, 18):
        feed = demo.feed(texts(demo, 18, start))
        ref.append(reference.infer(feed)["logits"].astype(np.float64))
        out.append(runner.infer(feed)["logits"].astype(np.float64))
    r, o = np.concatenate(ref), np.concatenate(out)
    diff = float(np.abs(r - o).max())
    top1 = float((r.argmax(1) == o.argmax(1)).mean())
    if runner.precision in MAX_ABS:
        assert diff < MAX_ABS[runner.precision], f"max |logit diff| {diff:.4g}, top-1 {top1:.3f}"
    else:
        assert top1 >= MIN_TOP1[runner.precision], f"top-1 {top1:.3f}, max |diff| {diff:.4g}"


# -- the ONNX builders' own behaviour and error messages ---------------------------------------

def test_int8_details_count_quantised_ops(backends: Backends) -> None:
    backends.skip_if_unavailable("onnx-int8-static")
    ops = backends.get("onnx-int8-static").describe().details["op_types"]
    assert ops.get("QuantizeLinear", 0) > 0 and ops.get("DequantizeLinear", 0) > 0
    torch_info = backends.get("torch-int8-dynamic").describe().details
    assert torch_info["quantized_linear"] > 0 and torch_info["float_linear"] == 0
    assert "Int8DynamicActivationInt8WeightConfig" in torch_info["successor"]


def test_static_int8_op_types_all_quantises_more(backends: Backends, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    backends.skip_if_unavailable("onnx-int8-static")
    default = backends.get("onnx-int8-static").describe().details["op_types"]
    monkeypatch.chdir(tmp_path)  # ORT's symbolic shape inference litters the cwd when it fails
    decl = registry.declare("all-ops", "onnx-int8-static", {"op_types": "all"}, "test")
    every = registry.create_runner(decl, backends.ctx).describe().details["op_types"]
    assert every["QuantizeLinear"] > default["QuantizeLinear"]
    assert list(tmp_path.iterdir()) == []


def test_static_int8_without_calibration_says_how_to_configure(backends: Backends) -> None:
    from dataclasses import replace

    backends.skip_if_unavailable("onnx-int8-static")
    ctx = replace(backends.ctx, calibration_hash=None)
    decl = registry.declare("s", "onnx-int8-static", {}, "test")
    with pytest.raises(BackendError, match=r'calibration data set: got \'not configured\'.*'
                                           r'calibration = "data/calibration.jsonl"'):
        registry.create_runner(decl, ctx)


def test_user_onnx_file_missing_or_corrupt(backends: Backends, tmp_path: Path) -> None:
    backends.skip_if_unavailable(USER_ONNX)
    missing = registry.declare("u", "onnx", {"path": "nowhere/model.onnx"}, "test")
    with pytest.raises(DataError, match=r"ONNX file: got '.*nowhere/model.onnx', expected an "
                                        r"existing \.onnx file; fix path = \.\.\."):
        registry.create_runner(missing, backends.ctx)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    corrupt = registry.declare("u", "onnx", {"path": str(bad)}, "test")
    with pytest.raises(DataError, match=r"bad\.onnx.*expected a valid ONNX model; re-export"):
        registry.create_runner(corrupt, backends.ctx)


def test_swapped_export_is_wrong_and_keeps_its_input_names(backends: Backends, demo: Demo,
                                                            tmp_path: Path) -> None:
    from pytest_quantgate.backends.onnx_export import export_classifier

    backends.skip_if_unavailable(USER_ONNX)
    out = tmp_path / "swapped.onnx"
    details = export_classifier(demo.model_dir, out, exporter="legacy", opset=17,
                                input_names=INPUT_NAMES, max_length=64,
                                swap_names=("attention_mask", "token_type_ids"))
    assert details["swapped_inputs"] == ["attention_mask", "token_type_ids"]
    runner = registry.create_runner(registry.declare("sw", "onnx", {"path": str(out)}, "t"),
                                    backends.ctx).activate()
    assert set(runner.input_specs()) == set(INPUT_NAMES)
    feed = demo.feed(texts(demo, 6), 30)
    diff = np.abs(runner.infer(feed)["logits"] - backends.get("torch-fp32").infer(feed)["logits"])
    assert diff.max() > 1e-2
    runner.close()


def test_a_failure_expected_by_a_probe_logs_nothing(backends: Backends, tmp_path: Path,
                                                    capfd: pytest.CaptureFixture[str]) -> None:
    """ONNX Runtime logs a failing run in C++ to stderr. The contract probe tries candidate
    faults, some of which cannot run; under quiet_failures the failure still raises, and no
    error line reaches the user's terminal."""
    from onnx_graphs import save, token_classifier

    backends.skip_if_unavailable(USER_ONNX)
    path = save(token_classifier(10, kind="fp32"), tmp_path / "tiny.onnx")
    runner = registry.create_runner(registry.declare("tiny", "onnx", {"path": str(path)}, "t"),
                                    backends.ctx).activate()
    out_of_range = {"input_ids": np.full((1, 4), 99, dtype=np.int64)}  # 10 embedding rows
    capfd.readouterr()
    with pytest.raises(BackendError, match="inference"):
        runner.infer(out_of_range)
    assert "onnxruntime" in capfd.readouterr().err  # what a probe's candidate used to print
    with runner.quiet_failures(), pytest.raises(BackendError, match="inference"):
        runner.infer(out_of_range)
    assert "onnxruntime" not in capfd.readouterr().err
    assert runner.infer({"input_ids": np.ones((1, 4), dtype=np.int64)})["logits"].shape == (1, 3)
    assert "onnxruntime" not in capfd.readouterr().err  # quiet only inside the block: no error
    runner.close()


def test_dynamo_exporter_matches_torch(demo: Demo, tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    from pytest_quantgate.backends.onnx_export import export_classifier

    details = export_classifier(demo.model_dir, tmp_path / "d.onnx", exporter="dynamo", opset=18,
                                input_names=INPUT_NAMES, max_length=64)
    assert details["opset"] == 18 and details["verify_max_abs_diff"] < 1e-4
    assert not list(tmp_path.glob("*.data"))  # one self-contained file


@pytest.mark.parametrize("kind", [k for k in MODEL_KINDS if k != "fake"])
def test_feed_longer_than_the_model_raises_backend_error(backends: Backends, demo: Demo,
                                                         kind: str) -> None:
    feed = demo.feed(texts(demo, 1), 300)  # max_position_embeddings is 128
    with pytest.raises(BackendError, match=r"inference: got .*check the feed shapes"):
        backends.get(kind).infer(feed)


def test_option_and_environment_errors_say_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_quantgate.backends.onnx_quantize import resolve_op_types
    from pytest_quantgate.backends.onnx_runner import session_threads
    from pytest_quantgate.errors import ConfigError

    assert resolve_op_types("default") == ["MatMul"] and resolve_op_types("all") == "all"
    with pytest.raises(ConfigError, match=r"op_types.*got \[\], expected 'default', 'all' or a "
                                          r"non-empty list.*write e\.g\."):
        resolve_op_types([])
    monkeypatch.setenv("QUANTGATE_THREADS", "two")
    with pytest.raises(BackendError, match=r"QUANTGATE_THREADS: got 'two', expected a positive "
                                           r"whole number of threads; export QUANTGATE_THREADS=2"):
        session_threads()
    monkeypatch.setenv("QUANTGATE_THREADS", "3")
    assert session_threads() == 3


def test_static_int8_unsupported_type_pair(backends: Backends) -> None:
    from pytest_quantgate.errors import ConfigError

    backends.skip_if_unavailable("onnx-int8-static")
    decl = registry.declare("s", "onnx-int8-static",
                            {"activation_type": "qint8", "weight_type": "quint8"}, "test")
    with pytest.raises(ConfigError, match=r"a pair ONNX Runtime supports; use activation_type"):
        registry.create_runner(decl, backends.ctx)


def test_export_errors_name_the_fix(demo: Demo, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("transformers")
    from pytest_quantgate.backends import onnx_export

    with pytest.raises(DataError, match=r"model directory: got '.*nope'.*fix model = \.\.\."):
        onnx_export.load_classifier(tmp_path / "nope")
    with pytest.raises(BackendError, match=r"ONNX exporter: got 'jit'"):
        onnx_export.export_classifier(demo.model_dir, tmp_path / "m.onnx", exporter="jit",
                                      opset=17, input_names=INPUT_NAMES, max_length=64)
    with pytest.raises(BackendError, match=r"inputs to swap: got \['input_ids', 'labels'\]"):
        onnx_export.export_classifier(demo.model_dir, tmp_path / "m.onnx", exporter="legacy",
                                      opset=17, input_names=INPUT_NAMES, max_length=64,
                                      swap_names=("input_ids", "labels"))
    monkeypatch.setattr(onnx_export, "VERIFY_TOLERANCE", 0.0)  # nothing can pass: the check runs
    with pytest.raises(BackendError, match=r"vs torch, max \|logit diff\|: got .*expected < 0\.0; "
                                           r"the export is wrong"):
        onnx_export.export_classifier(demo.model_dir, tmp_path / "m.onnx", exporter="legacy",
                                      opset=17, input_names=INPUT_NAMES, max_length=64)
