"""Per-input drift data the charts need, in the compact form the JSON report stores.

Pure numpy: a histogram of each backend's per-input max |logit diff| on a fixed log scale (so
backends are comparable), the flip matrix (reference top-1 label -> backend top-1 label), and
the raw logits of a few inputs (the worst ones and those the user names with ``inspect``) for
the reference and every backend. The HTML report draws only from these values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

LOG10_MIN = -7.0  # the first bin holds every |diff| <= 1e-7 (exact zeros included)
LOG10_STEP = 0.25
N_BINS = 37  # up to 10**2; the last bin holds everything above
MAX_INSPECTED = 16
DIGITS = 5  # decimals kept for stored logits


def row_diff(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Max |logit diff| of every row; inf where the backend's row holds NaN/Inf."""
    diff = np.abs(ref.astype(np.float64) - out.astype(np.float64)).max(axis=1)
    return np.where(np.isfinite(diff), diff, np.inf)


def histogram(diffs: np.ndarray) -> dict[str, Any]:
    """Counts of |diff| per log10 bin, with non-finite rows counted apart."""
    finite = diffs[np.isfinite(diffs)]
    logs = np.log10(np.maximum(finite, 10.0 ** LOG10_MIN))
    idx = np.clip(np.ceil((logs - LOG10_MIN) / LOG10_STEP - 1e-9).astype(np.int64), 0, N_BINS - 1)
    counts = np.bincount(idx, minlength=N_BINS)
    return {"log10_min": LOG10_MIN, "log10_step": LOG10_STEP, "counts": counts.tolist(),
            "nonfinite": int((~np.isfinite(diffs)).sum()),
            "max": float(finite.max()) if finite.size else None}


def flip_matrix(ref: np.ndarray, out: np.ndarray, num_labels: int) -> list[list[int]]:
    """counts[i][j]: inputs the reference labels i and the backend labels j (finite rows)."""
    finite = np.all(np.isfinite(out), axis=1)
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (np.argmax(ref[finite], axis=1), np.argmax(out[finite], axis=1)), 1)
    return matrix.tolist()


def pick_inputs(diffs: Mapping[str, np.ndarray], failing: Sequence[str], named: Sequence[int],
                *, per_failing: int = 2, per_passing: int = 1) -> list[tuple[int, list[str]]]:
    """(row, why) of the inputs to chart: the named rows, then each backend's worst rows."""
    chosen: dict[int, list[str]] = {i: ["named in inspect"] for i in named}
    for name, d in diffs.items():
        order = np.argsort(-np.nan_to_num(d, posinf=np.finfo(np.float64).max), kind="stable")
        for i in order[:per_failing if name in failing else per_passing]:
            score = "NaN/Inf" if not np.isfinite(d[i]) else f"{d[i]:.3g}"
            chosen.setdefault(int(i), []).append(f"worst of {name} (max |Δ| {score})")
    return list(chosen.items())[:MAX_INSPECTED]


def logits_row(row: np.ndarray) -> list[float | None]:
    """A logits row as JSON: rounded, NaN/Inf as null."""
    return [round(float(v), DIGITS) if np.isfinite(v) else None for v in row]
