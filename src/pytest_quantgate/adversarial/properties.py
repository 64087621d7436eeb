"""What a generated input must keep, per task: the property the adversarial check judges.

A classifier or a causal LM (``Logits``): finite logits, max |logit diff| within
``max_abs_logit``, and the same top-1 label unless the reference's margin is a near-tie on the
model's scale (``tie_margin``) or within twice the backend's own drift. A sentence embedder
(``Neighbours``): a finite vector within ``min_cosine`` of the reference's, and the reference's
nearest corpus text still among the backend's top ``retrieval_k`` (issue 22: generated queries
whose neighbours change). Each property says which rows fail, why one failed, and what the
record reports beside the failure rate; check.py drives the corpus, the search and the rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import metrics as m
from ..gate import _topk, summarize
from ..records import Measure

Shown = tuple[tuple[str, float], ...]


@dataclass
class Logits:
    """The property of a model whose outputs are logits over classes (or tokens)."""

    limit: float  # max_abs_logit
    tie: float  # tie_margin in logits
    noise: float  # the backend's p99 drift on the eval set
    names: Sequence[str]
    k: int
    tie_margin: float = 0.0

    @property
    def rule(self) -> str:
        return (f"max_abs_logit {self.limit:.3g}, or a top-1 flip where the reference's logit "
                f"margin exceeds {max(self.tie, 2.0 * self.noise):.3g}: tie_margin "
                f"{self.tie:.3g} and twice the backend's drift {self.noise:.3g}")

    def failing(self, ref: np.ndarray, out: np.ndarray) -> np.ndarray:
        finite = np.isfinite(out).all(axis=1)
        return ~finite | (self._diff(ref, out) > self.limit) | self._flips(ref, out)

    def severity(self, ref: np.ndarray, out: np.ndarray) -> np.ndarray:
        return self._diff(ref, out)

    def why(self, r: np.ndarray, o: np.ndarray) -> tuple[str, float]:
        """What made an input fail, as the worst-input line shows it."""
        d = float(np.abs(r.astype(np.float64) - np.nan_to_num(o.astype(np.float64))).max())
        if not np.isfinite(o).all():
            return "NaN/Inf output", float("inf")
        if d > self.limit:
            return f"max|diff| > {self.limit:.3g}:", d
        if np.argmax(r) != np.argmax(o):
            return "top-1 flip; reference logit margin", float(m.logit_margin(r[None])[0])
        return "max|diff|", d

    def shown(self, row: np.ndarray, reference: bool) -> Shown:
        return _topk(row, self.names, self.k)

    def reported(self, ref: np.ndarray, out: np.ndarray) -> tuple[Measure, ...]:
        diff, flips, n = self._diff(ref, out), self._flips(ref, out), len(ref)
        finite = diff[np.isfinite(diff)]
        largest = float(finite.max()) if finite.size else float("inf")
        return (Measure("max_abs_logit", largest, None, "<=", True, n,
                        int((diff > self.limit).sum())),
                Measure("decisive_top1_flips", float(flips.sum()), None, "<=", True, n,
                        int(flips.sum())))

    def metrics(self, ref: np.ndarray, out: np.ndarray) -> dict[str, float]:
        return summarize(ref, out, None, self.k, len(self.names), self.tie)

    def slice(self) -> dict[str, Any]:
        return {"tie_margin": self.tie_margin, "tie_logits": round(self.tie, 6),
                "drift_q99": round(self.noise, 6)}

    def _diff(self, ref: np.ndarray, out: np.ndarray) -> np.ndarray:
        diff = np.abs(ref.astype(np.float64) - np.nan_to_num(out.astype(np.float64))).max(axis=1)
        return np.where(np.isfinite(out).all(axis=1), diff, np.inf)

    def _flips(self, ref: np.ndarray, out: np.ndarray) -> np.ndarray:
        flip = np.argmax(ref, axis=1) != np.argmax(np.nan_to_num(out, nan=-np.inf), axis=1)
        return flip & (m.logit_margin(ref.astype(np.float64)) > max(self.tie, 2.0 * self.noise))


@dataclass
class Neighbours:
    """The property of a sentence embedder: a generated query keeps its vector and its nearest
    corpus text. The corpus is the eval corpus, embedded by each side (a deployment that
    re-indexes with the backend); one lost nearest text out of the top ``k`` is what a user
    sees change, while the rest of a benign INT8 top 10 may reorder (docs/embeddings.md)."""

    floor: float  # min_cosine
    k: int  # retrieval_k
    ref_corpus: np.ndarray  # the reference's corpus vectors, normalised
    out_corpus: np.ndarray  # the backend's
    corpus_texts: Sequence[str]
    noise: float = 0.0  # the backend's own similarity drift on the corpus (similarity_drift)

    @property
    def rule(self) -> str:
        return (f"min_cosine {self.floor:.6g} to the reference's vector, or the reference's "
                f"nearest corpus text out of the backend's top {self.k} where it beats the "
                f"reference's {self.k}th by more than twice the backend's similarity drift "
                f"{self.noise:.3g}")

    def failing(self, ref: np.ndarray, out: np.ndarray) -> np.ndarray:
        cos = _cosines(ref, out)
        return ~np.isfinite(cos) | (cos < self.floor) | self._lost(ref, out)

    def severity(self, ref: np.ndarray, out: np.ndarray) -> np.ndarray:
        return 1.0 - np.nan_to_num(_cosines(ref, out), nan=-1.0)

    def why(self, r: np.ndarray, o: np.ndarray) -> tuple[str, float]:
        cos = float(_cosines(r[None], o[None])[0])
        if not np.isfinite(cos):
            return "NaN/Inf vector", float("nan")
        if cos < self.floor:
            return f"cosine < {self.floor:.6g}:", cos
        if self._lost(r[None], o[None])[0]:
            return f"nearest corpus text lost from the top {self.k}; cosine", cos
        return "cosine", cos

    def shown(self, row: np.ndarray, reference: bool) -> Shown:
        """The row's three nearest corpus texts on its own side (reference or backend)."""
        corpus = self.ref_corpus if reference else self.out_corpus
        sims = unit(row[None].astype(np.float64)) @ corpus.T
        best = np.argsort(-np.nan_to_num(sims[0], nan=-np.inf), kind="stable")[:3]
        return tuple((str(self.corpus_texts[i])[:60], round(float(sims[0, i]), 4)) for i in best)

    def reported(self, ref: np.ndarray, out: np.ndarray) -> tuple[Measure, ...]:
        cos, lost, n = _cosines(ref, out), self._lost(ref, out), len(ref)
        finite = cos[np.isfinite(cos)]
        return (Measure("min_cosine", float(finite.min()) if finite.size else float("nan"), None,
                        ">=", True, n, int((~np.isfinite(cos) | (cos < self.floor)).sum())),
                Measure("nearest_lost", float(lost.sum()), None, "<=", True, n,
                        int(lost.sum())))

    def metrics(self, ref: np.ndarray, out: np.ndarray) -> dict[str, float]:
        cos = _cosines(ref, out)
        finite = cos[np.isfinite(cos)]
        return {"n_inputs": float(len(ref)), "nonfinite_rows": float((~np.isfinite(cos)).sum()),
                "min_cosine": float(finite.min()) if finite.size else float("nan"),
                "min_cosine_mean": float(finite.mean()) if finite.size else float("nan"),
                "nearest_lost": float(self._lost(ref, out).sum())}

    def slice(self) -> dict[str, Any]:
        return {"retrieval_k": self.k, "min_cosine": self.floor,
                "similarity_drift_q99": round(self.noise, 6)}

    def _lost(self, ref: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The reference's nearest corpus text out of the backend's top k, where it was a clear
        best match: a generated query far from every text (code, markup, another script) has a
        flat top 10 whose order any rounding changes, as a near-tie flips a label."""
        r = np.nan_to_num(unit(ref.astype(np.float64)) @ self.ref_corpus.T, nan=-np.inf)
        o = unit(np.nan_to_num(out.astype(np.float64))) @ self.out_corpus.T
        nearest = np.argmax(r, axis=1)
        top = np.argsort(-np.nan_to_num(o, nan=-np.inf), axis=1, kind="stable")[:, :self.k]
        ranked = -np.sort(-r, axis=1)
        kth = ranked[:, min(self.k, ranked.shape[1]) - 1]
        clear = ranked[:, 0] - kth > 2.0 * self.noise
        return ~(top == nearest[:, None]).any(axis=1) & clear



def similarity_drift(ref_corpus: np.ndarray, out_corpus: np.ndarray, cap: int = 500) -> float:
    """The backend's own drift in similarity on the corpus: the 99th percentile over texts of
    the largest change of a text's cosine to another text (each side its own vectors; up to
    ``cap`` texts). A backend that moves similarities by d can reorder texts within 2d."""
    a, b = ref_corpus[:cap], out_corpus[:cap]
    if len(a) < 2:
        return 0.0
    change = np.abs(a @ a.T - np.nan_to_num(b @ b.T)).max(axis=1)
    return float(np.percentile(change, 99))


def unit(v: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays zero)."""
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-30)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    cos = (unit(np.nan_to_num(a)) * unit(np.nan_to_num(b))).sum(axis=1)
    return np.where(ok, np.clip(cos, -1.0, 1.0), np.nan)


Property = Logits | Neighbours
