"""``quantgate::<backend>::latency[bN]``: one item per batch size, timed by pytest-benchmark.

The item is a ``pytest.Function`` whose function asks for pytest-benchmark's ``benchmark``
fixture, so everything pytest-benchmark does with a test works on it: its table,
``--benchmark-autosave``, ``--benchmark-compare``, ``--benchmark-json``, ``--benchmark-skip``
and ``--benchmark-only``. ``extra_info`` carries the backend, precision, size, build time and
the backend's quality metrics. Under pytest-xdist (or ``--benchmark-disable``) pytest-benchmark
runs the function once without timing; the item then records why and the summary says so.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from .collection import DiagnosisItem
from .state import State, state

if TYPE_CHECKING:
    import numpy as np

    from ..backends.base import Runner
    from ..session import GateSession
    from ..tasks.text_classification import Shapes

EXTRA_INFO_VERSION = 1


class LatencyItem(DiagnosisItem, pytest.Function):
    """A gate item that takes the ``benchmark`` fixture."""

    backend: str
    batch_size: int


def latency_items(parent: pytest.Collector, backend: str, st: State) -> list[pytest.Item]:
    """One item per configured batch size (none unless ``latency`` is on)."""
    assert st.config is not None
    if not st.config.latency:
        return []
    has_benchmark = parent.config.pluginmanager.hasplugin("benchmark")
    items: list[pytest.Item] = []
    for size in st.config.latency_batch_sizes:
        # No originalname: pytest 9 builds the node id from it (it would drop "[bN]").
        item = LatencyItem.from_parent(parent, name=f"latency[b{size}]",
                                       callobj=_body(backend, size, has_benchmark))
        item.backend, item.batch_size = backend, size
        items.append(item)
    return items


def _body(backend: str, size: int, has_benchmark: bool) -> Callable[..., None]:
    if not has_benchmark:
        def latency_needs_pytest_benchmark() -> None:
            pytest.skip("latency is timed by pytest-benchmark, which is not installed or was "
                        "disabled with -p no:benchmark; pip install pytest-benchmark")

        return latency_needs_pytest_benchmark

    def latency(benchmark: Any, request: pytest.FixtureRequest) -> None:
        measure(benchmark, request.config, backend, size)

    return latency


def measure(benchmark: Any, config: pytest.Config, backend: str, size: int) -> None:
    """Time ``runner.infer`` on the typical batch; record, compare, fail on a regression."""
    from ..latency import (
        LatencyStats,
        load_per_core,
        peak_rss_bytes,
        planned_rounds,
        reset_peak,
        rss_bytes,
    )
    from ..tasks.text_classification import shape_policy
    from .collection import QuantgateFailure

    st = state(config)
    gate = st.session()
    cfg = gate.config
    records = gate.results(backend)  # quality first: extra_info carries it
    run = gate.run(backend)
    if run.status != "ok":
        benchmark.skipped = True  # pytest-benchmark: no "fixture not used" warning
        if run.status == "unavailable":
            pytest.skip(run.reason)
        raise QuantgateFailure(f"quantgate::{backend}::latency[b{size}] error: {run.reason}")
    runner = gate.runner(backend)
    shapes = shape_policy(runner, cfg.padding, size)
    if shapes.static_batch is not None and shapes.static_batch != size:
        benchmark.skipped = True
        pytest.skip(f"backend {backend!r} declares a static batch of {shapes.static_batch}; "
                    f"it cannot be timed at batch {size}")
    feed = timed_feed(gate, shapes, size)
    pair, unpaired = reference_pair(gate, size)
    info = run.info
    benchmark.group = f"quantgate latency, batch {size}"  # backends side by side
    benchmark.name = f"{backend}[b{size}]"  # the table's name column; ids stay the nodeids
    benchmark.extra_info.update({
        "quantgate": EXTRA_INFO_VERSION, "backend": backend, "kind": cfg.decl(backend).kind,
        "precision": run.precision, "batch_size": size,
        "sequence_length": int(feed["input_ids"].shape[1]),
        "size_bytes": info.size_bytes if info else None,
        "build_seconds": info.build_seconds if info else None,
        "metrics": dict(gate.metrics.get(backend, {})),
        "measures": {r.check: {m.name: [m.value, m.op] for m in r.measures}
                     for r in records.values() if r.measures},
        "verdicts": {r.check: r.verdict for r in records.values()},
    })
    # Memory first, in untimed calls of the backend alone: the paired reference rounds below
    # would add the reference's own peak to the high-water mark.
    before = rss_bytes()
    reset = reset_peak()
    took = 0.0
    for _ in range(max(1, cfg.latency_warmup)):
        took = _seconds(runner.infer, feed)
    peak = peak_rss_bytes()
    rounds = planned_rounds(cfg.latency_rounds, cfg.latency_seconds,
                            took + (_seconds(pair[0].infer, pair[1]) if pair else 0.0))
    paired: list[float] = []

    def reference_round() -> tuple[tuple[Any, ...], dict[str, Any]]:
        # pytest-benchmark calls this before every round, warm-up rounds included, untimed
        if pair is not None:
            paired.append(_seconds(pair[0].infer, pair[1]))
        return (feed,), {}

    with _no_gc():
        benchmark.pedantic(runner.infer, setup=reference_round, rounds=rounds,
                           warmup_rounds=cfg.latency_warmup, iterations=1)
    if benchmark.disabled:  # recorded as not timed, and the item says so: never a pass
        stats = LatencyStats.untimed(size, untimed_reason(config))
        gate.latency.setdefault(backend, {})[size] = stats
        pytest.skip(stats.note)
    else:
        stats = LatencyStats.from_rounds(
            size, list(benchmark.stats.stats.data), peak_rss_bytes=peak,
            peak_delta_bytes=peak - before if reset and before is not None else None,
            load_per_core=load_per_core(), reference=cfg.reference if pair else None,
            reference_rounds=paired[cfg.latency_warmup:cfg.latency_warmup + rounds],
            note=unpaired and f"not paired: {unpaired}")
        benchmark.extra_info.update(p50_s=stats.p50, p95_s=stats.p95,
                                    items_per_second=stats.items_per_second,
                                    peak_rss_bytes=stats.peak_rss_bytes,
                                    peak_delta_bytes=stats.peak_delta_bytes,
                                    load_per_core=stats.load_per_core,
                                    reference=stats.reference,
                                    reference_rounds_s=list(stats.reference_rounds),
                                    relative=stats.relative, unpaired=unpaired or None)
    gate.latency.setdefault(backend, {})[size] = stats
    if st.compare is not None and stats.timed:
        def retime() -> LatencyStats:  # a second timing of a suspected slowdown
            with _no_gc():
                ours, theirs = paired_rounds(runner, feed, pair, rounds)
            return LatencyStats.from_rounds(size, ours, reference=stats.reference,
                                            reference_rounds=theirs)

        text = st.compare.latency_regression(gate, backend, stats, retime)
        if text:
            raise QuantgateFailure(text)
    failing = [r.check for r in records.values() if r.verdict in ("failed", "error")]
    if backend in cfg.expect_fail and failing:  # xfail(strict) with the backend's other items
        raise QuantgateFailure(f"quantgate::{backend}::latency[b{size}] measured; the backend "
                               f"fails as expected on {', '.join(failing)}")


def paired_rounds(runner: Runner, feed: dict[str, np.ndarray],
                  pair: tuple[Runner, dict[str, np.ndarray]] | None, n: int
                  ) -> tuple[list[float], list[float]]:
    """``n`` rounds as pytest-benchmark times them: the reference's round, then ours."""
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(n):
        if pair is not None:
            theirs.append(_seconds(pair[0].infer, pair[1]))
        ours.append(_seconds(runner.infer, feed))
    return ours, theirs


def _seconds(infer: Callable[[Any], Any], feed: Any) -> float:
    start = time.perf_counter()
    infer(feed)
    return time.perf_counter() - start


@contextmanager
def _no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()  # a collection pause belongs to neither backend
    try:
        yield
    finally:
        gc.enable()


def timed_feed(gate: GateSession, shapes: Shapes, size: int) -> dict[str, np.ndarray]:
    """The typical batch of the eval set (windows of the corpus for a causal LM), as fed.

    Built once per shapes and size: every latency item at that size asks for it twice (its
    backend's feed and the reference's), and a causal LM's is cut from the corpus."""
    from ..latency import latency_feed

    cfg = gate.config
    key = (shapes, size)
    if key not in gate.feed_cache:
        if gate.is_lm:
            from ..tasks.causal_lm import lm_latency_feed

            feed = lm_latency_feed(gate.lm_source(), size, window=cfg.window, stride=cfg.stride,
                                   static_length=shapes.static_length,
                                   static_batch=shapes.static_batch)
        else:
            feed = latency_feed(gate.encoded, size, padding=cfg.padding,
                                pad_id=gate.encoder.pad_id, max_length=cfg.max_length,
                                static_length=shapes.static_length,
                                static_batch=shapes.static_batch)
        gate.feed_cache[key] = feed
    return dict(gate.feed_cache[key])  # a runner may replace an entry; the arrays are shared


def reference_pair(gate: GateSession, size: int
                   ) -> tuple[tuple[Runner, dict[str, np.ndarray]] | None, str]:
    """The reference's runner and its feed of the same texts, or None and why not."""
    from ..tasks.text_classification import shape_policy

    name = gate.config.reference
    run = gate.run(name)
    if run.status != "ok":
        return None, f"reference {name!r} did not run ({run.reason})"
    runner = gate.runner(name)
    shapes = shape_policy(runner, gate.config.padding, size)
    if shapes.static_batch is not None and shapes.static_batch != size:
        return None, f"reference {name!r} has a static batch of {shapes.static_batch}"
    return (runner, timed_feed(gate, shapes, size)), ""


def xdist_active(config: pytest.Config) -> bool:
    return bool(os.environ.get("PYTEST_XDIST_WORKER")) or \
        config.getoption("dist", "no") not in ("no", None)


def untimed_reason(config: pytest.Config) -> str:
    if xdist_active(config):
        return ("not timed: pytest-benchmark disables timing under pytest-xdist; run the latency "
                "items with -p no:xdist (or -n 0)")
    return "not timed: --benchmark-disable is on; drop it to time the latency items"


def write_latency(reporter: pytest.TerminalReporter, st: State) -> None:
    """The latency table: per backend and batch size, p50/p95, throughput and peak memory."""
    if st.config is None or not st.config.latency or st.snapshot is None:
        return
    from ..report.columns import number
    from ..report.table import render

    if xdist_active(reporter.config):
        reporter.write_line(untimed_reason(reporter.config) + " (quantgate latency)")
    measured = {name: e.latency for name, e in st.snapshot.backends.items() if e.latency}
    if not measured:
        return
    if "threads" in st.outcomes:
        reporter.write_line(f"WARNING (quantgate latency): {st.outcomes['threads']}")
    rows = []
    for backend, entries in measured.items():
        for size, s in sorted(entries.items(), key=lambda kv: int(kv[0])):
            p50, p95, rate = (number(s.get(k)) for k in ("p50", "p95", "items_per_second"))
            if not s.get("timed", True) or p50 is None:
                rows.append((backend, str(size), "-", "-", "-", "-", "-", "0", s.get("note", "")))
                continue
            delta, rss = number(s.get("peak_delta_bytes")), number(s.get("peak_rss_bytes"))
            peak = f"{delta / 1e6:.1f}" if delta is not None else "-"
            rss_mb = f"{rss / 1e6:.0f}" if rss is not None else "-"
            relative = number(s.get("relative"))
            speed = f"{1 / relative:.2f}x" if relative else "-"
            rows.append((backend, str(size), f"{p50 * 1e3:.3f}",
                         f"{(p95 or 0.0) * 1e3:.3f}", f"{rate or 0.0:.1f}", speed,
                         f"{peak} / {rss_mb}", str(len(s.get("rounds") or ())),
                         str(s.get("note") or "")))
    reporter.write_line("")
    reporter.write_line(f"latency (pytest-benchmark rounds; speedup: the reference "
                        f"{st.config.reference}'s time / this one's, per paired round; memory: "
                        "peak added / process peak, MB)")
    for line in render(rows, ("backend", "batch", "p50 ms", "p95 ms", "items/s", "speedup",
                              "peak MB", "rounds", "")):
        reporter.write_line(line)
