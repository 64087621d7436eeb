"""A causal LM's corpus as windows: each document's tokens cut into windows of ``window``
tokens that start ``stride`` tokens apart (every token scored once, in the window with the most
left context), and windows of consecutive documents batched, right-padded with attention mask 0
(causal_lm.py runs the passes over them)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import DataError, problem

ENCODE_CHUNK = 64  # documents tokenised per call: the Rust tokenizer batches them


@dataclass(frozen=True)
class Window:
    """Tokens of one window of a document. Position p predicts token p + 1; positions
    ``first`` .. len - 2 are scored here (earlier ones were scored by the previous window)."""

    doc: int
    ids: np.ndarray
    first: int
    final: bool  # the window ends the document: its last position is the final position

    @property
    def scored(self) -> int:
        return max(0, len(self.ids) - 1 - self.first)


def split_windows(ids: np.ndarray, doc: int, window: int, stride: int) -> Iterator[Window]:
    """The windows of one document (see the module docstring); none for an empty one."""
    n = len(ids)
    begin, done = 0, 0  # done: tokens before this index are already scored
    while n:
        end = min(begin + window, n)
        target = max(done, begin + 1)  # first token this window predicts
        yield Window(doc, ids[begin:end], target - 1 - begin, end == n)
        done = end
        if end == n:
            return
        # at most end - 1: with stride == window the next window's first token (never a target
        # in its own window) was otherwise left unscored, one token lost per window
        begin = min(begin + stride, end - 1)


@dataclass(frozen=True)
class Source:
    """Where documents come from and how they are tokenised."""

    documents: Callable[[], Iterable[str]]  # a fresh iterator per pass
    encode: Callable[[list[str]], list[np.ndarray]]
    pad_id: int


def iter_windows(source: Source, window: int, stride: int,
                 texts: dict[int, str] | None = None) -> Iterator[Window]:
    """Windows of every document in order; ``texts`` (if given) receives doc index -> text for
    the documents whose windows are in flight (the caller pops them)."""
    doc = 0
    chunk: list[str] = []

    def flush() -> Iterator[Window]:
        nonlocal doc
        for text, ids in zip(chunk, source.encode(chunk), strict=True):
            if texts is not None and len(ids):
                texts[doc] = text
            yield from split_windows(ids, doc, window, stride)
            doc += 1
        chunk.clear()

    for text in source.documents():
        chunk.append(text)
        if len(chunk) >= ENCODE_CHUNK:
            yield from flush()
    yield from flush()


def window_batches(windows: Iterable[Window], *, batch_size: int, pad_id: int,
                   static_length: int | None = None, static_batch: int | None = None
                   ) -> Iterator[tuple[list[Window], dict[str, np.ndarray]]]:
    """Consecutive windows in batches, right-padded to the longest (or the static length)."""
    size = static_batch or batch_size
    group: list[Window] = []
    for w in windows:
        group.append(w)
        if len(group) == size:
            yield group, make_lm_feed(group, pad_id, static_length, static_batch)
            group = []
    if group:
        yield group, make_lm_feed(group, pad_id, static_length, static_batch)


def make_lm_feed(group: Sequence[Window], pad_id: int, static_length: int | None = None,
                 static_batch: int | None = None) -> dict[str, np.ndarray]:
    longest = max(len(w.ids) for w in group)
    length = static_length or longest
    if longest > length:
        raise DataError(problem("window length", longest, f"at most the backend's static "
                                f"sequence length {length}", f"set window = {length} or less"))
    rows = static_batch or len(group)
    ids = np.full((rows, length), pad_id, dtype=np.int64)
    mask = np.zeros((rows, length), dtype=np.int64)
    for row, w in enumerate(group):
        ids[row, :len(w.ids)] = w.ids
        mask[row, :len(w.ids)] = 1
    return {"input_ids": ids, "attention_mask": mask}
