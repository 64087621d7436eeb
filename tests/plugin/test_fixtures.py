"""The marker and the fixtures in a user's own tests."""

from __future__ import annotations


def test_check_passes_and_fails_by_marker_thresholds(project):
    pytester = project('backends = ["same", "drifty"]')
    pytester.makepyfile("""
        import pytest

        @pytest.mark.quantgate(max_abs_logit=5.0, mean_abs_logit=5.0, kl_div=5.0,
                               top1_agreement=0.0, topk_overlap=0.0)
        def test_loose(quantgate):
            report = quantgate.check("match goal team")
            assert set(report.outputs) == {"same", "drifty"}

        def test_strict(quantgate):
            quantgate.check("match goal team")
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*QuantgateCheckFailed: quantgate::drifty::logits failed: "
                                 "max_abs_logit * > * on 1/1 inputs*"])


def test_expect_names_the_label(project):
    pytester = project('backends = ["same"]')
    pytester.makepyfile("""
        def test_label(quantgate, quantgate_reference):
            label = quantgate_reference.top_k("market shares profit", 1)[0][0]
            quantgate.check("market shares profit", expect=label)

        def test_wrong_label(quantgate, quantgate_reference):
            label = quantgate_reference.top_k("market shares profit", 1)[0][0]
            other = [l for l in quantgate_reference.labels if l != label][0]
            quantgate.check("market shares profit", expect=other)

        def test_unknown_label(quantgate):
            quantgate.check("market shares profit", expect="Weather")
    """)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*reference ref predicts * for 'market shares profit', expected *",
        "*quantgate.check expect: got 'Weather', expected one of [[]'World', 'Sports', "
        "'Business'[]]*",
    ])


def test_backend_fixture_is_parametrised_by_name(project):
    pytester = project('backends = ["same", "drifty"]')
    pytester.makepyfile("""
        import numpy as np

        def test_agree(quantgate_backend, quantgate_reference):
            texts = ["match goal team", "bank stocks"]
            diff = np.abs(quantgate_backend.predict(texts) - quantgate_reference.predict(texts))
            assert diff.max() < 0.1, quantgate_backend.name
    """)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_agree[[]same[]] PASSED*", "*test_agree[[]drifty[]] FAILED*"])


def test_quantgate_with_backend_checks_only_that_backend(project):
    pytester = project('backends = ["same", "drifty"]')
    pytester.makepyfile("""
        def test_one(quantgate, quantgate_backend):
            report = quantgate.check("match goal team") if quantgate_backend.name == "same" \\
                else None
            assert report is None or list(report.outputs) == ["same"]
    """)
    pytester.runpytest().assert_outcomes(passed=2)


def test_ppl_delta_is_reported_missing_not_passed(project):
    pytester = project('backends = ["same"]')
    pytester.makepyfile("""
        import pytest

        @pytest.mark.quantgate(ppl_delta=0.01)
        def test_ppl(quantgate):
            quantgate.check("match goal team")
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ppl_delta: missing, not passed*causal-lm*"])


def test_help_markers_and_fixtures_are_documented(project):
    pytester = project()
    pytester.runpytest("--markers").stdout.fnmatch_lines(
        ["@pytest.mark.quantgate([*][*]thresholds): thresholds for the quantgate fixtures*"])
    fixtures = pytester.runpytest("--fixtures").stdout.str()
    for name in ("quantgate", "quantgate_backend", "quantgate_reference"):
        assert f"{name} -- " in fixtures or f"{name}\n" in fixtures or name in fixtures
    assert "Check texts against the reference on every configured backend" in fixtures
    help_text = pytester.runpytest("--help").stdout.str()
    for option in ("--quantgate ", "--quantgate-model", "--quantgate-backends",
                   "--quantgate-json", "--quantgate-expect-fail", "--quantgate-padding"):
        assert option in help_text
