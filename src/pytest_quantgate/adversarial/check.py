"""``quantgate::<backend>::adversarial``: every generated input stays within the thresholds.

The property, per input: finite logits, max |logit diff| within ``max_abs_logit``, and the same
top-1 label as the reference unless the reference's top-1 probability beats its runner-up by no
more than ``tie_margin`` (a near-tie is not a failure, so the gate is not flaky). The corpus is
generated once per session (Hypothesis, one seed) and scored in batches for the reference and
each backend; Hypothesis then searches and shrinks with per-input calls only around failures
(search.py). The record's ``details["adversarial"]`` is the report's adversarial slice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import metrics as m
from ..checks import CheckContext
from ..errors import BackendUnavailable
from ..gate import _topk, summarize
from ..records import CheckResult, Measure, Worst
from .search import Plan, generate, plan_for, search

CHECK = "adversarial"
FAILING_SHOWN = 20  # failing inputs kept in the report's slice


@dataclass
class Corpus:
    """The session's generated inputs and the reference's logits on them."""

    plan: Plan
    texts: list[str]
    ref: np.ndarray
    seconds: float


def check(gate: CheckContext, backend: str) -> CheckResult:
    try:
        from ..strategies import adversarial_texts
    except ImportError as exc:
        raise BackendUnavailable(
            f"the adversarial check needs Hypothesis ({exc}); install it with pip install "
            "'pytest-quantgate[adversarial]', or set adversarial_max_examples = 0") from None
    runner = gate.runner(backend)
    corpus: Corpus | None = gate.state.get(CHECK)  # generated once per session
    if corpus is None:
        start = time.perf_counter()
        plan = plan_for(gate.config)
        strategy = _strategy(gate, adversarial_texts)
        texts = generate(strategy, seed=plan.seed, max_examples=plan.max_examples)
        ref = gate.predict(gate.config.reference, texts)
        corpus = gate.state[CHECK] = Corpus(plan, texts, ref, time.perf_counter() - start)
    start = time.perf_counter()
    thr = gate.thresholds(backend)
    out = gate.predict(backend, corpus.texts)
    fails = failing_rows(corpus.ref, out, float(thr["max_abs_logit"]), float(thr["tie_margin"]))
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
                                       float(thr["tie_margin"]))[0])
        return not memo[text]

    outcome = search(_strategy(gate, adversarial_texts), holds, seed=corpus.plan.seed,
                     max_examples=corpus.plan.max_examples, database=corpus.plan.database,
                     key=f"quantgate-adversarial:{backend}")
    del runner
    return _record(gate, backend, corpus, out, fails, thr, outcome, rows,
                   time.perf_counter() - start, out_of_time)


def failing_rows(ref: np.ndarray, out: np.ndarray, max_abs_logit: float, tie_margin: float
                 ) -> np.ndarray:
    """Rows that break the property: non-finite, too far, or a decisive top-1 flip."""
    finite = np.isfinite(out).all(axis=1)
    diff = np.abs(ref.astype(np.float64) - np.nan_to_num(out.astype(np.float64))).max(axis=1)
    flip = np.argmax(ref, axis=1) != np.argmax(np.nan_to_num(out, nan=-np.inf), axis=1)
    return ~finite | (diff > max_abs_logit) | (flip & (margins(ref) > tie_margin))


def margins(ref: np.ndarray) -> np.ndarray:
    """The reference's top-1 probability minus its runner-up's, per row."""
    probs = np.sort(m.softmax(ref.astype(np.float64)), axis=1)
    return probs[:, -1] - probs[:, -2] if probs.shape[1] > 1 else np.ones(len(probs))


def _strategy(gate: CheckContext, adversarial_texts: Any) -> Any:
    # The task's sample: a long corpus's first documents are vocabulary enough.
    words = [w for t in gate.task.sample_texts() for w in t.split()]
    return adversarial_texts(vocabulary=words, max_length=gate.task.text_length)


def _record(gate: CheckContext, backend: str, corpus: Corpus, out: np.ndarray, fails: np.ndarray,
            thr: dict[str, float | int], outcome: Any, rows: dict[str, tuple[np.ndarray, np.ndarray]],
            seconds: float, out_of_time: bool) -> CheckResult:
    names, k, n = gate.task.class_names, int(thr["topk"]), len(corpus.texts)
    ref = corpus.ref
    diff = np.abs(ref.astype(np.float64) - np.nan_to_num(out.astype(np.float64))).max(axis=1)
    diff = np.where(np.isfinite(out).all(axis=1), diff, np.inf)
    flips = (np.argmax(ref, axis=1) != np.argmax(np.nan_to_num(out, nan=-np.inf), axis=1)) \
        & (margins(ref) > float(thr["tie_margin"]))
    limit = float(thr["max_abs_logit"])
    finite_max = float(diff[np.isfinite(diff)].max()) if np.isfinite(diff).any() else float("inf")
    measures = (
        Measure("max_abs_logit", finite_max, limit, "<=", bool((diff <= limit).all()), n,
                int((diff > limit).sum())),
        Measure("decisive_top1_flips", float(flips.sum()), 0.0, "<=", not flips.any(), n,
                int(flips.sum())),
    )

    def worst(text: str, r: np.ndarray, o: np.ndarray, i: int) -> Worst:
        score = float(np.abs(r.astype(np.float64) - np.nan_to_num(o.astype(np.float64))).max())
        return Worst(i, text, None, score, _topk(r, names, k), _topk(o, names, k))

    failing = [worst(corpus.texts[i], ref[i], out[i], int(i))
               for i in np.flatnonzero(fails)[np.argsort(-diff[fails], kind="stable")]]
    minimal = outcome.minimal
    if minimal is not None:
        r, o = rows[minimal] if minimal in rows else _pair(corpus, out, minimal)
        failing = [worst(minimal, r, o, -1), *(w for w in failing if w.text != minimal)]
    metrics = summarize(ref, out, None, k, len(names))
    slice_ = {
        "n_inputs": n, "seed": corpus.plan.seed, "profile": corpus.plan.profile,
        "max_examples": corpus.plan.max_examples, "budget_seconds": corpus.plan.budget,
        "seconds": round(seconds, 3), "corpus_seconds": round(corpus.seconds, 3),
        "metrics": metrics, "n_failing": int(fails.sum()), "minimal": minimal,
        "failing": [{"text": w.text, "max_abs_diff": w.score, "reference": w.reference,
                     "backend": w.backend} for w in failing[:FAILING_SHOWN]],
        "tried_one_by_one": len([t for t in outcome.tried if t in rows]),
        "first_tried": outcome.tried[0] if outcome.tried else None,
        "budget_exhausted": out_of_time, "search_error": outcome.error,
        "tie_margin": float(thr["tie_margin"]),
    }
    details: dict[str, Any] = {"adversarial": slice_}
    notes = []
    if out_of_time:
        notes.append(f"the search stopped at its {corpus.plan.budget:.0f} s budget "
                     "(adversarial_budget); the input shown may shrink further")
    if outcome.error:
        notes.append(f"Hypothesis reported {outcome.error}")
    if notes:
        details["notes"] = notes
    if minimal is None and not fails.any():
        return CheckResult(backend, CHECK, "passed",
                           f"{n} generated inputs within thresholds (max |logit diff| "
                           f"{finite_max:.3g}, no top-1 flip beyond a tie_margin of "
                           f"{float(thr['tie_margin']):g}; {seconds:.1f} s, seed "
                           f"{corpus.plan.seed})", measures, n, tuple(failing[:1]),
                           details=details)
    where = f"{int(fails.sum())}/{n} generated inputs" if fails.any() else \
        "an input replayed from the example database"
    reason = (f"{where} break the thresholds (max_abs_logit {limit:g}, or a top-1 flip where "
              f"the reference's margin exceeds tie_margin {float(thr['tie_margin']):g})")
    if minimal is not None:
        reason += f"; minimal input after shrinking: {minimal!r} ({len(minimal)} chars)"
    reason += f"; seed {corpus.plan.seed}"
    return CheckResult(backend, CHECK, "failed", reason, measures, n,
                       tuple(failing[: max(gate.config.worst, 1)]), details=details)


def _pair(corpus: Corpus, out: np.ndarray, text: str) -> tuple[np.ndarray, np.ndarray]:
    i = corpus.texts.index(text)
    return corpus.ref[i], out[i]
