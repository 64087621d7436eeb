"""Verdicts: compare a backend's logits with the reference's against thresholds.

Pure: takes arrays and thresholds, returns ``CheckResult`` records and a metrics mapping. No
pytest, no framework. A backend whose outputs hold NaN/Inf fails every check with that reason;
its metrics are still computed on the finite rows so the report shows how far the rest drifted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from . import metrics as m
from . import uncertainty as u
from .records import CheckResult, Measure, Worst
from .thresholds import KEYS


def tie_logits(thresholds: Mapping[str, float | int]) -> float:
    """``tie_margin`` in logits: it is in units of the reference's logit std, so 0 (only exact
    ties) where the task has no logit scale."""
    return float(thresholds.get("tie_margin", 0.0)) * float(thresholds.get("logit_scale", 0.0))


def counted_flips(ref: np.ndarray, out: np.ndarray, tie: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row: a top-1 flip that counts (NaN included), and a flip excused as a near-tie: the
    reference's top-1 logit beats its runner-up by no more than ``tie``. A benign INT8 backend
    of a real encoder flips such inputs by rounding alone (issue 18)."""
    flips = m.top1_flips(ref, np.nan_to_num(out, nan=-np.inf))
    excused = flips & (m.logit_margin(ref) <= tie) & np.isfinite(out).all(axis=1)
    return flips & ~excused, excused


def summarize(ref: np.ndarray, out: np.ndarray, labels: np.ndarray | None, k: int,
              num_labels: int, tie: float = 0.0) -> dict[str, float]:
    """Every metric of one backend against the reference, by name (finite rows only).
    ``top1_agreement`` counts a flip at a near-tie (``tie``, logits) as agreement;
    ``near_tie_flips`` says how many."""
    finite = ~m.nonfinite_rows(out)
    values: dict[str, float] = {"n_inputs": float(len(out)), "nonfinite_rows": float((~finite).sum())}
    if not finite.any():
        return values
    r, o = ref[finite], out[finite]
    flips, excused = counted_flips(r, o, tie)
    values.update(
        max_abs_logit=m.max_abs_diff(r, o), mean_abs_logit=m.mean_abs_diff(r, o),
        kl_div=m.kl_divergence(r, o), top1_agreement=float(1.0 - flips.mean()),
        near_tie_flips=float(excused.sum()), topk_overlap=m.topk_overlap(r, o, k),
    )
    if labels is not None:
        lab = labels[finite]
        values.update(
            reference_accuracy=m.accuracy(r, lab), accuracy=m.accuracy(o, lab),
            reference_f1=m.macro_f1(r, lab, num_labels), f1=m.macro_f1(o, lab, num_labels),
        )
        values["accuracy_delta"] = values["reference_accuracy"] - values["accuracy"]
        values["f1_delta"] = values["reference_f1"] - values["f1"]
    return values


def evaluate(
    *,
    backend: str,
    thresholds: Mapping[str, float | int],
    ref: np.ndarray,
    out: np.ndarray,
    labels: np.ndarray | None,
    label_names: Sequence[str],
    texts: Sequence[str],
    worst_n: int = 5,
    expected_failure: bool = False,
) -> tuple[dict[str, CheckResult], dict[str, float]]:
    """Records for the checks ``logits``, ``topk`` and ``accuracy``, and the metrics."""
    n = len(out)
    k = int(thresholds.get("topk", 3))
    tie = tie_logits(thresholds)
    values = summarize(ref, out, labels, k, len(label_names), tie)
    row_diff = np.abs(ref.astype(np.float64) - out.astype(np.float64)).max(axis=1)
    row_diff = np.where(np.isfinite(row_diff), row_diff, np.inf)
    flips, _ = counted_flips(ref, out, tie)
    notes = _notes(thresholds, values)

    def worst(rows: np.ndarray) -> tuple[Worst, ...]:
        order = rows[np.argsort(-row_diff[rows], kind="stable")][:worst_n]
        return tuple(_worst(int(i), ref, out, labels, label_names, texts, row_diff, k) for i in order)

    bad = int(values["nonfinite_rows"])
    finite = row_diff < np.inf
    n_ok = max(int(finite.sum()), 1)

    def measure(name: str, failing_rows: np.ndarray | None = None,
                spread: tuple[tuple[float, float], float] | None = None) -> Measure:
        """The measure judged with its uncertainty (uncertainty.py) when ``spread`` gives its
        interval and per-input spread; on the value alone otherwise."""
        key, limit, value = KEYS[name], float(thresholds[name]), values[name]
        interval, sd = spread if spread is not None else (None, None)
        judged = u.judge(float(value), limit, key.op, interval, sd, n_ok)
        n_fail = int(failing_rows.sum()) if failing_rows is not None else 0
        return Measure(name, float(value), limit, key.op, judged.outcome == "passed", n, n_fail,
                       interval, judged.outcome == "inconclusive", judged.decide_at)

    def outliers() -> Measure:
        """max |logit diff|, judged on the share of inputs beyond it (``max_abs_share``): one
        input of a benign INT8 backend may sit past any fixed limit; many may not."""
        limit, share = float(thresholds["max_abs_logit"]), float(thresholds["max_abs_share"])
        over = finite & (row_diff > limit)
        count = int(over.sum())
        interval, sd = u.rate(count, n_ok)
        judged = u.judge(count / n_ok, share, "<=", interval, sd, n_ok) if count else \
            u.Judged("passed", interval)
        return Measure("max_abs_logit", float(values["max_abs_logit"]), limit, "<=",
                       judged.outcome == "passed", n, count, interval,
                       judged.outcome == "inconclusive", judged.decide_at)
    results: dict[str, CheckResult] = {}
    everything = np.arange(n)
    for check in ("logits", "topk", "accuracy"):
        if check == "accuracy" and labels is None:
            results[check] = CheckResult(backend, check, "missing",
                                         "the eval set has no labels, so accuracy and F1 cannot "
                                         "be measured; add a label to every line", (), n,
                                         expected_failure=expected_failure)
            continue
        if bad == n:
            results[check] = CheckResult(
                backend, check, "failed", f"backend output is NaN/Inf on {n}/{n} inputs "
                "(FP16 overflow in LayerNorm or softmax is the usual cause)", (), n,
                worst(everything), expected_failure)
            continue
        measures: tuple[Measure, ...]
        r, o = ref[finite].astype(np.float64), out[finite].astype(np.float64)
        if check == "logits":
            measures = (outliers(),
                        measure("mean_abs_logit", spread=u.mean(np.abs(r - o).mean(axis=1))),
                        measure("kl_div", spread=u.mean(m.per_row_kl(r, o))))
            rows = everything
        elif check == "topk":
            agree = int(round(values["top1_agreement"] * (n - bad)))
            measures = (measure("top1_agreement", flips, spread=u.rate(agree, n_ok)),
                        measure("topk_overlap", spread=u.mean(m.topk_overlap_rows(r, o, k))))
            rows = np.flatnonzero(flips) if flips.any() else everything
        else:
            assert labels is not None
            wrong = np.argmax(np.nan_to_num(out, nan=-np.inf), axis=1) != labels
            right_ref = np.argmax(ref, axis=1) == labels
            lost, gained = (wrong & right_ref)[finite], (~wrong & ~right_ref)[finite]
            measures = (measure("accuracy_delta", wrong & right_ref,
                                spread=u.paired_drop(int(lost.sum()), int(gained.sum()), n_ok)),
                        measure("f1_delta", spread=f1_spread(r, o, labels[finite], len(label_names))))
            lost = np.flatnonzero(wrong & right_ref)
            rows = lost if len(lost) else everything
        failed = [x for x in measures if not x.passed and not x.inconclusive]
        unsure = [x for x in measures if x.inconclusive]
        reason = "; ".join(_describe(x, notes.get(x.name, "")) for x in failed or unsure) \
            or "within thresholds"
        if bad:
            reason = (f"backend output is NaN/Inf on {bad}/{n} inputs (FP16 overflow in LayerNorm "
                      f"or softmax is the usual cause); the {n - bad} finite ones: {reason}")
        verdict = "failed" if failed or bad else "inconclusive" if unsure else "passed"
        results[check] = CheckResult(backend, check, verdict, reason, measures, n,
                                     worst(rows) if verdict == "failed" else worst(rows)[:1],
                                     expected_failure)
    return results, values


def f1_spread(ref: np.ndarray, out: np.ndarray, labels: np.ndarray, num_labels: int
              ) -> tuple[tuple[float, float], float]:
    """The macro-F1 drop's interval: a paired bootstrap over inputs (no closed form)."""
    ref_pred = np.argmax(ref, axis=1)  # predictions once: each resample only counts
    out_pred = np.where(np.isnan(out).any(axis=1), -1, np.argmax(np.nan_to_num(out, nan=0.0),
                                                                 axis=1))

    def drop(rows: np.ndarray) -> float:
        y = labels[rows]
        return m.macro_f1_of(ref_pred[rows], y, num_labels) - \
            m.macro_f1_of(out_pred[rows], y, num_labels)

    return u.paired_bootstrap(drop, len(labels))


# Single-input extremes judged on the share of inputs beyond their limit (max_abs_share,
# max_low_cosine_share): their interval is that share's, not the extreme's.
SHARE_JUDGED = frozenset({"max_abs_logit", "min_cosine"})


def _notes(thresholds: Mapping[str, float | int], values: Mapping[str, float]) -> dict[str, str]:
    """What a limit means on this model, for the reason text: the logit limits in units of the
    reference's logit std, and the near-tie flips top-1 agreement excused."""
    notes: dict[str, str] = {}
    scale = float(thresholds.get("logit_scale", 0.0))
    if scale > 0:
        for name in ("max_abs_logit", "mean_abs_logit"):
            notes[name] = (f" (= {float(thresholds[name]) / scale:.3g} x the reference's logit "
                           f"std {scale:.3g})")
    excused = int(values.get("near_tie_flips", 0))
    if excused:
        notes["top1_agreement"] = (f", {excused} more flipped at near-ties and not counted "
                                   f"(reference margin <= {tie_logits(thresholds):.3g} logits: "
                                   f"tie_margin {float(thresholds['tie_margin']):g} x its logit "
                                   "std)")
    return notes


def _describe(x: Measure, note: str = "", unit: str = "inputs") -> str:
    """'top1_agreement 0.113 < 0.97 over 600 inputs (95% CI 0.09-0.14); would pass with
    top1_agreement=0.113', or for an inconclusive measure how many inputs would decide.
    ``note`` follows the threshold (what it means on this model)."""
    broke = ">" if x.op == "<=" else "<"
    limit_note, count_note = ("", note) if x.name == "top1_agreement" else (note, "")
    text = f"{x.name} {x.value:.4g} {broke} {x.threshold:.4g}{limit_note}"
    share_judged = x.name in SHARE_JUDGED and x.interval is not None
    if share_judged and x.interval is not None:  # an extreme judged on the share beyond it
        text += (f" on {x.n_failing}/{x.n} inputs ({x.n_failing / max(x.n, 1):.1%}, 95% CI "
                 f"{x.interval[0]:.2%}-{x.interval[1]:.2%} of inputs)")
    elif x.n_failing:
        text += f" on {x.n_failing}/{x.n} inputs"
    else:
        text += f" over {x.n} inputs"
    text += count_note
    if x.interval is not None and not share_judged:
        text += f" (95% CI {x.interval[0]:.3g}-{x.interval[1]:.3g})"
    if x.inconclusive:
        more = f"about {x.decide_at} {unit} would decide" if x.decide_at else f"more {unit} " \
            "would decide"
        return f"inconclusive: {text}, which reaches the threshold; {more}"
    return text + f"; would pass with {x.name}={_loosest(x)}"


def _loosest(x: Measure) -> str:
    """The value to write in a marker: rounded outward, so that it really passes."""
    for digits in range(4, 18):
        text = f"{x.value:.{digits}g}"
        if (float(text) >= x.value) if x.op == "<=" else (float(text) <= x.value):
            return text
    return repr(x.value)


def _worst(i: int, ref: np.ndarray, out: np.ndarray, labels: np.ndarray | None,
           names: Sequence[str], texts: Sequence[str], row_diff: np.ndarray, k: int) -> Worst:
    return Worst(index=i, text=texts[i], label=names[labels[i]] if labels is not None else None,
                 score=float(row_diff[i]), reference=_topk(ref[i], names, k),
                 backend=_topk(out[i], names, k))


def _topk(row: np.ndarray, names: Sequence[str], k: int) -> tuple[tuple[str, float], ...]:
    if not np.all(np.isfinite(row)):
        return (("NaN/Inf", float("nan")),)
    probs = m.softmax(row[None, :])[0]
    idx = m.topk_indices(row[None, :], min(k, len(names)))[0]
    return tuple((names[j], round(float(probs[j]), 4)) for j in idx)
