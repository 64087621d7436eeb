"""How much worse than the baseline a measure may get before it counts as a regression.

A tolerance is an absolute amount, a share of the baseline value (``"25%"``), or both
(``"25% + 0.001"``). Defaults rest on what moves between two runs of the same commit: quality
measures of a deterministic backend on the same inputs do not move at all, so a tolerance is
the size of change worth failing CI for; logit differences are judged relatively because their
scale is the model's.

Two keys are not measures: ``latency`` is the smallest slowdown that counts (a share of the
baseline's median), and ``alpha`` the significance level of the one-sided test that it is real.
No numpy here: configuration validation imports this module.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, problem


@dataclass(frozen=True)
class Tolerance:
    """Allowed worsening: ``absolute + relative * |baseline|``."""

    absolute: float = 0.0
    relative: float = 0.0

    def allowed(self, baseline: float) -> float:
        return self.absolute + self.relative * abs(baseline)

    def __str__(self) -> str:
        parts = ([f"{self.relative * 100:g}%"] if self.relative else []) + (
            [f"{self.absolute:g}"] if self.absolute or not self.relative else [])
        return " + ".join(parts)


DEFAULTS: dict[str, Tolerance] = {
    "max_abs_logit": Tolerance(0.001, 0.25),
    "mean_abs_logit": Tolerance(0.0001, 0.25),
    "kl_div": Tolerance(0.00001, 0.5),
    "top1_agreement": Tolerance(0.005),
    "topk_overlap": Tolerance(0.01),
    "accuracy_delta": Tolerance(0.005),
    "f1_delta": Tolerance(0.01),
    # causal LM: a further 0.1% of perplexity (relative to the run's own reference) or a quarter
    # of the baseline's increase, whichever is larger
    "ppl_delta": Tolerance(0.001, 0.25),
    # embeddings (docs/embeddings.md): cosines sit near 1, so the tolerances are absolute; the
    # lowest cosine is one input (a wider margin), the mean is over every input; the neighbour
    # overlap and recall drop as top-k overlap and the accuracy drop
    "min_cosine": Tolerance(0.005),
    "min_cosine_mean": Tolerance(0.0005),
    "neighbour_overlap": Tolerance(0.01),
    "recall_delta": Tolerance(0.005),
}
FALLBACK = Tolerance(0.0, 0.10)  # a measure without a default (a check added later): 10% worse
# A slowdown under 20% of the baseline's median is not a regression: on a shared 2-vCPU VM the
# same code's ratio to the reference drifted by up to 15% in both timings over a quarter of an
# hour (docs/benchmarks.md, decision 26). A quiet dedicated runner can use "10%".
LATENCY = 0.20
ALPHA = 0.01  # one-sided test; with ~20 rounds a side, a real 30% slowdown gives p << 0.001
SPECIAL = ("latency", "alpha")


def parse(value: Any, where: str, key: str) -> Tolerance | float:
    """One tolerance value: a number >= 0, ``"N%"`` or ``"N% + M"``; latency/alpha a share."""
    if key in SPECIAL:
        share = _share(value)
        ok_range = share is not None and (0 < share < 1 if key == "alpha" else share >= 0)
        if share is None or not ok_range:
            expected = "a number between 0 and 1" if key == "alpha" else "a share such as '10%'"
            example = "0.01" if key == "alpha" else "'10%'"
            raise ConfigError(problem(f"{where}: {key}", value, expected, f"e.g. {key} = {example}"))
        return share
    tol = _tolerance(value)
    if tol is None:
        raise ConfigError(problem(f"{where}: {key}", value,
                                  "a number >= 0, a share such as '25%', or '25% + 0.001'",
                                  f"e.g. {key} = 0.005"))
    return tol


def validate_tolerances(table: Any, where: str) -> dict[str, Tolerance | float]:
    """The ``[tool.quantgate.tolerances]`` table, validated: measure name -> tolerance."""
    if not isinstance(table, Mapping):
        raise ConfigError(problem(where, table, "a table of measure = tolerance",
                                  "write [tool.quantgate.tolerances] with e.g. top1_agreement = 0.005"))
    return {str(k): parse(v, where, str(k)) for k, v in table.items()}


def parse_cli(text: str) -> tuple[str, Tolerance | float]:
    """``NAME=VALUE`` from ``--quantgate-tolerance``; argparse reports a bad one at parse time."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(problem("--tolerance", text, "NAME=VALUE",
                                                 "e.g. top1_agreement=0.005 or latency=15%"))
    raw: Any = value.strip()
    try:
        raw = float(raw)
    except ValueError:
        pass
    try:
        return name.strip(), parse(raw, "--tolerance", name.strip())
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@dataclass(frozen=True)
class Tolerances:
    """Resolved tolerances: the defaults, then the table, then the command line."""

    measures: Mapping[str, Tolerance]
    latency: float = LATENCY
    alpha: float = ALPHA

    @classmethod
    def build(cls, *overrides: Mapping[str, Tolerance | float]) -> Tolerances:
        merged: dict[str, Tolerance | float] = {}
        for layer in overrides:
            merged.update(layer)
        measures = {**DEFAULTS, **{k: v for k, v in merged.items() if isinstance(v, Tolerance)}}
        latency = merged.get("latency", LATENCY)
        alpha = merged.get("alpha", ALPHA)
        assert isinstance(latency, float) and isinstance(alpha, float)
        return cls(measures, latency, alpha)

    def of(self, name: str) -> Tolerance:
        return self.measures.get(name, FALLBACK)


def _share(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1]) / 100
        except ValueError:
            return None
    return None


def _tolerance(value: Any) -> Tolerance | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return Tolerance(float(value)) if math.isfinite(value) and value >= 0 else None
    if not isinstance(value, str):
        return None
    absolute = relative = 0.0
    for part in value.split("+"):
        part = part.strip()
        try:
            if part.endswith("%"):
                relative += float(part[:-1]) / 100
            else:
                absolute += float(part)
        except ValueError:
            return None
    if absolute < 0 or relative < 0 or not (math.isfinite(absolute) and math.isfinite(relative)):
        return None
    return Tolerance(absolute, relative)
