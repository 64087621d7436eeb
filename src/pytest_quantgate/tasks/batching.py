"""Group encoded texts into padded batches, and put results back in input order.

Headlines average about 15 tokens: padding every one to ``max_length`` wastes most of the
compute. With ``padding="longest"`` texts are sorted by length and each batch is padded to its
longest member; ``"max_length"`` pads every batch to ``max_length``; a backend whose declared
sequence dimension is static always gets exactly that length.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .tokenizer import Encoded

__all__ = ["Batch", "batches", "latency_feed", "make_feed", "typical_indices"]



@dataclass(frozen=True)
class Batch:
    """Row indices into the original sequence, and the named, padded arrays."""

    indices: np.ndarray
    feed: dict[str, np.ndarray]


def make_feed(items: Sequence[Encoded], pad_id: int, length: int) -> dict[str, np.ndarray]:
    """Pad ``items`` to ``length``: input_ids, attention_mask and token_type_ids (int64)."""
    n = len(items)
    ids = np.full((n, length), pad_id, dtype=np.int64)
    mask = np.zeros((n, length), dtype=np.int64)
    types = np.zeros((n, length), dtype=np.int64)
    for row, item in enumerate(items):
        k = min(item.ids.shape[0], length)
        ids[row, :k] = item.ids[:k]
        mask[row, :k] = 1
        types[row, :k] = item.type_ids[:k]
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def batches(
    items: Sequence[Encoded],
    *,
    batch_size: int,
    padding: str,
    pad_id: int,
    max_length: int,
    static_length: int | None = None,
    static_batch: int | None = None,
) -> Iterator[Batch]:
    """Yield padded batches covering every item once; see the module docstring for the policy."""
    lengths = np.fromiter((i.ids.shape[0] for i in items), dtype=np.int64, count=len(items))
    if static_length is None and padding == "longest":
        order = np.argsort(lengths, kind="stable")  # stable: same order on every run
    else:
        order = np.arange(len(items))
    size = static_batch or batch_size
    for start in range(0, len(order), size):
        idx = order[start:start + size]
        chunk = [items[i] for i in idx]
        if static_length is not None:
            length = static_length
        elif padding == "longest":
            length = max(1, int(lengths[idx].max()))
        else:
            length = max_length
        feed = make_feed(chunk, pad_id, length)
        if static_batch and len(idx) < static_batch:  # a fixed-batch engine gets full batches
            feed = {k: _pad_rows(v, static_batch) for k, v in feed.items()}
        yield Batch(idx, feed)


def _pad_rows(array: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros((rows, *array.shape[1:]), dtype=array.dtype)
    out[: array.shape[0]] = array
    return out


# -- the timed batch ---------------------------------------------------------------------------
# The same on every run of the same eval set: the ``batch_size`` texts whose token lengths sit
# around the median length (ties broken by position), padded as the backend is fed in the gate.
# A typical headline, not the longest one, and never a different one per commit.
def typical_indices(lengths: Sequence[int], batch_size: int) -> np.ndarray:
    """``batch_size`` indices (fewer if there are fewer texts) centred on the median length."""
    order = np.argsort(np.asarray(lengths, dtype=np.int64), kind="stable")
    take = min(batch_size, len(order))
    start = max(0, min(len(order) - take, len(order) // 2 - take // 2))
    return np.sort(order[start:start + take])


def latency_feed(items: Sequence[Encoded], batch_size: int, *, padding: str, pad_id: int,
                 max_length: int, static_length: int | None = None,
                 static_batch: int | None = None) -> dict[str, np.ndarray]:
    """The feed of one timed batch (rows repeat when the eval set is smaller than the batch)."""
    chosen = [items[i] for i in typical_indices([len(i.ids) for i in items], batch_size)]
    while len(chosen) < batch_size:
        chosen.append(chosen[len(chosen) % max(1, len(chosen))])
    batch = next(batches(chosen, batch_size=batch_size, padding=padding, pad_id=pad_id,
                         max_length=max_length, static_length=static_length,
                         static_batch=static_batch))
    return batch.feed
