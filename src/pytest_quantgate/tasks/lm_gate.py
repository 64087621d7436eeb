"""Verdicts of a causal LM: ``ppl`` (relative perplexity increase) and ``next-token``.

Pure: takes the tallies of the reference's and the backend's passes (tasks/causal_lm.py) and
thresholds, returns ``CheckResult`` records and a metrics mapping, like gate.py does for
classification. A backend with NaN/Inf log-likelihoods fails both checks with that reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from .. import metrics as m
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

    def measure(name: str, count: int, successes: int | None = None) -> Measure:
        key, limit, value = KEYS[name], float(thresholds[name]), values[name]
        passed = value <= limit if key.op == "<=" else value >= limit
        interval = m.wilson_interval(successes, count) if successes is not None else None
        return Measure(name, float(value), limit, key.op, bool(passed), count, 0, interval)

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


def _record(backend: str, check: str, measures: tuple[Measure, ...], n: int,
            worst: tuple[Worst, ...], expected: bool, nan_note: str, context: str,
            nonfinite: bool) -> CheckResult:
    failed = [x for x in measures if not x.passed]
    if failed:
        reason = nan_note + "; ".join(_describe(x) for x in failed) + f" ({context})"
    else:
        reason = nan_note + f"within thresholds ({context})"
    verdict = "failed" if failed or nonfinite else "passed"
    return CheckResult(backend, check, verdict, reason, measures, n,
                       worst if verdict == "failed" else worst[:1], expected)


def _worst(w: WorstDoc, token_text: Callable[[int], str]) -> Worst:
    def named(pairs: tuple[tuple[int, float], ...]) -> tuple[tuple[str, float], ...]:
        return tuple(("NaN/Inf" if i < 0 else repr(token_text(i)), p) for i, p in pairs)

    score = w.ratio if math.isfinite(w.ratio) else math.inf
    return Worst(index=w.doc, text=w.text, label=None, score=score,
                 reference=named(w.reference), backend=named(w.backend), metric="ppl ratio")
