"""Small probe batches and the feed transformations that explain wiring faults.

A wiring fault (swapped inputs, int64 ids read as int32 bytes, permuted label columns) leaves a
backend that is "wrong" by an amount no threshold explains. Each candidate fault is a function
of the feed (or of the output columns); a candidate explains the failure when undoing it on the
backend restores agreement with the reference (swaps, columns), or, for a fault only a runner
can make, when the reference fed the fault agrees with the backend. Pure numpy; runners are
only called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.base import read_as_int32

if TYPE_CHECKING:
    from ..backends.base import Runner

PROBE_SIZE = 32  # eval inputs a diagnostic check probes a backend on (Task.probe)
Transform = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def logits_of(runner: Runner, feed: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """The first ``n`` rows of the logits, float64; a causal LM's (n, sequence, vocab) become
    one row per window."""
    outputs = runner.infer(feed)
    logits = outputs["logits"] if "logits" in outputs else next(iter(outputs.values()))
    rows = np.asarray(logits, dtype=np.float64)[:n]
    return rows.reshape(len(rows), -1) if rows.ndim > 2 else rows


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(mean |difference|, top-1 agreement) over rows finite in both."""
    ok = np.all(np.isfinite(a), axis=1) & np.all(np.isfinite(b), axis=1)
    if not ok.any():
        return float("inf"), 0.0
    diff = float(np.abs(a[ok] - b[ok]).mean())
    top1 = float((np.argmax(a[ok], axis=1) == np.argmax(b[ok], axis=1)).mean()) * ok.mean()
    return diff, float(top1)


def swap_candidates(feed: Mapping[str, np.ndarray], declared: Mapping[str, object]
                    ) -> list[tuple[str, Transform]]:
    """(description, the feed with the two swapped back) for each pair of inputs the backend
    declares, of the same shape: feeding the backend ``undo(feed)`` undoes that swap."""
    out: list[tuple[str, Transform]] = []
    for a, b in combinations(sorted(k for k in feed if k in declared), 2):
        if feed[a].shape != feed[b].shape:
            continue
        out.append((f"inputs {a!r} and {b!r} are swapped: the backend's {a!r} carries what the "
                    f"tokenizer calls {b!r} and the other way round", _swap(a, b)))
    return out


def undone_swap(runner: Runner, feed: Mapping[str, np.ndarray],
                measure: Callable[[dict[str, np.ndarray]], tuple[float, float] | None]
                ) -> tuple[str, float] | None:
    """The swap of two of ``runner``'s inputs that, undone on it, brings it back, and what it
    measured then. ``measure(feed)`` runs the backend on the swapped-back feed and gives (rank,
    shown) when the backend is then within its own thresholds, None otherwise; the lowest rank
    wins. A candidate the backend cannot even run (token ids fed as token types: out of the
    model's range) is not the fault, and its failure is expected: the runner keeps quiet about
    it (Runner.quiet_failures), so no runtime error line reaches the user."""
    found: list[tuple[float, str, float]] = []
    with runner.quiet_failures():
        for text, undo in swap_candidates(feed, runner.input_specs()):
            try:
                got = measure(undo(dict(feed)))
            except Exception:
                continue
            if got is not None:
                found.append((got[0], text, got[1]))
    if not found:
        return None
    _, text, shown = min(found)
    return text, shown


def feed_candidates(feed: Mapping[str, np.ndarray], swaps: bool = True
                    ) -> list[tuple[str, Transform]]:
    """(description, transformation) of each wiring fault we can replay on the reference's
    feed: swapped inputs (``swaps``) and int64 ids read as int32 bytes."""
    out: list[tuple[str, Transform]] = []
    if swaps:
        out += swap_candidates(feed, feed)
    out.append(("int64 token ids are read as int32 bytes (a raw-buffer path that skips the "
                "cast: the engine's inputs are int32, the feed was int64); cast the feed to the "
                "engine's dtype before handing over the buffer", _reinterpret))
    return out


def _swap(a: str, b: str) -> Transform:
    def swap(f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {**f, a: f[b], b: f[a]}

    return swap


def _reinterpret(f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: read_as_int32(v) for k, v in f.items()}


def column_permutation(ref: np.ndarray, out: np.ndarray) -> np.ndarray | None:
    """The reference column each backend column matches best, when that is a permutation."""
    ok = np.all(np.isfinite(out), axis=1)
    if ok.sum() < 2:
        return None
    r, o = ref[ok], out[ok]
    cost = np.abs(o[:, :, None] - r[:, None, :]).mean(axis=0)  # (backend col, reference col)
    best = np.argmin(cost, axis=1)
    if sorted(best.tolist()) != list(range(ref.shape[1])):
        return None
    return best


def input_notes(specs: Any, casts: Any, dropped: set[str]) -> list[str]:
    """Notes on how the feed reaches the backend: casts, inputs not fed, static shapes."""
    notes = [f"input {c.input!r} is {c.declared} in the backend and the feed is {c.given}: it is "
             "cast before every call" for c in casts.values()]
    if dropped:
        notes.append(f"the backend declares no {sorted(dropped)}: the tokenizer's values are "
                     "not fed (normal for models without token types)")
    static = [f"{name} {list(s.shape)}" for name, s in specs.items()
              if any(isinstance(d, int) for d in s.shape)]
    if static:
        notes.append(f"static input shapes: {', '.join(static)} (inputs are padded to them)")
    return notes


def static_length(gate: Any, specs: Any, token_counts: list[int]
                  ) -> tuple[list[str], list[str]]:
    """A static sequence axis shorter than what the tokenizer makes truncates eval inputs
    silently (a cause, with the share affected); a longer one pads them (a note)."""
    spec = specs.get("input_ids")
    if spec is None or not spec.is_static(1):
        return [], []
    static = int(spec.shape[1])
    lengths = np.array(token_counts)
    longer = int((lengths > static).sum())
    if longer:
        return [f"input 'input_ids' has a static sequence length of {static} tokens and the "
                f"tokenizer makes up to {int(lengths.max())} (max_length "
                f"{gate.config.max_length}): {longer}/{len(lengths)} eval inputs "
                f"({longer / len(lengths):.1%}) are truncated to {static} tokens; re-export "
                f"with a dynamic sequence axis, or set max_length = {static} if the deployment "
                "truncates there too"], []
    return [], [f"input 'input_ids' has a static sequence length of {static} tokens: every eval "
                f"input ({int(lengths.max())} tokens at most) is padded to it"]
