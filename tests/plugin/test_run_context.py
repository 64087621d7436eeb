"""What a run tells about its own context, as a user meets it: the CPU's instruction sets and a
user ONNX file's inferred precision in the header, and a reference at chance in the summary and
the JSON report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fake_project import BACKENDS_TOML, LABELS

try:  # Imported at collection, before pytester snapshots sys.modules: a test's pytester drops
    # the modules first imported during it, and onnx's protobuf extension aborts the process
    # when it is imported a second time.
    import onnx  # noqa: F401
    import onnx.numpy_helper  # noqa: F401
    import onnxruntime  # noqa: F401

    HAVE_ONNX = True
except ImportError:
    HAVE_ONNX = False

CPU_LINE = "quantgate: CPU *INT8 results differ between CPUs with and without VNNI*"
AT_CHANCE = ("reference 'ref' accuracy * on 45 inputs is at chance (1 of 3 labels = 0.333): its "
             "head is untrained or the eval labels do not match its id2label; agreement with it "
             "measures noise")


def _relabel(root: Path, label_of: list[str]) -> None:
    golden = root / "data" / "golden.jsonl"
    rows = [json.loads(line) for line in golden.read_text().splitlines()]
    golden.write_text("".join(json.dumps({**row, "label": label}) + "\n"
                              for row, label in zip(rows, label_of, strict=True)))


def _reference_predictions(root: Path) -> list[str]:
    """The fake reference's (``ref``: seed 0) label for each golden text: the tokenizer's ids
    through the same FakeRunner the plugin builds."""
    from tokenizers import Tokenizer

    from pytest_quantgate.backends.fake import FakeRunner

    tok = Tokenizer.from_file(str(root / "model" / "tokenizer.json"))
    runner = FakeRunner("ref", "fp32", vocab_size=tok.get_vocab_size(), num_labels=len(LABELS),
                        options={}).activate()
    out = []
    for line in (root / "data" / "golden.jsonl").read_text().splitlines():
        enc = tok.encode(json.loads(line)["text"])
        feed = {"input_ids": np.array([enc.ids]), "token_type_ids": np.array([enc.type_ids]),
                "attention_mask": np.ones((1, len(enc.ids)), dtype=np.int64)}
        out.append(LABELS[int(np.argmax(runner.infer(feed)["logits"]))])
    return out


def test_the_cpu_line_is_in_the_header_with_the_gate_only(project):  # type: ignore[no-untyped-def]
    pytester = project('backends = ["same"]')
    pytester.makepyfile("def test_plain():\n    assert True\n")
    gated = pytester.runpytest("--quantgate", "-p", "no:cacheprovider")
    gated.stdout.fnmatch_lines([CPU_LINE, "rootdir: *"])  # in the header, before the run
    plain = pytester.runpytest("-p", "no:cacheprovider")
    plain.assert_outcomes(passed=1)
    assert "quantgate: CPU" not in plain.stdout.str()


def test_a_reference_at_chance_is_named_in_the_summary_and_the_json(project):  # type: ignore[no-untyped-def]
    pytester = project('backends = ["same"]\njson = "run.json"')
    # one text in three keeps the label the reference predicts, the others get another one:
    # accuracy 1/3 on 3 labels, what a head that has nothing to do with the labels scores
    predicted = _reference_predictions(pytester.path)
    _relabel(pytester.path, [p if i % 3 == 0 else LABELS[(LABELS.index(p) + 1) % len(LABELS)]
                             for i, p in enumerate(predicted)])
    result = pytester.runpytest("--quantgate", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)  # a warning, not a failure: `same` agrees with it exactly
    result.stdout.fnmatch_lines(["*= quantgate =*", "warning: " + AT_CHANCE])
    report = json.loads((pytester.path / "run.json").read_text())
    assert len(report["warnings"]) == 1
    accuracy = report["backends"]["same"]["metrics"]["reference_accuracy"]
    assert report["warnings"][0] == AT_CHANCE.replace("*", f"{accuracy:.3f}")


def test_a_reference_that_knows_its_labels_has_no_warning(project):  # type: ignore[no-untyped-def]
    pytester = project('backends = ["same"]\njson = "run.json"')
    _relabel(pytester.path, _reference_predictions(pytester.path))
    result = pytester.runpytest("--quantgate", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    report = json.loads((pytester.path / "run.json").read_text())
    assert report["backends"]["same"]["metrics"]["reference_accuracy"] == 1.0
    assert report["warnings"] == []
    assert "warning:" not in result.stdout.str()


USER_FILE = ('\n[[tool.quantgate.backend]]\nname = "user-int8"\nkind = "onnx"\n'
             'path = "models/user-int8.onnx"\n')


@pytest.mark.parametrize("declared", ["", 'precision = "fp32"\n'], ids=["inferred", "declared"])
@pytest.mark.skipif(not HAVE_ONNX, reason="needs the onnx extra (onnx, onnxruntime)")
def test_a_user_onnx_files_precision_is_read_from_its_graph(project, declared):  # type: ignore[no-untyped-def]
    from onnx_graphs import save, token_classifier

    from pytest_quantgate.thresholds import resolve

    pytester = project('backends = ["user-int8"]\njson = "run.json"',
                       backends_toml=BACKENDS_TOML + USER_FILE + declared)
    vocab = json.loads((pytester.path / "model" / "config.json").read_text())["vocab_size"]
    save(token_classifier(vocab, kind="int8-dynamic"), pytester.path / "models" / "user-int8.onnx")
    result = pytester.runpytest("--quantgate", "-p", "no:cacheprovider")
    out = result.stdout.str()
    report = json.loads((pytester.path / "run.json").read_text())
    entry = report["backends"]["user-int8"]
    if declared:  # a declared precision wins, and nothing is said about the graph
        assert "inferred from its graph" not in out and "precision_inferred" not in report["config"]
        assert entry["precision"] == "fp32"
        return
    assert ('quantgate: user-int8 precision int8, inferred from its graph (1 DynamicQuantizeLinear, '
            '1 MatMulInteger); declare precision = "..." in its [[tool.quantgate.backend]] table '
            "to override") in out.splitlines()[:8]  # the header
    result.stdout.fnmatch_lines(["*= quantgate =*", "user-int8 *int8 *"])
    assert report["config"]["precision_inferred"] == {"user-int8": {
        "precision": "int8", "inferred": True,
        "why": "1 DynamicQuantizeLinear, 1 MatMulInteger"}}
    assert entry["precision"] == "int8"
    int8 = resolve("user-int8", "int8", {}, scale=entry["thresholds"]["logit_scale"])
    assert entry["thresholds"]["max_abs_logit"] == int8["max_abs_logit"]  # thresholds follow
