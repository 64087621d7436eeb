"""Judging a measured rate or mean with its uncertainty: passed, failed or inconclusive.

A gate's numbers come from a finite eval set. A backend whose top-1 agreement is 0.965 on 200
inputs against a 0.97 threshold is not shown to be worse than 0.97: its 95% interval reaches
0.98. Failing it would be a coin toss that turns CI red on benign changes, and a gate that cries
wolf gets switched off. So a backend is presumed within its threshold until the sample shows
otherwise:

- the estimate on the good side of the threshold: **passed** (its interval is reported);
- the estimate on the bad side and the whole 95% interval too: **failed**;
- the estimate on the bad side but the interval reaching the threshold: **inconclusive**, with
  about how many inputs would decide if the estimate held.

Intervals: Wilson for a share of inputs (metrics.wilson_interval); a normal interval on the
per-input values for a mean over inputs (mean |logit diff|, KL, top-k overlap); for a paired
difference of two accuracies on the same inputs (the reference's and the backend's), McNemar's
discordant pairs. Pure: numbers in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from .metrics import wilson_interval

CONFIDENCE = 0.95
Z = NormalDist().inv_cdf(1.0 - (1.0 - CONFIDENCE) / 2.0)


@dataclass(frozen=True)
class Judged:
    """One measure judged against its threshold."""

    outcome: str  # "passed" | "failed" | "inconclusive"
    interval: tuple[float, float] | None
    decide_at: int | None = None  # inputs that would decide an inconclusive one, estimate held


def judge(value: float, threshold: float, op: str, interval: tuple[float, float] | None,
          spread: float | None, n: int) -> Judged:
    """``op`` "<=": the value must not exceed the threshold; ">=": must reach it. ``spread``:
    the per-input standard deviation, for the inputs that would decide."""
    good = value <= threshold if op == "<=" else value >= threshold
    if good or interval is None or not math.isfinite(value):
        return Judged("passed" if good else "failed", interval)
    low, high = interval
    beyond = low > threshold if op == "<=" else high < threshold
    if beyond:
        return Judged("failed", interval)
    return Judged("inconclusive", interval, inputs_to_decide(value, threshold, spread, n))


def inputs_to_decide(value: float, threshold: float, spread: float | None, n: int) -> int | None:
    """Inputs at which the 95% interval around ``value`` would exclude ``threshold``."""
    gap = abs(value - threshold)
    if spread is None or gap == 0 or not math.isfinite(gap) or not math.isfinite(spread):
        return None
    return max(n + 1, math.ceil((Z * spread / gap) ** 2))


def rate(successes: int, n: int) -> tuple[tuple[float, float], float]:
    """The Wilson interval of a share and its per-input spread."""
    p = successes / n
    return wilson_interval(successes, n, CONFIDENCE), math.sqrt(p * (1.0 - p))


def mean(values: Sequence[float] | np.ndarray[Any, Any]) -> tuple[tuple[float, float], float]:
    """A normal interval of a mean over inputs and the per-input spread."""
    data = np.asarray(values, dtype=np.float64)
    centre = float(data.mean())
    spread = float(data.std(ddof=1)) if len(data) > 1 else 0.0
    half = Z * spread / math.sqrt(len(data))
    return (centre - half, centre + half), spread


def paired_bootstrap(statistic_drop: Any, n: int, rounds: int = 400
                     ) -> tuple[tuple[float, float], float]:
    """A percentile interval of a paired difference with no closed form (macro-F1 drop), from
    ``rounds`` resamples of the ``n`` inputs; ``statistic_drop(indices)`` measures one. The
    generator's seed is fixed: the same inputs give the same interval in every run and on every
    pytest-xdist worker."""
    rng = np.random.default_rng(0)
    drops = np.array([statistic_drop(rng.integers(0, n, n)) for _ in range(rounds)])
    if not np.isfinite(drops).all():  # e.g. a perplexity that overflows: no usable interval
        return (float(np.nanmin(drops)), float(np.nanmax(drops))), math.inf
    low, high = np.percentile(drops, [100 * (1 - CONFIDENCE) / 2, 100 * (1 + CONFIDENCE) / 2])
    return (float(low), float(high)), float(drops.std(ddof=1)) * math.sqrt(n)


def paired_drop(lost: int, gained: int, n: int) -> tuple[tuple[float, float], float]:
    """Accuracy drop (reference minus backend) on the same ``n`` inputs: ``lost`` inputs the
    reference got right and the backend wrong, ``gained`` the other way round. Only these
    discordant pairs carry information about the difference (McNemar)."""
    delta = (lost - gained) / n
    var = max((lost + gained) / n - delta * delta, 0.0)  # per-input variance of the difference
    half = Z * math.sqrt(var / n)
    return (delta - half, delta + half), math.sqrt(var)
