"""The adversarial items on the fake backend: a planted fault is found, shrunk and replayed."""

from __future__ import annotations

import json
import re

from fake_project import BACKENDS_TOML, LABELS

PLANTED = BACKENDS_TOML + """
[[tool.quantgate.backend]]
name = "percent"
kind = "fake"
digit_percent_fault = true
"""


def _with_digits(pytester):  # the fake model's vocabulary gets the digit and '%' tokens
    from pytest_quantgate.backends.fake_model import write_fake_model

    texts = [json.loads(line)["text"] for line in
             (pytester.path / "data" / "golden.jsonl").read_text().splitlines()]
    write_fake_model(pytester.path / "model", LABELS, [*texts, "0 1 2 3 4 5 6 7 8 9 %"])
    return pytester


def _slice(pytester, name):
    report = json.loads((pytester.path / "report.json").read_text())
    return report["backends"][name]["adversarial"]


def test_planted_fault_is_found_shrunk_and_replayed_first(project):
    pytester = _with_digits(project('backends = ["same", "percent"]\njson = "report.json"\n'
                                    'adversarial_max_examples = 200', backends_toml=PLANTED))
    # Seed 1 draws "<digit>%" texts; the second run gets a fresh seed.
    result = pytester.runpytest("--quantgate", "-k", "adversarial",
                                "--quantgate-adversarial-seed=1")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*quantgate::percent::adversarial failed: */200 generated inputs break the thresholds "
        "(max_abs_logit *, or a top-1 flip where the reference's logit margin exceeds *: "
        "tie_margin * and twice the backend's drift 0): *% (95% CI *%-*%) against an allowed "
        "adversarial_failure_rate of 0.0%; first: '*': max|diff| > *: *; minimal input "
        "after shrinking: '*' (* chars); seed *",
        "  worst inputs (* shown; reference | percent):",
    ])
    # Only the failing backend is searched; the line says what the searches tried and cost.
    result.stdout.fnmatch_lines([
        "adversarial (dev profile, seed 1): 200 generated inputs per backend, corpus drawn and "
        "scored by the reference in * s; searched 1 of 2 backends (those with a failing input or "
        "a saved failure): * inputs tried, * of them scored one by one, in * s; * s in all"])
    first = _slice(pytester, "percent")
    assert first["searched"] and first["inputs_tried"] >= first["tried_one_by_one"] >= 1
    assert not _slice(pytester, "same")["searched"]
    minimal = first["minimal"]
    assert len(minimal) <= 20 and any(c.isdigit() for c in minimal.split("%")[0][-1:]), minimal
    assert first["failing"][0]["text"] == minimal and first["n_failing"] >= 1
    assert _slice(pytester, "same")["n_failing"] == 0
    # The next run (a fresh seed: another corpus) tries the saved failure before anything else.
    again = pytester.runpytest("--quantgate", "-k", "percent and adversarial")
    again.assert_outcomes(failed=1)
    second = _slice(pytester, "percent")
    assert second["seed"] != first["seed"] and not second["corpus_cached"]  # fresh: not kept
    assert second["first_tried"] == minimal and second["minimal"] == minimal


def test_benign_backend_passes_and_its_time_is_in_the_report(project):
    pytester = project('backends = ["same"]\njson = "report.json"\nadversarial_max_examples = 60\n'
                       'adversarial_profile = "dev"')
    result = pytester.runpytest("--quantgate", "-v", "-k", "adversarial")
    result.assert_outcomes(passed=1)
    part = _slice(pytester, "same")
    assert part["verdict"] == "passed" and part["n_inputs"] == 60 and part["n_failing"] == 0
    assert 0 < part["seconds"] < 60 and part["metrics"]["top1_agreement"] == 1.0
    # Nothing failed and nothing was saved: no search ran; the time is in the line, not the reason
    assert not part["searched"] and part["search_seconds"] is None and part["inputs_tried"] == 0
    assert part["corpus_seconds"] > 0 and not part["corpus_cached"]
    result.stdout.fnmatch_lines([
        "adversarial (dev profile, seed *): 60 generated inputs per backend, corpus drawn and "
        "scored by the reference in * s; searched 0 of 1 backends (those with a failing input or "
        "a saved failure): 0 inputs tried, 0 of them scored one by one, in 0.00 s; * s in all"])
    assert not re.search(r"\d s\b", part["reason"]), part["reason"]


def test_ci_profile_is_derandomised_and_its_corpus_cached(project, monkeypatch):
    monkeypatch.setenv("CI", "true")
    pytester = project('backends = ["same"]\njson = "report.json"\nadversarial_max_examples = 30')
    seen = []
    for _ in range(2):
        result = pytester.runpytest("--quantgate", "-k", "adversarial")
        result.assert_outcomes(passed=1)
        part = _slice(pytester, "same")
        seen.append((part["profile"], part["seed"], part["failing"], part["metrics"]))
    assert seen[0] == seen[1] and seen[0][:2] == ("ci", 0)
    assert part["corpus_cached"]  # the second run read the corpus and the reference's outputs
    result.stdout.fnmatch_lines(["adversarial (ci profile, seed 0): 30 generated inputs per "
                                 "backend, corpus and the reference's outputs on it read from "
                                 "the cache; searched 0 of 1 backends *"])


def test_without_hypothesis_the_item_is_skipped_with_the_reason(tmp_path, monkeypatch):
    import sys

    from fake_project import write_project

    from pytest_quantgate.checks import checks_for
    from pytest_quantgate.config import load
    from pytest_quantgate.project_file import read_table
    from pytest_quantgate.session import GateSession

    root = write_project(tmp_path, 'backends = ["same"]\nadversarial_max_examples = 20')
    config = load(read_table(root / "pyproject.toml"), base_dir=root, cli={}, cli_dir=root,
                  source="test")
    gate = GateSession(config)
    assert "adversarial" in checks_for(gate, "same")
    monkeypatch.setitem(sys.modules, "pytest_quantgate.strategies", None)  # import fails
    result = gate.check("same", "adversarial")
    assert result.verdict == "skipped"
    assert result.reason.startswith("the adversarial check needs Hypothesis (")
    assert "install it with pip install 'pytest-quantgate[adversarial]'" in result.reason


def test_max_examples_zero_turns_the_item_off(project):
    pytester = project('backends = ["same"]\nadversarial_max_examples = 0')
    result = pytester.runpytest("--quantgate", "--collect-only", "-q")
    assert not [line for line in result.outlines if "adversarial" in line]
    assert any("quantgate::same::logits" in line for line in result.outlines)
