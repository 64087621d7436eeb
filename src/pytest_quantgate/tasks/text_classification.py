"""Text classification: run a runner over encoded texts and collect logits in input order."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..backends.base import Runner
from ..errors import BackendError, problem
from .batching import Batch, batches
from .tokenizer import Encoded

TASK = "text-classification"


@dataclass(frozen=True)
class Shapes:
    """The shape policy a backend got: what the report says was used."""

    padding: str  # "longest", "max_length" or "static"
    batch_size: int
    static_length: int | None
    static_batch: int | None


def shape_policy(runner: Runner, padding: str, batch_size: int) -> Shapes:
    """A static declared input shape wins over the configured padding."""
    spec = runner.input_specs().get("input_ids") or next(iter(runner.input_specs().values()))
    length = spec.shape[1] if spec.is_static(1) else None
    batch = spec.shape[0] if spec.is_static(0) else None
    used = "static" if (length or batch) else padding
    return Shapes(used, batch or batch_size, length, batch)  # type: ignore[arg-type]


def planned_batches(runner: Runner, items: Sequence[Encoded], *, batch_size: int, padding: str,
                    pad_id: int, max_length: int,
                    batch_cache: dict[Shapes, list[Batch]] | None = None
                    ) -> tuple[list[Batch], Shapes]:
    """The padded batches of ``items`` as ``runner``'s shapes need them, and those shapes;
    kept in ``batch_cache`` per shape policy, so a gate of many backends pads its inputs once
    (pass a fresh dict per list of items)."""
    shapes = shape_policy(runner, padding, batch_size)
    planned = batch_cache.get(shapes) if batch_cache is not None else None
    if planned is None:
        planned = list(batches(items, batch_size=batch_size, padding=padding, pad_id=pad_id,
                               max_length=max_length, static_length=shapes.static_length,
                               static_batch=shapes.static_batch))
        if batch_cache is not None:
            batch_cache[shapes] = planned
    return planned, shapes


def predict_logits(
    runner: Runner,
    items: Sequence[Encoded],
    *,
    batch_size: int,
    padding: str,
    pad_id: int,
    max_length: int,
    num_labels: int,
    batch_cache: dict[Shapes, list[Batch]] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, Shapes]:
    """Logits of shape (len(items), num_labels), in the order of ``items``.

    ``batch_cache`` keeps the padded batches per shape policy, so a gate of many backends pads
    its inputs once (pass a fresh dict per list of items). ``on_batch(n)`` follows each batch
    of ``n`` inputs (progress.py).
    """
    planned, shapes = planned_batches(runner, items, batch_size=batch_size, padding=padding,
                                      pad_id=pad_id, max_length=max_length,
                                      batch_cache=batch_cache)
    out: np.ndarray | None = None
    for batch in planned:
        outputs = runner.infer(batch.feed)
        logits = outputs["logits"] if "logits" in outputs else next(iter(outputs.values()))
        logits = logits[: len(batch.indices)]
        if logits.ndim != 2 or logits.shape[1] != num_labels:
            raise BackendError(problem(f"backend {runner.name!r} logits shape", logits.shape,
                                       f"(batch, {num_labels}) for {num_labels} labels",
                                       "check the model's output and its id2label"))
        if out is None:
            out = np.empty((len(items), num_labels), dtype=np.result_type(logits, np.float32))
        out[batch.indices] = logits
        if on_batch is not None:
            on_batch(len(batch.indices))
    if out is None:
        raise BackendError(problem("inputs to predict", 0, "at least one text",
                                   "configure a non-empty eval set"))
    return out, shapes


def spread_probe(encoded: Sequence[Encoded], runner: Runner, size: int, *, pad_id: int,
                 max_length: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Up to ``size`` of ``encoded`` spread over the token lengths (so some rows are padded),
    as one batch shaped as ``runner`` needs: (their indices, the feed)."""
    order = np.argsort([len(e.ids) for e in encoded], kind="stable")
    pick = order[np.unique(np.linspace(0, len(order) - 1, min(size, len(order))).astype(int))]
    shapes = shape_policy(runner, "longest", len(pick))
    if shapes.static_batch:
        pick = pick[: shapes.static_batch]
    chosen = [encoded[i] for i in pick]
    batch = next(iter(batches(chosen, batch_size=len(chosen), padding="longest", pad_id=pad_id,
                              max_length=max_length, static_length=shapes.static_length,
                              static_batch=shapes.static_batch)))
    return pick[batch.indices], batch.feed
