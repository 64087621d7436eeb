"""Causal language models: perplexity over a sliding window, and next-token agreement.

The corpus is a stream of documents (corpus.py) cut into windows (lm_windows.py): every token
is predicted exactly once, in the window that gives it the most left context (Hugging Face's
sliding-window recipe, per document). Windows of consecutive documents share a batch,
right-padded with attention mask 0, which a causal model never looks at from a real position.

Nothing grows with the corpus: documents are tokenised a chunk at a time, a batch of logits is
reduced to per-position numbers (negative log-likelihood, top-k token ids) as soon as it
arrives, and the reference's numbers go to files on disk (lm_reference.py) that each
backend's pass reads back batch by batch. Only the sums (``Tally``) and a
bounded heap of the worst documents stay in memory.

A document's *final position* is its last token: the logits there are the model's
distribution of the next token after the text, what generation would use. Logit differences
are measured there (over the whole vocabulary); top-1 agreement and top-k overlap at every
scored position.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..backends.base import Runner
from ..errors import BackendError, DataError, problem
from ..metrics import perplexity
from .lm_reference import BatchScores, ReferenceReader, ReferenceWriter
from .lm_windows import Source, Window, iter_windows, make_lm_feed, window_batches

TASK = "causal-lm"
INPUT_NAMES = ("input_ids", "attention_mask")


# -- per-batch reduction ----------------------------------------------------------------------
def topk_ids(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values per row, largest first (NaN counts as -inf)."""
    x = np.where(np.isnan(x), -np.inf, x)
    k = min(k, x.shape[1])
    part = np.argpartition(-x, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(x, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int32)


def score_batch(logits: np.ndarray, group: Sequence[Window], k: int) -> BatchScores:
    """Reduce (batch, length, vocab) logits of ``group``; NaN/Inf propagate into the NLL."""
    nll, top, final, row_doc, final_doc = [], [], [], [], []
    for i, w in enumerate(group):
        n = len(w.ids)
        if w.scored:
            rows = logits[i, w.first:n - 1].astype(np.float64)
            targets = w.ids[w.first + 1:n]
            with np.errstate(invalid="ignore", over="ignore"):
                peak = rows.max(axis=1, keepdims=True)
                lse = peak[:, 0] + np.log(np.exp(rows - peak).sum(axis=1))
                nll.append(lse - rows[np.arange(len(targets)), targets])
            top.append(topk_ids(rows, k))
            row_doc.append(np.full(len(targets), w.doc, dtype=np.int64))
        if w.final:
            final.append(np.asarray(logits[i, n - 1], dtype=np.float32))
            final_doc.append(w.doc)
    vocab = logits.shape[2]
    return BatchScores(
        np.concatenate(nll) if nll else np.empty(0),
        np.concatenate(top) if top else np.empty((0, min(k, vocab)), dtype=np.int32),
        np.stack(final) if final else np.empty((0, vocab), dtype=np.float32),
        np.concatenate(row_doc) if row_doc else np.empty(0, dtype=np.int64),
        np.asarray(final_doc, dtype=np.int64))


# -- sums over the stream ---------------------------------------------------------------------
@dataclass(frozen=True)
class WorstDoc:
    """A document whose perplexity rose most, with both sides' next-token top-k at its end."""

    doc: int
    text: str
    ratio: float  # backend perplexity / reference perplexity on this document
    tokens: int
    reference: tuple[tuple[int, float], ...]
    backend: tuple[tuple[int, float], ...]


@dataclass
class Tally:
    """What one pass measured. The comparison fields stay 0 for the reference's own pass."""

    docs: int = 0
    tokens: int = 0  # scored positions
    finals: int = 0
    vocab: int = 0
    nll_sum: float = 0.0  # over finite positions
    nonfinite: int = 0  # scored positions whose NLL is NaN/Inf
    ref_nll_sum: float = 0.0  # the reference's, over the same finite positions
    agree: int = 0  # positions whose top-1 token is the reference's
    overlap: float = 0.0  # sum over positions of |top-k ∩ reference top-k| / k
    final_max_abs: float = 0.0
    final_sum_abs: float = 0.0
    final_elems: int = 0
    final_kl_sum: float = 0.0
    final_nonfinite: int = 0
    worst: list[WorstDoc] = field(default_factory=list)
    # Per document: (scored positions, finite ones, nll sum and reference nll sum over the
    # finite ones, top-1 agreements, top-k overlap sum). Tokens of one document are not
    # independent draws, so the verdicts' intervals resample documents (lm_gate.py); only
    # comparing passes fill it.
    per_doc: list[tuple[int, int, float, float, int, float]] = field(default_factory=list)

    @property
    def ppl(self) -> float:
        return perplexity(self.nll_sum, self.tokens - self.nonfinite)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("worst", "per_doc")}


class _Doc:
    """Sums of the document in flight (documents arrive contiguously); the ``f*`` sums and
    the agreement are over its finite positions."""

    __slots__ = ("doc", "out", "ref", "n", "fn", "fout", "fref", "agree", "overlap")

    def __init__(self, doc: int) -> None:
        self.doc, self.out, self.ref, self.n = doc, 0.0, 0.0, 0
        self.fn, self.fout, self.fref, self.agree, self.overlap = 0, 0.0, 0.0, 0, 0.0


def run_pass(runner: Runner, source: Source, *, window: int, stride: int, batch_size: int,
             k: int, reference: ReferenceReader | None = None,
             writer: ReferenceWriter | None = None, worst_n: int = 5,
             static_length: int | None = None, static_batch: int | None = None,
             on_batch: Callable[[int], None] | None = None) -> Tally:
    """Run ``runner`` over the corpus once, streaming. With ``reference``, compare each batch
    with the reference's numbers; with ``writer``, record this pass as the reference.
    ``on_batch(n)`` follows each batch of ``n`` windows (progress.py)."""
    tally = Tally()
    texts: dict[int, str] = {}
    heap: list[tuple[float, int, WorstDoc]] = []
    current: _Doc | None = None
    windows = iter_windows(source, window, stride, texts)
    for group, feed in window_batches(windows, batch_size=batch_size, pad_id=source.pad_id,
                                      static_length=static_length, static_batch=static_batch):
        outputs = runner.infer(feed)
        logits = outputs["logits"] if "logits" in outputs else next(iter(outputs.values()))
        logits = logits[:len(group)]
        if logits.ndim != 3 or logits.shape[1] != feed["input_ids"].shape[1]:
            raise BackendError(problem(f"backend {runner.name!r} logits shape", logits.shape,
                                       "(batch, sequence, vocab) logits of a causal LM",
                                       "export the LM head's logits for every position"))
        if tally.vocab and logits.shape[2] != tally.vocab or reference is not None and \
                logits.shape[2] != reference.meta["tally"]["vocab"]:
            raise BackendError(problem(f"backend {runner.name!r} vocabulary", logits.shape[2],
                                       "the reference's vocabulary size",
                                       "compare models that share a tokenizer"))
        tally.vocab = logits.shape[2]
        if on_batch is not None:
            on_batch(len(group))
        scores = score_batch(logits, group, k)
        if writer is not None:
            writer.add(scores)
        finite = np.isfinite(scores.nll)
        tally.tokens += len(scores.nll)
        tally.nonfinite += int((~finite).sum())
        tally.nll_sum += float(scores.nll[finite].sum())
        ref_nll = ref_final = agree = overlap = None
        if reference is not None:
            ref_nll, ref_top = reference.rows(len(scores.nll))
            ref_final = reference.finals(len(scores.final_doc))
            agree, overlap = _compare(tally, scores, finite, ref_nll, ref_top, ref_final, k)
        # per-document sums, for the worst documents
        for j, w in enumerate(group):
            if current is None or current.doc != w.doc:
                current = _Doc(w.doc)
            rows = scores.row_doc == w.doc
            # NaN propagates (was np.nansum, which dropped the backend's NaN rows but not the
            # reference's, so a document with NaN ranked as improved): its ratio becomes inf
            current.out += float(scores.nll[rows].sum())
            current.ref += float(ref_nll[rows].sum()) if ref_nll is not None else 0.0
            current.n += int(rows.sum())
            if ref_nll is not None and agree is not None and overlap is not None:
                ok = rows & finite
                current.fn += int(ok.sum())
                current.fout += float(scores.nll[ok].sum())
                current.fref += float(ref_nll[ok].sum())
                current.agree += int(agree[rows].sum())
                current.overlap += float(overlap[rows].sum())
            if w.final:
                tally.docs += 1
                tally.finals += 1
                if reference is not None:
                    tally.per_doc.append((current.n, current.fn, current.fout, current.fref,
                                          current.agree, current.overlap))
                text = texts.pop(w.doc, "")
                if reference is not None and ref_final is not None and worst_n:
                    f = int(np.flatnonzero(scores.final_doc == w.doc)[0])
                    item = _worst_doc(current, text, logits[j, len(w.ids) - 1],
                                      ref_final[f], k)
                    entry = (item.ratio, -item.doc, item)
                    if len(heap) < worst_n:
                        heapq.heappush(heap, entry)
                    elif entry[:2] > heap[0][:2]:
                        heapq.heapreplace(heap, entry)
                current = None
            # rows of the same doc in later windows of this batch were summed already
            scores.row_doc = np.where(rows, -1, scores.row_doc)
    tally.worst = [e[2] for e in sorted(heap, key=lambda e: e[:2], reverse=True)]
    if tally.docs == 0:
        raise DataError(problem("corpus", "no tokens", "at least one document with text",
                                "check the eval file and the tokenizer"))
    return tally


def _compare(tally: Tally, scores: BatchScores, finite: np.ndarray, ref_nll: np.ndarray,
             ref_top: np.ndarray, ref_final: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Add the batch's comparison to the tally; per scored row, its top-1 agreement and its
    top-k overlap (for the per-document sums)."""
    tally.ref_nll_sum += float(ref_nll[finite].sum())
    # the backend's own k (the reference records the largest any backend asks for): top-k of
    # each side at the same k, overlap as a share of that k
    kk = min(k, scores.top.shape[1], ref_top.shape[1])
    top = scores.top[:, :kk]
    ref_top = ref_top[:, :kk]
    agree = np.zeros(len(top), dtype=bool)
    overlap = np.zeros(len(top), dtype=np.float64)
    if len(top):
        agree = top[:, 0] == ref_top[:, 0]
        tally.agree += int(agree.sum())
        overlap = (top[:, :, None] == ref_top[:, None, :]).any(axis=2).sum(axis=1) / kk
        tally.overlap += float(overlap.sum())
    if len(ref_final):
        out = scores.final.astype(np.float64)
        ref = np.asarray(ref_final, dtype=np.float64)
        ok = np.isfinite(out).all(axis=1)
        tally.final_nonfinite += int((~ok).sum())
        if ok.any():
            diff = np.abs(ref[ok] - out[ok])
            tally.final_max_abs = max(tally.final_max_abs, float(diff.max()))
            tally.final_sum_abs += float(diff.sum())
            tally.final_elems += int(diff.size)
            tally.final_kl_sum += float(_kl_rows(ref[ok], out[ok]).sum())
    return agree, overlap


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=1, keepdims=True)
    return np.asarray(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))


def _kl_rows(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    lp, lq = _log_softmax(ref), _log_softmax(out)
    return np.asarray((np.exp(lp) * (lp - lq)).sum(axis=1))


def _worst_doc(doc: _Doc, text: str, out_final: np.ndarray, ref_final: np.ndarray, k: int
               ) -> WorstDoc:
    try:  # math.exp raises OverflowError past ~709 (np.errstate does not cover math)
        ratio = math.exp((doc.out - doc.ref) / doc.n) if doc.n else 1.0
    except OverflowError:
        ratio = math.inf
    if not math.isfinite(ratio):
        ratio = math.inf

    def top(row: np.ndarray) -> tuple[tuple[int, float], ...]:
        row = np.asarray(row, dtype=np.float64)[None, :]
        if not np.isfinite(row).all():
            return ((-1, math.nan),)
        probs = np.exp(_log_softmax(row))[0]
        return tuple((int(i), round(float(probs[i]), 4)) for i in topk_ids(row, k)[0])

    return WorstDoc(doc.doc, text[:300], ratio, doc.n, top(ref_final), top(out_final))


def lm_latency_feed(source: Source, batch_size: int, *, window: int, stride: int,
                    static_length: int | None = None, static_batch: int | None = None
                    ) -> dict[str, np.ndarray]:
    """One timed batch: the corpus's first full-length windows (the shape the gate mostly
    runs), repeated when the corpus has fewer than ``batch_size`` windows."""
    from itertools import islice

    seen = list(islice(iter_windows(source, window, stride), 4 * batch_size))
    longest = max(len(w.ids) for w in seen)
    chosen = sorted(seen, key=lambda w: -len(w.ids))[:batch_size]
    chosen = [w for w in chosen if len(w.ids) == longest] or chosen
    while len(chosen) < batch_size:
        chosen.append(chosen[len(chosen) % len(chosen)])
    return make_lm_feed(chosen, source.pad_id, static_length, static_batch)


def final_logits(runner: Runner, source: Source, *, window: int, stride: int,
                 batch_size: int, static_length: int | None = None,
                 static_batch: int | None = None) -> np.ndarray:
    """The next-token logits after each document, shape (documents, vocab), in order: what a
    text "predicts" (the adversarial check and ``quantgate.check`` compare these)."""
    rows: list[np.ndarray] = []
    for group, feed in window_batches(iter_windows(source, window, stride),
                                      batch_size=batch_size, pad_id=source.pad_id,
                                      static_length=static_length, static_batch=static_batch):
        outputs = runner.infer(feed)
        logits = outputs["logits"] if "logits" in outputs else next(iter(outputs.values()))
        if logits.ndim != 3:
            raise BackendError(problem(f"backend {runner.name!r} logits shape", logits.shape,
                                       "(batch, sequence, vocab) logits of a causal LM",
                                       "export the LM head's logits for every position"))
        rows += [logits[i, len(w.ids) - 1] for i, w in enumerate(group) if w.final]
    if not rows:
        raise DataError(problem("texts", "no tokens", "at least one non-empty text",
                                "pass texts the tokenizer turns into tokens"))
    return np.stack(rows)
