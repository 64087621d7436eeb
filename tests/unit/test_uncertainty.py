"""Passed, failed or inconclusive: a measure judged with its 95% interval (uncertainty.py)."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_quantgate import uncertainty as u
from pytest_quantgate.gate import evaluate
from pytest_quantgate.thresholds import resolve

NAMES = ("a", "b", "c")


def test_a_rate_short_of_its_threshold_on_few_inputs_is_inconclusive() -> None:
    interval, sd = u.rate(193, 200)  # 0.965 against 0.97
    judged = u.judge(0.965, 0.97, ">=", interval, sd, 200)
    assert judged.outcome == "inconclusive"
    assert judged.decide_at is not None and judged.decide_at > 200
    # at the inputs it names, the same rate is decided
    n = judged.decide_at
    interval, sd = u.rate(round(0.965 * n), n)
    assert u.judge(0.965, 0.97, ">=", interval, sd, n).outcome == "failed"


def test_a_rate_clearly_short_fails_and_one_above_passes() -> None:
    interval, sd = u.rate(450, 600)
    assert u.judge(0.75, 0.97, ">=", interval, sd, 600).outcome == "failed"
    interval, sd = u.rate(599, 600)
    assert u.judge(599 / 600, 0.97, ">=", interval, sd, 600).outcome == "passed"


def test_a_mean_over_the_limit_by_noise_is_inconclusive_and_by_far_fails() -> None:
    rng = np.random.default_rng(0)
    noisy = rng.normal(0.011, 0.02, 50)
    interval, sd = u.mean(noisy)
    assert u.judge(float(noisy.mean()), 0.01, "<=", interval, sd, 50).outcome == "inconclusive"
    far = rng.normal(0.05, 0.02, 50)
    interval, sd = u.mean(far)
    assert u.judge(float(far.mean()), 0.01, "<=", interval, sd, 50).outcome == "failed"


def test_a_paired_accuracy_drop_counts_only_the_discordant_inputs() -> None:
    (low, high), _ = u.paired_drop(lost=3, gained=1, n=600)
    assert low < 0.002 < high  # 2 net of 600 could be noise
    (low, _), _ = u.paired_drop(lost=40, gained=2, n=600)
    assert low > 0.02  # 38 net of 600 is not


def one_outlier(n: int, diff: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    ref = rng.normal(0, 3, (n, 3))
    ref[np.arange(n), np.arange(n) % 3] += 8  # confident, so the outlier does not flip top-1
    out = ref + rng.normal(0, 0.05, ref.shape)
    out[0, 1] += diff
    return ref, out


@pytest.mark.parametrize(("precision", "verdict"), [("int8", "passed"), ("fp32", "failed")])
def test_one_outlier_fails_a_float_backend_but_not_an_int8_one(precision: str, verdict: str
                                                                 ) -> None:
    ref, out = one_outlier(600, 2.5)
    thresholds = resolve("cand", precision, {},
                         {"max_abs_logit": 2.0, "mean_abs_logit": 1.0, "kl_div": 1.0})
    results, values = evaluate(backend="cand", thresholds=thresholds, ref=ref, out=out,
                               labels=None, label_names=NAMES, texts=["t"] * 600)
    logits = results["logits"]
    assert logits.verdict == verdict, logits.reason
    assert values["max_abs_logit"] > 2.0  # reported either way
    assert logits.measures[0].n_failing == 1


def test_many_outliers_fail_an_int8_backend_with_the_share_in_the_reason() -> None:
    ref, out = one_outlier(600, 0.0)
    out[:30, 1] += 2.5  # 5% of inputs
    thresholds = resolve("cand", "int8", {})
    results, _ = evaluate(backend="cand", thresholds=thresholds, ref=ref, out=out, labels=None,
                          label_names=NAMES, texts=["t"] * 600)
    assert results["logits"].verdict == "failed"
    assert "on 30/600 inputs (5.0%, 95% CI" in results["logits"].reason


def test_an_inconclusive_check_says_how_many_inputs_would_decide() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(0, 1, (100, 3))
    out = ref.copy()
    top = ref.argmax(axis=1)
    out[np.arange(4), top[:4]] -= 10.0  # 4 top-1 flips: 0.96 agreement against 0.97 on 100
    thresholds = resolve("cand", "int8", {}, {"max_abs_logit": 100.0, "mean_abs_logit": 100.0,
                                              "kl_div": 100.0, "topk_overlap": 0.0})
    results, _ = evaluate(backend="cand", thresholds=thresholds, ref=ref, out=out, labels=None,
                          label_names=NAMES, texts=["t"] * 100)
    topk = results["topk"]
    assert topk.verdict == "inconclusive", topk.reason
    assert topk.reason == ("inconclusive: top1_agreement 0.96 < 0.97 on 4/100 inputs (95% CI "
                           "0.902-0.984), which reaches the threshold; about 1476 inputs would "
                           "decide")


def test_a_flip_within_twice_the_backends_drift_is_a_near_tie_on_the_models_scale() -> None:
    from pytest_quantgate.adversarial.properties import Logits

    def failing(noise: float) -> list[bool]:
        prop = Logits(limit=10.0, tie=0.01, noise=noise, names=["a", "b", "c"], k=3)
        return [bool(f) for f in prop.failing(ref, out)]

    ref = np.array([[2.0, 1.0, -1.0], [2.0, 1.9, -1.0]])  # logit margins 1.0 and 0.1
    out = np.array([[0.9, 1.1, -1.0], [1.9, 2.0, -1.0]])  # both flip
    # with no drift measured, only the tie margin (0.01 logits here) decides
    assert failing(0.0) == [True, True]
    # a backend that drifts by 0.1 logits on the eval set can swap classes 0.2 apart
    assert failing(0.1) == [True, False]
    # and one that drifts by 0.6 can swap classes 1.2 apart: neither flip is decisive
    assert failing(0.6) == [False, False]


@pytest.mark.parametrize(("count", "allowed", "outcome"), [
    (0, 0.0, "passed"), (1, 0.0, "failed"), (4, 0.05, "passed"), (14, 0.05, "inconclusive"),
    (40, 0.05, "failed")])
def test_the_adversarial_failure_rate_is_judged_with_its_bound(count: int, allowed: float,
                                                              outcome: str) -> None:
    interval, sd = u.rate(count, 200)
    judged = u.judge(count / 200, allowed, "<=", interval, sd, 200) if count else \
        u.Judged("passed", interval)
    assert judged.outcome == outcome


def test_the_macro_f1_drop_has_a_bootstrap_interval_that_is_the_same_every_run() -> None:
    from pytest_quantgate.gate import f1_spread

    rng = np.random.default_rng(3)
    ref = rng.normal(0, 3, (300, 3))
    labels = ref.argmax(axis=1)
    out = ref.copy()
    out[:12, :] = out[:12, ::-1]  # a few inputs lost
    first, second = f1_spread(ref, out, labels, 3), f1_spread(ref, out, labels, 3)
    assert first == second  # a fixed seed: serial and pytest-xdist runs agree
    from pytest_quantgate.metrics import macro_f1

    drop = macro_f1(ref, labels, 3) - macro_f1(out, labels, 3)
    (low, high), _ = first
    assert 0.0 < low < drop < high  # around the measured drop, and clearly a drop
