"""A warm ONNX-only gate with its default checks runs neither PyTorch nor transformers (issue 20).

The reference's outputs on the eval set and, under the ci profile, the adversarial corpus and the
reference's outputs on it come from the cache, the export too, and the tokenizer is
``tokenizers``: nothing on a warm run needs the reference's framework. The runs are subprocesses:
this process has imported torch already, and a module stays imported in it. A conftest of the
project writes what the gate process had imported when it exits.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")
pytest.importorskip("hypothesis")

# Written by the gate process at exit (atexit: after the reports, the summary, every hook).
RECORDER = '''
import atexit
import json
import sys


def _record() -> None:
    frameworks = {"torch", "transformers"}
    found = sorted(m for m in sys.modules if m.split(".")[0] in frameworks)
    with open("imported.json", "w") as handle:
        json.dump(found, handle)


atexit.register(_record)
'''


def test_a_warm_onnx_gate_imports_neither_torch_nor_transformers(pytester, demo):
    golden = pytester.path / "golden.jsonl"
    golden.write_text("\n".join(json.dumps(g) for g in demo.golden[:120]) + "\n")
    # Default checks and sizes; only the profile is pinned (CI may or may not be set here).
    pytester.makepyprojecttoml(
        f'[tool.quantgate]\nmodel = "{demo.model_dir}"\neval = "golden.jsonl"\n'
        f'max_length = 64\ncache_dir = "{pytester.path / "cache"}"\nbackends = ["onnx-fp32"]\n'
        'adversarial_profile = "ci"\n')
    pytester.makeconftest(RECORDER)
    runs = []
    for name in ("cold", "warm"):
        result = pytester.runpytest_subprocess("--quantgate", "-p", "no:cacheprovider",
                                               "--quantgate-json", f"{name}.json")
        result.assert_outcomes(passed=6)  # logits, topk, accuracy, contract, determinism, adversarial
        report = json.loads((pytester.path / f"{name}.json").read_text())
        imported = json.loads((pytester.path / "imported.json").read_text())
        runs.append((result, report, imported))
    (cold, cold_report, cold_imported), (warm, warm_report, warm_imported) = runs
    assert "torch" in cold_imported  # the export and the reference's passes ran
    assert warm_imported == []
    adversarial = warm_report["backends"]["onnx-fp32"]["adversarial"]
    assert adversarial["corpus_cached"] and not adversarial["searched"]
    assert adversarial["n_inputs"] == 200 and adversarial["seed"] == 0
    assert warm_report["reference"]["timing"]["reference_cached"]
    verdicts = [{c["check"]: c["verdict"] for c in r["backends"]["onnx-fp32"]["checks"]}
                for r in (cold_report, warm_report)]
    assert verdicts[0] == verdicts[1]
    warm.stdout.fnmatch_lines(["adversarial (ci profile, seed 0): 200 generated inputs per "
                               "backend, corpus and the reference's outputs on it read from the "
                               "cache; searched 0 of 1 backends *"])
