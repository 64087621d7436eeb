"""``quantgate::<backend>::latency[bN]``: one item per batch size, timed by pytest-benchmark.

The item is a ``pytest.Function`` whose function asks for pytest-benchmark's ``benchmark``
fixture, so everything pytest-benchmark does with a test works on it: its table,
``--benchmark-autosave``, ``--benchmark-compare``, ``--benchmark-json``, ``--benchmark-skip``
and ``--benchmark-only``. ``extra_info`` carries the backend, precision, size, build time and
the backend's quality metrics. Under pytest-xdist (or ``--benchmark-disable``) pytest-benchmark
runs the function once without timing; the item then records why and the summary says so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from .items import DiagnosisItem, QuantgateFailure
from .state import State, state


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
                        "disabled with -p no:benchmark; pip install 'pytest-quantgate[latency]'")

        return latency_needs_pytest_benchmark

    def latency(benchmark: Any, request: pytest.FixtureRequest) -> None:
        measure(benchmark, request.config, backend, size)

    return latency


def measure(benchmark: Any, config: pytest.Config, backend: str, size: int) -> None:
    """Time ``runner.infer`` on the task's typical batch (``timing.LatencyRun``); record,
    compare, fail on a regression."""
    from ..errors import BackendUnavailable, QuantgateError
    from ..timing import LatencyRun, no_gc

    st = state(config)
    try:
        timed = LatencyRun(st.session(), backend, size)
    except BackendUnavailable as exc:
        benchmark.skipped = True  # pytest-benchmark: no "fixture not used" warning
        pytest.skip(str(exc))
    except QuantgateError as exc:
        benchmark.skipped = True
        raise QuantgateFailure(str(exc)) from None
    benchmark.group = f"quantgate latency, batch {size}"  # backends side by side
    benchmark.name = f"{backend}[b{size}]"  # the table's name column; ids stay the nodeids
    benchmark.extra_info.update(timed.extra_info())
    rounds = timed.plan()
    with no_gc():
        benchmark.pedantic(timed.infer, setup=timed.before_round, rounds=rounds,
                           warmup_rounds=timed.warmup, iterations=1)
    if benchmark.disabled:  # recorded as not timed, and the item says so: never a pass
        pytest.skip(timed.untimed(untimed_reason(config)).note)
    stats = timed.measured(benchmark.stats.stats.data)
    benchmark.extra_info.update(p50_s=stats.p50, p95_s=stats.p95,
                                items_per_second=stats.items_per_second,
                                peak_rss_bytes=stats.peak_rss_bytes,
                                peak_delta_bytes=stats.peak_delta_bytes,
                                load_per_core=stats.load_per_core, reference=stats.reference,
                                reference_rounds_s=list(stats.reference_rounds),
                                relative=stats.relative, unpaired=timed.unpaired or None)
    if st.compare is not None and stats.timed:
        text = st.compare.latency_regression(timed.gate, backend, stats,
                                             lambda: timed.retime(stats))
        if text:
            raise QuantgateFailure(text)
    expected = timed.expected_failure()
    if expected:  # xfail(strict) with the backend's other items
        raise QuantgateFailure(expected)


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
