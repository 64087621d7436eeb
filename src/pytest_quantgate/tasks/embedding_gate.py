"""Verdicts of a sentence embedder: ``embedding`` (cosine of each input's vector to the
reference's) and ``retrieval`` (what a nearest-neighbour search over the corpus returns).

Pure: vectors and thresholds in, ``CheckResult`` records and a metrics mapping out, like gate.py
for classification. Shares and means are judged with their 95% interval (uncertainty.py:
passed, failed or inconclusive): the share of inputs below ``min_cosine`` against
``max_low_cosine_share`` (Wilson), the mean cosine, the mean neighbour overlap and the paired
recall drop over queries (normal intervals on the per-input values).

``structural_causes`` names the faults that a cosine cannot tell from noise but the vectors
can: dimensions in another order (each backend dimension correlates with one other reference
dimension) and a graph that pools differently from the reference (the backend's vectors match
the reference's token vectors pooled another way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import uncertainty as u
from ..gate import _describe
from ..records import CheckResult, Measure, Worst
from ..thresholds import KEYS

EMBEDDING_CHECKS = ("embedding", "retrieval")
NAN_CAUSE = "(FP16 overflow in LayerNorm or softmax is the usual cause)"
# 1 - cosine, by decade: where benign float noise (< 1e-6), half precision (1e-5-1e-3) and
# quantisation (1e-3-1e-2) sit, and what moves neighbours (> 1e-2)
DISTANCE_EDGES = (0.0, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 2.0)
SHOWN = 3  # neighbours shown per worst input


@dataclass
class Embedded:
    """One backend's vectors of the eval texts (corpus rows, then the queries file's rows) and
    how they were read."""

    vectors: np.ndarray  # (texts, dim), float32
    output: str  # the graph output read
    pooled_here: bool  # token vectors pooled by the gate (False: the graph pooled them)
    # the reference only: its token vectors pooled every other way, for structural_causes
    alternatives: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Queries:
    """Which rows of the vectors are queries, and what each may not retrieve or should."""

    rows: np.ndarray  # row of each query in the vectors
    n_corpus: int  # the first n_corpus rows are the corpus searched
    own: np.ndarray | None  # a corpus text used as a query: its own row, never a neighbour
    relevant: tuple[np.ndarray, ...] | None  # corpus rows relevant to each query
    source: str  # "queries.jsonl (120 queries)" or "a sample of the corpus (600 texts)"


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity in float64 (NaN where a row is not finite)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    dot = (a * b).sum(axis=1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = dot / np.maximum(norms, 1e-30)
    out[~(np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1))] = np.nan
    return np.clip(out, -1.0, 1.0)


def similarities(vectors: np.ndarray, queries: Queries) -> np.ndarray:
    """Cosine of every query to every corpus text, (queries, corpus); a query's own row -inf."""
    v = vectors.astype(np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-30)
    sims = v[queries.rows] @ v[: queries.n_corpus].T
    sims[~np.isfinite(sims)] = -np.inf
    if queries.own is not None:
        sims[np.arange(len(queries.rows)), queries.own] = -np.inf
    return sims


def top_k(sims: np.ndarray, k: int) -> np.ndarray:
    """The k best corpus rows per query, best first (ties: the lower row first)."""
    order = np.argsort(-sims, axis=1, kind="stable")
    return order[:, :k]


def retrieval_k(thresholds: Mapping[str, float | int], queries: Queries) -> int:
    """``retrieval_k``, at most the corpus texts a query can retrieve."""
    available = queries.n_corpus - (1 if queries.own is not None else 0)
    return max(1, min(int(thresholds["retrieval_k"]), available))


def rank_correlation(ref_sims: np.ndarray, out_sims: np.ndarray, ref_top: np.ndarray,
                     out_top: np.ndarray) -> np.ndarray:
    """Per query, Spearman's correlation of the two similarity rankings over the texts either
    side retrieves (1: same order)."""
    out = np.empty(len(ref_top))
    for q in range(len(ref_top)):
        cols = np.union1d(ref_top[q], out_top[q])
        if len(cols) < 2:
            out[q] = 1.0
            continue
        a = np.argsort(np.argsort(-ref_sims[q, cols], kind="stable"))
        b = np.argsort(np.argsort(-out_sims[q, cols], kind="stable"))
        out[q] = np.corrcoef(a, b)[0, 1] if a.std() and b.std() else 1.0
    return out


def histogram(values: np.ndarray, edges: Sequence[float]) -> dict[str, list[float]]:
    counts, _ = np.histogram(values[np.isfinite(values)], bins=np.asarray(edges))
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def evaluate_embeddings(*, backend: str, thresholds: Mapping[str, float | int],
                        ref: Embedded, out: Embedded, queries: Queries, texts: Sequence[str],
                        worst_n: int, causes: Sequence[str] = (),
                        expected_failure: bool = False
                        ) -> tuple[dict[str, CheckResult], dict[str, float]]:
    """Records for ``embedding`` and ``retrieval``, and the metrics by name."""
    n = len(ref.vectors)
    if out.vectors.shape != ref.vectors.shape:
        reason = (f"backend vectors have shape {tuple(out.vectors.shape)}, the reference's "
                  f"{tuple(ref.vectors.shape)} (output {out.output!r}): another dimension is "
                  "another model or a projection the reference does not apply")
        return ({c: CheckResult(backend, c, "failed", reason, (), n,
                                expected_failure=expected_failure,
                                details={"causes": list(causes)})
                 for c in EMBEDDING_CHECKS}, {"n_inputs": float(n)})
    cos = cosines(ref.vectors, out.vectors)
    finite = np.isfinite(cos)
    bad = int((~finite).sum())
    values: dict[str, float] = {"n_inputs": float(n), "nonfinite_rows": float(bad),
                                "dimensions": float(ref.vectors.shape[1])}
    if finite.any():
        values.update(min_cosine=float(cos[finite].min()), min_cosine_mean=float(cos[finite].mean()))
    k = retrieval_k(thresholds, queries)
    ref_sims, out_sims = similarities(ref.vectors, queries), similarities(out.vectors, queries)
    ref_top, out_top = top_k(ref_sims, k), top_k(out_sims, k)
    overlap = np.array([len(np.intersect1d(a, b)) / k for a, b in zip(ref_top, out_top,
                                                                         strict=True)])
    rho = rank_correlation(ref_sims, out_sims, ref_top, out_top)
    values.update(neighbour_overlap=float(overlap.mean()), rank_correlation=float(rho.mean()),
                  retrieval_k=float(k), queries=float(len(queries.rows)))
    recall_drop = None
    if queries.relevant is not None:
        ref_recall = _recall(ref_top, queries.relevant)
        out_recall = _recall(out_top, queries.relevant)
        recall_drop = ref_recall - out_recall
        values.update(reference_recall=float(ref_recall.mean()), recall=float(out_recall.mean()),
                      recall_delta=float(recall_drop.mean()))

    def judged(name: str, value: float, spread: tuple[tuple[float, float], float] | None,
               count: int, n_failing: int = 0) -> Measure:
        key, limit = KEYS[name], float(thresholds[name])
        interval, sd = spread if spread is not None else (None, None)
        j = u.judge(value, limit, key.op, interval, sd, count)
        return Measure(name, float(value), limit, key.op, j.outcome == "passed", count,
                       n_failing, j.interval, j.outcome == "inconclusive", j.decide_at)

    def low_share() -> Measure:
        """min cosine, judged on the share of inputs below ``min_cosine``: one input of a benign
        INT8 backend may sit below any fixed floor; many may not (like max_abs_logit)."""
        floor, share = float(thresholds["min_cosine"]), float(thresholds["max_low_cosine_share"])
        below = int((cos[finite] < floor).sum()) + bad
        interval, sd = u.rate(below, n)
        j = u.judge(below / n, share, "<=", interval, sd, n) if below else \
            u.Judged("passed", interval)
        return Measure("min_cosine", values.get("min_cosine", float("nan")), floor, ">=",
                       j.outcome == "passed", n, below, interval, j.outcome == "inconclusive",
                       j.decide_at)

    results: dict[str, CheckResult] = {}
    names_corpus = list(texts[: queries.n_corpus])

    ref_n = _neighbours(ref.vectors, queries.n_corpus)
    out_n = _neighbours(out.vectors, queries.n_corpus)

    def worst_rows(text_rows: np.ndarray, score: np.ndarray, metric: str) -> tuple[Worst, ...]:
        """The inputs (or queries) scoring lowest, with both sides' nearest corpus texts;
        ``text_rows``: the text row of each scored item."""
        chosen = np.argsort(np.nan_to_num(score, nan=-2.0), kind="stable")[:worst_n]
        return tuple(Worst(int(i), texts[int(text_rows[i])], None, float(score[i]),
                           ref_n(int(text_rows[i]), names_corpus),
                           out_n(int(text_rows[i]), names_corpus), metric) for i in chosen)

    # embedding: per input
    if not finite.any():
        reason = f"backend vectors are NaN/Inf on {bad}/{n} inputs {NAN_CAUSE}"
        results["embedding"] = CheckResult(backend, "embedding", "failed", reason, (), n, (),
                                           expected_failure, {"causes": list(causes)})
    else:
        measures = (low_share(),
                    judged("min_cosine_mean", values["min_cosine_mean"], u.mean(cos[finite]),
                           int(finite.sum())))
        results["embedding"] = _record(backend, "embedding", measures, n, bad, causes,
                                       worst_rows(np.arange(n), cos, "cosine"),
                                       expected_failure,
                                       {"distance_histogram": histogram(1.0 - cos,
                                                                        DISTANCE_EDGES)})
    # retrieval: per query
    nq = len(queries.rows)
    measures_r = [judged("neighbour_overlap", values["neighbour_overlap"], u.mean(overlap), nq,
                         int((overlap < float(thresholds["neighbour_overlap"])).sum())),
                  Measure("rank_correlation", values["rank_correlation"], None, "", True, nq)]
    if recall_drop is not None:
        measures_r.append(judged("recall_delta", values["recall_delta"], u.mean(recall_drop), nq,
                                 int((recall_drop > 0).sum())))
    counts = np.bincount(np.rint(overlap * k).astype(int), minlength=k + 1)
    results["retrieval"] = _record(
        backend, "retrieval", tuple(measures_r), nq, 0, causes,
        worst_rows(queries.rows, overlap, f"top-{k} overlap"), expected_failure,
        {"k": k, "queries": queries.source,
         "overlap_counts": {f"{i}/{k}": int(c) for i, c in enumerate(counts)},
         **({"notes": [f"{bad}/{n} vectors are NaN/Inf: they rank last"]} if bad else {})})
    return results, values


def _record(backend: str, check: str, measures: tuple[Measure, ...], n: int, bad: int,
            causes: Sequence[str], worst: tuple[Worst, ...], expected: bool,
            details: dict[str, object]) -> CheckResult:
    failed = [x for x in measures if not x.passed and not x.inconclusive]
    unsure = [x for x in measures if x.inconclusive]
    unit = "queries" if check == "retrieval" else "inputs"
    reason = "; ".join(_describe(x, "", unit) for x in failed or unsure) or "within thresholds"
    if bad and check == "embedding":
        reason = f"backend vectors are NaN/Inf on {bad}/{n} inputs {NAN_CAUSE}; {reason}"
    verdict = "failed" if failed or (bad and check == "embedding") else \
        "inconclusive" if unsure else "passed"
    if verdict == "failed" and causes:
        details = {**details, "causes": list(causes)}
    return CheckResult(backend, check, verdict, reason, measures, n,
                       worst if verdict == "failed" else worst[:1], expected, details)


def _recall(top: np.ndarray, relevant: Sequence[np.ndarray]) -> np.ndarray:
    """Per query, relevant texts in its top k over min(k, relevant texts): BEIR's capped
    recall, so a query with 30 relevant texts can reach 1 in a top 10."""
    return np.array([len(np.intersect1d(t, r)) / min(len(t), len(r)) if len(r) else 1.0
                     for t, r in zip(top, relevant, strict=True)])


def _neighbours(vectors: np.ndarray, n_corpus: int):  # type: ignore[no-untyped-def]
    """A function giving a row's nearest corpus texts (itself excluded) with their cosines."""
    v = vectors.astype(np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-30)

    def nearest(row: int, names: Sequence[str]) -> tuple[tuple[str, float], ...]:
        if not np.isfinite(v[row]).all():
            return (("NaN/Inf", float("nan")),)
        sims = v[:n_corpus] @ v[row]
        if row < n_corpus:
            sims[row] = -np.inf
        sims[~np.isfinite(sims)] = -np.inf
        best = np.argsort(-sims, kind="stable")[:SHOWN]
        return tuple((names[int(j)][:80], round(float(sims[j]), 4)) for j in best)

    return nearest


# -- what the vectors say about a failure ------------------------------------------------------
def structural_causes(ref: Embedded, out: Embedded, mode: str, mean_cosine: float | None
                      ) -> list[str]:
    """Faults shown by the vectors themselves: another pooling in the backend's graph, or its
    dimensions permuted. Empty where neither explains the drift."""
    causes: list[str] = []
    a, b = ref.vectors.astype(np.float64), out.vectors.astype(np.float64)
    if a.shape != b.shape or not np.isfinite(b).all() or mean_cosine is None:
        return causes
    for other, vectors in ref.alternatives.items():
        match = float(np.nanmean(cosines(vectors, b)))
        # the other pooling explains the vectors ten times better than the configured one
        if match > 0.999 and 1.0 - match < (1.0 - mean_cosine) / 10:
            causes.append(f"the backend's vectors are the reference's token vectors under "
                          f"{other} pooling (mean cosine {match:.4f}, against {mean_cosine:.4f} "
                          f"under the configured {mode} pooling): its graph pools differently "
                          f"({out.output!r} output); export it with {mode} pooling, or set "
                          f"pooling = \"{other}\" if that is what the service uses")
    permutation = _permutation(a, b)
    if permutation is not None:
        moved = np.flatnonzero(permutation != np.arange(len(permutation)))
        fixed = float(np.nanmean(cosines(a[:, permutation], b)))
        example = ", ".join(f"{j} holds {permutation[j]}" for j in moved[:3])
        causes.append(f"the backend's output dimensions are permuted: {len(moved)} of "
                      f"{len(permutation)} hold another dimension of the reference's vector "
                      f"({example}); reordered that way, the reference's vectors match them "
                      f"with mean cosine {fixed:.4f}: "
                      "check the export's output (a transpose, gather or reshape of the vector)")
    return causes


def _permutation(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """``p`` with backend dimension j ~ reference dimension p[j], where that reorders the
    dimensions and explains the vectors; else None. A dimension that barely varies (a real
    encoder has a few) matches nothing and keeps its place."""
    if len(a) < 8:
        return None
    za = (a - a.mean(axis=0)) / np.maximum(a.std(axis=0), 1e-12)
    zb = (b - b.mean(axis=0)) / np.maximum(b.std(axis=0), 1e-12)
    corr = zb.T @ za / len(a)  # (backend dims, reference dims)
    best = corr.argmax(axis=1)
    matched = corr[np.arange(len(best)), best] > 0.9
    if matched.mean() < 0.9 or np.median(np.diag(corr)) > 0.5:
        return None
    chosen = np.where(matched, best, np.arange(len(best)))
    # two reference dimensions that move together (a real encoder has such pairs) may both be
    # a backend dimension's best match: the reordered reference must explain the vectors
    if np.array_equal(chosen, np.arange(len(chosen))) or \
            float(np.nanmean(cosines(a[:, chosen], b))) < 0.99:
        return None
    return chosen


def padding_cause(padded: np.ndarray, alone: np.ndarray, reference: np.ndarray) -> str | None:
    """The backend's vectors of a few texts batched with padding (``padded``) and one at a
    time without (``alone``), against the reference's: a backend that is right alone and wrong
    padded does not mask padded positions."""
    if len(reference) == 0:
        return None
    with_pad = float(np.nanmean(cosines(reference, padded)))
    without = float(np.nanmean(cosines(reference, alone)))
    if without - with_pad > 0.01 and without > 0.99:
        return (f"the backend's vectors change with the padding of the batch: mean cosine "
                f"{without:.4f} to the reference for texts run one at a time, {with_pad:.4f} "
                "batched with padding; padded positions leak into attention (a quantised or "
                "ignored attention mask: quantise MatMul only, op_types = \"default\", or check "
                "the attention_mask input)")
    return None
