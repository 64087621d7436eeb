"""Pure numpy metrics that compare a backend's outputs with the reference's.

Every input is widened to float64 before any arithmetic: fp16 logits of 60000 and -60000
overflow when subtracted in fp16, and uint8 values 3 and 131 wrap to 128 the wrong way round
when subtracted as uint8 (the bug in ONNX Runtime's own QDQ debugging tools). bfloat16 and
FP8 arrays from ml_dtypes widen the same way.

Non-finite values never slip past a gate: a NaN (or an Inf on one side only) counts as an
infinite difference, a row with NaN logits has no prediction (it disagrees with everything and
matches no label), and such a row's KL divergence is infinite. ``nonfinite_rows`` says which
rows those are.

Errors are ``ValueError`` with one line: what was wrong, what was got, what was expected, and
how to fix it.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import problem

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

METRICS: dict[str, str] = {
    "max_abs_diff": "largest |reference - backend| over every logit of every input",
    "mean_abs_diff": "mean |reference - backend| over every logit of every input",
    "top1_agreement": "fraction of inputs whose top-1 class is the same as the reference's",
    "topk_overlap": "mean over inputs of the reference's probability on top-k(reference) & "
                    "top-k(backend), as a share of its probability on top-k(reference)",
    "accuracy": "fraction of inputs whose top-1 class equals the label",
    "macro_f1": "unweighted mean of per-class F1 over classes seen in labels or predictions",
    "kl_divergence": "mean over inputs of KL(softmax(reference) || softmax(backend)), in nats",
    "top1_margin": "top-1 minus top-2 softmax probability of an input (how close a flip is)",
    "logit_margin": "top-1 minus top-2 logit of an input (a near-tie when small on the "
                    "model's logit scale)",
    "nonfinite_rows": "inputs whose logits hold NaN or Inf",
    "perplexity": "exp of the mean negative log-likelihood per predicted token (causal LM)",
}

_NO_PREDICTION = -1  # the "class" of a row with NaN logits: equals no label, no other row's class


def _widen(x: Any, what: str) -> FloatArray:
    """Return ``x`` as a float64 array, refusing types whose widening would lose meaning."""
    arr = np.asarray(x)
    if arr.dtype.kind in "cUSMm":  # complex would drop its imaginary part silently
        raise ValueError(problem(f"{what} dtype", str(arr.dtype), "a real numeric dtype",
                                 "pass logits as an int or float array"))
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(problem(f"{what} dtype", str(arr.dtype), "a dtype castable to float64",
                                 "pass logits as an int or float array")) from None


def _logits(x: Any, what: str = "logits") -> FloatArray:
    arr = _widen(x, what)
    if arr.ndim != 2:
        raise ValueError(problem(f"{what} shape", arr.shape, "a 2-D array (n, classes)",
                                 "stack one row of logits per input"))
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(problem(f"{what} shape", arr.shape, "at least one input and one class",
                                 "check that the eval data is not empty"))
    return arr


def _pair(ref: Any, out: Any) -> tuple[FloatArray, FloatArray]:
    r, o = _logits(ref, "reference logits"), _logits(out, "backend logits")
    if r.shape != o.shape:
        raise ValueError(problem("backend logits shape", o.shape, f"the reference's {r.shape}",
                                 "feed both the same inputs and compare the same output"))
    return r, o


def _labels(labels: Any, n: int, num_classes: int) -> IntArray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(problem("labels shape", arr.shape, f"({n},), one label per input",
                                 "pass one integer label per row of logits"))
    if arr.dtype.kind not in "iu":
        raise ValueError(problem("labels dtype", str(arr.dtype), "an integer dtype",
                                 "map label names to class indices first"))
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        bad = int(arr.min()) if arr.min() < 0 else int(arr.max())
        raise ValueError(problem("label", bad, f"a class index in [0, {num_classes})",
                                 "check the label map against the model's classes"))
    return np.asarray(arr, dtype=np.int64)


def _predictions(logits: FloatArray) -> IntArray:
    """Top-1 class per row (ties to the lower index); rows holding NaN get no prediction."""
    # argmax takes the first of equal maxima, so ties go to the lower index
    pred = np.asarray(np.argmax(logits, axis=1), dtype=np.int64)
    pred[np.isnan(logits).any(axis=1)] = _NO_PREDICTION
    return pred


def softmax(logits: Any) -> FloatArray:
    """Row-wise softmax in float64, shifted by the row maximum so ``exp`` cannot overflow."""
    x = _logits(logits)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/Inf rows come back as NaN rows
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


def _log_softmax(x: FloatArray) -> FloatArray:
    shifted = x - x.max(axis=1, keepdims=True)
    return np.asarray(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)),
                      dtype=np.float64)


def _elementwise_diff(ref: Any, out: Any) -> FloatArray:
    r, o = _pair(ref, out)  # both float64 already: the subtraction cannot overflow or wrap
    with np.errstate(invalid="ignore"):
        d = np.abs(r - o)
    bad = ~np.isfinite(d)
    # The same Inf on both sides is no difference; anything else non-finite is unbounded.
    d[bad] = np.where(r[bad] == o[bad], 0.0, np.inf)
    return d


def abs_diff(ref: Any, out: Any) -> FloatArray:
    """Per-row max |ref - out|, shape (n,). NaN, or Inf on one side only, gives ``inf``."""
    return np.asarray(_elementwise_diff(ref, out).max(axis=1), dtype=np.float64)


def max_abs_diff(ref: Any, out: Any) -> float:
    """Largest |ref - out| over all elements (``inf`` when any element is NaN)."""
    return float(abs_diff(ref, out).max())


def mean_abs_diff(ref: Any, out: Any) -> float:
    """Mean |ref - out| over all elements, not over rows (``inf`` when any element is NaN)."""
    return float(_elementwise_diff(ref, out).mean())


def topk_indices(logits: Any, k: int) -> IntArray:
    """Indices of the ``k`` largest logits per row, shape (n, min(k, classes)).

    Ordered by descending score; equal scores are ordered by the lower index first, so the
    result is deterministic. NaN scores come last. ``k`` above the class count is clipped.
    """
    x = _logits(logits)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(problem("k", k, "an integer >= 1", "pass k=1 for top-1"))
    k = min(int(k), x.shape[1])
    # A stable sort of the negated scores keeps equal scores in index order; argpartition
    # would be faster on a large vocabulary but picks arbitrarily among ties at the boundary.
    order = np.argsort(-x, axis=1, kind="stable")
    return np.asarray(order[:, :k], dtype=np.int64)


def top1_flips(ref: Any, out: Any) -> BoolArray:
    """Per row: True when the backend's top-1 class differs from the reference's (or is NaN)."""
    r, o = _pair(ref, out)
    pr, po = _predictions(r), _predictions(o)
    return np.asarray((pr != po) | (pr == _NO_PREDICTION) | (po == _NO_PREDICTION))


def top1_agreement(ref: Any, out: Any) -> float:
    """Fraction of rows whose top-1 class is the same in both."""
    return float(1.0 - top1_flips(ref, out).mean())


def topk_overlap(ref: Any, out: Any, k: int) -> float:
    """Mean over rows of the reference's top-k probability mass that the backend's top-k keeps,
    with ``k`` clipped to the class count (see ``topk_overlap_rows``)."""
    return float(topk_overlap_rows(ref, out, k).mean())


def topk_overlap_rows(ref: Any, out: Any, k: int) -> FloatArray:
    """Per row: the reference's probability on labels in both top-k sets over its probability on
    its own top-k. Weighted, because a confident model's ranks 2-3 hold almost no mass and
    reorder under any rounding: a real encoder's benign INT8 kept 0.86-0.95 of its top-3 labels
    by count but 0.986-0.997 of their mass (issue 18), while losing a label the reference gives
    real probability still costs that probability. Order inside the top-k does not matter; a
    row with NaN in either input scores 0."""
    r, o = _pair(ref, out)
    tr, to = topk_indices(r, k), topk_indices(o, k)
    rows = np.arange(r.shape[0])[:, None]
    # A membership mask is O(n * classes); comparing index pairs would be O(n * k^2).
    in_out = np.zeros(r.shape, dtype=bool)
    in_out[rows, to] = True
    mass = np.nan_to_num(softmax(r))[rows, tr]
    total = mass.sum(axis=1)
    shared = np.divide((mass * in_out[rows, tr]).sum(axis=1), total, out=np.zeros_like(total),
                       where=total > 0)
    shared[np.isnan(r).any(axis=1) | np.isnan(o).any(axis=1)] = 0.0
    return np.asarray(shared, dtype=np.float64)


def accuracy(logits: Any, labels: Any) -> float:
    """Fraction of rows whose top-1 class equals the label."""
    x = _logits(logits)
    y = _labels(labels, x.shape[0], x.shape[1])
    return float((_predictions(x) == y).mean())


def macro_f1(logits: Any, labels: Any, num_classes: int) -> float:
    """Unweighted mean of per-class F1 = 2TP / (2TP + FP + FN).

    Convention (scikit-learn's ``f1_score(average="macro")`` with its default ``labels``):
    only classes that occur in the labels or in the predictions enter the mean; a class
    absent from both has no defined F1 and is skipped rather than counted as 0 or 1. A class
    present on one side only scores 0. Rows with NaN logits predict no class: they are a
    false negative for their label and a false positive for nothing.
    """
    x = _logits(logits)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise ValueError(problem("num_classes", num_classes, "an integer",
                                 "pass the number of classes of the model"))
    if num_classes != x.shape[1]:
        raise ValueError(problem("num_classes", num_classes,
                                 f"{x.shape[1]}, the logits' class count",
                                 "check the label map against the model's output size"))
    y = _labels(labels, x.shape[0], num_classes)
    return macro_f1_of(_predictions(x), y, num_classes)


def macro_f1_of(pred: Any, labels: Any, num_classes: int) -> float:
    """``macro_f1`` from predicted classes (-1: none, a NaN row) and labels, counted with
    ``bincount``: what a bootstrap resamples 400 times, so predictions are taken once."""
    pred, y = np.asarray(pred), np.asarray(labels)
    hit = pred == y
    tp = np.bincount(y[hit], minlength=num_classes)[:num_classes]
    predicted = np.bincount(pred[pred >= 0], minlength=num_classes)[:num_classes]
    true = np.bincount(y, minlength=num_classes)[:num_classes]
    fp, fn = predicted - tp, true - tp
    present = (tp + fp + fn) > 0
    f1 = 2 * tp[present] / (2 * tp[present] + fp[present] + fn[present])
    return float(f1.mean())


def per_row_kl(ref: Any, out: Any) -> FloatArray:
    """KL(softmax(ref) || softmax(out)) per row, in nats, from log-softmax.

    Finite inputs never give NaN. -Inf logits (masked classes) are handled exactly: a class
    the reference gives probability 0 adds nothing, one the backend gives 0 makes KL infinite.
    A row with NaN or +Inf, or with no finite logit, in either input gives ``inf``.
    """
    r, o = _pair(ref, out)
    bad = ~np.isfinite(r.max(axis=1)) | ~np.isfinite(o.max(axis=1))  # NaN, +Inf, all -Inf
    r, o = r.copy(), o.copy()
    r[bad], o[bad] = 0.0, 0.0  # placeholders, overwritten below; keeps warnings away
    log_p, log_q = _log_softmax(r), _log_softmax(o)
    p = np.exp(log_p)
    with np.errstate(invalid="ignore"):
        terms = np.where(p > 0, p * (log_p - log_q), 0.0)
    kl = np.maximum(terms.sum(axis=1), 0.0)  # rounding can leave -1e-17 for identical rows
    kl[bad] = np.inf
    return np.asarray(kl, dtype=np.float64)


def kl_divergence(ref: Any, out: Any) -> float:
    """Mean over rows of KL(softmax(ref) || softmax(out)), in nats."""
    return float(per_row_kl(ref, out).mean())


def top1_margin(logits: Any) -> FloatArray:
    """Top-1 minus top-2 softmax probability per row; 1.0 when there is a single class."""
    p = softmax(logits)
    if p.shape[1] == 1:
        return np.ones(p.shape[0], dtype=np.float64)
    top2 = -np.partition(-p, 1, axis=1)[:, :2]  # the two largest, largest first
    return np.asarray(top2[:, 0] - top2[:, 1], dtype=np.float64)


def logit_margin(logits: Any) -> FloatArray:
    """Top-1 minus top-2 logit per row; inf when there is a single class."""
    x = _logits(logits)
    if x.shape[1] == 1:
        return np.full(x.shape[0], np.inf, dtype=np.float64)
    top2 = -np.partition(-x, 1, axis=1)[:, :2]
    return np.asarray(top2[:, 0] - top2[:, 1], dtype=np.float64)


def nonfinite_rows(logits: Any) -> BoolArray:
    """Per row: True when the row holds a NaN or an Inf."""
    x = _logits(logits)
    return np.asarray(~np.isfinite(x).all(axis=1))


def wilson_interval(
    successes: int | np.integer[Any], n: int | np.integer[Any], confidence: float = 0.95
) -> tuple[float, float]:
    """Wilson score interval for a rate of ``successes`` out of ``n``.

    Better than the normal approximation near 0 and 1, where gate rates live (0.99 agreement
    on 500 inputs).
    """
    for name, value in (("successes", successes), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(problem(name, value, "an integer", "pass counts, not rates"))
    if n < 1:
        raise ValueError(problem("n", n, "at least 1", "a rate needs at least one input"))
    if not 0 <= successes <= n:
        raise ValueError(problem("successes", successes, f"between 0 and n={n}",
                                 "count successes among the n inputs"))
    if not 0.0 < confidence < 1.0:
        raise ValueError(problem("confidence", confidence, "a level in (0, 1)",
                                 "pass e.g. 0.95"))
    # The standard library's normal quantile: scipy.stats would cost ~2 s of import here.
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    successes, n = int(successes), int(n)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / (1.0 + z2n)
    # Exact ends at 0 and n: the formula gives them only up to rounding.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def perplexity(nll_sum: float, tokens: int) -> float:
    """exp(mean negative log-likelihood per token); NaN when no token was scored."""
    if tokens <= 0:
        return math.nan
    try:
        return math.exp(nll_sum / tokens)
    except OverflowError:  # mean NLL > ~709 (a backend with huge logits): inf, not a crash
        return math.inf
