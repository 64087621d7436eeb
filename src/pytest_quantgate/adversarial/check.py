"""``quantgate::<backend>::adversarial``: every generated input stays within the thresholds.

The property, per input: finite logits, max |logit diff| within ``max_abs_logit``, and the same
top-1 label as the reference unless the reference's top-1 logit beats its runner-up by no more
than ``tie_margin`` logit stds or twice the backend's own drift (a near-tie is not a failure, so
the gate is not flaky). The corpus is
generated once per session (Hypothesis, one seed), or read with the reference's outputs from the
cache under a fixed seed (corpus.py), and scored in batches for the reference and each backend.
Hypothesis then searches and shrinks with per-input calls only around failures (search.py), and
only where there is something to find: a failing input in the corpus, or failures saved in the
backend's example database to replay. A clean backend's item is one batched pass over the
corpus. The record's ``details["adversarial"]`` is the report's adversarial slice.
"""

from __future__ import annotations

import importlib.util
import time
from typing import Any

import numpy as np

from .. import metrics as m
from .. import uncertainty as u
from ..checks import CheckContext
from ..errors import BackendUnavailable
from ..gate import _topk, summarize
from ..progress import blocking
from ..records import CheckResult, Measure, Worst
from .corpus import Corpus, session_corpus, vocabulary
from .search import Outcome, database_for, generate, plan_for, saved, search

CHECK = "adversarial"
FAILING_SHOWN = 20  # failing inputs kept in the report's slice


def check(gate: CheckContext, backend: str) -> CheckResult:
    missing = _without_hypothesis()
    if missing:
        raise BackendUnavailable(
            f"the adversarial check needs Hypothesis ({missing}); install it with pip install "
            "'pytest-quantgate[adversarial]', or set adversarial_max_examples = 0")
    runner = gate.runner(backend)
    corpus: Corpus | None = gate.state.get(CHECK)  # once per session
    if corpus is None:
        plan = plan_for(gate.config)
        with blocking("adversarial corpus (draw, and score the reference)"):
            corpus = gate.state[CHECK] = session_corpus(
                gate, plan, lambda words: generate(_strategy(gate, words), seed=plan.seed,
                                                   max_examples=plan.max_examples))
    start = time.perf_counter()
    thr = gate.thresholds(backend)
    out = gate.predict(backend, corpus.texts)
    noise = drift_of(gate, backend)
    tie = tie_of(thr, corpus.ref)
    fails = failing_rows(corpus.ref, out, float(thr["max_abs_logit"]), tie, noise)
    memo = {t: bool(f) for t, f in zip(corpus.texts, fails, strict=True)}
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    deadline = start + corpus.plan.budget
    out_of_time = False

    def holds(text: str) -> bool:
        nonlocal out_of_time
        if text in memo:
            return not memo[text]
        if time.perf_counter() > deadline:
            out_of_time = True
            return True  # unscored: the shrinker keeps what it has
        pair = (gate.predict(gate.config.reference, [text])[0], gate.predict(backend, [text])[0])
        rows[text] = pair
        memo[text] = bool(failing_rows(pair[0][None], pair[1][None], float(thr["max_abs_logit"]),
                                       tie, noise)[0])
        return not memo[text]

    # The search draws the corpus again (answered from ``memo``), replays the database and
    # shrinks: with no failing input and nothing saved there is nothing for it to find, so a
    # clean backend costs one batched pass and no Hypothesis at all.
    database = database_for(corpus.plan, backend)
    searched = bool(fails.any()) or saved(database)
    search_start = time.perf_counter()
    with blocking(f"adversarial search on {backend}"):
        outcome = search(_strategy(gate, vocabulary(gate)), holds, seed=corpus.plan.seed,
                         max_examples=corpus.plan.max_examples, database=database,
                         key=f"quantgate-adversarial:{backend}") if searched else Outcome()
    search_seconds = time.perf_counter() - search_start
    del runner
    return _record(gate, backend, corpus, out, fails, thr, outcome, rows,
                   time.perf_counter() - start, out_of_time, noise,
                   search_seconds if searched else None)


def _without_hypothesis() -> str:
    """Why Hypothesis cannot run here ("" when it can), found without importing it: a warm run
    with nothing to search never imports it."""
    for name in ("hypothesis", "pytest_quantgate.strategies"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return f"No module named {name!r}"
    return ""


def drift_of(gate: CheckContext, backend: str) -> float:
    """The backend's own drift on the eval set: the 99th percentile over inputs of the largest
    |logit difference|. A backend that moves each logit by up to d can swap two classes whose
    logits are less than 2d apart; such a flip on a generated input is the precision's noise on
    the model's own scale, not a failure. 0 where the eval run kept no logits (a causal LM)."""
    ref, run = gate.run(gate.config.reference), gate.run(backend)
    if ref.logits is None or run.logits is None:
        return 0.0
    diff = np.abs(ref.logits.astype(np.float64) - run.logits.astype(np.float64)).max(axis=1)
    diff = diff[np.isfinite(diff)]
    return float(np.percentile(diff, 99)) if len(diff) else 0.0


def tie_of(thr: dict[str, float | int], ref: np.ndarray) -> float:
    """``tie_margin`` in logits: times the reference's logit std over the eval set, or, where
    the task has none (a causal LM's vocabulary), over the generated corpus."""
    scale = float(thr.get("logit_scale", 0.0))
    if not scale > 0:
        finite = ref[np.isfinite(ref).all(axis=1)].astype(np.float64)
        scale = float(finite.std()) if finite.size else 0.0
    return float(thr["tie_margin"]) * scale


def failing_rows(ref: np.ndarray, out: np.ndarray, max_abs_logit: float, tie: float,
                 noise: float = 0.0) -> np.ndarray:
    """Rows that break the property: non-finite, too far, or a decisive top-1 flip: one where
    the reference's top-1 logit beats its runner-up by more than ``tie`` (logits: tie_margin
    on the model's logit scale) and by more than twice the backend's drift ``noise``."""
    finite = np.isfinite(out).all(axis=1)
    diff = np.abs(ref.astype(np.float64) - np.nan_to_num(out.astype(np.float64))).max(axis=1)
    flip = np.argmax(ref, axis=1) != np.argmax(np.nan_to_num(out, nan=-np.inf), axis=1)
    return ~finite | (diff > max_abs_logit) | (flip & decisive(ref, tie, noise))


def decisive(ref: np.ndarray, tie: float, noise: float) -> np.ndarray:
    """Rows whose reference top-1 logit beats its runner-up by more than ``tie`` and by more
    than twice ``noise``: a flip there is beyond the precision's noise on this model."""
    return m.logit_margin(ref.astype(np.float64)) > max(tie, 2.0 * noise)


def _strategy(gate: CheckContext, words: list[str]) -> Any:
    from ..strategies import adversarial_texts

    return adversarial_texts(vocabulary=words, max_length=gate.task.text_length)


def _record(gate: CheckContext, backend: str, corpus: Corpus, out: np.ndarray, fails: np.ndarray,
            thr: dict[str, float | int], outcome: Any, rows: dict[str, tuple[np.ndarray, np.ndarray]],
            seconds: float, out_of_time: bool, noise: float,
            search_seconds: float | None = None) -> CheckResult:
    names, k, n = gate.task.class_names, int(thr["topk"]), len(corpus.texts)
    ref = corpus.ref
    limit, tie = float(thr["max_abs_logit"]), tie_of(thr, ref)
    diff = np.abs(ref.astype(np.float64) - np.nan_to_num(out.astype(np.float64))).max(axis=1)
    diff = np.where(np.isfinite(out).all(axis=1), diff, np.inf)
    flips = (np.argmax(ref, axis=1) != np.argmax(np.nan_to_num(out, nan=-np.inf), axis=1)) \
        & decisive(ref, tie, noise)
    finite_max = float(diff[np.isfinite(diff)].max()) if np.isfinite(diff).any() else float("inf")

    def why(r: np.ndarray, o: np.ndarray) -> tuple[str, float]:
        """What made an input fail, as the worst-input line shows it."""
        d = float(np.abs(r.astype(np.float64) - np.nan_to_num(o.astype(np.float64))).max())
        if not np.isfinite(o).all():
            return "NaN/Inf output", float("inf")
        if d > limit:
            return f"max|diff| > {limit:.3g}:", d
        if np.argmax(r) != np.argmax(o):
            return "top-1 flip; reference logit margin", float(m.logit_margin(r[None])[0])
        return "max|diff|", d

    def worst(text: str, r: np.ndarray, o: np.ndarray, i: int) -> Worst:
        metric, score = why(r, o)
        return Worst(i, text, None, score, _topk(r, names, k), _topk(o, names, k), metric)

    failing = [worst(corpus.texts[i], ref[i], out[i], int(i))
               for i in np.flatnonzero(fails)[np.argsort(-diff[fails], kind="stable")]]
    minimal = outcome.minimal
    extra = 0  # a failing input the search found (or the database replayed) outside the corpus
    if minimal is not None:
        r, o = rows[minimal] if minimal in rows else _pair(corpus, out, minimal)
        failing = [worst(minimal, r, o, -1), *(w for w in failing if w.text != minimal)]
        extra = int(minimal not in corpus.texts)
    count, total = int(fails.sum()) + extra, n + extra
    allowed = float(thr["adversarial_failure_rate"])
    interval, sd = u.rate(count, total)
    judged = u.judge(count / total, allowed, "<=", interval, sd, total) if count else \
        u.Judged("passed", interval)
    measures = (
        Measure("adversarial_failure_rate", count / total, allowed, "<=",
                judged.outcome == "passed", total, count, interval,
                judged.outcome == "inconclusive", judged.decide_at),
        # reported, judged through the rate above
        Measure("max_abs_logit", finite_max, None, "<=", True, n, int((diff > limit).sum())),
        Measure("decisive_top1_flips", float(flips.sum()), None, "<=", True, n, int(flips.sum())),
    )
    metrics = summarize(ref, out, None, k, len(names), tie)
    slice_ = {
        "n_inputs": n, "seed": corpus.plan.seed, "profile": corpus.plan.profile,
        "max_examples": corpus.plan.max_examples, "budget_seconds": corpus.plan.budget,
        "seconds": round(seconds, 3), "corpus_seconds": round(corpus.seconds, 3),
        "corpus_cached": corpus.cached, "searched": search_seconds is not None,
        "search_seconds": None if search_seconds is None else round(search_seconds, 3),
        "inputs_tried": len(outcome.tried),
        "metrics": metrics, "n_failing": int(fails.sum()), "minimal": minimal,
        "failing": [{"text": w.text, "why": w.metric, "score": w.score,
                     "max_abs_diff": w.score if w.metric.startswith("max") else None,
                     "reference": w.reference, "backend": w.backend}
                    for w in failing[:FAILING_SHOWN]],
        "tried_one_by_one": len([t for t in outcome.tried if t in rows]),
        "first_tried": outcome.tried[0] if outcome.tried else None,
        "budget_exhausted": out_of_time, "search_error": outcome.error,
        "tie_margin": float(thr["tie_margin"]), "tie_logits": round(tie, 6),
        "drift_q99": round(noise, 6), "failure_rate": count / total,
        "allowed_failure_rate": allowed,
    }
    details: dict[str, Any] = {"adversarial": slice_}
    notes = []
    if out_of_time:
        notes.append(f"the search stopped at its {corpus.plan.budget:.0f} s budget "
                     "(adversarial_budget); the input shown may shrink further")
    if outcome.error:
        notes.append(f"Hypothesis reported {outcome.error}")
    if corpus.note:
        notes.append(corpus.note)
    if notes:
        details["notes"] = notes
    rule = (f"max_abs_logit {limit:.3g}, or a top-1 flip where the reference's logit margin "
            f"exceeds {max(tie, 2.0 * noise):.3g}: tie_margin {tie:.3g} and twice the backend's "
            f"drift {noise:.3g}")
    found = (f"{int(fails.sum())}/{n} generated inputs" + (" and 1 input the search found"
                                                          if extra else "")
             + f" break the thresholds ({rule})")
    if not count:
        # (its time is in the report's slice: a reason says the same on every run of the code)
        return CheckResult(backend, CHECK, "passed", f"{found}; seed {corpus.plan.seed}",
                           measures, n, tuple(failing[:1]), details=details)
    first = failing[0]
    reason = (f"{found}: {count}/{total} = {count / total:.1%} (95% CI {interval[0]:.1%}-{interval[1]:.1%}) "
              f"against an allowed adversarial_failure_rate of {allowed:.1%}; first: "
              f"{first.text!r}: {first.metric} {first.score:.3g}")
    if minimal is not None:
        reason += f"; minimal input after shrinking: {minimal!r} ({len(minimal)} chars)"
    reason += f"; seed {corpus.plan.seed}"
    if judged.outcome == "inconclusive":
        reason = (f"inconclusive: {reason}; about {judged.decide_at} generated inputs would "
                  "decide (adversarial_max_examples)")
    elif judged.outcome == "passed":
        reason = f"within the allowed rate: {reason}"
    return CheckResult(backend, CHECK, judged.outcome, reason, measures, total,
                       tuple(failing[: max(gate.config.worst, 1)]), details=details)


def _pair(corpus: Corpus, out: np.ndarray, text: str) -> tuple[np.ndarray, np.ndarray]:
    i = corpus.texts.index(text)
    return corpus.ref[i], out[i]
