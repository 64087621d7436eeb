"""The bad-input matrix: every bad or unusual input a user can hand the gate gives one line
(what, got, expected, how to fix) and never a traceback. What can be known before a model runs
stops the run at start-up with the usage-error exit code; a fault found while running becomes
the error verdict of the items it touches, and the summary and reports are still written."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_project import BACKENDS_TOML

USAGE = pytest.ExitCode.USAGE_ERROR


@dataclass(frozen=True)
class Case:
    id: str
    line: str  # the exact message after the prefix; {root} is the project folder
    prefix: str = "ERROR: quantgate: "  # "ERROR: " where pytest itself reads the file first
    table: str = 'backends = ["same"]'
    change: Callable[[Path], None] | None = None
    args: tuple[str, ...] = ()
    backends_toml: str = BACKENDS_TOML


def golden(root: Path) -> Path:
    return root / "data" / "golden.jsonl"


def append(path: str, text: str | bytes) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        file = root / path
        file.write_bytes(file.read_bytes() + (text.encode() if isinstance(text, str) else text))
    return change


def write(path: str, text: str | bytes) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(text.encode() if isinstance(text, str) else text)
    return change


def model_config(**changes: object) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        path = root / "model" / "config.json"
        config = json.loads(path.read_text())
        for key, value in changes.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
        path.write_text(json.dumps(config))
    return change


def remove(path: str) -> Callable[[Path], None]:
    return lambda root: (root / path).unlink()


def unknown_words(root: Path) -> None:
    rows = [json.dumps({"text": f"zyx{i} qwv{i} plm{i}", "label": "World"}) for i in range(20)]
    golden(root).write_text("\n".join(rows) + "\n")


GOLDEN = "{root}/data/golden.jsonl"
CASES = [
    # -- the eval and calibration data, read whole at start-up ----------------------------
    Case('empty eval file',
         ("data file: got '{root}/data/golden.jsonl (no examples)', expected at least one "
          'JSONL line; fill the file or point the config at another one'),
         change=write("data/golden.jsonl", "")),
    Case('blank eval file',
         ("data file: got '{root}/data/golden.jsonl (no examples)', expected at least one "
          'JSONL line; fill the file or point the config at another one'),
         change=write("data/golden.jsonl", "\n\n  \n")),
    Case('malformed JSONL line',
         ('{root}/data/golden.jsonl:46: got \'{{"text": "cut\', expected a JSON object like '
          '{{"text": "...", "label": "..."}}; fix that line (Unterminated string starting '
          'at: line 1 column 10 (char 9))'), change=append("data/golden.jsonl", '{"text": "cut\n')),
    Case('a JSON list, not an object',
         ("{root}/data/golden.jsonl:46: text: got ['a', 'b'], expected a string under the "
          "key 'text'; fix that line"), change=append("data/golden.jsonl", '["a", "b"]\n')),
    Case('text is not a string',
         ('{root}/data/golden.jsonl:46: text: got 3, expected a string under the key '
          "'text'; fix that line"), change=append("data/golden.jsonl",
                                                   '{"text": 3, "label": "World"}\n')),
    Case('unknown label',
         ("{root}/data/golden.jsonl:46: label: got 'Weather', expected one of ['World', "
          "'Sports', 'Business'] or an id 0..2; fix the label or the model's id2label"),
         change=append("data/golden.jsonl",
                                            '{"text": "a b", "label": "Weather"}\n')),
    Case('label id out of range',
         ("{root}/data/golden.jsonl:46: label: got 7, expected one of ['World', 'Sports', "
          "'Business'] or an id 0..2; fix the label or the model's id2label"),
         change=append("data/golden.jsonl",
                                                    '{"text": "a b", "label": 7}\n')),
    Case('missing label',
         ("{root}/data/golden.jsonl:46: label: got None, expected one of ['World', "
          "'Sports', 'Business'] or an id 0..2; add a label to that line"),
         change=append("data/golden.jsonl", '{"text": "a b"}\n')),
    Case('non-UTF-8 bytes',
         ("{root}/data/golden.jsonl:46: got 'bytes that are not UTF-8 (invalid continuation "
          "byte at byte 14 of the line)', expected UTF-8 text; re-save the file as UTF-8"),
         change=append("data/golden.jsonl",
                                              b'{"text": "caf\xe9", "label": "World"}\n')),
    Case('eval file missing',
         ("pyproject.toml [tool.quantgate]: eval: file: got '{root}/data/golden.jsonl', "
          'expected an existing JSONL file; fix the path or create the file'),
         change=remove("data/golden.jsonl")),
    Case('calibration file missing',
         ('pyproject.toml [tool.quantgate]: calibration: file: got '
          "'{root}/data/nope.jsonl', expected an existing JSONL file; fix the path or "
          'create the file'),
         table='backends = ["same"]\ncalibration = "data/nope.jsonl"'),
    Case('malformed calibration line',
         ('{root}/data/calib.jsonl:2: got \'{{oops\', expected a JSON object like {{"text": '
          '"...", "label": "..."}}; fix that line (Expecting property name enclosed in '
          'double quotes: line 1 column 2 (char 1))'),
         table='backends = ["same"]\ncalibration = "data/calib.jsonl"',
         change=write("data/calib.jsonl", '{"text": "ok"}\n{oops\n')),
    Case('empty calibration file',
         ("data file: got '{root}/data/calib.jsonl (no examples)', expected at least one "
          'JSONL line; fill the file or point the config at another one'),
         table='backends = ["same"]\ncalibration = "data/calib.jsonl"',
         change=write("data/calib.jsonl", "")),
    # -- the model directory -----------------------------------------------------------
    Case('model directory missing',
         ("pyproject.toml [tool.quantgate]: model: model directory: got '{root}/model', "
          'expected an existing Hugging Face model directory; build or download the model '
          'first, or fix the path'), change=lambda root: (root / "model").rename(root / "gone")),
    Case('config.json missing',
         ("model directory: got '{root}/model', expected a Hugging Face model directory "
          'with config.json; point `model` at the directory save_pretrained() wrote'),
         change=remove("model/config.json")),
    Case('config.json not JSON',
         ("{root}/model/config.json: got 'invalid JSON (Expecting property name enclosed in "
          "double quotes: line 1 column 2 (char 1))', expected a JSON object; re-save the "
          'model with save_pretrained()'), change=write("model/config.json", "{not json")),
    Case('config.json a list',
         ("{root}/model/config.json: got 'list', expected a JSON object; re-save the model "
          'with save_pretrained()'), change=write("model/config.json", "[1, 2]")),
    Case('config.json without id2label',
         ('{root}/model/config.json: id2label: got None, expected a mapping of class id to '
          'label; set model.config.id2label before saving the model'),
         change=model_config(id2label=None)),
    Case('id2label with a gap',
         ('{root}/model/config.json: id2label ids: got [0, 2], expected 0..1 without gaps; '
          're-number the labels'), change=model_config(id2label={"0": "World", "2": "Sports"})),
    Case('id2label keys not ids',
         ("{root}/model/config.json: id2label keys: got ['a'], expected integer class ids; "
          "re-save the model's config"), change=model_config(id2label={"a": "World"})),
    Case('corrupt tokenizer.json',
         ("tokenizer file: got '{root}/model/tokenizer.json', expected a valid "
          'tokenizer.json; re-save the tokenizer (expected `,` or `}}` at line 1 column 10)'),
         change=write("model/tokenizer.json", "{\"broken\": 1")),
    Case("tokenizer vocabulary far smaller than the model's",
         ('tokenizer of {root}/model (tokenizers): vocabulary size: got 22, expected about '
          "the model's 30522 (vocab_size in config.json); save the model's own tokenizer "
          '(tokenizer.json) beside it'),
         change=model_config(vocab_size=30522)),
    Case("tokenizer vocabulary larger than the model's",
         ('tokenizer of {root}/model (tokenizers): vocabulary size: got 22, expected at '
          "most the model's 5 (vocab_size in config.json): larger ids index past its "
          "embeddings; save the model's own tokenizer beside it"),
         change=model_config(vocab_size=5)),
    Case('most eval words unknown to the tokenizer',
         ("tokenizer of {root}/model (tokenizers): unknown tokens in the eval set: got '60% "
          "of 100', expected at most 20% (the model's tokenizer knows its words); save the "
          "model's own tokenizer (tokenizer.json) beside it"), change=unknown_words),
    Case("a model saved with a language-model head",
         ("config.json architectures: got ['BertForMaskedLM'], expected a model saved with the "
          "head of task 'text-classification' (...ForSequenceClassification); set task to what "
          "the model was trained for, or save the model with that head (its weights would "
          "otherwise be initialised at random)"),
         change=model_config(architectures=["BertForMaskedLM"])),
    Case("max_length beyond the model's positions",
         ("max_length: got 64, expected at most the model's 32 positions (config.json); set "
          'max_length = 32 or less'),
         table='backends = ["same"]\nmax_length = 64',
         change=model_config(max_position_embeddings=32)),
    # -- the configuration -------------------------------------------------------------
    Case('invalid TOML',
         '{root}/pyproject.toml: Invalid value (at line 31, column 14)',
         prefix="ERROR: ", change=append("pyproject.toml", "\nbatch_size = \n")),
    Case('unknown key',
         ("pyproject.toml [tool.quantgate]: key: got 'batchsize', expected one of "
          "['adversarial_budget', 'adversarial_max_examples', 'adversarial_profile', "
          "'adversarial_seed', 'backend', 'backends', 'batch_size', 'cache_dir', "
          "'cache_max_age_days', "
          "'calibration', 'compare', 'eval', 'expect_fail', 'html', 'inconclusive', 'inspect', "
          "'json', "
          "'latency', 'latency_batch_sizes', 'latency_rounds', 'latency_seconds', "
          "'latency_warmup', 'max_length', 'model', 'normalize', 'padding', 'pooling', "
          "'queries', 'reference', 'strict', "
          "'stride', 'task', 'thresholds', 'tolerances', 'window', 'worst']; fix the "
          'spelling or remove it'), table='backends = ["same"]\nbatchsize = 4'),
    Case('unknown task',
         ("pyproject.toml [tool.quantgate]: task: got 'translation', expected one of "
          "['text-classification', 'causal-lm', 'embeddings']; e.g. task = "
          "'text-classification'"),
         table='backends = ["same"]\ntask = "translation"'),
    Case('batch_size 0',
         ('pyproject.toml [tool.quantgate]: batch_size: got 0, expected a whole number >= '
          '1; e.g. batch_size = 32'), table='backends = ["same"]\nbatch_size = 0'),
    Case('padding not a choice',
         ("pyproject.toml [tool.quantgate]: padding: got 'shortest', expected one of "
          "['longest', 'max_length']; e.g. padding = 'longest'"),
         table='backends = ["same"]\npadding = "shortest"'),
    Case('latency batch sizes empty',
         ('pyproject.toml [tool.quantgate]: latency_batch_sizes: got [], expected a '
          'non-empty list of whole numbers >= 1; e.g. latency_batch_sizes = [1, 32]'),
         table='backends = ["same"]\nlatency_batch_sizes = []'),
    Case('stride beyond window',
         ('pyproject.toml [tool.quantgate]: stride: got 32, expected at most window (16); a '
          'larger stride would leave tokens unscored; lower it'),
         table='backends = ["same"]\nwindow = 16\nstride = 32'),
    Case('unknown backend',
         ("pyproject.toml [tool.quantgate]: backend: got 'sam', expected one of ['drifty', "
          "'onnx-cuda', 'onnx-cuda-fp16', 'onnx-fp16', 'onnx-fp32', 'onnx-int8-dynamic', "
          "'onnx-int8-static', 'onnx-trt', 'onnx-trt-fp16', 'poisoned', 'ref', 'same', "
          "'swapped', 'torch-bf16', 'torch-cuda-bf16', 'torch-cuda-fp16', "
          "'torch-cuda-fp32', 'torch-fp16', 'torch-fp32', 'torch-int8-dynamic', 'trt-fp16', "
          "'trt-fp32', 'trt-int8']; fix the name, or declare it in a "
          '[[tool.quantgate.backend]] table with name and kind'), table='backends = ["sam"]'),
    Case('reference among backends',
         ("pyproject.toml [tool.quantgate]: backends: got 'ref', expected backends other "
          'than the reference; remove the reference from backends (it is what the others '
          'are compared with)'), table='backends = ["ref", "same"]'),
    Case('backend twice',
         ("pyproject.toml [tool.quantgate]: backends: got ['same', 'same'], expected each "
          'backend once; remove the duplicate'), table='backends = ["same", "same"]'),
    Case('no backends selected',
         ('option --quantgate-backends: got [], expected at least one backend to compare '
          "with the reference 'ref'; name one (e.g. --quantgate-backends onnx-fp32), or "
          'drop the empty list'), args=("--quantgate-backends=",)),
    Case('expect_fail names no backend',
         ("pyproject.toml [tool.quantgate]: expect_fail: got 'smae', expected one of "
          "['drifty', 'onnx-cuda', 'onnx-cuda-fp16', 'onnx-fp16', 'onnx-fp32', "
          "'onnx-int8-dynamic', 'onnx-int8-static', 'onnx-trt', 'onnx-trt-fp16', "
          "'poisoned', 'ref', 'same', 'swapped', 'torch-bf16', 'torch-cuda-bf16', "
          "'torch-cuda-fp16', 'torch-cuda-fp32', 'torch-fp16', 'torch-fp32', "
          "'torch-int8-dynamic', 'trt-fp16', 'trt-fp32', 'trt-int8']; fix the name, or "
          'declare the backend'), table='backends = ["same"]\nexpect_fail = ["smae"]'),
    Case('unknown backend option',
         ("pyproject.toml [tool.quantgate]: backend #6: option of backend 'odd' (fake): got "
          "'noise', expected one of ['delay', 'digit_percent_fault', 'drift', 'dropout', "
          "'input_dtype', 'label_permutation', 'nan_rate', 'precision', 'raw_int32', "
          "'seed', 'swap_inputs']; remove or rename it"),
         backends_toml=BACKENDS_TOML + '\n[[tool.quantgate.backend]]\nname = "odd"\n'
         'kind = "fake"\nnoise = 1\n'),
    Case('backend option of the wrong type',
         ("pyproject.toml [tool.quantgate]: backend #3: option 'drift' of backend 'drifty': "
          "got 'high', expected a value of type int or float; write it as e.g. drift = 0.0"),
         backends_toml=BACKENDS_TOML.replace("drift = 0.5", 'drift = "high"')),
    Case('backend option out of range',
         ("pyproject.toml [tool.quantgate]: backend #5: option 'nan_rate' of backend "
          "'poisoned': got 5, expected a value in [0, 1]; e.g. nan_rate = 0.0"),
         backends_toml=BACKENDS_TOML.replace("nan_rate = 0.2", "nan_rate = 5")),
    Case('backend without a kind',
         ("pyproject.toml [tool.quantgate]: backend #6: got {{'name': 'odd'}}, expected a "
          'table with string keys name and kind; add name = "my-backend" and kind = "onnx"'),
         backends_toml=BACKENDS_TOML + '\n[[tool.quantgate.backend]]\nname = "odd"\n'),
    Case('static INT8 without calibration data',
         ("pyproject.toml [tool.quantgate]: backend 'onnx-int8-static' (onnx-int8-static): "
          "got 'no calibration set', expected calibration = a JSONL file of texts like the "
          'traffic (its activation ranges are calibrated on them); add calibration = '
          '"data/calibration.jsonl", or remove the backend'),
         table='backends = ["onnx-int8-static"]'),
    Case('threshold table that matches no backend',
         ("pyproject.toml [tool.quantgate]: thresholds.*-int4-*: got '*-int4-*', expected a "
          'backend name or glob that matches a backend (e.g. \'drifty\', "*-int8-*"); fix '
          'the pattern or remove the table'),
         table='backends = ["same"]\n[tool.quantgate.thresholds."*-int4-*"]\nmax_abs_logit = 1'),
    Case('unknown threshold keyword',
         ('pyproject.toml [tool.quantgate]: thresholds.same: threshold keyword: got '
          "'max_logit', expected one of ['accuracy_delta', 'adversarial_failure_rate', "
          "'f1_delta', 'kl_div', "
          "'max_abs_logit', 'max_abs_share', 'max_clipping_rate', 'max_low_cosine_share', "
          "'max_rerun_diff', 'mean_abs_logit', 'min_cosine', 'min_cosine_mean', "
          "'min_int8_share', 'neighbour_overlap', 'ppl_delta', 'recall_delta', "
          "'retrieval_k', 'tie_margin', 'top1_agreement', 'topk', "
          "'topk_overlap']; fix the spelling"),
         table='backends = ["same"]\n[tool.quantgate.thresholds.same]\nmax_logit = 1'),
    Case('threshold out of range',
         ('pyproject.toml [tool.quantgate]: thresholds.same: threshold top1_agreement: got '
          '2, expected a value in [0.0, 1.0]; write e.g. top1_agreement=0.995'),
         table='backends = ["same"]\n[tool.quantgate.thresholds.same]\ntop1_agreement = 2'),
    Case('topk as large as the label count',
         ('pyproject.toml [tool.quantgate]: thresholds.same: topk: got 20, expected at most '
          '2 (the model has 3 labels: a top-20 overlap can never fail); lower topk'),
         table='backends = ["same"]\n[tool.quantgate.thresholds.same]\ntopk = 20'),
    Case('--quantgate-config that does not exist',
         ("--quantgate-config: got '{root}/nope.toml', expected an existing pyproject.toml; "
          'fix the path'), prefix='ERROR: ', args=("--quantgate-config", "nope.toml")),
    Case('--quantgate-update without a baseline',
         ('--quantgate-update: got no baseline to rewrite, expected --quantgate-compare '
          'PATH (or compare = "..." in [tool.quantgate]); add it'), args=("--quantgate-update",)),
    Case('baseline that is not JSON',
         ("baseline {root}/base.json: got 'unreadable JSON (Expecting property name "
          "enclosed in double quotes: line 1 column 2 (char 1))', expected a JSON file; "
          'point at a report written by --quantgate-json'), change=write("base.json", "{nope"),
         args=("--quantgate-compare", "base.json")),
    Case('baseline whose backends is a string',
         ('baseline {root}/base.json: got "a malformed pytest-quantgate-report '
          '(AttributeError: \'str\' object has no attribute \'items\')", expected a file '
          'written by --quantgate-json or --benchmark-save, unedited; record it again with '
          '--quantgate-update'),
         change=write("base.json", json.dumps({"format": "pytest-quantgate-report",
                                               "version": 3, "backends": "same"})),
         args=("--quantgate-compare", "base.json")),
    Case('baseline with no measures',
         ("baseline {root}/base.json: got 'no measures', expected a report with judged "
          'backends to compare with; record one with --quantgate-update (a run whose '
          'backends all errored measured nothing)'),
         change=write("base.json", json.dumps({"format": "pytest-quantgate-report",
                                               "version": 3, "backends": {"same": {}}})),
         args=("--quantgate-compare", "base.json")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_at_start_up(project, case: Case) -> None:  # type: ignore[no-untyped-def]
    pytester = project(case.table, backends_toml=case.backends_toml)
    if case.change is not None:
        case.change(pytester.path)
    result = pytester.runpytest_subprocess("--quantgate", "-p", "no:cacheprovider",
                                           "--quantgate-json", "run.json", *case.args)
    out, err = result.stdout.str(), result.stderr.str()
    assert "Traceback" not in out + err and "INTERNALERROR" not in out + err, out + err
    lines = [line for line in err.splitlines() if line.strip()]
    root = str(pytester.path)
    assert result.ret == USAGE, (result.ret, out[-2000:], err)
    assert len(lines) == 1, lines
    assert lines[0] == case.prefix + case.line.format(root=root), lines[0]
    assert not (pytester.path / "run.json").exists()  # nothing ran: no report claims a result


# -- faults found while running: error verdicts; the summary and reports are still written ----
def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, str]:
    result = pytester.runpytest_subprocess("--quantgate", "-p", "no:cacheprovider",
                                           "--quantgate-json", "run.json", "--quantgate-html",
                                           "run.html", *args)
    out = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out, out[-3000:]
    return result, out


def test_a_reference_with_nan_outputs_is_every_backends_error_and_reports_are_written(project):  # type: ignore[no-untyped-def]
    poisoned = BACKENDS_TOML.replace('name = "ref"\nkind = "fake"\n',
                                     'name = "ref"\nkind = "fake"\nnan_rate = 0.5\n', 1)
    pytester = project('backends = ["same"]', backends_toml=poisoned)
    result, out = run(pytester)
    assert result.ret == 1
    line = ("same: ERROR: logits/topk/accuracy: reference 'ref' outputs: got 'NaN/Inf', "
            "expected finite logits; fix the reference model or pick another reference")
    assert line in out.splitlines(), out[-2000:]
    report = json.loads((pytester.path / "run.json").read_text())
    assert report["backends"]["same"]["verdict"] == "ERROR"
    assert (pytester.path / "run.html").is_file()


def test_untimed_latency_with_an_html_report_is_skipped_with_its_reason(project):  # type: ignore[no-untyped-def]
    pytester = project('backends = ["same"]\nlatency = true\nlatency_batch_sizes = [2]')
    result, out = run(pytester, "--benchmark-disable", "-rs")
    assert result.ret == 0
    assert "not timed: --benchmark-disable is on; drop it to time the latency items" in out
    html = (pytester.path / "run.html").read_text()
    assert "latency was not timed in this run" in html


def test_a_damaged_cached_reference_is_run_again_and_gives_the_same_report(project):  # type: ignore[no-untyped-def]
    pytester = project('backends = ["same", "drifty"]\ncache_dir = "cache"')
    first, _ = run(pytester)
    before = json.loads((pytester.path / "run.json").read_text())
    (run_json,) = (pytester.path / "cache" / "reference").glob("*/run.json")
    meta = json.loads(run_json.read_text())
    del meta["seconds"]  # an older or hand-edited entry
    run_json.write_text(json.dumps(meta))
    second, _ = run(pytester)
    after = json.loads((pytester.path / "run.json").read_text())
    assert first.ret == second.ret == 1  # drifty fails both times, nothing crashes
    assert before["reference"]["timing"]["reference_cached"] is False
    assert after["reference"]["timing"]["reference_cached"] is False  # run again, not trusted
    assert {n: e["metrics"] for n, e in after["backends"].items()} == \
        {n: e["metrics"] for n, e in before["backends"].items()}
    assert "seconds" in json.loads(run_json.read_text())  # and stored whole again


def test_a_declared_backend_left_out_of_backends_is_named_in_the_header(project):  # type: ignore[no-untyped-def]
    pytester = project('backends = ["same"]')
    result, out = run(pytester)
    assert result.ret == 0
    assert ("quantgate: declared but not gated: drifty, swapped, poisoned (not in backends; add "
            "them to backends, or pass --quantgate-backends, to gate them)") in out.splitlines()


LOOSE = ('\n[tool.quantgate.thresholds.same]\nmax_abs_logit = 100\nmean_abs_logit = 100\n'
         'top1_agreement = 0\ntopk_overlap = 0\naccuracy_delta = 1\nf1_delta = 1\nkl_div = 100\n')


def test_a_regression_within_thresholds_reads_regressed_in_every_view(project, capsys):  # type: ignore[no-untyped-def]
    from pytest_quantgate.cli import main

    pytester = project('backends = ["same"]' + LOOSE)
    args = ("--quantgate-compare", "base.json")
    recorded, _ = run(pytester, *args, "--quantgate-update")
    assert recorded.ret == 0
    drifted = BACKENDS_TOML.replace('name = "same"\nkind = "fake"\n',
                                    'name = "same"\nkind = "fake"\ndrift = 0.8\n', 1)
    project('backends = ["same"]' + LOOSE, backends_toml=drifted)
    result, out = run(pytester, *args)
    assert result.ret == 1  # the regressed items fail
    row = next(line for line in out.splitlines() if line.startswith("same "))
    assert row.rstrip().endswith("REGRESSED"), row  # the terminal verdict table
    report = json.loads((pytester.path / "run.json").read_text())
    assert report["backends"]["same"]["verdict"] == "REGRESSED"
    capsys.readouterr()
    main(["show", str(pytester.path / "run.json")])
    shown = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("same "))
    assert shown.rstrip().endswith("REGRESSED"), shown
    html = (pytester.path / "run.html").read_text()
    top = html.split('id="backends"')[0]  # the verdict table above the per-backend sections
    assert "REGRESSED" in top


def test_an_undecided_check_is_skipped_by_default_and_configurable(project):  # type: ignore[no-untyped-def]
    loose = ('\n[tool.quantgate.thresholds.drifty]\nmax_abs_logit = 100\nmean_abs_logit = 100\n'
             'kl_div = 100\ntopk_overlap = 0\naccuracy_delta = 1\nf1_delta = 1\n')
    pytester = project('backends = ["drifty"]' + loose + "top1_agreement = 0")
    first, _ = run(pytester)
    agreement = json.loads((pytester.path / "run.json").read_text())[
        "backends"]["drifty"]["metrics"]["top1_agreement"]
    assert 0.5 < agreement < 0.995 and first.ret == 0
    # a hair above what 45 inputs measured: the sample cannot tell the two apart
    project('backends = ["drifty"]' + loose + f"top1_agreement = {agreement + 0.005:.4f}")
    result, out = run(pytester, "-rs")
    assert result.ret == 0
    assert "SKIPPED" in out and "inconclusive: top1_agreement" in out and "would decide" in out
    report = json.loads((pytester.path / "run.json").read_text())
    assert report["backends"]["drifty"]["verdict"] == "INCONCLUSIVE"
    topk = next(c for c in report["backends"]["drifty"]["checks"] if c["check"] == "topk")
    assert topk["verdict"] == "inconclusive" and topk["measures"][0]["decide_at"] > 45
    failed, out = run(pytester, "--quantgate-inconclusive", "fail")
    assert failed.ret == 1 and 'inconclusive = "fail"' in out
    passed, _ = run(pytester, "--quantgate-inconclusive", "pass")
    assert passed.ret == 0
