"""`pytest --quantgate` on a real (tiny) BERT, as a user meets it: the swapped-inputs export.

Runs pytester in-process, so the frameworks are imported out here first: a module first imported
inside an in-process run is dropped after it, and numpy/torch cannot be imported twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

import onnxruntime  # noqa: E402,F401
import torch  # noqa: E402,F401
import transformers  # noqa: E402,F401

import pytest_quantgate.backends.onnx_runner  # noqa: E402,F401
import pytest_quantgate.backends.torch_runner  # noqa: E402,F401
import pytest_quantgate.run_record  # noqa: E402,F401
import pytest_quantgate.session  # noqa: E402,F401

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@pytest.fixture(scope="module")
def swapped_export(demo, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    from pytest_quantgate.backends.onnx_export import export_classifier

    out = tmp_path_factory.mktemp("user") / "swapped.onnx"
    export_classifier(demo.model_dir, out, exporter="legacy", opset=17, input_names=INPUTS,
                      max_length=64, swap_names=("attention_mask", "token_type_ids"))
    return out


def _project(pytester: pytest.Pytester, demo, table: str) -> None:  # type: ignore[no-untyped-def]
    golden = pytester.path / "golden.jsonl"
    golden.write_text("\n".join(json.dumps(g) for g in demo.golden[:120]) + "\n")
    pytester.makepyprojecttoml(
        f'[tool.quantgate]\nmodel = "{demo.model_dir}"\neval = "golden.jsonl"\n'
        f'max_length = 64\ncache_dir = "{pytester.path / "cache"}"\n' + table)


def test_swapped_user_export_fails_the_gate(pytester, demo, swapped_export):
    _project(pytester, demo, 'backends = ["user-export"]\n[[tool.quantgate.backend]]\n'
             f'name = "user-export"\nkind = "onnx"\npath = "{swapped_export}"\n')
    result = pytester.runpytest("--quantgate", "-p", "no:cacheprovider")
    # logits, topk, accuracy, contract, adversarial fail; determinism passes
    result.assert_outcomes(failed=5, passed=1)
    result.stdout.fnmatch_lines([
        "*quantgate::user-export::logits failed: max_abs_logit * > * on */120 inputs*",
        "*quantgate::user-export::topk failed: top1_agreement * < 0.999*",
        "user-export *fp32*FAIL",
    ])


def test_correct_user_export_and_onnx_fp32_pass(pytester, demo, tmp_path):
    from pytest_quantgate.backends.onnx_export import export_classifier

    good = tmp_path / "good.onnx"
    export_classifier(demo.model_dir, good, exporter="legacy", opset=17, input_names=INPUTS,
                      max_length=64)
    _project(pytester, demo, 'backends = ["onnx-fp32", "user-export"]\n'
             '[[tool.quantgate.backend]]\nname = "user-export"\nkind = "onnx"\n'
             f'path = "{good}"\n')
    result = pytester.runpytest("--quantgate", "-p", "no:cacheprovider", "--quantgate-json",
                                "r.json")
    result.assert_outcomes(passed=12)  # 6 checks each, adversarial included
    report = json.loads((pytester.path / "r.json").read_text())
    adversarial = report["backends"]["onnx-fp32"]["adversarial"]
    assert adversarial["verdict"] == "passed" and 0 < adversarial["seconds"] < 60
    assert report["backends"]["onnx-fp32"]["metrics"]["max_abs_logit"] < 1e-4
    assert report["backends"]["onnx-fp32"]["info"]["size_bytes"] > 0


def test_onnx_fp32_adversarial_passes_five_runs_of_five(pytester, demo):
    # Five fresh seeds (dev profile): five different generated corpora, each must pass.
    _project(pytester, demo, 'backends = ["onnx-fp32"]\nadversarial_max_examples = 100\n'
             'adversarial_profile = "dev"\n')
    seeds = set()
    for _ in range(5):
        result = pytester.runpytest("--quantgate", "-p", "no:cacheprovider", "-k", "adversarial",
                                    "--quantgate-json", "r.json")
        result.assert_outcomes(passed=1)
        part = json.loads((pytester.path / "r.json").read_text())["backends"]["onnx-fp32"]
        seeds.add(part["adversarial"]["seed"])
        assert part["adversarial"]["n_failing"] == 0 and part["adversarial"]["seconds"] < 60
    assert len(seeds) == 5
