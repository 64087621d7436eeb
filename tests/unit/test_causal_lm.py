"""Unit tests of the causal-LM task (tasks/causal_lm.py, tasks/corpus.py, tasks/lm_gate.py).

The models are numpy: a bigram LM (logits at position p are a table row of token p, so padding
and window context cannot change a prediction) and a prefix LM (logits at p depend on every
token 0..p, so window context does). No torch, no transformers.
"""

from __future__ import annotations

import json
import math
import os
import re
import tracemalloc
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_quantgate.backends.base import BackendInfo, Runner, TensorSpec
from pytest_quantgate.errors import BackendError, DataError
from pytest_quantgate.records import CheckResult
from pytest_quantgate.tasks.causal_lm import Tally, WorstDoc, final_logits, run_pass, score_batch
from pytest_quantgate.tasks.corpus import Document, iter_documents
from pytest_quantgate.tasks.lm_gate import LM_CHECKS, NAN_CAUSE, evaluate_lm, summarize_lm
from pytest_quantgate.tasks.lm_reference import ReferenceReader, ReferenceWriter
from pytest_quantgate.tasks.lm_windows import (
    ENCODE_CHUNK,
    Source,
    Window,
    iter_windows,
    make_lm_feed,
    split_windows,
    window_batches,
)
from pytest_quantgate.thresholds import resolve

ALPHABET = "abcdefghijkl"  # one character, one token
VOCAB = len(ALPHABET)
PAD = 0
TABLE = np.random.default_rng(7).normal(0.0, 2.0, size=(VOCAB, VOCAB)).astype(np.float32)
NOISE = np.random.default_rng(8).normal(0.0, 1.0, size=(VOCAB, VOCAB)).astype(np.float32)
EMBED = np.random.default_rng(9).normal(0.0, 1.0, size=(VOCAB, 4))
HEAD = np.random.default_rng(10).normal(0.0, 1.5, size=(4, VOCAB))
NEXT = np.exp(TABLE.astype(np.float64)) / np.exp(TABLE.astype(np.float64)).sum(axis=1,
                                                                                   keepdims=True)
SPECS = [TensorSpec("input_ids", "int64", (None, None)),
         TensorSpec("attention_mask", "int64", (None, None))]


# -- numpy causal LMs ----------------------------------------------------------------------------

def bigram_logits(ids: np.ndarray, noise: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """(batch, seq) ids -> (batch, seq, VOCAB) float32: row ids[p] of the table."""
    return np.asarray(TABLE[ids] * scale + noise * NOISE[ids], dtype=np.float32)


def prefix_logits(ids: np.ndarray) -> np.ndarray:
    """Logits at p from the mean embedding of tokens 0..p: every earlier token matters."""
    h = np.cumsum(EMBED[ids], axis=-2) / np.arange(1, ids.shape[-1] + 1)[:, None]
    return np.asarray(h @ HEAD, dtype=np.float32)


class Bigram(Runner):
    """The bigram LM as a backend; knobs: deterministic ``noise``, ``scale`` of the logits,
    ``nan_tokens`` (positions holding these tokens output NaN), a wider ``vocab``, and
    ``fail_on_call`` (raise on that inference call, like an interrupted run)."""

    kind = "numpy-bigram"

    def __init__(self, name: str = "ref", *, noise: float = 0.0, scale: float = 1.0,
                 nan_tokens: Sequence[int] = (), vocab: int = VOCAB,
                 fail_on_call: int | None = None) -> None:
        super().__init__(name, "fp32")
        self.noise, self.scale, self.nan_tokens = noise, scale, tuple(nan_tokens)
        self.vocab, self.fail_on_call = vocab, fail_on_call
        self.batches: list[tuple[int, ...]] = []

    def _activate_impl(self) -> None:
        pass

    def _input_specs_impl(self) -> list[TensorSpec]:
        return SPECS

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> Mapping[str, Any]:
        ids = feed["input_ids"]
        assert feed["attention_mask"].shape == ids.shape
        self.batches.append(ids.shape)
        if self.fail_on_call is not None and len(self.batches) == self.fail_on_call:
            raise RuntimeError("interrupted")
        logits = bigram_logits(ids, self.noise, self.scale)
        if self.vocab > VOCAB:
            extra = np.full(ids.shape + (self.vocab - VOCAB,), -5.0, dtype=np.float32)
            logits = np.concatenate([logits, extra], axis=-1)
        for token in self.nan_tokens:
            logits[ids == token] = np.nan
        return {"logits": logits}

    def _describe_impl(self) -> BackendInfo:
        return BackendInfo(self.name, self.kind, self.precision, "numpy")


class Prefix(Bigram):
    """Logits at position p depend on all tokens <= p (right padding still never matters)."""

    kind = "numpy-prefix"

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> Mapping[str, Any]:
        return {"logits": prefix_logits(feed["input_ids"])}


class Flat(Bigram):
    def _infer_impl(self, feed: dict[str, np.ndarray]) -> Mapping[str, Any]:
        return {"logits": np.zeros((feed["input_ids"].shape[0], VOCAB), dtype=np.float32)}


# -- corpora -------------------------------------------------------------------------------------

def encode(texts: list[str]) -> list[np.ndarray]:
    return [np.array([ALPHABET.index(c) for c in t], dtype=np.int64) for t in texts]


def text_of(ids: Sequence[int] | np.ndarray) -> str:
    return "".join(ALPHABET[int(i)] for i in ids)


def source(docs: Sequence[str]) -> Source:
    return Source(lambda: iter(docs), encode, PAD)


def sampled_docs(n: int, seed: int, lo: int = 2, hi: int = 40) -> list[str]:
    """Documents drawn from the bigram table itself: it is the true model of this text, so any
    change to its logits raises the expected perplexity."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n):
        ids = [int(rng.integers(VOCAB))]
        for _ in range(int(rng.integers(lo, hi + 1)) - 1):
            ids.append(int(rng.choice(VOCAB, p=NEXT[ids[-1]])))
        docs.append(text_of(ids))
    return docs


def nll_of(logits: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """-log softmax(logits[p])[ids[p + 1]] for p = 0 .. n-2, float64, the textbook way."""
    x = np.asarray(logits[:len(ids) - 1], dtype=np.float64)
    probs = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    return np.asarray(-np.log(probs[np.arange(len(ids) - 1), ids[1:]]))


DOCS = sampled_docs(12, seed=1)
PASS: dict[str, Any] = {"window": 8, "stride": 4, "batch_size": 3, "k": 3}


def record(folder: Path, docs: Sequence[str], runner: Runner | None = None, **kw: Any
           ) -> Tally:
    """The reference's pass, published at ``folder``."""
    kw = {**PASS, **kw}
    writer = ReferenceWriter(folder)
    tally = run_pass((runner or Bigram()).activate(), source(docs), writer=writer, **kw)
    writer.finish({"k": kw["k"], "tally": tally.to_dict()})
    return tally


def compare(folder: Path, docs: Sequence[str], runner: Runner, **kw: Any) -> Tally:
    return run_pass(runner.activate(), source(docs), reference=ReferenceReader(folder),
                    **{**PASS, **kw})


def assert_same_tally(a: Tally, b: Tally) -> None:
    da, db = a.to_dict(), b.to_dict()
    assert da.keys() == db.keys()
    for key, value in da.items():
        if isinstance(value, float):
            assert db[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
        else:
            assert db[key] == value, key


# -- split_windows -------------------------------------------------------------------------------

def check_windows(n: int, window: int, stride: int) -> None:
    ids = np.arange(100, 100 + n)  # the token at position i is 100 + i
    windows = list(split_windows(ids, 7, window, stride))
    if n == 0:
        assert windows == []
        return
    predicted: list[int] = []
    for i, w in enumerate(windows):
        assert w.doc == 7 and 1 <= len(w.ids) <= window
        assert w.final == (i == len(windows) - 1)
        start = int(w.ids[0]) - 100
        assert np.array_equal(w.ids, ids[start:start + len(w.ids)])  # a contiguous slice
        targets = [int(t) - 100 for t in w.ids[w.first + 1:]]  # what positions first.. predict
        assert len(targets) == w.scored
        if i == 0:
            assert w.first == 0 and start == 0
        else:
            assert w.scored > 0
            assert w.first + 1 >= window - stride  # context before the first scored target
        predicted += targets
    assert predicted == list(range(1, n))  # every token but the first, once, in order
    assert int(windows[-1].ids[-1]) == 100 + n - 1


@pytest.mark.parametrize(("n", "window", "stride"), [
    (10, 4, 4), (10, 4, 1), (10, 4, 2), (3, 8, 2), (8, 8, 8), (9, 8, 8), (9, 8, 1), (1, 4, 2),
    (1, 2, 2), (0, 4, 2), (2, 2, 1), (2, 2, 2), (57, 16, 5),
])
def test_split_windows_grid(n: int, window: int, stride: int) -> None:
    check_windows(n, window, stride)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(0, 70), window=st.integers(2, 24), data=st.data())
def test_split_windows_score_every_token_once(n: int, window: int, data: st.DataObject
                                             ) -> None:
    check_windows(n, window, data.draw(st.integers(1, window), label="stride"))


def test_split_windows_by_hand() -> None:
    windows = list(split_windows(np.arange(10), 3, window=4, stride=2))
    assert [(w.ids.tolist(), w.first, w.final) for w in windows] == [
        ([0, 1, 2, 3], 0, False), ([2, 3, 4, 5], 1, False), ([4, 5, 6, 7], 1, False),
        ([6, 7, 8, 9], 1, True)]
    assert [w.scored for w in windows] == [3, 2, 2, 2]
    one = list(split_windows(np.array([5]), 0, 4, 2))
    assert len(one) == 1 and one[0].final and one[0].scored == 0


def test_iter_windows_numbers_documents_across_encode_chunks() -> None:
    docs = [ALPHABET[i % VOCAB] * (1 + i % 5) for i in range(2 * ENCODE_CHUNK + 5)]
    docs[3] = ""  # no tokens: no window, but it keeps its number
    calls: list[int] = []

    def counting(texts: list[str]) -> list[np.ndarray]:
        calls.append(len(texts))
        return encode(texts)

    texts: dict[int, str] = {}
    windows = list(iter_windows(Source(lambda: iter(docs), counting, PAD), 4, 2, texts))
    assert calls == [ENCODE_CHUNK, ENCODE_CHUNK, 5]
    finals = [w.doc for w in windows if w.final]
    assert finals == [i for i in range(len(docs)) if i != 3]
    assert texts == {i: t for i, t in enumerate(docs) if t}


def test_batches_are_right_padded_and_static_shapes_are_honoured() -> None:
    windows = [Window(0, np.array([3, 4, 5]), 0, True), Window(1, np.array([6]), 0, True)]
    feed = make_lm_feed(windows, pad_id=9)
    assert feed["input_ids"].tolist() == [[3, 4, 5], [6, 9, 9]]
    assert feed["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert feed["input_ids"].dtype == feed["attention_mask"].dtype == np.int64
    static = make_lm_feed(windows, pad_id=9, static_length=5, static_batch=4)
    assert static["input_ids"].shape == (4, 5) and static["attention_mask"].sum() == 4
    with pytest.raises(DataError, match=re.escape(
            "window length: got 3, expected at most the backend's static sequence length 2; "
            "set window = 2 or less")):
        make_lm_feed(windows, pad_id=9, static_length=2)
    groups = [len(g) for g, _ in window_batches(windows * 3, batch_size=4, pad_id=0)]
    assert groups == [4, 2]


# -- score_batch ---------------------------------------------------------------------------------

def some_windows() -> list[Window]:
    a = list(split_windows(np.array([1, 5, 2, 7, 3, 3, 0, 9, 4]), 0, window=5, stride=2))
    b = list(split_windows(np.array([6, 2]), 1, window=5, stride=2))
    c = list(split_windows(np.array([8]), 2, window=5, stride=2))
    return a + b + c


def test_score_batch_nll_top_and_final_rows() -> None:
    group = some_windows()
    length = max(len(w.ids) for w in group)
    logits = np.random.default_rng(3).normal(0, 3, size=(len(group), length, VOCAB))
    logits = logits.astype(np.float32)
    scores = score_batch(logits, group, k=4)
    nll, top, docs = [], [], []
    for i, w in enumerate(group):
        nll += nll_of(logits[i, :len(w.ids)], w.ids)[w.first:].tolist()
        for p in range(w.first, len(w.ids) - 1):
            top.append(np.argsort(-logits[i, p].astype(np.float64), kind="stable")[:4])
            docs.append(w.doc)
    assert scores.nll.dtype == np.float64 and scores.top.dtype == np.int32
    np.testing.assert_allclose(scores.nll, nll, rtol=1e-12)
    assert scores.top.tolist() == np.array(top).tolist()  # largest first
    assert scores.row_doc.tolist() == docs
    finals = [(i, w) for i, w in enumerate(group) if w.final]
    assert scores.final_doc.tolist() == [0, 1, 2]
    assert scores.final.dtype == np.float32 and scores.final.shape == (3, VOCAB)
    for row, (i, w) in zip(scores.final, finals, strict=True):
        assert np.array_equal(row, logits[i, len(w.ids) - 1])  # the last real position


def test_score_batch_nan_logits() -> None:
    group = [Window(0, np.array([1, 2, 3, 4]), 0, True)]
    logits = np.random.default_rng(4).normal(0, 1, size=(1, 4, VOCAB)).astype(np.float32)
    best = int(np.argmax(logits[0, 0]))
    logits[0, 0, best] = np.nan  # a NaN where the top-1 was
    logits[0, 1] = np.nan  # a whole row
    logits[0, 2, 0] = np.inf
    scores = score_batch(logits, group, k=VOCAB)
    assert math.isnan(scores.nll[0]) and math.isnan(scores.nll[1])
    assert not np.isfinite(scores.nll[2])
    expected = np.argsort(-np.where(np.arange(VOCAB) == best, -np.inf, logits[0, 0]),
                          kind="stable")
    assert scores.top[0].tolist() == expected.tolist()  # NaN counts as -inf: last
    assert scores.top[0, -1] == best
    assert scores.top[2, 0] == 0  # +inf is the largest


def test_score_batch_k_above_vocab_and_nothing_scored() -> None:
    group = [Window(0, np.array([4, 1, 2]), 0, True)]
    scores = score_batch(bigram_logits(group[0].ids[None]), group, k=VOCAB + 5)
    assert scores.top.shape == (2, VOCAB)
    single = [Window(0, np.array([4]), 0, True)]
    empty = score_batch(bigram_logits(single[0].ids[None]), single, k=3)
    assert empty.nll.shape == (0,) and empty.top.shape == (0, 3) and empty.row_doc.shape == (0,)
    assert np.array_equal(empty.final, TABLE[[4]])


# -- ReferenceWriter / ReferenceReader -----------------------------------------------------------

def two_batches() -> list[Any]:
    windows = [w for i, d in enumerate(DOCS[:4]) for w in split_windows(encode([d])[0], i, 8, 4)]
    out = []
    for group, feed in window_batches(windows, batch_size=5, pad_id=PAD):
        out.append(score_batch(bigram_logits(feed["input_ids"]), group, k=3))
    return out[:2]


def test_reference_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "reference"
    first, second = two_batches()
    writer = ReferenceWriter(folder)
    writer.add(first)
    writer.add(second)
    assert not folder.exists()  # nothing at the target before finish
    with pytest.raises(FileNotFoundError):
        ReferenceReader(folder)
    tokens = len(first.nll) + len(second.nll)
    finals = len(first.final_doc) + len(second.final_doc)
    writer.finish({"k": 3, "tally": {"tokens": tokens, "finals": finals, "vocab": VOCAB}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reference"]
    reader = ReferenceReader(folder)
    assert reader.k == 3 and reader.meta["tally"]["tokens"] == tokens
    for scores in (first, second):
        nll, top = reader.rows(len(scores.nll))
        assert np.array_equal(nll, scores.nll) and np.array_equal(top, scores.top)
        assert np.array_equal(reader.finals(len(scores.final_doc)), scores.final)


def test_finish_replaces_an_older_reference(tmp_path: Path) -> None:
    folder = tmp_path / "reference"
    folder.mkdir()
    (folder / "stale.txt").write_text("old")
    scores = two_batches()[0]
    writer = ReferenceWriter(folder)
    writer.add(scores)
    writer.finish({"k": 3, "tally": {"tokens": len(scores.nll), "finals": len(scores.final_doc),
                                     "vocab": VOCAB}})
    assert sorted(p.name for p in folder.iterdir()) == ["final.bin", "meta.json", "nll.bin",
                                                        "top.bin"]


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    writer = ReferenceWriter(tmp_path / "reference")
    writer.add(two_batches()[0])
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_interrupted_pass_leaves_no_reference_a_reader_accepts(tmp_path: Path) -> None:
    folder = tmp_path / "reference"
    writer = ReferenceWriter(folder)
    with pytest.raises(RuntimeError, match="interrupted"):
        run_pass(Bigram(fail_on_call=2).activate(), source(DOCS), writer=writer, **PASS)
    # no abort, no finish: a killed process; only the hidden temporary folder is left
    assert [p.name for p in tmp_path.iterdir()] == [f".reference.tmp-{os.getpid()}"]
    with pytest.raises(FileNotFoundError):
        ReferenceReader(folder)
    record(folder, DOCS)  # the next run starts afresh
    assert ReferenceReader(folder).meta["tally"]["docs"] == len(DOCS)


@pytest.mark.parametrize("name", ["nll", "top", "final"])
def test_truncated_file_is_refused(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "reference"
    record(folder, DOCS)
    path = folder / f"{name}.bin"
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ValueError, match=re.escape(f"{path}: {size - 4} bytes, expected {size}")):
        ReferenceReader(folder)


def test_k_above_vocabulary_is_readable(tmp_path: Path) -> None:
    # score_batch keeps min(k, vocab) ids per position; the reader once expected k of them
    folder = tmp_path / "reference"
    record(folder, DOCS, k=VOCAB + 8)
    out = compare(folder, DOCS, Bigram("cand"), k=VOCAB + 8)
    assert out.agree == out.tokens and out.overlap == pytest.approx(out.tokens)


# -- run_pass ------------------------------------------------------------------------------------

def test_reference_perplexity_is_exp_mean_nll() -> None:
    longest = max(len(d) for d in DOCS)
    tally = run_pass(Bigram().activate(), source(DOCS), window=longest, stride=longest,
                     batch_size=4, k=3)
    nll = np.concatenate([nll_of(bigram_logits(ids[None])[0], ids) for ids in encode(DOCS)])
    assert tally.docs == tally.finals == len(DOCS) and tally.vocab == VOCAB
    assert tally.tokens == len(nll) == sum(len(d) - 1 for d in DOCS)
    assert tally.nll_sum == pytest.approx(nll.sum(), rel=1e-12)
    assert tally.ppl == pytest.approx(math.exp(nll.mean()), rel=1e-12)
    assert tally.nonfinite == 0 and tally.worst == []  # no comparison without a reference


@pytest.mark.parametrize("stride", [1, 2, 5])
def test_windows_shorter_than_documents_score_every_token_once(stride: int) -> None:
    # stride == window once dropped the first token of every window after the first
    tally = run_pass(Bigram().activate(), source(DOCS), window=5, stride=stride, batch_size=4,
                     k=3)
    whole = run_pass(Bigram().activate(), source(DOCS), window=64, stride=64, batch_size=4, k=3)
    assert math.isfinite(tally.ppl)
    assert tally.tokens == sum(len(d) - 1 for d in DOCS)
    assert tally.ppl == pytest.approx(whole.ppl, rel=1e-12)  # a bigram LM needs no context


def test_prefix_lm_with_one_window_per_document_is_exact() -> None:
    docs = sampled_docs(8, seed=2, lo=1, hi=30)
    tally = run_pass(Prefix().activate(), source(docs), window=30, stride=10, batch_size=3, k=3)
    nll = sum(nll_of(prefix_logits(ids[None])[0], ids).sum() for ids in encode(docs))
    assert tally.nll_sum == pytest.approx(nll, rel=1e-9)


def test_prefix_lm_sliding_windows_give_each_token_the_most_context() -> None:
    docs = sampled_docs(6, seed=3, lo=10, hi=30)
    window, stride = 8, 3
    tally = run_pass(Prefix().activate(), source(docs), window=window, stride=stride,
                     batch_size=4, k=3)
    expected = 0.0
    for ids in encode(docs):  # brute force: token t is predicted from the earliest window
        starts = [0]  # that still holds it, i.e. with the most left context
        while starts[-1] + window < len(ids):
            starts.append(starts[-1] + stride)
        for t in range(1, len(ids)):
            b = min(s for s in starts if s + window > t)
            context = ids[b:t + 1]
            expected += nll_of(prefix_logits(context[None])[0], context)[-1]
    assert tally.tokens == sum(len(d) - 1 for d in docs)
    assert tally.nll_sum == pytest.approx(expected, rel=1e-9)
    exact = sum(nll_of(prefix_logits(ids[None])[0], ids).sum() for ids in encode(docs))
    assert tally.nll_sum != pytest.approx(exact, rel=1e-6)  # context did matter


def test_identical_backend_agrees_everywhere(tmp_path: Path) -> None:
    ref = record(tmp_path / "reference", DOCS)
    out = compare(tmp_path / "reference", DOCS, Bigram("cand"))
    values = summarize_lm(ref, out)
    assert values["top1_agreement"] == 1.0 and values["topk_overlap"] == 1.0
    assert values["ppl_delta"] == 0.0 and values["ppl"] == values["reference_ppl"]
    assert values["max_abs_logit"] == values["mean_abs_logit"] == 0.0
    assert values["kl_div"] == pytest.approx(0.0, abs=1e-15)
    assert out.final_elems == len(DOCS) * VOCAB and out.final_nonfinite == 0
    assert len(out.worst) == 5 and all(w.ratio == 1.0 for w in out.worst)


def test_noisy_backend_raises_perplexity_and_ranks_worst_documents(tmp_path: Path) -> None:
    ref = record(tmp_path / "reference", DOCS)
    out = compare(tmp_path / "reference", DOCS, Bigram("cand", noise=1.0), worst_n=4)
    values = summarize_lm(ref, out)
    assert values["ppl_delta"] > 0 and values["ppl"] > values["reference_ppl"]
    assert values["top1_agreement"] < 1.0 and values["max_abs_logit"] > 0
    assert out.ref_nll_sum == pytest.approx(ref.nll_sum, rel=1e-12)
    ratios = []
    for i, ids in enumerate(encode(DOCS)):
        gap = (nll_of(bigram_logits(ids[None], 1.0)[0], ids).sum()
               - nll_of(bigram_logits(ids[None])[0], ids).sum())
        ratios.append((math.exp(gap / (len(ids) - 1)), -i))
    expected = sorted(ratios, reverse=True)[:4]
    assert [w.doc for w in out.worst] == [-i for _, i in expected]
    assert [w.ratio for w in out.worst] == pytest.approx([r for r, _ in expected], rel=1e-9)
    assert [w.ratio for w in out.worst] == sorted((w.ratio for w in out.worst), reverse=True)
    worst = out.worst[0]
    assert worst.text == DOCS[worst.doc] and worst.tokens == len(DOCS[worst.doc]) - 1
    last = ALPHABET.index(DOCS[worst.doc][-1])
    assert [i for i, _ in worst.reference] == np.argsort(-TABLE[last])[:3].tolist()
    assert worst.reference[0][1] == round(float(NEXT[last].max()), 4)


def test_nan_positions_are_counted_and_their_documents_rank_first(tmp_path: Path) -> None:
    record(tmp_path / "reference", DOCS)
    out = compare(tmp_path / "reference", DOCS, Bigram("cand", nan_tokens=[3]), worst_n=20)
    ids = encode(DOCS)
    assert out.nonfinite == sum(int((d[:-1] == 3).sum()) for d in ids) > 0
    assert out.final_nonfinite == sum(int(d[-1] == 3) for d in ids)
    finite = np.concatenate([nll_of(bigram_logits(d[None])[0], d)[d[:-1] != 3] for d in ids])
    assert out.nll_sum == pytest.approx(finite.sum(), rel=1e-12)
    assert out.ref_nll_sum == pytest.approx(finite.sum(), rel=1e-12)
    assert math.isfinite(out.ppl)
    # a document with a NaN position has ratio inf (it once ranked as improved: nansum)
    hit = {i for i, d in enumerate(ids) if (d[:-1] == 3).any()}
    assert {w.doc for w in out.worst if w.ratio == math.inf} == hit
    assert [w.doc for w in out.worst[:len(hit)]] == sorted(hit)
    nan_final = [w for w in out.worst if ids[w.doc][-1] == 3]
    assert all(w.backend == ((-1, w.backend[0][1]),) for w in nan_final)


def test_huge_logits_give_infinite_perplexity_not_a_crash(tmp_path: Path) -> None:
    # mean NLL in the thousands: math.exp overflowed (OverflowError) in the pass and in ppl
    ref = record(tmp_path / "reference", DOCS)
    out = compare(tmp_path / "reference", DOCS, Bigram("cand", scale=1e4))
    assert out.ppl == math.inf and all(w.ratio == math.inf for w in out.worst)
    results, values = evaluate_lm(backend="cand", reference="ref", token_text=str,
                                  thresholds=resolve("cand", "fp32", {}, task="causal-lm"),
                                  ref=ref, out=out)
    assert values["ppl_delta"] == math.inf
    assert results["ppl"].verdict == "failed"
    assert results["ppl"].reason.startswith("ppl_delta inf > 0.001 over ")


@pytest.mark.parametrize("batch_size", [3, 64])
def test_batch_size_does_not_change_the_tally(tmp_path: Path, batch_size: int) -> None:
    one = tmp_path / "one"
    ref_one = record(one, DOCS, batch_size=1)
    ref_many = record(tmp_path / "many", DOCS, batch_size=batch_size)
    assert_same_tally(ref_one, ref_many)
    for name in ("nll", "top", "final"):
        assert (one / f"{name}.bin").read_bytes() == (tmp_path / "many" / f"{name}.bin"
                                                       ).read_bytes()
    noisy = Bigram("cand", noise=0.5, nan_tokens=[7])
    a = compare(one, DOCS, noisy, batch_size=1)
    b = compare(one, DOCS, Bigram("cand", noise=0.5, nan_tokens=[7]), batch_size=batch_size)
    assert_same_tally(a, b)
    assert [(w.doc, w.tokens, w.text) for w in a.worst] == [(w.doc, w.tokens, w.text)
                                                           for w in b.worst]
    assert [w.ratio for w in a.worst] == pytest.approx([w.ratio for w in b.worst], rel=1e-12)
    assert max(shape[0] for shape in noisy.batches) == 1


def test_static_shapes_give_the_same_tally() -> None:
    dynamic = run_pass(Bigram().activate(), source(DOCS), **PASS)
    runner = Bigram()
    static = run_pass(runner.activate(), source(DOCS), static_length=8, static_batch=4,
                      **PASS)
    assert_same_tally(dynamic, static)
    assert set(runner.batches) == {(4, 8)}


def test_corpus_larger_than_an_encode_chunk(tmp_path: Path) -> None:
    docs = sampled_docs(2 * ENCODE_CHUNK + 7, seed=5, lo=1, hi=12)
    docs.insert(10, "")  # no tokens: skipped
    ref = record(tmp_path / "reference", docs, batch_size=16)
    out = compare(tmp_path / "reference", docs, Bigram("cand"), batch_size=16)
    assert ref.docs == out.docs == len(docs) - 1
    assert ref.tokens == out.tokens == sum(max(len(d) - 1, 0) for d in docs)
    assert out.agree == out.tokens


def test_vocabulary_mismatch_is_refused(tmp_path: Path) -> None:
    record(tmp_path / "reference", DOCS)
    with pytest.raises(BackendError) as info:
        compare(tmp_path / "reference", DOCS, Bigram("wide", vocab=VOCAB + 1))
    assert str(info.value) == (f"backend 'wide' vocabulary: got {VOCAB + 1}, expected the "
                               "reference's vocabulary size; compare models that share a "
                               "tokenizer")


def test_logits_without_a_sequence_axis_are_refused() -> None:
    with pytest.raises(BackendError) as info:
        run_pass(Flat("flat").activate(), source(DOCS), **PASS)
    assert str(info.value) == (f"backend 'flat' logits shape: got (3, {VOCAB}), expected "
                               "(batch, sequence, vocab) logits of a causal LM; export the LM "
                               "head's logits for every position")


def test_corpus_without_tokens_is_refused() -> None:
    with pytest.raises(DataError) as info:
        run_pass(Bigram().activate(), source(["", ""]), **PASS)
    assert str(info.value) == ("corpus: got 'no tokens', expected at least one document with "
                               "text; check the eval file and the tokenizer")


def test_final_logits_are_the_last_position_of_each_document() -> None:
    rows = final_logits(Bigram().activate(), source(DOCS), window=8, stride=4, batch_size=5)
    assert np.array_equal(rows, TABLE[[ALPHABET.index(d[-1]) for d in DOCS]])
    with pytest.raises(DataError, match=re.escape("texts: got 'no tokens'")):
        final_logits(Bigram().activate(), source([""]), window=8, stride=4, batch_size=5)


# -- evaluate_lm ---------------------------------------------------------------------------------

def tallies(nonfinite: int = 0) -> tuple[Tally, Tally]:
    ref = Tally(docs=2, tokens=10, finals=2, vocab=VOCAB, nll_sum=10 * math.log(4.0))
    out = Tally(docs=2, tokens=10, finals=2, vocab=VOCAB, nll_sum=(10 - nonfinite) * math.log(5.0),
                nonfinite=nonfinite, ref_nll_sum=(10 - nonfinite) * math.log(4.0), agree=9,
                overlap=9.5, final_max_abs=0.5, final_sum_abs=2.4, final_elems=24,
                final_kl_sum=0.02,
                worst=[WorstDoc(1, "bad doc", 1.4, 5, ((2, 0.5), (1, 0.25)), ((1, 0.5),)),
                       WorstDoc(0, "ok doc", 1.1, 5, ((0, 0.9),), ((0, 0.8),))])
    return ref, out


LOOSE = {"ppl_delta": 0.3, "top1_agreement": 0.8, "topk_overlap": 0.9, "max_abs_logit": 1.0,
         "mean_abs_logit": 0.2, "kl_div": 0.05}
CHANGE = "(perplexity 4 (ref) -> 5 (cand), +25.000%, over 10 tokens of 2 documents)"
WHERE = "(next token at 10 positions; logits at the final position of 2 documents)"


def gate(ref: Tally, out: Tally, **overrides: float) -> tuple[dict[str, CheckResult],
                                                              dict[str, float]]:
    thresholds = resolve("cand", "fp32", {}, {**LOOSE, **overrides}, task="causal-lm")
    return evaluate_lm(backend="cand", reference="ref", thresholds=thresholds, ref=ref,
                       out=out, token_text=lambda i: ALPHABET[i])


def test_evaluate_lm_passes_within_thresholds() -> None:
    results, values = gate(*tallies())
    assert list(results) == list(LM_CHECKS) == ["ppl", "next-token"]
    assert values["reference_ppl"] == pytest.approx(4.0) and values["ppl"] == pytest.approx(5.0)
    assert values["ppl_delta"] == pytest.approx(0.25)
    assert values["top1_agreement"] == 0.9 and values["topk_overlap"] == 0.95
    assert values["max_abs_logit"] == 0.5 and values["mean_abs_logit"] == pytest.approx(0.1)
    assert values["kl_div"] == pytest.approx(0.01)
    ppl = results["ppl"]
    assert (ppl.verdict, ppl.reason) == ("passed", f"within thresholds {CHANGE}")
    assert [(x.name, x.threshold, x.op) for x in ppl.measures] == [
        ("ppl_delta", 0.3, "<="), ("reference_ppl", None, ""), ("ppl", None, "")]
    assert [x.value for x in ppl.measures] == pytest.approx([0.25, 4.0, 5.0])
    nxt = results["next-token"]
    assert (nxt.verdict, nxt.reason) == ("passed", f"within thresholds {WHERE}")
    assert [x.name for x in nxt.measures] == ["top1_agreement", "topk_overlap", "max_abs_logit",
                                              "mean_abs_logit", "kl_div"]
    assert [x.value for x in nxt.measures] == pytest.approx([0.9, 0.95, 0.5, 0.1, 0.01])
    assert nxt.measures[0].interval is not None and nxt.measures[1].interval is None
    assert all(r.n_inputs == 10 for r in results.values())
    assert [w.index for w in ppl.worst] == [1]  # a passing check shows one example
    worst = ppl.worst[0]
    assert (worst.metric, worst.score, worst.text) == ("ppl ratio", 1.4, "bad doc")
    assert worst.reference == (("'c'", 0.5), ("'b'", 0.25))


def test_evaluate_lm_fails_on_the_relative_perplexity_increase() -> None:
    results, values = gate(*tallies(), ppl_delta=0.2)
    ppl = results["ppl"]
    assert ppl.verdict == "failed" and results["next-token"].verdict == "passed"
    assert ppl.reason.startswith("ppl_delta 0.25 > 0.2 over 10 inputs; would pass with "
                                 "ppl_delta=")
    assert ppl.reason.endswith(CHANGE)
    loosest = float(re.search(r"ppl_delta=(\S+) \(", ppl.reason).group(1))  # type: ignore[union-attr]
    assert values["ppl_delta"] <= loosest < 0.2501
    assert [w.index for w in ppl.worst] == [1, 0]  # a failing check shows them all
    assert not ppl.measures[0].passed and ppl.measures[1].passed


def test_evaluate_lm_fails_next_token_on_agreement() -> None:
    results, _ = gate(*tallies(), top1_agreement=0.95)
    nxt = results["next-token"]
    assert nxt.verdict == "failed" and results["ppl"].verdict == "passed"
    assert nxt.reason.startswith("top1_agreement 0.9 < 0.95 over 10 inputs (95% CI ")
    assert nxt.reason.endswith(f"; would pass with top1_agreement=0.9 {WHERE}")


def by_documents(docs: int, shift: float) -> tuple[Tally, Tally]:
    """``docs`` documents of 20 tokens; the backend's loss is higher by ``shift`` nats per token
    on average, but by 0 on half the documents and 2 x ``shift`` on the others (documents
    differ), and it agrees on 18 of 20 next tokens everywhere."""
    per_doc = [(20, 20, 20 * (1.0 + (2 * shift if d % 2 else 0.0)), 20.0, 18, 19.0)
               for d in range(docs)]
    tokens, nll = 20 * docs, sum(x[2] for x in per_doc)
    ref = Tally(docs=docs, tokens=tokens, finals=docs, vocab=VOCAB, nll_sum=float(tokens))
    out = Tally(docs=docs, tokens=tokens, finals=docs, vocab=VOCAB, nll_sum=nll,
                ref_nll_sum=float(tokens), agree=18 * docs, overlap=19.0 * docs,
                final_max_abs=0.1, final_sum_abs=0.1 * docs, final_elems=docs * VOCAB,
                final_kl_sum=0.0, per_doc=per_doc)
    return ref, out


def test_perplexity_change_is_judged_with_a_document_interval() -> None:
    # +3% perplexity against 2%: 4 documents that disagree this much cannot tell...
    results, values = gate(*by_documents(4, 0.03), ppl_delta=0.02)
    assert values["ppl_delta"] == pytest.approx(math.expm1(0.03))
    ppl = results["ppl"]
    assert ppl.verdict == "inconclusive", ppl.reason
    assert ppl.reason.startswith("inconclusive: ppl_delta 0.03045 > 0.02 over 80 inputs (95% "
                                 "CI 0"), ppl.reason
    assert "documents would decide" in ppl.reason
    low, high = ppl.measures[0].interval  # type: ignore[misc]
    assert low <= 0.02 < values["ppl_delta"] <= high
    # ...400 documents can
    results, _ = gate(*by_documents(400, 0.03), ppl_delta=0.02)
    assert results["ppl"].verdict == "failed"
    low, _ = results["ppl"].measures[0].interval  # type: ignore[misc]
    assert low > 0.02


def test_next_token_agreement_interval_resamples_documents() -> None:
    results, _ = gate(*by_documents(30, 0.0), top1_agreement=0.95)
    nxt = results["next-token"]
    # 0.9 on every document: the interval is the point, far from 0.95: failed, not undecided
    assert nxt.verdict == "failed"
    assert nxt.measures[0].interval == pytest.approx((0.9, 0.9))


def test_evaluate_lm_all_nan_fails_both_checks() -> None:
    ref, out = tallies(nonfinite=10)
    results, values = gate(ref, out)
    for check in LM_CHECKS:
        result = results[check]
        assert result.verdict == "failed" and result.measures == ()
        assert result.reason == f"backend log-likelihood is NaN/Inf on 10/10 positions {NAN_CAUSE}"
    assert "ppl" not in values and values["nonfinite_rows"] == 10


def test_evaluate_lm_some_nan_fails_with_the_nan_note() -> None:
    ref, out = tallies(nonfinite=2)
    results, _ = gate(ref, out)
    note = f"backend log-likelihood is NaN/Inf on 2/10 positions {NAN_CAUSE}; the finite ones: "
    assert results["ppl"].verdict == results["next-token"].verdict == "failed"
    assert results["ppl"].reason == note + f"within thresholds {CHANGE}"
    assert results["next-token"].reason == note + f"within thresholds {WHERE}"


def test_evaluate_lm_on_real_passes(tmp_path: Path) -> None:
    folder = tmp_path / "reference"
    ref = record(folder, DOCS)
    fp32 = resolve("cand", "fp32", {}, task="causal-lm")

    def run(runner: Runner, **overrides: float) -> dict[str, CheckResult]:
        out = compare(folder, DOCS, runner)
        return evaluate_lm(backend="cand", reference="ref", ref=ref, out=out, token_text=str,
                           thresholds={**fp32, **overrides})[0]

    same = run(Bigram("cand"))
    assert [r.verdict for r in same.values()] == ["passed", "passed"]
    noisy = run(Bigram("cand", noise=1.0))
    assert [r.verdict for r in noisy.values()] == ["failed", "failed"]
    assert f"perplexity {ref.ppl:.4g} (ref) -> " in noisy["ppl"].reason
    loose = run(Bigram("cand", noise=1.0), ppl_delta=10.0, top1_agreement=0.0, topk_overlap=0.0,
                max_abs_logit=100.0, mean_abs_logit=100.0, kl_div=100.0)
    assert [r.verdict for r in loose.values()] == ["passed", "passed"]
    nan = run(Bigram("cand", nan_tokens=range(VOCAB)))
    n = sum(len(d) - 1 for d in DOCS)
    for result in nan.values():
        assert result.verdict == "failed"
        assert result.reason == f"backend log-likelihood is NaN/Inf on {n}/{n} positions {NAN_CAUSE}"


# -- corpus.py -----------------------------------------------------------------------------------

def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_paragraphs(tmp_path: Path) -> None:
    path = write(tmp_path / "corpus.txt", b"\n  \none\ntwo  \n\n\n \t\nthree\r\nfour\r\n\r\nlast")
    assert list(iter_documents(path)) == [Document("one\ntwo  ", 3), Document("three\nfour", 8),
                                          Document("last", 11)]
    single = write(tmp_path / "single.md", b"only one\nparagraph\n")
    assert list(iter_documents(single)) == [Document("only one\nparagraph", 1)]


def test_jsonl(tmp_path: Path) -> None:
    lines = ['{"text": "first doc", "id": 1}', "", '{"text": ""}', '{"text": "  "}', "   ",
             '{"text": "second\\ndoc", "source": "x"}']
    path = write(tmp_path / "eval.jsonl", "\n".join(lines).encode())
    assert list(iter_documents(path)) == [Document("first doc", 1), Document("second\ndoc", 6)]
    upper = write(tmp_path / "eval.JSON", b'{"text": "x"}\r\n')
    assert list(iter_documents(upper)) == [Document("x", 1)]


def corpus_error(path: Path) -> str:
    documents = iter_documents(path)  # lazy: nothing happens before the first document
    with pytest.raises(DataError) as info:
        list(documents)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("line", ['{"id": 3}', '["text"]', '{"text": 5}', '"text"'])
def test_jsonl_record_without_text(tmp_path: Path, line: str) -> None:
    path = write(tmp_path / "eval.jsonl", ('{"text": "fine"}\n' + line + "\n").encode())
    record_ = json.loads(line)
    got = record_.get("text") if isinstance(record_, dict) else record_
    assert corpus_error(path) == (f"{path}:2: text: got {got!r}, expected a string under the "
                                  "key 'text'; fix that line")


def test_jsonl_bad_line_names_file_and_line(tmp_path: Path) -> None:
    bad = '{"text": "unterminated'
    path = write(tmp_path / "eval.jsonl", ('{"text": "fine"}\n\n' + bad + "\n").encode())
    try:
        json.loads(bad)
    except ValueError as exc:
        why = str(exc)
    documents = iter_documents(path)
    assert next(documents) == Document("fine", 1)  # streamed: the good line comes first
    with pytest.raises(DataError) as info:
        next(documents)
    assert str(info.value) == (f"{path}:3: got {bad!r}, expected a JSON object like "
                               f'{{"text": "..."}}; fix that line ({why})')


@pytest.mark.parametrize("name", ["missing.txt", "missing.jsonl", "."])
def test_missing_corpus(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert corpus_error(path) == (f"corpus file: got {str(path)!r}, expected an existing text "
                                  "or JSONL file; check the path in [tool.quantgate]")


@pytest.mark.parametrize(("name", "data"), [
    ("empty.txt", b""), ("blank.txt", b"\n \n\t\n\r\n"), ("empty.jsonl", b""),
    ("blank.jsonl", b'\n{"text": ""}\n{"text": " "}\n'),
])
def test_corpus_without_documents(tmp_path: Path, name: str, data: bytes) -> None:
    path = write(tmp_path / name, data)
    assert corpus_error(path) == (f"corpus file: got '{path} (no text)', expected at least one "
                                  "document; fill the file or point the config at another one")


@pytest.mark.parametrize(("name", "data", "at"), [
    ("latin1.txt", b"good\n\nbad \xff here\n", 10),
    ("cut.txt", b"caf\xc3", 3),
    ("latin1.jsonl", b'{"text": "good"}\n{"text": "caf\xe9"}\n', 30),
    # past the decoder's first 8 KiB chunk: the offset once counted from the chunk's start
    ("late.txt", b"a" * 20000 + b"\n\n\xff\n", 20002),
])
def test_corpus_not_utf8(tmp_path: Path, name: str, data: bytes, at: int) -> None:
    path = write(tmp_path / name, data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = exc.reason
        assert exc.start == at
    assert corpus_error(path) == (f"corpus file {path}: got 'bytes that are not UTF-8 ({reason} "
                                  f"at byte {at})', expected UTF-8 text; re-save the file as "
                                  "UTF-8")


# -- streaming -----------------------------------------------------------------------------------

def lazy_source(n_docs: int) -> Source:
    def documents() -> Iterator[str]:
        rng = np.random.default_rng(11)
        for _ in range(n_docs):
            yield text_of(rng.integers(0, VOCAB, size=int(rng.integers(10, 40))))

    return Source(documents, encode, PAD)


# A batch's logits (16 x 16 x WIDE float32, 0.5 MiB) dominate the peak, as they do for a real
# LM; with 12 tokens the peak was ~100 KiB, the size of CPython's bounded free lists.
WIDE = 512


def peak_of_passes(tmp_path: Path, n_docs: int) -> tuple[int, int]:
    """Peak Python-level memory of a reference pass (written to disk) and a compared pass."""
    folder = tmp_path / f"reference-{n_docs}"
    kw: dict[str, Any] = {"window": 16, "stride": 8, "batch_size": 16, "k": 3}
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        writer = ReferenceWriter(folder)
        ref = run_pass(Bigram(vocab=WIDE).activate(), lazy_source(n_docs), writer=writer, **kw)
        writer.finish({"k": 3, "tally": ref.to_dict()})
        out = run_pass(Bigram("cand", noise=0.5, vocab=WIDE).activate(), lazy_source(n_docs),
                       reference=ReferenceReader(folder), **kw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ref.docs == out.docs == n_docs
    return peak, out.tokens


def test_memory_does_not_grow_with_the_corpus(tmp_path: Path) -> None:
    (tmp_path / "warm").mkdir()
    peak_of_passes(tmp_path / "warm", 10)  # first-call allocations (imports, caches) aside
    small, small_tokens = peak_of_passes(tmp_path, 40)
    large, large_tokens = peak_of_passes(tmp_path, 400)
    assert large_tokens > 9 * small_tokens
    # keeping every document's final row (2 KiB each) would add ~0.8 MiB here, ~50%
    assert large < 1.25 * small, f"peak {small} B for 40 documents, {large} B for 400"


def test_overlap_uses_the_backends_own_k_when_the_reference_recorded_more(tmp_path):
    # The reference records the largest k any backend asks for; a backend with a smaller k is
    # compared at its own k (an identical backend overlaps fully), not divided by the larger one.
    src = source(DOCS)
    writer = ReferenceWriter(tmp_path / "ref")
    ref = run_pass(Bigram().activate(), src, window=8, stride=4, batch_size=2, k=5,
                   writer=writer)
    writer.finish({"k": 5, "tally": ref.to_dict()})
    reader = ReferenceReader(tmp_path / "ref")
    tally = run_pass(Bigram("b").activate(), src, window=8, stride=4, batch_size=2, k=3,
                     reference=reader)
    reader.close()
    assert tally.overlap == tally.tokens and tally.agree == tally.tokens


def test_final_logits_under_static_shapes_match_dynamic_ones() -> None:
    # A user's export with a fixed (batch, sequence) gets padded rows and columns; the
    # next-token logits after each text must not change.
    src = source(DOCS[:5])
    runner = Bigram().activate()
    dynamic = final_logits(runner, src, window=8, stride=4, batch_size=2)
    static = final_logits(runner, src, window=8, stride=4, batch_size=2, static_length=12,
                          static_batch=4)
    assert static.shape == dynamic.shape == (5, VOCAB)
    np.testing.assert_array_equal(static, dynamic)
