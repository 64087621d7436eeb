"""Timing one backend at one batch size against the reference, without pytest.

The rounds themselves are timed by whoever drives this (the plugin hands ``infer`` to
pytest-benchmark's ``pedantic``); everything around them is here: quality first (the latency
record carries it), the batch the task times, memory measured in untimed calls of the backend
alone, how many rounds fit the time budget, the reference's round paired before each of ours
(``before_round``), the record the rounds make, a second timing of a suspected slowdown, and
the line an expected failure gets. ``latency.py`` holds the statistics and memory probes.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .compare.baseline import EXTRA_INFO_VERSION
from .errors import BackendError, BackendUnavailable
from .latency import (
    LatencyStats,
    load_per_core,
    peak_rss_bytes,
    planned_rounds,
    reset_peak,
    rss_bytes,
)
from .tasks.text_classification import shape_policy

if TYPE_CHECKING:
    import numpy as np

    from .backends.base import Runner
    from .session import GateSession
Pair = tuple["Runner", dict[str, "np.ndarray"]]


class LatencyRun:
    """One backend at one batch size: ``prepare`` it, time ``infer`` on ``feed`` for
    ``rounds`` rounds calling ``before_round`` before each (warm-up rounds too), then
    ``measured`` (or ``untimed``) records the result in the session."""

    def __init__(self, gate: GateSession, backend: str, size: int) -> None:
        self.gate, self.backend, self.size = gate, backend, size
        cfg = gate.config
        self.records = gate.results(backend)  # quality first: the record carries it
        run = gate.run(backend)
        if run.status == "unavailable":
            raise BackendUnavailable(run.reason)
        if run.status != "ok":
            raise BackendError(f"quantgate::{backend}::latency[b{size}] error: {run.reason}")
        self.run = run
        self.runner = gate.runner(backend)
        shapes = shape_policy(self.runner, cfg.padding, size)
        if shapes.static_batch is not None and shapes.static_batch != size:
            raise BackendUnavailable(f"backend {backend!r} declares a static batch of "
                                     f"{shapes.static_batch}; it cannot be timed at batch {size}")
        self.feed = gate.task.timed_feed(shapes, size)
        self.pair, self.unpaired = reference_pair(gate, size)
        self.warmup = cfg.latency_warmup
        self.paired: list[float] = []
        self.rounds = 0
        self._peak: int | None = None
        self._peak_delta: int | None = None

    @property
    def infer(self) -> Callable[[dict[str, np.ndarray]], Any]:
        return self.runner.infer

    def extra_info(self) -> dict[str, Any]:
        """What pytest-benchmark's JSON keeps beside the rounds: the backend and its quality."""
        cfg, info = self.gate.config, self.run.info
        return {
            "quantgate": EXTRA_INFO_VERSION, "backend": self.backend,
            "kind": cfg.decl(self.backend).kind, "precision": self.run.precision,
            "batch_size": self.size, "sequence_length": int(self.feed["input_ids"].shape[1]),
            "size_bytes": info.size_bytes if info else None,
            "build_seconds": info.build_seconds if info else None,
            "metrics": dict(self.gate.metrics.get(self.backend, {})),
            "measures": {r.check: {m.name: [m.value, m.op] for m in r.measures}
                         for r in self.records.values() if r.measures},
            "verdicts": {r.check: r.verdict for r in self.records.values()},
        }

    def plan(self) -> int:
        """Memory first, in untimed calls of the backend alone (the paired reference rounds
        would add the reference's own peak to the high-water mark); then the rounds that fit
        the configured time."""
        cfg = self.gate.config
        before = rss_bytes()
        reset = reset_peak()
        took = 0.0
        for _ in range(max(1, self.warmup)):
            took = seconds_of(self.runner.infer, self.feed)
        self._peak = peak_rss_bytes()
        self._peak_delta = (self._peak - before if reset and before is not None
                            and self._peak is not None else None)
        pair = seconds_of(self.pair[0].infer, self.pair[1]) if self.pair else 0.0
        self.rounds = planned_rounds(cfg.latency_rounds, cfg.latency_seconds, took + pair)
        return self.rounds

    def before_round(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The reference's round on the same texts, untimed by the driver, just before ours:
        both see the same drift of a shared machine's speed."""
        if self.pair is not None:
            self.paired.append(seconds_of(self.pair[0].infer, self.pair[1]))
        return (self.feed,), {}

    def measured(self, rounds: Sequence[float]) -> LatencyStats:
        stats = LatencyStats.from_rounds(
            self.size, list(rounds), peak_rss_bytes=self._peak,
            peak_delta_bytes=self._peak_delta, load_per_core=load_per_core(),
            reference=self.gate.config.reference if self.pair else None,
            reference_rounds=self.paired[self.warmup:self.warmup + self.rounds],
            note=self.unpaired and f"not paired: {self.unpaired}")
        return self._keep(stats)

    def untimed(self, reason: str) -> LatencyStats:
        """Recorded as not timed, with why: never a pass."""
        return self._keep(LatencyStats.untimed(self.size, reason))

    def _keep(self, stats: LatencyStats) -> LatencyStats:
        self.gate.latency.setdefault(self.backend, {})[self.size] = stats
        return stats

    def retime(self, stats: LatencyStats) -> LatencyStats:
        """A second timing of a suspected slowdown, paired as the first."""
        with no_gc():
            ours, theirs = paired_rounds(self.runner, self.feed, self.pair, self.rounds)
        return LatencyStats.from_rounds(self.size, ours, reference=stats.reference,
                                        reference_rounds=theirs)

    def expected_failure(self) -> str | None:
        """The line of a backend in ``expect_fail`` whose checks fail: its latency item then
        fails too, so that xfail(strict) treats the backend's items alike."""
        failing = [r.check for r in self.records.values() if r.verdict in ("failed", "error")]
        if self.backend in self.gate.config.expect_fail and failing:
            return (f"quantgate::{self.backend}::latency[b{self.size}] measured; the backend "
                    f"fails as expected on {', '.join(failing)}")
        return None


def reference_pair(gate: GateSession, size: int) -> tuple[Pair | None, str]:
    """The reference's runner and its feed of the same texts, or None and why not."""
    name = gate.config.reference
    run = gate.run(name)
    if run.status != "ok":
        return None, f"reference {name!r} did not run ({run.reason})"
    runner = gate.runner(name)
    shapes = shape_policy(runner, gate.config.padding, size)
    if shapes.static_batch is not None and shapes.static_batch != size:
        return None, f"reference {name!r} has a static batch of {shapes.static_batch}"
    return (runner, gate.task.timed_feed(shapes, size)), ""


def paired_rounds(runner: Runner, feed: dict[str, np.ndarray], pair: Pair | None, n: int
                  ) -> tuple[list[float], list[float]]:
    """``n`` rounds as pytest-benchmark times them: the reference's round, then ours."""
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(n):
        if pair is not None:
            theirs.append(seconds_of(pair[0].infer, pair[1]))
        ours.append(seconds_of(runner.infer, feed))
    return ours, theirs


def seconds_of(infer: Callable[[Any], Any], feed: Any) -> float:
    start = time.perf_counter()
    infer(feed)
    return time.perf_counter() - start


@contextmanager
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()  # a collection pause belongs to neither backend
    try:
        yield
    finally:
        gc.enable()
