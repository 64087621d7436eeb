"""``--quantgate-compare BASELINE`` and the accept step ``--quantgate-update``.

The baseline is read once at start-up (a missing or foreign file stops the run with one line).
Each gate item then compares its own measures with the baseline's and fails when one got worse
beyond its tolerance, showing baseline, now and the change; a latency item does the same with
its rounds, and a suspected slowdown is timed a second time before it fails. With
``--quantgate-update`` regressions are shown, not failed, and the baseline is rewritten
atomically at the end of the run with this run's report (backends this run did not judge keep
their baseline entries, so ``-k`` accepts one backend without dropping the rest); each latency
entry keeps the runs accepted for the same code (``compare/history.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .state import State

if TYPE_CHECKING:
    from ..compare.baseline import RunSummary, Timing
    from ..compare.judge import Delta
    from ..compare.tolerances import Tolerances
    from ..latency import LatencyStats
    from ..session import GateSession


@dataclass
class CompareState:
    path: Path
    baseline: RunSummary | None  # None: nothing recorded yet (only with --quantgate-update)
    tolerances: Tolerances
    update: bool
    deltas: dict[str, list[Delta]] = field(default_factory=dict)  # by item id
    gate: GateSession | None = None
    manifest: dict[str, Any] | None = None  # this run's (the snapshot's, on the controller)
    _warnings: list[str] | None = None

    @property
    def warnings(self) -> list[str]:
        """What differs between the baseline's conditions and this run's (the manifest)."""
        if self._warnings is None:
            if self.manifest is None and self.gate is not None:
                self.manifest = self.gate.manifest
            if self.baseline is None or self.manifest is None:
                return []  # not known yet: asked again later
            from ..compare.baseline import RunSummary
            from ..compare.judge import machine_warnings

            self._warnings = machine_warnings(self.baseline, RunSummary(
                "this run", "quantgate", self.manifest))
        return self._warnings

    def regressed(self) -> dict[str, list[str]]:
        """backend -> checks worse than the baseline (none when accepting)."""
        out: dict[str, list[str]] = {}
        if self.update:
            return out
        for deltas in self.deltas.values():
            for d in deltas:
                if d.regressed and d.check not in out.get(d.backend, []):
                    out.setdefault(d.backend, []).append(d.check)
        return out

    def comparison(self) -> dict[str, Any] | None:
        """The baseline-against-now deltas of this run, for the reports."""
        if self.baseline is None:
            return None
        return {"baseline": str(self.path), "warnings": list(self.warnings),
                "deltas": [asdict(d) for ds in self.deltas.values() for d in ds]}

    def item_regression(self, gate: GateSession, backend: str, check: str) -> str | None:
        if self.baseline is None:
            return None
        from ..compare.judge import judge_measures

        base = self.baseline.measures.get(backend, {}).get(check)
        if not base:
            return None
        now = {m.name: (m.value, m.op) for m in gate.check(backend, check).measures}
        deltas = judge_measures(backend, check, base, now, self.tolerances)
        return self._record(gate, f"quantgate::{backend}::{check}", deltas)

    def latency_regression(self, gate: GateSession, backend: str, stats: LatencyStats,
                           retime: Callable[[], LatencyStats] | None = None) -> str | None:
        """A slowdown must show twice: ``retime`` times the item again when the first says so.

        The machine's slow spells last seconds and hit runtimes unevenly, so one timing of
        the same code can sit 20-30% off the baseline (docs/benchmarks.md); a real slowdown
        shows in the second timing too.
        """
        if self.baseline is None:
            return None
        from ..compare.judge import judge_latency

        base = self.baseline.latency.get((backend, stats.batch_size))
        if base is None:
            return None
        delta = judge_latency(backend, stats.batch_size, base, _timing(stats), self.tolerances)
        if delta.regressed and retime is not None and not self.update:
            again = judge_latency(backend, stats.batch_size, base, _timing(retime()),
                                  self.tolerances)
            word = "confirmed" if again.regressed else "not confirmed"
            delta = replace(delta, regressed=again.regressed, retimed=again.worse_by,
                            note=f"{delta.note}; {word} by a second timing ({again.worse_by:+.1%})")
        return self._record(gate, f"quantgate::{backend}::{delta.check}", [delta])

    def _record(self, gate: GateSession, nodeid: str, deltas: list[Delta]) -> str | None:
        from ..compare.judge import describe_source

        self.gate = gate
        self.deltas[nodeid] = deltas
        bad = [d for d in deltas if d.regressed]
        if not bad or self.update:
            return None
        assert self.baseline is not None
        text = (f"{nodeid} regressed against the baseline {describe_source(self.baseline)}: "
                + "; ".join(d.line() for d in bad)
                + "; if this change is intended, accept it with --quantgate-update")
        if self.warnings:
            text += f"\n  WARNING: the baseline ran under other conditions: {'; '.join(self.warnings)}"
        return text


def _timing(stats: LatencyStats) -> Timing:
    from ..compare.baseline import Timing

    return Timing.of(stats.rounds, stats.load_per_core, reference=stats.reference,
                     reference_rounds=stats.reference_rounds)


def setup_compare(config: pytest.Config, st: State) -> None:
    """Read the baseline named by ``compare`` / ``--quantgate-compare``; UsageError if unusable."""
    update = bool(config.getoption("quantgate_update", False))
    if st.config is None:
        if update:
            raise pytest.UsageError("quantgate: --quantgate-update: got no quantgate "
                                    "configuration, expected a [tool.quantgate] table; add one")
        return
    path = st.config.compare
    if path is None:
        if update:
            raise pytest.UsageError(
                "quantgate: --quantgate-update: got no baseline to rewrite, expected "
                "--quantgate-compare PATH (or compare = \"...\" in [tool.quantgate]); add it")
        return
    from ..compare.baseline import load_run
    from ..compare.tolerances import Tolerances
    from ..errors import DataError

    cli = dict(config.getoption("quantgate_tolerance", None) or [])
    tolerances = Tolerances.build(st.config.tolerances, cli)
    baseline = None
    if path.exists() or not update:
        try:
            baseline = load_run(path)
        except DataError as exc:
            raise pytest.UsageError(f"quantgate: {exc}") from None
        if update and baseline.kind != "quantgate":
            raise pytest.UsageError(
                f"quantgate: --quantgate-update: got a {baseline.kind} run at {str(path)!r}, "
                "expected a quantgate JSON report to rewrite; keep pytest-benchmark runs with "
                "--benchmark-save, and give --quantgate-compare a .json path of its own")
    st.compare = CompareState(path, baseline, tolerances, update)


def accept(st: State) -> Path | None:
    """Rewrite the baseline with this run's snapshot (the controller or a serial run only)."""
    cmp, snap = st.compare, st.snapshot
    if cmp is None or not cmp.update or snap is None or os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    import json

    from ..atomic import write_json_atomic
    from ..compare.accept import accepted_report, few_runs

    old = json.loads(cmp.path.read_text(encoding="utf-8")) if cmp.path.exists() else {}
    report = accepted_report(snap.to_dict(), old, tolerance=cmp.tolerances.latency,
                             same_conditions=not cmp.warnings)
    write_json_atomic(cmp.path, report)
    few = few_runs(report)
    if few:
        st.outcomes["few_runs"] = few
    return cmp.path


def write_comparison(reporter: pytest.TerminalReporter, st: State) -> None:
    cmp = st.compare
    if cmp is None:
        return
    from ..compare.judge import Comparison, describe_source
    from ..compare.render import render_comparison

    reporter.write_line("")
    if cmp.baseline is None:
        reporter.write_line(f"quantgate baseline: none yet at {cmp.path}; this run records it")
    else:
        result = Comparison(describe_source(cmp.baseline),
                            [d for ds in cmp.deltas.values() for d in ds], list(cmp.warnings))
        busy = [d for d in result.deltas if "oversubscribed" in d.note]
        if busy:
            result.notes.append(f"latency of {len(busy)} item(s) not judged: "
                                + busy[0].note.split("; machine ")[-1].replace(
                                    "oversubscribed", "machine oversubscribed", 1))
        cleared = [f"{d.backend} {d.check} {d.worse_by:+.1%} (second {d.retimed:+.1%})"
                   for d in result.deltas if d.retimed is not None and not d.regressed]
        if cleared:
            result.notes.append(f"latency that looked slower but a second timing did not "
                                f"confirm: {', '.join(cleared)}")
        lines = render_comparison(result, show_all=False)
        if cmp.update and result.regressions:
            lines[-1] += " (accepted: --quantgate-update)"
        for line in lines:
            reporter.write_line(line)
    if "baseline" in st.outcomes:
        reporter.write_line(f"quantgate baseline rewritten: {st.outcomes['baseline']}")
    if "baseline_error" in st.outcomes:
        reporter.write_line(st.outcomes["baseline_error"])
    if "few_runs" in st.outcomes:
        reporter.write_line(f"quantgate baseline: {st.outcomes['few_runs']}")
