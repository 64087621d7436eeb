"""``quantgate::<backend>::adversarial``: every generated input stays within the thresholds.

The property each generated input must keep is the task's (properties.py): for logits, finite
values, max |logit diff| within ``max_abs_logit`` and the same top-1 label unless the reference's
margin is a near-tie; for an embedder, its vector and its clear nearest corpus text. The corpus
is generated once per session (Hypothesis, one seed), or read with the reference's outputs from the
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

from .. import uncertainty as u
from ..checks import CheckContext
from ..errors import BackendUnavailable
from ..progress import blocking
from ..records import CheckResult, Measure, Worst
from .corpus import Corpus, session_corpus, vocabulary
from .properties import Logits, Neighbours, Property, similarity_drift, unit
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
    prop = property_of(gate, backend, thr, corpus.ref)
    fails = prop.failing(corpus.ref, out)
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
        memo[text] = bool(prop.failing(pair[0][None], pair[1][None])[0])
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
                   time.perf_counter() - start, out_of_time, prop,
                   search_seconds if searched else None)


def property_of(gate: CheckContext, backend: str, thr: dict[str, float | int],
                ref: np.ndarray) -> Property:
    """The task's property: neighbours for a sentence embedder, logits otherwise."""
    if gate.config.task == "embeddings":
        from ..tasks.embeddings import Embeddings

        task = gate.task
        assert isinstance(task, Embeddings)
        ref_run, run = gate.run(gate.config.reference), gate.run(backend)
        if ref_run.embedded is None or run.embedded is None:
            raise BackendUnavailable(f"{backend!r} or the reference has no vectors of the eval "
                                     "corpus to search generated queries in")
        n = len(task.corpus)
        ref_corpus = unit(ref_run.embedded.vectors[:n].astype(np.float64))
        out_corpus = unit(np.nan_to_num(run.embedded.vectors[:n].astype(np.float64)))
        return Neighbours(float(thr["min_cosine"]), int(thr["retrieval_k"]), ref_corpus,
                          out_corpus, [c.text for c in task.corpus],
                          similarity_drift(ref_corpus, out_corpus))
    return Logits(float(thr["max_abs_logit"]), tie_of(thr, ref), drift_of(gate, backend),
                  gate.task.class_names, int(thr["topk"]), float(thr["tie_margin"]))


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


def _strategy(gate: CheckContext, words: list[str]) -> Any:
    from ..strategies import adversarial_texts

    return adversarial_texts(vocabulary=words, max_length=gate.task.text_length)


def _record(gate: CheckContext, backend: str, corpus: Corpus, out: np.ndarray, fails: np.ndarray,
            thr: dict[str, float | int], outcome: Any, rows: dict[str, tuple[np.ndarray, np.ndarray]],
            seconds: float, out_of_time: bool, prop: Property,
            search_seconds: float | None = None) -> CheckResult:
    n, ref = len(corpus.texts), corpus.ref
    severity = prop.severity(ref, out)

    def worst(text: str, r: np.ndarray, o: np.ndarray, i: int) -> Worst:
        metric, score = prop.why(r, o)
        return Worst(i, text, None, score, prop.shown(r, True), prop.shown(o, False), metric)

    failing = [worst(corpus.texts[i], ref[i], out[i], int(i))
               for i in np.flatnonzero(fails)[np.argsort(-severity[fails], kind="stable")]]
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
        *prop.reported(ref, out),  # reported, judged through the rate above
    )
    slice_ = {
        "n_inputs": n, "seed": corpus.plan.seed, "profile": corpus.plan.profile,
        "max_examples": corpus.plan.max_examples, "budget_seconds": corpus.plan.budget,
        "seconds": round(seconds, 3), "corpus_seconds": round(corpus.seconds, 3),
        "corpus_cached": corpus.cached, "searched": search_seconds is not None,
        "search_seconds": None if search_seconds is None else round(search_seconds, 3),
        "inputs_tried": len(outcome.tried),
        "metrics": prop.metrics(ref, out), "n_failing": int(fails.sum()), "minimal": minimal,
        "failing": [{"text": w.text, "why": w.metric, "score": w.score,
                     "max_abs_diff": w.score if w.metric.startswith("max") else None,
                     "reference": w.reference, "backend": w.backend}
                    for w in failing[:FAILING_SHOWN]],
        "tried_one_by_one": len([t for t in outcome.tried if t in rows]),
        "first_tried": outcome.tried[0] if outcome.tried else None,
        "budget_exhausted": out_of_time, "search_error": outcome.error,
        **prop.slice(), "failure_rate": count / total, "allowed_failure_rate": allowed,
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
    found = (f"{int(fails.sum())}/{n} generated inputs" + (" and 1 input the search found"
                                                          if extra else "")
             + f" break the thresholds ({prop.rule})")
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
