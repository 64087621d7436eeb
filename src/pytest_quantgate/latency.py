"""Latency: which batch is timed, what the timed rounds say, and how much memory they took.

The timing itself is pytest-benchmark's (the plugin hands it ``runner.infer``, which waits on
the device through the runner's ``_synchronize`` hook); this module only chooses the input and
summarises the rounds, so it is testable without pytest.

Which batch is timed is the task's choice (``Task.timed_feed``): the same on every run of the
same eval set, e.g. for classification ``tasks.batching.latency_feed``.

Each round of a backend is paired with a round of the reference backend on the same texts, run
just before it. A shared VM's speed drifts by tens of percent within seconds and between
processes (docs/benchmarks.md); both rounds of a pair see the same drift, so the per-round ratio
backend / reference is what comparisons across commits judge, not the raw seconds.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class LatencyStats:
    """Summary of the timed rounds of one backend at one batch size (seconds per call)."""

    batch_size: int
    rounds: tuple[float, ...]
    p50: float
    p95: float
    mean: float
    stddev: float
    items_per_second: float
    peak_rss_bytes: int | None = None  # process high-water mark during the rounds
    peak_delta_bytes: int | None = None  # that minus the resident memory before them
    timed: bool = True
    note: str = ""
    load_per_core: float | None = None  # 1-minute load average / usable cores, after the rounds
    reference: str | None = None  # the backend whose rounds are paired with these
    reference_rounds: tuple[float, ...] = ()  # its round just before each of ours, same texts
    relative: float | None = None  # median over rounds of ours / the reference's (<1: faster)

    @classmethod
    def from_rounds(cls, batch_size: int, rounds: Sequence[float], *,
                    peak_rss_bytes: int | None = None, peak_delta_bytes: int | None = None,
                    load_per_core: float | None = None, reference: str | None = None,
                    reference_rounds: Sequence[float] = (), note: str = "") -> LatencyStats:
        data = np.asarray(rounds, dtype=np.float64)
        if data.size == 0:
            raise ValueError("latency rounds: got none, expected at least one timed round")
        paired = tuple(float(x) for x in reference_rounds)
        if paired and len(paired) != data.size:
            raise ValueError(f"latency reference rounds: got {len(paired)}, expected one per "
                             f"timed round ({data.size})")
        p50 = float(np.percentile(data, 50))
        return cls(batch_size, tuple(float(x) for x in data), p50, float(np.percentile(data, 95)),
                   float(data.mean()), float(data.std(ddof=1)) if data.size > 1 else 0.0,
                   batch_size / p50 if p50 > 0 else float("inf"), peak_rss_bytes,
                   peak_delta_bytes, note=note, load_per_core=load_per_core,
                   reference=reference if paired else None, reference_rounds=paired,
                   relative=paired_ratio(data, paired) if paired else None)

    @property
    def speedup(self) -> float | None:
        """How many times faster than the reference, per paired round (None: not paired)."""
        return 1 / self.relative if self.relative else None

    @classmethod
    def untimed(cls, batch_size: int, note: str) -> LatencyStats:
        nan = float("nan")
        return cls(batch_size, (), nan, nan, nan, nan, nan, timed=False, note=note)

    def to_dict(self) -> dict[str, Any]:
        data = {k: (None if isinstance(v, float) and v != v else v)  # NaN is not JSON
                for k, v in asdict(self).items()}
        data["rounds"] = list(self.rounds)
        data["reference_rounds"] = list(self.reference_rounds)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyStats:
        fields: dict[str, Any] = {k: float("nan") if v is None and k in _FLOATS else v
                                  for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**fields, "rounds": tuple(float(x) for x in data.get("rounds", ())),
                      "reference_rounds": tuple(float(x)
                                                for x in data.get("reference_rounds") or ())})


_FLOATS = ("p50", "p95", "mean", "stddev", "items_per_second")


# A cap on the rounds a time budget buys: a backend timed in microseconds would otherwise fill
# the report with hundreds of thousands of rounds.
MAX_ROUNDS = 2000


def planned_rounds(minimum: int, seconds: float, pair_seconds: float) -> int:
    """Rounds for one item: ``minimum``, or as many paired rounds as fit in ``seconds``.

    A shared VM's speed drifts over seconds (docs/benchmarks.md), so the rounds of a cheap
    item timed for a fraction of a second see one state of the machine; spread over the budget
    they see several, and the runs' medians agree better (60 rounds: 6.1% between-run spread
    per item; 400: 4.7%).
    """
    if seconds <= 0 or not pair_seconds > 0:
        return minimum
    return max(minimum, min(MAX_ROUNDS, int(seconds / pair_seconds)))


def paired_ratio(rounds: Sequence[float] | np.ndarray, reference_rounds: Sequence[float]) -> float:
    """Median of the per-round ratios: the backend's time as a share of the reference's."""
    return float(np.median(np.asarray(rounds, dtype=np.float64)
                           / np.asarray(reference_rounds, dtype=np.float64)))


def passive_thread_pools() -> str | None:
    """Let idle OpenMP threads sleep instead of spinning; a warning when it comes too late.

    The gate runs several runtimes in one process and times them in alternation. By default an
    idle OpenMP pool (PyTorch's) spins for a while after each call, as does ONNX Runtime's
    (turned off per session in ``onnx_runner``), and on a small machine the spinning pool of the
    runtime not being timed takes the cores of the one that is: measured on 2 vCPUs, the paired
    ratios moved 0.2-3.3x between runs with both pools spinning, 0.4-2.5x with either one
    quiet, and 0.84-1.12x with both quiet. libgomp reads the variable once, when PyTorch loads
    it, so it is set before any import of torch; a user's own value is kept.
    """
    import os
    import sys

    if "OMP_WAIT_POLICY" in os.environ:
        return None
    if "torch" in sys.modules:
        return ("torch was imported before quantgate could set OMP_WAIT_POLICY=PASSIVE (by a "
                "conftest or plugin?): its idle threads spin and slow the other backends' "
                "timed rounds; export OMP_WAIT_POLICY=PASSIVE before running pytest")
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return None


def load_per_core() -> float | None:
    """The 1-minute load average per usable core (None where the OS does not say)."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
        return os.getloadavg()[0] / max(1, cores)
    except (AttributeError, OSError):
        return None


def _status_kb(key: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_bytes() -> int | None:
    """Resident memory of this process now (Linux; None elsewhere)."""
    return _status_kb("VmRSS")


def reset_peak() -> bool:
    """Reset the process's resident high-water mark (Linux >= 4.0); False where it cannot."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    """The resident high-water mark (since the last ``reset_peak``, where that worked)."""
    peak = _status_kb("VmHWM")
    if peak is not None:
        return peak
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # kB on Linux
