"""`pytest --quantgate` as a user runs it: items, verdicts, diagnosis, summary, JSON report."""

from __future__ import annotations

import json


def test_passing_gate_has_stable_ids_and_a_summary(project):
    pytester = project('backends = ["same"]')
    result = pytester.runpytest("--quantgate", "-v")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines([
        "*quantgate::same::logits PASSED*",
        "*quantgate::same::topk PASSED*",
        "*quantgate::same::accuracy PASSED*",
        "*= quantgate =*",
        "backend*prec*size MB*build s*max|Δ|*mean|Δ|*top-1*acc Δ*F1 Δ*verdict",
        "ref *REFERENCE",
        "same *fp32*PASS",
    ])


def test_without_the_flag_no_gate_items_run(project):
    pytester = project('backends = ["same"]')
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "quantgate::" not in result.stdout.str()


def test_failing_gate_reads_like_a_diagnosis(project):
    pytester = project('backends = ["swapped"]')
    result = pytester.runpytest("--quantgate")
    # contract names the swap; determinism passes; the accuracy drop of a swap against the fake
    # reference (at chance: 0.36 on 45 inputs) cannot be decided on 45 inputs: skipped
    result.assert_outcomes(failed=3, passed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "*quantgate::swapped::logits failed: max_abs_logit * > * (= 0.0003 x the reference's logit "
        "std *) on 45/45 inputs*"
        "would pass with max_abs_logit=*",
        "*worst inputs (5 shown; reference | swapped):*",
        "*reference * | backend *",
        "*quantgate::swapped::topk failed: top1_agreement * < 0.999 on */45 inputs (95% CI*",
        "swapped *FAIL",
    ])
    assert result.ret == 1


def test_nan_outputs_fail_with_their_cause(project):
    pytester = project('backends = ["poisoned"]')
    result = pytester.runpytest("--quantgate")
    result.assert_outcomes(failed=3, passed=2)
    result.stdout.fnmatch_lines(["*backend output is NaN/Inf on */45 inputs (FP16 overflow*"])


def test_expected_failure_keeps_the_run_green_and_shows_why(project):
    pytester = project('backends = ["same", "swapped"]\nexpect_fail = ["swapped"]')
    result = pytester.runpytest("--quantgate")
    result.assert_outcomes(passed=5, xfailed=5)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["swapped *FAIL (expected)",
                                 "swapped: FAIL (expected): logits: max_abs_logit*"])


def test_expected_failure_that_passes_fails_strictly(project):
    pytester = project('backends = ["same"]\nexpect_fail = ["same"]')
    result = pytester.runpytest("--quantgate")
    result.assert_outcomes(failed=5)
    result.stdout.fnmatch_lines(["*XPASS(strict)*same is listed in expect_fail*"])


def test_thresholds_table_loosens_a_backend(project):
    table = ('backends = ["drifty"]\n[tool.quantgate.thresholds."drift*"]\n'
             "max_abs_logit = 5.0\nmean_abs_logit = 2.0\nkl_div = 1.0\ntop1_agreement = 0.5\n"
             "topk_overlap = 0.5\naccuracy_delta = 0.5\nf1_delta = 0.5\n")
    result = project(table).runpytest("--quantgate")
    result.assert_outcomes(passed=5)


def test_k_selects_one_backend(project):
    pytester = project('backends = ["same", "drifty"]')
    result = pytester.runpytest("--quantgate", "-k", "same")
    result.assert_outcomes(passed=5)
    assert "drifty" not in result.stdout.str().split("= quantgate =")[-1]


def test_json_report_is_versioned_and_complete(project):
    pytester = project('backends = ["same", "swapped"]')
    pytester.runpytest("--quantgate", "--quantgate-json", "out/report.json")
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert report["format"] == "pytest-quantgate-report" and report["version"] == 3
    manifest = report["manifest"]
    assert {"packages", "git", "machine", "model_sha256", "data_sha256"} <= set(manifest)
    swapped = report["backends"]["swapped"]
    assert swapped["verdict"] == "FAIL"
    assert {c["check"]: c["verdict"] for c in swapped["checks"]}["logits"] == "failed"
    assert swapped["metrics"]["top1_agreement"] < 0.9
    assert report["backends"]["same"]["verdict"] == "PASS"
    assert not list((pytester.path / "out").glob(".*tmp*"))  # written atomically


def test_warm_run_loads_the_reference_from_the_cache(project):
    pytester = project('backends = ["same"]')
    pytester.runpytest("--quantgate")
    result = pytester.runpytest("--quantgate", "--quantgate-json", "r.json")
    report = json.loads((pytester.path / "r.json").read_text())
    assert report["reference"]["timing"]["reference_cached"] is True
    result.stdout.fnmatch_lines(["reference ref on 45 inputs of golden.jsonl (outputs loaded from "
                                 "the cache, not recomputed)*", "ref *0.0[*] *REFERENCE"])


def test_backend_whose_runtime_is_missing_is_skipped_with_the_reason(project, monkeypatch):
    from pytest_quantgate.backends import registry

    monkeypatch.setattr(registry, "missing_requirements",
                        lambda kind: ["onnxruntime"] if kind.kind == "onnx-fp32" else [])
    pytester = project('backends = ["same", "onnx-fp32"]')
    result = pytester.runpytest("--quantgate", "-rs")
    result.assert_outcomes(passed=5, skipped=5)
    result.stdout.fnmatch_lines([
        "onnx-fp32 *-*SKIP",
        "*backend 'onnx-fp32' needs onnxruntime, which is not installed here; "
        "pip install 'pytest-quantgate[[]onnx[]]' to run it*",
    ])
    assert result.ret == 0


def test_broken_backend_is_an_error_not_a_pass(project):
    from fake_project import BACKENDS_TOML

    extra = ('\n[[tool.quantgate.backend]]\nname = "missing-file"\nkind = "onnx"\n'
             'path = "nowhere.onnx"\n')
    result = project('backends = ["missing-file"]',
                     backends_toml=BACKENDS_TOML + extra).runpytest("--quantgate")
    result.assert_outcomes(failed=5)
    result.stdout.fnmatch_lines(["*quantgate::missing-file::logits error: *nowhere.onnx*",
                                 "missing-file *ERROR"])


def test_registered_check_gets_an_item_per_backend(project, monkeypatch):
    from pytest_quantgate import checks

    # The registry is process-wide: give this test its own copy so "probe" does not leak.
    monkeypatch.setattr(checks, "EXTRA_CHECKS", dict(checks.EXTRA_CHECKS))
    pytester = project('backends = ["same", "drifty"]')
    pytester.syspathinsert()
    pytester.makepyfile(mychecks="""
        from pytest_quantgate.checks import CheckSpec, register
        from pytest_quantgate.records import CheckResult

        def judge(gate, backend):
            if backend == "drifty":
                raise RuntimeError("probe exploded\\nsecond line")
            return CheckResult(backend, "probe", "passed", "fine")

        register(CheckSpec("probe", "mychecks:judge", lambda gate, name: True))
    """)
    pytester.makeconftest("import mychecks\n")
    result = pytester.runpytest("--quantgate", "-v", "-k", "probe")
    result.stdout.fnmatch_lines([
        "*quantgate::same::probe PASSED*",
        "*quantgate::drifty::probe FAILED*",
        "*quantgate::drifty::probe error: RuntimeError: probe exploded",
    ])


def test_strict_turns_a_missing_runtime_into_a_failure(project, monkeypatch):
    from pytest_quantgate.backends import registry

    monkeypatch.setattr(registry, "missing_requirements",
                        lambda kind: ["onnxruntime"] if kind.kind == "onnx-fp32" else [])
    pytester = project('backends = ["same", "onnx-fp32"]')
    result = pytester.runpytest("--quantgate", "--quantgate-strict")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "*quantgate::onnx-fp32::logits not run: backend 'onnx-fp32' needs onnxruntime*"
        "(strict: a backend that cannot run fails the gate;*",
        "2 backends judged: 1 passed, 0 failed, 0 failed as expected, 1 skipped, 0 errors; "
        "degraded rate 50% (1 of 2 could not produce a verdict)",
    ])
