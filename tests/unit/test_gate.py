"""Unit tests of gate.py, records.py and report/diagnosis.py: verdicts from arrays."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pytest

from pytest_quantgate.checks import builtin_checks
from pytest_quantgate.gate import evaluate, summarize
from pytest_quantgate.records import SCHEMA, VERDICTS, CheckResult, Measure, Worst
from pytest_quantgate.report.diagnosis import diagnosis
from pytest_quantgate.thresholds import resolve

CHECKS = builtin_checks("text-classification")

NAMES = ("neg", "neu", "pos")
N = 20
TEXTS = [f"text {i}" for i in range(N)]
NAN_REASON = "backend output is NaN/Inf on {bad}/{n} inputs (FP16 overflow in LayerNorm or " \
             "softmax is the usual cause)"


@pytest.fixture
def ref() -> np.ndarray:
    return np.random.default_rng(0).normal(0.0, 3.0, size=(N, len(NAMES)))


@pytest.fixture
def labels(ref: np.ndarray) -> np.ndarray:
    return np.asarray(np.argmax(ref, axis=1))  # the reference is right on every input


def run(ref: np.ndarray, out: np.ndarray, labels: np.ndarray | None, **kw: Any
        ) -> tuple[dict[str, CheckResult], dict[str, float]]:
    kw.setdefault("thresholds", resolve("cand", "fp32", {}))
    return evaluate(backend="cand", ref=ref, out=out, labels=labels, label_names=NAMES,
                    texts=TEXTS, **kw)


def flip(ref: np.ndarray, row: int) -> np.ndarray:
    """A copy of ``ref`` whose row ``row`` has its top-1 and top-2 logits swapped."""
    out = ref.copy()
    first, second = np.argsort(-ref[row])[:2]
    out[row, [first, second]] = ref[row, [second, first]]
    return out


# -- evaluate -----------------------------------------------------------------------------------

def test_identical_logits_pass_every_check(ref: np.ndarray, labels: np.ndarray) -> None:
    results, values = run(ref, ref.copy(), labels)
    assert list(results) == list(CHECKS)
    for check, result in results.items():
        assert (result.backend, result.check, result.verdict) == ("cand", check, "passed")
        assert result.reason == "within thresholds"
        assert result.n_inputs == N
        assert all(m.passed for m in result.measures)
        assert len(result.worst) <= 1  # a passing check shows at most one example
    assert values["max_abs_logit"] == 0.0
    assert values["kl_div"] == 0.0
    assert values["top1_agreement"] == 1.0
    assert values["accuracy_delta"] == 0.0
    assert values["nonfinite_rows"] == 0.0 and values["n_inputs"] == N


def test_measures_of_each_check(ref: np.ndarray, labels: np.ndarray) -> None:
    results, _ = run(ref, ref.copy(), labels)
    names = {c: [m.name for m in r.measures] for c, r in results.items()}
    assert names == {"logits": ["max_abs_logit", "mean_abs_logit", "kl_div"],
                     "topk": ["top1_agreement", "topk_overlap"],
                     "accuracy": ["accuracy_delta", "f1_delta"]}
    top1 = results["topk"].measures[0]
    assert (top1.op, top1.threshold, top1.n) == (">=", 0.999, N)
    assert top1.interval is not None and top1.interval[1] == 1.0


def test_planted_flip_fails_topk_with_the_flipped_text(ref: np.ndarray, labels: np.ndarray
                                                       ) -> None:
    out = flip(ref, 7)
    results, values = run(ref, out, labels)
    topk = results["topk"]
    assert topk.verdict == "failed"
    assert values["top1_agreement"] == pytest.approx(0.95)
    assert [w.text for w in topk.worst] == ["text 7"]  # only the flipped input
    worst = topk.worst[0]
    assert worst.index == 7 and worst.label == NAMES[labels[7]]
    assert worst.reference[0][0] != worst.backend[0][0]  # the top-1 labels differ
    assert worst.reference[0][0] == NAMES[labels[7]]
    assert len(worst.reference) == 3 and worst.score > 0
    top1, overlap = topk.measures
    assert not top1.passed and top1.n_failing == 1
    assert overlap.passed  # the top-3 set did not change
    assert topk.reason.startswith("top1_agreement 0.95 < 0.999 on 1/20 inputs (95% CI ")
    assert topk.reason.endswith("; would pass with top1_agreement=0.95")
    # one lost input of 20 is a 5% accuracy (and macro-F1) drop whose interval reaches 0.2%:
    # the sample cannot tell (uncertainty.py); the input is still the one shown
    assert results["accuracy"].verdict == "inconclusive"
    assert [w.text for w in results["accuracy"].worst] == ["text 7"]


def test_a_flip_at_a_near_tie_is_not_counted(ref: np.ndarray, labels: np.ndarray) -> None:
    # input 3's top-2 logits are made 0.1 apart; on this model (logit std ~3) that is a near-tie
    # at int8's tie_margin of 0.25 stds, while input 7's flip is of a clear decision
    ref = ref.copy()
    first, second = np.argsort(-ref[3])[:2]
    ref[3, second] = ref[3, first] - 0.1
    labels = np.asarray(np.argmax(ref, axis=1))
    out = flip(flip(ref, 3), 7)
    scale = float(ref.std())
    thresholds = resolve("cand", "int8", {}, scale=scale)
    results, values = run(ref, out, labels, thresholds=thresholds)
    assert values["near_tie_flips"] == 1
    assert values["top1_agreement"] == pytest.approx(0.95)  # input 7 only
    assert [w.text for w in results["topk"].worst] == ["text 7"]
    assert results["topk"].reason.startswith(  # 1 in 20 against 0.97: undecided on 20 inputs
        "inconclusive: top1_agreement 0.95 < 0.97 on 1/20 inputs, 1 more flipped at near-ties "
        "and not counted (reference margin <= "), results["topk"].reason
    # without a logit scale only exact ties are excused: both flips count
    _, strict = run(ref, out, labels, thresholds=resolve("cand", "int8", {}))
    assert strict["top1_agreement"] == pytest.approx(0.9) and strict["near_tie_flips"] == 0


def test_scaled_limit_says_what_it_is_on_this_model(ref: np.ndarray, labels: np.ndarray) -> None:
    scale = float(ref.std())
    out = ref + 0.01
    results, _ = run(ref, out, labels, thresholds=resolve("cand", "fp32", {}, scale=scale))
    reason = results["logits"].reason
    assert f"(= 0.0003 x the reference's logit std {scale:.3g})" in reason, reason


def test_worst_inputs_are_ordered_and_capped(ref: np.ndarray, labels: np.ndarray) -> None:
    out = ref.copy()
    out[:, 0] += np.linspace(0.01, 0.2, N)  # row 19 drifts most
    results, _ = run(ref, out, labels, worst_n=3)
    logits = results["logits"]
    assert logits.verdict == "failed"
    assert [w.index for w in logits.worst] == [19, 18, 17]
    assert [w.score for w in logits.worst] == sorted((w.score for w in logits.worst),
                                                     reverse=True)
    assert logits.measures[0].n_failing == N  # every row breaks max_abs_logit=1e-3


def test_all_nan_rows_fail_every_check_with_the_nan_reason(ref: np.ndarray, labels: np.ndarray
                                                           ) -> None:
    out = np.full_like(ref, np.nan)
    results, values = run(ref, out, labels)
    for result in results.values():
        assert result.verdict == "failed"
        assert result.reason == NAN_REASON.format(bad=N, n=N)
        assert result.measures == ()
        assert len(result.worst) == 5
        assert result.worst[0].backend == (("NaN/Inf", result.worst[0].backend[0][1]),)
        assert math.isnan(result.worst[0].backend[0][1])
    assert values == {"n_inputs": float(N), "nonfinite_rows": float(N)}


def test_some_nan_rows_fail_every_check(ref: np.ndarray, labels: np.ndarray) -> None:
    out = ref.copy()
    out[[3, 11]] = np.nan
    out[5, 0] = np.inf
    results, values = run(ref, out, labels)
    assert values["nonfinite_rows"] == 3
    assert values["max_abs_logit"] == 0.0  # measured on the finite rows
    prefix = NAN_REASON.format(bad=3, n=N) + "; the 17 finite ones: "
    for result in results.values():
        assert result.verdict == "failed"
        assert result.reason == prefix + "within thresholds"
    assert {w.index for w in results["logits"].worst[:3]} == {3, 5, 11}


def test_labels_none_makes_accuracy_missing(ref: np.ndarray) -> None:
    results, values = run(ref, ref.copy(), None)
    accuracy = results["accuracy"]
    assert accuracy.verdict == "missing"
    assert accuracy.reason == ("the eval set has no labels, so accuracy and F1 cannot be "
                               "measured; add a label to every line")
    assert accuracy.measures == () and accuracy.worst == ()
    assert results["logits"].verdict == results["topk"].verdict == "passed"
    assert "accuracy" not in values
    assert all(w.label is None for r in results.values() for w in r.worst)


def test_labels_none_with_nan_is_still_missing(ref: np.ndarray) -> None:
    results, _ = run(ref, np.full_like(ref, np.nan), None)
    assert results["accuracy"].verdict == "missing"
    assert results["topk"].verdict == "failed"


def test_expected_failure_is_recorded(ref: np.ndarray, labels: np.ndarray) -> None:
    results, _ = run(ref, flip(ref, 2), labels, expected_failure=True)
    assert all(r.expected_failure for r in results.values())


def test_value_exactly_at_the_threshold_passes(ref: np.ndarray, labels: np.ndarray) -> None:
    out = flip(ref, 4)
    out[9, 1] += 0.25
    values = summarize(ref, out, labels, 3, len(NAMES))
    exact = {k: values[k] for k in ("max_abs_logit", "mean_abs_logit", "kl_div",
                                    "top1_agreement", "topk_overlap", "accuracy_delta",
                                    "f1_delta")}
    assert 0 < exact["top1_agreement"] < 1 and exact["accuracy_delta"] > 0
    results, _ = run(ref, out, labels, thresholds=resolve("cand", "fp32", {}, exact))
    assert {c: r.verdict for c, r in results.items()} == dict.fromkeys(CHECKS, "passed")
    # and a hair stricter no longer passes: the input beyond an fp32 max_abs_logit fails (no
    # input may be beyond it); a rate a hair short on 20 inputs is inconclusive (uncertainty.py)
    for name, check, verdict in (("max_abs_logit", "logits", "failed"),
                                 ("top1_agreement", "topk", "inconclusive"),
                                 ("accuracy_delta", "accuracy", "inconclusive")):
        nudge = math.nextafter(exact[name], -math.inf if name != "top1_agreement" else math.inf)
        stricter = resolve("cand", "fp32", {}, {**exact, name: nudge})
        assert run(ref, out, labels, thresholds=stricter)[0][check].verdict == verdict, name


def test_would_pass_with_value_does_pass(ref: np.ndarray, labels: np.ndarray) -> None:
    out = ref.copy()
    out[0, 0] += 0.123449
    results, _ = run(ref, out, labels)
    match = re.search(r"would pass with max_abs_logit=([0-9.e+-]+)", results["logits"].reason)
    assert match is not None
    suggested = float(match.group(1))
    thresholds = resolve("cand", "fp32", {}, {"max_abs_logit": suggested})
    assert run(ref, out, labels, thresholds=thresholds)[0]["logits"].measures[0].passed


# -- records ------------------------------------------------------------------------------------

def test_check_result_round_trips_through_json(ref: np.ndarray, labels: np.ndarray) -> None:
    results, _ = run(ref, flip(ref, 7), labels)
    for result in results.values():
        data = json.loads(json.dumps(result.to_dict()))
        assert data["nodeid"] == f"quantgate::cand::{result.check}"
        assert data["schema"] == SCHEMA
        assert CheckResult.from_dict(data) == result
        assert CheckResult.from_dict(result.to_dict()) == result


def test_check_result_round_trip_by_hand() -> None:
    result = CheckResult(
        "b", "topk", "failed", "why",
        (Measure("top1_agreement", 0.9, 0.97, ">=", False, 10, 1, (0.6, 0.98)),),
        10, (Worst(3, "a text", None, 1.5, (("neg", 0.7),), (("pos", 0.6),)),),
        expected_failure=True)
    assert CheckResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert result.measures[0].would_pass_at == 0.9
    assert result.nodeid == "quantgate::b::topk"


def test_from_dict_of_a_minimal_record() -> None:
    result = CheckResult.from_dict({"backend": "b", "check": "logits", "verdict": "error",
                                    "reason": "crashed", "nodeid": "ignored", "extra": 1})
    assert result == CheckResult("b", "logits", "error", "crashed")
    assert result.verdict in VERDICTS


# -- diagnosis ----------------------------------------------------------------------------------

def test_diagnosis_of_a_failed_check(ref: np.ndarray, labels: np.ndarray) -> None:
    results, _ = run(ref, flip(ref, 7), labels)
    text = diagnosis(results["topk"])
    lines = text.splitlines()
    assert lines[0].startswith("quantgate::cand::topk failed: top1_agreement 0.95 < 0.999 ")
    assert "would pass with top1_agreement=0.95" in lines[0]
    assert "  ok: topk_overlap 1 (threshold >= 0.99)" in lines
    assert "  worst inputs (1 shown; reference | cand):" in lines
    assert any(line.startswith("    'text 7'  [label ") and "max|diff| " in line
               for line in lines)
    assert any(line.startswith("      reference ") and " | backend " in line for line in lines)


def test_diagnosis_shows_threshold_and_value_of_logits(ref: np.ndarray, labels: np.ndarray
                                                       ) -> None:
    out = ref.copy()
    out[12, 2] += 0.5
    results, _ = run(ref, out, labels)
    text = diagnosis(results["logits"])
    assert "max_abs_logit 0.5 > 0.001 on 1/20 inputs" in text
    assert "would pass with max_abs_logit=0.5" in text
    assert "'text 12'" in text


def test_diagnosis_cuts_long_texts() -> None:
    long = "word " * 50
    result = CheckResult("b", "logits", "failed", "why", (), 1,
                         (Worst(0, long, "pos", 1.0, (("pos", 0.9),), (("neg", 0.8),)),))
    text = diagnosis(result)
    assert repr(long[:99] + "…") in text
    assert "reference pos 0.900 | backend neg 0.800" in text
