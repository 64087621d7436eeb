"""Unit tests of config.py: [tool.quantgate] plus CLI overrides, validated into one Config."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pytest_quantgate.backends import registry
from pytest_quantgate.backends.fake_model import write_fake_model
from pytest_quantgate.config import FIELD_BY_KEY, FIELDS, Config, load
from pytest_quantgate.errors import ConfigError
from pytest_quantgate.project_file import read_table

LABELS = ("negative", "positive")
TEXTS = ["a good film", "a bad film", "not good at all"]
SOURCE = "pyproject.toml"
WHERE = f"{SOURCE} [tool.quantgate]"
DEFAULT_BACKENDS = ("torch-bf16", "torch-fp16", "torch-int8-dynamic", "onnx-fp32", "onnx-fp16",
                    "onnx-int8-dynamic")


@pytest.fixture(autouse=True)
def _no_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only built-in kinds: hermetic, and fast (each scan of installed entry points costs ~20 ms
    and ``declare`` scans once per backend)."""
    monkeypatch.setattr(registry, "all_kinds", lambda: dict(registry.BUILTIN))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project dir with model/, eval.jsonl and calib.jsonl (shared: nothing writes to it)."""
    root = tmp_path_factory.mktemp("project")
    write_fake_model(root / "model", LABELS, TEXTS)
    (root / "eval.jsonl").write_text('{"text": "a good film", "label": "positive"}\n')
    (root / "calib.jsonl").write_text('{"text": "a film"}\n')
    return root


def run(project: Path, table: dict[str, Any] | None = None, *, cli: dict[str, Any] | None = None,
        cli_dir: Path | None = None, minimal: bool = True) -> Config:
    full = {"model": "model", "eval": "eval.jsonl"} if minimal else {}
    full.update(table or {})
    return load(full, base_dir=project, cli=cli or {}, cli_dir=cli_dir or project, source=SOURCE)


def fails(project: Path, message: str, table: dict[str, Any] | None = None, **kw: Any) -> str:
    """Load and expect a ConfigError whose message contains ``message`` verbatim."""
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        run(project, table, **kw)
    return str(info.value)


# -- valid configurations -----------------------------------------------------------------------

def test_minimal_config_gets_every_default(project: Path) -> None:
    config = run(project)
    assert config.task == "text-classification"
    assert config.model == project / "model"
    assert config.eval == project / "eval.jsonl"
    assert config.calibration is None
    assert config.reference == "torch-fp32"
    assert config.max_length == 128
    assert config.padding == "longest"
    assert config.batch_size == 32
    assert config.worst == 5
    assert config.cache_dir == project / ".quantgate-cache"
    assert config.json is None
    assert config.expect_fail == ()
    assert config.thresholds == {}
    assert config.source == SOURCE
    assert config.base_dir == project


def test_default_backends_are_every_builtin_cpu_backend_but_static_int8(project: Path) -> None:
    config = run(project)
    assert config.backends == DEFAULT_BACKENDS
    # the reference and every gated backend are declared, with their built-in precision
    assert set(config.declared) == {"torch-fp32", *DEFAULT_BACKENDS}
    assert config.decl("torch-fp32").precision == "fp32"
    assert config.decl("onnx-fp16").precision == "fp16"
    assert config.decl("onnx-int8-dynamic").options["weight_type"] == "qint8"


def test_default_backends_include_static_int8_with_a_calibration_set(project: Path) -> None:
    config = run(project, {"calibration": "calib.jsonl"})
    assert config.calibration == project / "calib.jsonl"
    assert config.backends == (*DEFAULT_BACKENDS, "onnx-int8-static")


def test_default_backends_leave_out_the_reference(project: Path) -> None:
    config = run(project, {"reference": "onnx-fp32"})
    assert "onnx-fp32" not in config.backends
    assert "torch-fp32" in config.backends


def test_declared_backends_are_appended_to_the_defaults(project: Path) -> None:
    config = run(project, {"backend": [{"name": "mine", "kind": "onnx", "path": "m.onnx",
                                        "precision": "int8"}]})
    assert config.backends == (*DEFAULT_BACKENDS, "mine")
    decl = config.decl("mine")
    assert (decl.kind, decl.precision, decl.options["path"]) == ("onnx", "int8", "m.onnx")


def test_default_backends_leave_out_a_declared_reference(project: Path) -> None:
    config = run(project, {"reference": "ref", "backend": [{"name": "ref", "kind": "fake"},
                                                           {"name": "cand", "kind": "fake"}]})
    assert "ref" not in config.backends


def test_explicit_backends_with_fake_reference(project: Path) -> None:
    config = run(project, {
        "reference": "ref", "backends": ["cand"], "expect_fail": ["cand"],
        "backend": [{"name": "ref", "kind": "fake"},
                    {"name": "cand", "kind": "fake", "drift": 0.5, "precision": "fp16"}]})
    assert config.reference == "ref"
    assert config.backends == ("cand",)
    assert config.expect_fail == ("cand",)
    assert config.decl("ref").precision == "fp32"  # a kind without a precision defaults to fp32
    assert config.decl("cand").precision == "fp16"
    assert config.decl("cand").options["drift"] == 0.5
    assert config.decl("cand").options["seed"] == 0  # defaults filled in


def test_thresholds_tables_are_validated_and_kept(project: Path) -> None:
    config = run(project, {"thresholds": {"*-int8-*": {"max_abs_logit": 3, "topk": 2}}})
    assert config.thresholds == {"*-int8-*": {"max_abs_logit": 3.0, "topk": 2}}
    assert isinstance(config.thresholds["*-int8-*"]["max_abs_logit"], float)


def test_cli_beats_table(project: Path) -> None:
    config = run(project, {"max_length": 64, "padding": "longest", "backends": ["onnx-fp32"]},
                 cli={"max_length": 16, "padding": "max_length", "backends": ["onnx-fp16"],
                      "batch_size": None})
    assert config.max_length == 16
    assert config.padding == "max_length"
    assert config.backends == ("onnx-fp16",)
    assert config.batch_size == 32  # None means "not given on the command line"


def test_table_paths_are_relative_to_the_pyproject_dir(project: Path, tmp_path: Path) -> None:
    config = run(project, {"json": "out/report.json", "cache_dir": "cache"}, cli_dir=tmp_path)
    assert config.model == project / "model"
    assert config.json == project / "out" / "report.json"
    assert config.cache_dir == project / "cache"


def test_cli_paths_are_relative_to_the_cli_dir(project: Path, tmp_path: Path) -> None:
    write_fake_model(tmp_path / "other-model", LABELS, TEXTS)
    config = run(project, cli={"model": "other-model", "json": "r.json"}, cli_dir=tmp_path)
    assert config.model == tmp_path / "other-model"
    assert config.json == tmp_path / "r.json"
    assert config.eval == project / "eval.jsonl"  # still from the table


def test_absolute_paths_are_kept(project: Path, tmp_path: Path) -> None:
    config = run(project, {"model": str(project / "model"), "cache_dir": str(tmp_path)})
    assert config.model == project / "model"
    assert config.cache_dir == tmp_path


def test_an_empty_table_with_cli_only(project: Path) -> None:
    config = load(None, base_dir=project / "model", source=SOURCE, cli_dir=project,
                  cli={"model": "model", "eval": "eval.jsonl"})
    assert config.model == project / "model"


# -- FIELDS and CLI parsing ---------------------------------------------------------------------

def test_fields_are_unique_and_named_as_options() -> None:
    keys = [f.key for f in FIELDS]
    assert len(keys) == len(set(keys))
    assert set(FIELD_BY_KEY) == set(keys)
    assert FIELD_BY_KEY["max_length"].option == "--quantgate-max-length"
    assert all(f.option.startswith("--quantgate-") and "_" not in f.option for f in FIELDS)
    assert all(f.help for f in FIELDS)
    assert set(Config.__dataclass_fields__) >= set(keys)


def test_parse_cli() -> None:
    assert FIELD_BY_KEY["max_length"].parse_cli("64") == 64
    assert FIELD_BY_KEY["backends"].parse_cli(" onnx-fp32, ,onnx-fp16 ") == ["onnx-fp32",
                                                                            "onnx-fp16"]
    assert FIELD_BY_KEY["model"].parse_cli("models/x") == "models/x"


def test_parse_cli_rejects_a_non_integer() -> None:
    with pytest.raises(ConfigError, match=re.escape(
            "option --quantgate-max-length: got 'abc', expected a whole number; "
            "e.g. --quantgate-max-length=128")):
        FIELD_BY_KEY["max_length"].parse_cli("abc")


# -- read_table ---------------------------------------------------------------------------------

def test_read_table(tmp_path: Path) -> None:
    assert read_table(tmp_path / "missing.toml") is None
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n')
    assert read_table(pyproject) is None
    pyproject.write_text('[tool.quantgate]\nmodel = "m"\n[[tool.quantgate.backend]]\n'
                         'name = "a"\nkind = "fake"\n')
    assert read_table(pyproject) == {"model": "m", "backend": [{"name": "a", "kind": "fake"}]}


def test_read_table_invalid_toml(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.quantgate\nmodel = 'm'\n")
    with pytest.raises(ConfigError, match=re.escape(
            f"{pyproject}: got \"invalid TOML (Expected ']' at the end of a table declaration "
            "(at line 1, column 16))\", expected valid TOML; fix the file")):
        read_table(pyproject)


def test_read_table_not_a_table(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool]\nquantgate = "yes"\n')
    with pytest.raises(ConfigError, match=re.escape(
            f"{pyproject}: tool.quantgate: got 'yes', expected a table; "
            "write it as [tool.quantgate]")):
        read_table(pyproject)


# -- errors, each by its text -------------------------------------------------------------------

def test_unknown_key(project: Path) -> None:
    text = fails(project, f"{WHERE}: key: got 'max_lenght', expected one of [",
                 {"max_lenght": 64})
    assert "'max_length'" in text and "'thresholds'" in text and "'backend'" in text
    assert text.endswith("; fix the spelling or remove it")


def test_unknown_backend_name(project: Path) -> None:
    text = fails(project, f"{WHERE}: backend: got 'onnx-fp33', expected one of [",
                 {"backends": ["onnx-fp33"]})
    assert "'onnx-fp32'" in text
    assert "'onnx'" not in text and "'fake'" not in text  # kinds without a precision need a decl
    assert text.endswith("fix the name, or declare it in a [[tool.quantgate.backend]] table "
                         "with name and kind")


def test_unknown_reference_name(project: Path) -> None:
    fails(project, f"{WHERE}: backend: got 'torch-fp64'", {"reference": "torch-fp64"})


def test_builtin_kind_without_precision_needs_a_declaration(project: Path) -> None:
    fails(project, f"{WHERE}: backend: got 'fake', expected one of", {"backends": ["fake"]})


@pytest.mark.parametrize("key", ["model", "eval"])
def test_required_path_missing(project: Path, key: str) -> None:
    table = {"model": "model", "eval": "eval.jsonl"}
    del table[key]
    fails(project, f"{WHERE}: {key}: got None, expected a path; add ", table, minimal=False)
    fails(project, f"pass --quantgate-{key}", table, minimal=False)


def test_missing_model_dir(project: Path) -> None:
    fails(project, f"{WHERE}: model: model directory: got '{project / 'nope'}', expected an "
          "existing Hugging Face model directory; build or download the model first, or fix "
          "the path",
          {"model": "nope"})


def test_model_path_that_is_a_file(project: Path) -> None:
    fails(project, f"{WHERE}: model: model directory: got '{project / 'eval.jsonl'}'",
          {"model": "eval.jsonl"})


def test_missing_eval_file(project: Path) -> None:
    fails(project, f"{WHERE}: eval: file: got '{project / 'gold.jsonl'}', expected an existing "
          "JSONL file; fix the path or create the file", {"eval": "gold.jsonl"})


def test_missing_calibration_file(project: Path) -> None:
    fails(project, f"{WHERE}: calibration: file: got '{project / 'cal.jsonl'}', expected an "
          "existing JSONL file; fix the path or create the file", {"calibration": "cal.jsonl"})


@pytest.mark.parametrize(("key", "value", "message"), [
    ("max_length", "x", "max_length: got 'x', expected a whole number >= 1; "
     "e.g. max_length = 128"),
    ("max_length", 0, "max_length: got 0, expected a whole number >= 1; e.g. max_length = 128"),
    ("max_length", 1.5, "max_length: got 1.5, expected a whole number >= 1; "
     "e.g. max_length = 128"),
    ("batch_size", True, "batch_size: got True, expected a whole number >= 1; "
     "e.g. batch_size = 32"),
    ("worst", -1, "worst: got -1, expected a whole number >= 0; e.g. worst = 5"),
    ("model", 3, "model: got 3, expected a path string; see the README"),
    ("model", "", "model: got '', expected a path string; see the README"),
    ("reference", "", "reference: got '', expected a string; e.g. reference = 'torch-fp32'"),
    ("backends", "onnx-fp32", "backends: got 'onnx-fp32', expected a list of strings; "
     "see the README"),
    ("expect_fail", [1], "expect_fail: got [1], expected a list of strings; see the README"),
    ("padding", "both", "padding: got 'both', expected one of ['longest', 'max_length']; "
     "e.g. padding = 'longest'"),
    ("task", "summarization", "task: got 'summarization', expected one of "
     "['text-classification', 'causal-lm', 'embeddings']; e.g. task = "
     "'text-classification'"),
])
def test_wrong_type_or_value(project: Path, key: str, value: Any, message: str) -> None:
    fails(project, f"{WHERE}: {message}", {key: value})


def test_worst_zero_is_allowed(project: Path) -> None:
    assert run(project, {"worst": 0}).worst == 0


def test_wrong_type_on_the_cli_names_the_option(project: Path) -> None:
    fails(project, "option --quantgate-batch-size: got 0, expected a whole number >= 1; "
          "e.g. batch_size = 32", cli={"batch_size": 0})


def test_missing_path_on_the_cli_names_the_option(project: Path, tmp_path: Path) -> None:
    fails(project, f"option --quantgate-model: model directory: got '{tmp_path / 'm'}', "
          "expected an existing Hugging Face model directory", cli={"model": "m"},
          cli_dir=tmp_path)
    fails(project, f"option --quantgate-eval: file: got '{tmp_path / 'e.jsonl'}', "
          "expected an existing JSONL file", cli={"eval": "e.jsonl"}, cli_dir=tmp_path)


def test_causal_lm_refuses_a_backend_kind_that_cannot_run_it(project: Path) -> None:
    fails(project, f"{WHERE}: kind of backend 'torch-cuda-fp32' for task 'causal-lm': got "
          "'torch-cuda-fp32', expected a kind that runs the task: one of ['onnx', 'onnx-fp16', "
          "'onnx-fp32', "
          "'onnx-int8-dynamic', 'onnx-int8-static', 'torch-bf16', 'torch-fp16', 'torch-fp32', "
          "'torch-int8-dynamic']; remove it from backends, or set the task it runs",
          {"task": "causal-lm", "backends": ["torch-cuda-fp32"]})


def test_causal_lm_window_and_stride(project: Path) -> None:
    fails(project, f"{WHERE}: stride: got 65, expected at most window (64); a larger stride "
          "would leave tokens unscored; lower it", {"task": "causal-lm", "window": 64,
                                                    "stride": 65})
    fails(project, f"{WHERE}: window: got 1, expected a whole number >= 2",
          {"task": "causal-lm", "window": 1})


def test_task_of_the_wrong_type(project: Path) -> None:
    fails(project, f"{WHERE}: task: got ['text-classification']",
          {"task": ["text-classification"]})


def test_duplicate_backend(project: Path) -> None:
    fails(project, f"{WHERE}: backends: got ['onnx-fp32', 'onnx-fp32'], expected each backend "
          "once; remove the duplicate", {"backends": ["onnx-fp32", "onnx-fp32"]})


def test_duplicate_declared_backend(project: Path) -> None:
    fails(project, f"{WHERE}: backend #2: got 'a', expected a unique backend name; "
          "rename one of them", {"backend": [{"name": "a", "kind": "fake"},
                                             {"name": "a", "kind": "fake"}]})


def test_expect_fail_names_an_unknown_backend(project: Path) -> None:
    fails(project, f"{WHERE}: expect_fail: got 'onnx-fp61', expected one of [",
          {"backends": ["onnx-fp32"], "expect_fail": ["onnx-fp61"]})


def test_expect_fail_may_name_a_backend_not_gated_in_this_run(project: Path) -> None:
    config = run(project, {"backends": ["onnx-fp32"], "expect_fail": ["onnx-fp16"]})
    assert config.expect_fail == ("onnx-fp16",)


def test_declared_backend_without_kind(project: Path) -> None:
    fails(project, f"{WHERE}: backend #1: got {{'name': 'mine'}}, expected a table with string "
          "keys name and kind; add name = \"my-backend\" and kind = \"onnx\"",
          {"backend": [{"name": "mine"}]})


def test_backend_not_an_array_of_tables(project: Path) -> None:
    fails(project, f"{WHERE}: backend: got 'dict', expected an array of tables "
          "[[tool.quantgate.backend]]", {"backend": {"name": "mine", "kind": "fake"}})


def test_declared_backend_of_unknown_kind(project: Path) -> None:
    fails(project, f"{WHERE}: backend #1: backend kind: got 'openvino', expected one of [",
          {"backend": [{"name": "mine", "kind": "openvino"}]})


def test_declared_tensorrt_engine_needs_its_file(project: Path) -> None:
    fails(project, f"{WHERE}: backend #1: backend 'mine' (tensorrt): got \"no 'engine'\", "
          "expected option 'engine'", {"backend": [{"name": "mine", "kind": "tensorrt"}]})


def test_unknown_option_of_a_declared_backend(project: Path) -> None:
    text = fails(project, f"{WHERE}: backend #1: option of backend 'mine' (onnx): got 'pth', "
                 "expected one of ['path', 'precision']; remove or rename it",
                 {"backend": [{"name": "mine", "kind": "onnx", "pth": "m.onnx"}]})
    assert "pth" in text


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("opset", "17", "a value of type int; write it as e.g. opset = 17"),
    ("opset", True, "a value of type int; write it as e.g. opset = 17"),
    ("per_channel", 1, "a value of type bool; write it as e.g. per_channel = True"),
])
def test_wrong_option_type(project: Path, option: str, value: Any, expected: str) -> None:
    fails(project, f"{WHERE}: backend #1: option {option!r} of backend 'q': got {value!r}, "
          f"expected {expected}",
          {"backend": [{"name": "q", "kind": "onnx-int8-dynamic", option: value}]})


def test_wrong_option_type_of_a_union(project: Path) -> None:
    fails(project, f"{WHERE}: backend #1: option 'drift' of backend 'f': got 'big', expected a "
          "value of type int or float; write it as e.g. drift = 0.0",
          {"backend": [{"name": "f", "kind": "fake", "drift": "big"}]})


def test_option_choice_not_allowed(project: Path) -> None:
    fails(project, f"{WHERE}: backend #1: option 'exporter' of backend 'e': got 'fast', "
          "expected one of ['legacy', 'dynamo']; pick one of those",
          {"backend": [{"name": "e", "kind": "onnx-fp32", "exporter": "fast"}]})


def test_precision_choice_not_allowed(project: Path) -> None:
    fails(project, f"{WHERE}: backend #1: option 'precision' of backend 'f': got 'fp8', "
          "expected one of ['fp32', 'fp16', 'bf16', 'int8']; pick one of those",
          {"backend": [{"name": "f", "kind": "fake", "precision": "fp8"}]})


def test_onnx_kind_without_path(project: Path) -> None:
    fails(project, f"{WHERE}: backend #1: backend 'mine' (onnx): got \"no 'path'\", expected "
          "option 'path': the ONNX file (required); add path = ... to its declaration",
          {"backend": [{"name": "mine", "kind": "onnx"}]})


def test_thresholds_with_an_unknown_keyword(project: Path) -> None:
    fails(project, f"{WHERE}: thresholds.*-int8-*: threshold keyword: got 'max_abs', "
          "expected one of [", {"thresholds": {"*-int8-*": {"max_abs": 1.0}}})


def test_thresholds_not_a_table(project: Path) -> None:
    fails(project, f"{WHERE}: thresholds.onnx-fp16: got 0.1, expected a table of threshold "
          "keywords; write [tool.quantgate.thresholds.\"onnx-fp16\"]",
          {"thresholds": {"onnx-fp16": 0.1}})
    fails(project, f"{WHERE}: thresholds: got 1, expected tables like",
          {"thresholds": 1})
