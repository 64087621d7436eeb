"""Verdicts of a causal LM: ``ppl`` (relative perplexity increase) and ``next-token``.

Pure: takes the tallies of the reference's and the backend's passes (tasks/causal_lm.py) and
thresholds, returns ``CheckResult`` records and a metrics mapping, like gate.py does for
classification. A backend with NaN/Inf log-likelihoods fails both checks with that reason.

The perplexity change, top-1 agreement and top-k overlap are judged with their 95% interval
(uncertainty.py: passed, failed or inconclusive) from a bootstrap over **documents**: tokens of
one document are not independent draws (a hard document is hard at every position), so a
token-level interval would be far too narrow. The final-position logit measures are judged on
their values (one position per document: the max is a single extreme).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from .. import metrics as m
from .. import uncertainty as u
from ..gate import _describe
from ..records import CheckResult, Measure, Worst
from ..thresholds import KEYS
from .causal_lm import Tally, WorstDoc

LM_CHECKS = ("ppl", "next-token")
NAN_CAUSE = ("(FP16 overflow in LayerNorm or softmax, or an attention mask the backend cannot "
             "represent, is the usual cause)")


def summarize_lm(ref: Tally, out: Tally) -> dict[str, float]:
    """Every metric of one backend against the reference, by name."""
    finite = out.tokens - out.nonfinite
    values: dict[str, float] = {
        "n_inputs": float(out.docs), "tokens": float(out.tokens),
        "nonfinite_rows": float(out.nonfinite), "reference_ppl": ref.ppl,
    }
    if finite:
        ppl, ref_ppl = out.ppl, m.perplexity(out.ref_nll_sum, finite)
        values.update(ppl=ppl, ppl_delta=(ppl - ref_ppl) / ref_ppl,
                      top1_agreement=out.agree / out.tokens,
                      topk_overlap=out.overlap / out.tokens)
    good_finals = out.finals - out.final_nonfinite
    if good_finals:
        values.update(max_abs_logit=out.final_max_abs,
                      mean_abs_logit=out.final_sum_abs / out.final_elems,
                      kl_div=out.final_kl_sum / good_finals)
    return values


def evaluate_lm(*, backend: str, reference: str, thresholds: Mapping[str, float | int],
                ref: Tally, out: Tally, token_text: Callable[[int], str],
                expected_failure: bool = False) -> tuple[dict[str, CheckResult], dict[str, float]]:
    """Records for ``ppl`` and ``next-token``, and the metrics."""
    values = summarize_lm(ref, out)
    n = out.tokens
    worst = tuple(_worst(w, token_text) for w in out.worst)

    spreads = _document_spreads(out)

    def measure(name: str, count: int, successes: int | None = None) -> Measure:
        key, limit, value = KEYS[name], float(thresholds[name]), values[name]
        spread = spreads.get(name)
        if spread is None:  # judged on its value
            interval = m.wilson_interval(successes, count) if successes is not None else None
            passed = value <= limit if key.op == "<=" else value >= limit
            return Measure(name, float(value), limit, key.op, bool(passed), count, 0, interval)
        judged = u.judge(float(value), limit, key.op, spread[0], spread[1], len(out.per_doc))
        return Measure(name, float(value), limit, key.op, judged.outcome == "passed", count, 0,
                       judged.interval, judged.outcome == "inconclusive", judged.decide_at)

    def info(name: str, count: int) -> Measure:
        return Measure(name, float(values[name]), None, "", True, count)

    results: dict[str, CheckResult] = {}
    if out.nonfinite == n or out.final_nonfinite == out.finals or "ppl" not in values:
        reason = (f"backend log-likelihood is NaN/Inf on {out.nonfinite}/{n} positions "
                  f"{NAN_CAUSE}")
        for check in LM_CHECKS:
            results[check] = CheckResult(backend, check, "failed", reason, (), n, worst,
                                         expected_failure)
        return results, values
    nan_note = (f"backend log-likelihood is NaN/Inf on {out.nonfinite}/{n} positions "
                f"{NAN_CAUSE}; the finite ones: ") if out.nonfinite else ""
    # ppl
    ppl = (measure("ppl_delta", n), info("reference_ppl", n), info("ppl", n))
    change = (f"perplexity {values['reference_ppl']:.4g} ({reference}) -> {values['ppl']:.4g} "
              f"({backend}), {values['ppl_delta']:+.3%}, over {n} tokens of {out.docs} documents")
    results["ppl"] = _record(backend, "ppl", ppl, n, worst, expected_failure, nan_note,
                             change, out.nonfinite > 0)
    # next-token
    agree = out.agree
    nxt = [measure("top1_agreement", n, successes=agree), measure("topk_overlap", n)]
    if "max_abs_logit" in values:
        nxt += [measure("max_abs_logit", out.finals), measure("mean_abs_logit", out.finals),
                measure("kl_div", out.finals)]
    where = (f"next token at {n} positions; logits at the final position of {out.finals} "
             "documents")
    results["next-token"] = _record(backend, "next-token", tuple(nxt), n, worst,
                                    expected_failure, nan_note, where, out.nonfinite > 0)
    return results, values


def _document_spreads(out: Tally) -> dict[str, tuple[tuple[float, float], float]]:
    """The interval and per-document spread of ``ppl_delta``, ``top1_agreement`` and
    ``topk_overlap``: a paired bootstrap over documents (both sides scored the same ones);
    empty with fewer than two documents with finite positions."""
    docs = np.asarray(out.per_doc, dtype=np.float64).reshape(-1, 6)
    if int((docs[:, 1] > 0).sum()) < 2:
        return {}
    n, fn, nll, ref_nll, agree, overlap = docs.T

    def delta(rows: np.ndarray) -> float:
        tokens = fn[rows].sum()
        with np.errstate(over="ignore"):  # a resample of huge losses: an infinite change
            return float(np.expm1((nll[rows].sum() - ref_nll[rows].sum()) / tokens)) \
                if tokens else 0.0

    def share(numerator: np.ndarray) -> Callable[[np.ndarray], float]:
        return lambda rows: float(numerator[rows].sum() / max(n[rows].sum(), 1.0))

    return {"ppl_delta": u.paired_bootstrap(delta, len(docs)),
            "top1_agreement": u.paired_bootstrap(share(agree), len(docs)),
            "topk_overlap": u.paired_bootstrap(share(overlap), len(docs))}


def _record(backend: str, check: str, measures: tuple[Measure, ...], n: int,
            worst: tuple[Worst, ...], expected: bool, nan_note: str, context: str,
            nonfinite: bool) -> CheckResult:
    failed = [x for x in measures if not x.passed and not x.inconclusive]
    unsure = [x for x in measures if x.inconclusive]
    if failed or unsure:
        reason = nan_note + "; ".join(_describe(x, unit="documents")
                                      for x in failed or unsure) + f" ({context})"
    else:
        reason = nan_note + f"within thresholds ({context})"
    verdict = "failed" if failed or nonfinite else "inconclusive" if unsure else "passed"
    return CheckResult(backend, check, verdict, reason, measures, n,
                       worst if verdict == "failed" else worst[:1], expected)


def _worst(w: WorstDoc, token_text: Callable[[int], str]) -> Worst:
    def named(pairs: tuple[tuple[int, float], ...]) -> tuple[tuple[str, float], ...]:
        return tuple(("NaN/Inf" if i < 0 else repr(token_text(i)), p) for i, p in pairs)

    score = w.ratio if math.isfinite(w.ratio) else math.inf
    return Worst(index=w.doc, text=w.text, label=None, score=score,
                 reference=named(w.reference), backend=named(w.backend), metric="ppl ratio")
