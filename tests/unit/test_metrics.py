"""Unit tests of the pure metrics: values by hand, widening, ties, non-finite rows, errors."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pytest_quantgate import metrics as m

REF = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0]])
OUT = np.array([[1.5, 1.0, 0.5], [2.0, 1.0, 0.0], [1.0, 0.0, 4.0]])


def _ref_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- widening ---------------------------------------------------------------------------------

def test_fp16_extremes_are_subtracted_in_float64() -> None:
    ref = np.array([[60000.0, 0.0]], dtype=np.float16)
    out = np.array([[-60000.0, 0.0]], dtype=np.float16)
    with np.errstate(over="ignore"):
        assert np.isinf(ref - out).any()  # the bug being guarded against
    assert m.max_abs_diff(ref, out) == 120000.0
    assert m.mean_abs_diff(ref, out) == 60000.0


# 3 - 131 wraps to 128 by coincidence; 3 - 128 wraps to 131 and 3 - 200 to 59, so those catch it.
@pytest.mark.parametrize(("a", "b", "expected"), [
    (3, 131, 128.0), (3, 128, 125.0), (3, 200, 197.0),
])
def test_uint8_differences_do_not_wrap(a: int, b: int, expected: float) -> None:
    ref = np.array([[a, 0]], dtype=np.uint8)
    out = np.array([[b, 0]], dtype=np.uint8)
    assert m.max_abs_diff(ref, out) == expected
    assert m.max_abs_diff(out, ref) == expected


def test_int8_extremes_do_not_wrap() -> None:
    ref = np.array([[-128, 0]], dtype=np.int8)
    out = np.array([[127, 0]], dtype=np.int8)
    assert m.abs_diff(ref, out).tolist() == [255.0]


def test_bfloat16_widens() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    ref = np.array([[1.0, 3.0e38]], dtype=ml_dtypes.bfloat16)
    out = np.array([[1.0, -3.0e38]], dtype=ml_dtypes.bfloat16)
    diff = m.max_abs_diff(ref, out)
    assert math.isfinite(diff) and diff == pytest.approx(2 * float(ref[0, 1].astype(np.float64)))
    assert m.softmax(ref).dtype == np.float64


def test_lists_are_accepted() -> None:
    assert m.max_abs_diff([[1, 2]], [[1, 4]]) == 2.0


# --- softmax, differences -----------------------------------------------------------------------

def test_softmax_is_stable_and_float64() -> None:
    p = m.softmax(np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]], dtype=np.float32))
    assert p.dtype == np.float64
    assert np.allclose(p.sum(axis=1), 1.0)
    assert p[0].tolist() == [1.0, 0.0, 0.0]
    assert np.allclose(p[1], _ref_softmax(np.array([[1.0, 2.0, 3.0]]))[0])


def test_abs_diff_is_per_row_max() -> None:
    assert m.abs_diff(REF, OUT).tolist() == [0.5, 2.0, 1.0]
    assert m.max_abs_diff(REF, OUT) == 2.0


def test_mean_abs_diff_is_over_elements() -> None:
    expected = np.abs(REF - OUT).mean()
    assert m.mean_abs_diff(REF, OUT) == pytest.approx(expected)


def test_nonfinite_differences_are_infinite_not_nan() -> None:
    ref = np.array([[1.0, np.inf], [1.0, 2.0], [1.0, 2.0]])
    out = np.array([[1.0, np.inf], [np.nan, 2.0], [np.inf, 2.0]])
    assert m.abs_diff(ref, out).tolist() == [0.0, np.inf, np.inf]
    assert m.max_abs_diff(ref, out) == np.inf
    assert m.mean_abs_diff(ref, out) == np.inf


def test_nonfinite_rows() -> None:
    x = np.array([[1.0, 2.0], [np.nan, 0.0], [0.0, -np.inf]])
    assert m.nonfinite_rows(x).tolist() == [False, True, True]
    assert not m.nonfinite_rows(np.array([[1, 2]], dtype=np.int64)).any()


# --- top-k, agreement ---------------------------------------------------------------------------

def test_topk_indices_descending() -> None:
    assert m.topk_indices(REF, 2).tolist() == [[0, 1], [1, 2], [2, 0]]


def test_topk_ties_go_to_lower_index() -> None:
    x = np.array([[1.0, 2.0, 2.0, 1.0, 2.0]])
    assert m.topk_indices(x, 4).tolist() == [[1, 2, 4, 0]]
    assert m.topk_indices(np.zeros((1, 4)), 4).tolist() == [[0, 1, 2, 3]]


def test_topk_k_larger_than_classes_is_clipped() -> None:
    assert m.topk_indices(REF, 10).shape == (3, 3)
    assert m.topk_overlap(REF, OUT, 10) == 1.0


def test_topk_nan_scores_come_last() -> None:
    assert m.topk_indices(np.array([[np.nan, 1.0, 2.0]]), 3).tolist() == [[2, 1, 0]]


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "3"])
def test_topk_rejects_bad_k(k: Any) -> None:
    with pytest.raises(ValueError, match=r"^k: got .*, expected an integer >= 1; pass k=1"):
        m.topk_indices(REF, k)


def test_topk_overlap_by_hand() -> None:
    # row 0: {0,1} vs {0,1} -> 1; row 2: {2,0} vs {2,0} -> 1; row 1: {1,2} vs {0,1} keeps the
    # reference's label 1 (probability e^3) of its top-2 mass e^3 + e^1
    row1 = np.exp(3.0) / (np.exp(3.0) + np.exp(1.0))
    assert m.topk_overlap(REF, OUT, 2) == pytest.approx((1 + row1 + 1) / 3)
    assert m.topk_overlap(REF, REF, 2) == 1.0
    assert m.topk_overlap(REF, OUT, 1) == pytest.approx(2 / 3)


def test_topk_overlap_weighs_labels_by_reference_probability() -> None:
    # the reference is sure of label 0; ranks 2 and 3 (labels 1, 2) hold almost nothing, so a
    # backend that swaps label 2 for label 3 in its top-3 loses almost no overlap...
    ref = np.array([[9.0, 1.0, 0.9, 0.8]])
    assert m.topk_overlap(ref, np.array([[9.0, 1.0, 0.7, 0.8]]), 3) > 0.999
    # ...while losing a label the reference gives real probability costs that probability
    ambiguous = np.array([[2.0, 1.9, 0.0, -1.0]])
    lost = m.topk_overlap(ambiguous, np.array([[2.0, -2.0, 0.0, -1.0]]), 2)
    assert lost == pytest.approx(np.exp(2.0) / (np.exp(2.0) + np.exp(1.9)))


def test_topk_overlap_nan_row_scores_zero() -> None:
    out = REF.copy()
    out[1, 0] = np.nan
    assert m.topk_overlap(REF, out, 3) == pytest.approx(2 / 3)


def test_top1_agreement_and_flips() -> None:
    assert m.top1_flips(REF, OUT).tolist() == [False, True, False]
    assert m.top1_agreement(REF, OUT) == pytest.approx(2 / 3)
    assert m.top1_agreement(REF, REF) == 1.0


def test_top1_tie_is_deterministic() -> None:
    tied = np.array([[1.0, 1.0]])
    assert not m.top1_flips(tied, np.array([[1.0, 0.5]])).any()
    assert m.top1_flips(tied, np.array([[0.5, 1.0]])).all()


def test_nan_row_always_flips() -> None:
    ref = np.array([[np.nan, 0.0], [1.0, 0.0]])
    assert m.top1_flips(ref, ref).tolist() == [True, False]


# --- task metrics -------------------------------------------------------------------------------

def _onehot(pred: list[int], classes: int) -> np.ndarray:
    logits = np.zeros((len(pred), classes))
    logits[np.arange(len(pred)), pred] = 1.0
    return logits


def test_accuracy() -> None:
    assert m.accuracy(REF, np.array([0, 2, 2])) == pytest.approx(2 / 3)
    assert m.accuracy(REF, [0, 1, 2]) == 1.0


def test_accuracy_nan_row_is_wrong() -> None:
    logits = np.array([[np.nan, 0.0], [1.0, 0.0]])
    assert m.accuracy(logits, [0, 0]) == 0.5


def test_macro_f1_by_hand() -> None:
    labels = [0, 0, 1, 1, 2, 2]
    logits = _onehot([0, 1, 1, 1, 2, 0], 3)
    # class 0: P 1/2 R 1/2 F 1/2; class 1: P 2/3 R 1 F 4/5; class 2: P 1 R 1/2 F 2/3
    assert m.macro_f1(logits, labels, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert m.macro_f1(_onehot(labels, 3), labels, 3) == 1.0


def test_macro_f1_absent_class_follows_sklearn() -> None:
    # sklearn f1_score([0,0,1,1], [0,2,1,1], average="macro") == 5/9: labels = {0, 1, 2};
    # class 2 (predicted, never true) scores 0, class 3 (neither) is left out.
    logits = _onehot([0, 2, 1, 1], 4)
    assert m.macro_f1(logits, [0, 0, 1, 1], 4) == pytest.approx(5 / 9)


def test_macro_f1_rejects_wrong_num_classes() -> None:
    with pytest.raises(ValueError, match=r"^num_classes: got 4, expected 3, the logits' class"):
        m.macro_f1(REF, [0, 1, 2], 4)
    with pytest.raises(ValueError, match=r"^num_classes: got 3\.0, expected an integer"):
        m.macro_f1(REF, [0, 1, 2], 3.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(("labels", "pattern"), [
    (np.array([0, 1]), r"^labels shape: got \(2,\), expected \(3,\), one label per input"),
    (np.array([[0, 1, 2]]), r"^labels shape: got \(1, 3\), expected \(3,\)"),
    (np.array([0.0, 1.0, 2.0]), r"^labels dtype: got 'float64', expected an integer dtype"),
    (np.array([0, 1, 3]), r"^label: got 3, expected a class index in \[0, 3\); check"),
    (np.array([0, -1, 2]), r"^label: got -1, expected a class index"),
])
def test_label_errors(labels: np.ndarray, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        m.accuracy(REF, labels)


# --- KL, margin ---------------------------------------------------------------------------------

def test_kl_identical_is_zero() -> None:
    assert m.kl_divergence(REF, REF) == 0.0
    assert m.per_row_kl(REF, REF.astype(np.float16)).tolist() == [0.0, 0.0, 0.0]


def test_kl_matches_definition_and_is_positive() -> None:
    p, q = _ref_softmax(REF), _ref_softmax(OUT)
    expected = (p * np.log(p / q)).sum(axis=1)
    assert np.allclose(m.per_row_kl(REF, OUT), expected)
    assert m.kl_divergence(REF, OUT) == pytest.approx(expected.mean())
    assert (m.per_row_kl(REF, OUT) > 0).all()
    assert m.kl_divergence(REF, OUT) != pytest.approx(m.kl_divergence(OUT, REF))  # asymmetric


def test_kl_large_logits_stay_finite() -> None:
    ref = np.array([[1e4, -1e4, 0.0]])
    out = np.array([[-1e4, 1e4, 0.0]])
    kl = m.kl_divergence(ref, out)
    assert math.isfinite(kl) and kl == pytest.approx(2e4)


def test_kl_masked_classes() -> None:
    ref = np.array([[0.0, 0.0, -np.inf]])
    assert m.kl_divergence(ref, ref) == 0.0
    assert m.kl_divergence(ref, np.array([[0.0, 0.0, 5.0]])) > 0  # q > 0 where p == 0: finite
    assert m.kl_divergence(np.array([[0.0, 0.0, 0.0]]), ref) == np.inf  # q == 0 where p > 0


def test_kl_nonfinite_rows_are_infinite() -> None:
    out = REF.copy()
    out[0, 1] = np.nan
    out[2, 0] = np.inf
    assert m.per_row_kl(REF, out).tolist()[::2] == [np.inf, np.inf]
    assert math.isfinite(m.per_row_kl(REF, out)[1])


def test_top1_margin() -> None:
    p = _ref_softmax(REF)
    top2 = -np.sort(-p, axis=1)[:, :2]
    assert np.allclose(m.top1_margin(REF), top2[:, 0] - top2[:, 1])
    assert m.top1_margin(np.array([[1.0, 1.0, 0.0]])).tolist() == [0.0]
    assert m.top1_margin(np.array([[7.0]])).tolist() == [1.0]


# --- Wilson interval ----------------------------------------------------------------------------

def test_wilson_known_values() -> None:
    low, high = m.wilson_interval(45, 50)
    assert (low, high) == (pytest.approx(0.786398, abs=1e-6), pytest.approx(0.956524, abs=1e-6))
    assert m.wilson_interval(0, 10) == (0.0, pytest.approx(0.277533, abs=1e-6))
    assert m.wilson_interval(10, 10) == (pytest.approx(0.722467, abs=1e-6), 1.0)


def test_wilson_narrows_with_confidence() -> None:
    low90, high90 = m.wilson_interval(45, 50, confidence=0.9)
    low95, high95 = m.wilson_interval(45, 50)
    assert low95 < low90 < 0.9 < high90 < high95


def test_wilson_needs_no_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    low, high = m.wilson_interval(45, 50)
    assert low == pytest.approx(0.7864, abs=1e-4) and high == pytest.approx(0.9565, abs=1e-4)
    assert m.wilson_interval(45, 50, confidence=0.9)[0] > low


@pytest.mark.parametrize(("args", "pattern"), [
    ((0, 0), r"^n: got 0, expected at least 1; a rate needs"),
    ((6, 5), r"^successes: got 6, expected between 0 and n=5; count"),
    ((-1, 5), r"^successes: got -1, expected between 0 and n=5"),
    ((0.5, 5), r"^successes: got 0\.5, expected an integer; pass counts"),
    ((True, 5), r"^successes: got True, expected an integer"),
    ((3, 5, 1.0), r"^confidence: got 1\.0, expected a level in \(0, 1\); pass e\.g\. 0\.95"),
])
def test_wilson_errors(args: tuple[Any, ...], pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        m.wilson_interval(*args)


def test_wilson_accepts_numpy_ints() -> None:
    assert m.wilson_interval(np.int64(45), np.int64(50)) == m.wilson_interval(45, 50)


# --- shapes and empties -------------------------------------------------------------------------

PAIRWISE: list[Callable[[Any, Any], object]] = [
    m.abs_diff, m.max_abs_diff, m.mean_abs_diff, m.top1_agreement, m.top1_flips,
    m.kl_divergence, m.per_row_kl, lambda r, o: m.topk_overlap(r, o, 2),
]
SINGLE: list[Callable[[Any], object]] = [
    m.softmax, m.top1_margin, m.nonfinite_rows, lambda x: m.topk_indices(x, 1),
    lambda x: m.accuracy(x, np.zeros(len(x), dtype=np.int64)),
    lambda x: m.macro_f1(x, np.zeros(len(x), dtype=np.int64), 3),
]


@pytest.mark.parametrize("fn", PAIRWISE)
def test_pairwise_empty_raises(fn: Callable[[Any, Any], object]) -> None:
    with pytest.raises(ValueError, match=r"^reference logits shape: got \(0, 3\), expected at "
                                         r"least one input and one class; check"):
        fn(np.zeros((0, 3)), np.zeros((0, 3)))


@pytest.mark.parametrize("fn", SINGLE)
def test_single_empty_raises(fn: Callable[[Any], object]) -> None:
    with pytest.raises(ValueError, match=r"^logits shape: got \(0, 3\), expected at least one"):
        fn(np.zeros((0, 3)))


@pytest.mark.parametrize("fn", PAIRWISE)
def test_pairwise_shape_mismatch_raises(fn: Callable[[Any, Any], object]) -> None:
    with pytest.raises(ValueError, match=r"^backend logits shape: got \(3, 2\), expected the "
                                         r"reference's \(3, 3\); feed both"):
        fn(REF, REF[:, :2])


@pytest.mark.parametrize("fn", SINGLE)
def test_single_rejects_1d(fn: Callable[[Any], object]) -> None:
    with pytest.raises(ValueError, match=r"^logits shape: got \(3,\), expected a 2-D array "
                                         r"\(n, classes\); stack one row"):
        fn(np.zeros(3))


@pytest.mark.parametrize(("bad", "dtype"), [
    (np.array([[1 + 2j, 0]]), "complex128"), (np.array([["a", "b"]]), "<U1"),
])
def test_rejects_non_real_dtypes(bad: np.ndarray, dtype: str) -> None:
    with pytest.raises(ValueError, match=rf"^logits dtype: got '{dtype}', expected a real "
                                         r"numeric dtype; pass logits"):
        m.softmax(bad)


def test_rejects_uncastable_object_arrays() -> None:
    with pytest.raises(ValueError, match=r"^logits dtype: got 'object', expected a dtype "
                                         r"castable to float64"):
        m.softmax(np.array([[object(), None]], dtype=object))


def test_metrics_table_names_public_functions() -> None:
    for name, text in m.METRICS.items():
        assert callable(getattr(m, name)), name
        assert text and "\n" not in text


# --- properties ---------------------------------------------------------------------------------

_finite = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@st.composite
def _pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    shape = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    return (draw(hnp.arrays(np.float32, shape, elements=_finite)),
            draw(hnp.arrays(np.float32, shape, elements=_finite)))


@given(_pairs())
def test_properties_on_finite_logits(pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, out = pair
    kl = m.per_row_kl(ref, out)
    assert np.isfinite(kl).all() and (kl >= 0).all()
    assert m.kl_divergence(ref, ref) == pytest.approx(0.0, abs=1e-12)
    assert 0.0 <= m.topk_overlap(ref, out, 3) <= 1.0
    assert 0.0 <= m.top1_agreement(ref, out) <= 1.0
    assert m.max_abs_diff(ref, out) == m.max_abs_diff(out, ref)
    margin = m.top1_margin(ref)
    assert ((margin >= 0) & (margin <= 1)).all()


def test_macro_f1_from_predictions_matches_the_logits_form() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(200, 5))
    logits[7] = np.nan  # predicts no class
    labels = rng.integers(0, 4, 200)  # class 4 never a label: present only when predicted
    pred = np.where(np.isnan(logits).any(axis=1), -1, np.argmax(np.nan_to_num(logits), axis=1))
    assert m.macro_f1_of(pred, labels, 5) == pytest.approx(m.macro_f1(logits, labels, 5))
