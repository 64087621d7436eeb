"""This run against a baseline (``--quantgate-compare``), and the accept step
(``--quantgate-update``), without pytest: the plugin asks it per item and at the end.

Each gate item compares its own measures with the baseline's and fails when one got worse
beyond its tolerance, showing baseline, now and the change; a latency item does the same with
its rounds, and a suspected slowdown is timed a second time before it fails. When accepting,
regressions are shown, not failed, and the baseline is rewritten atomically with this run's
snapshot (``accept.py``: backends this run did not judge keep their entries).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ConfigError, problem

if TYPE_CHECKING:
    from ..latency import LatencyStats
    from ..records import CheckResult
    from ..snapshot import RunSnapshot
    from .baseline import RunSummary, Timing
    from .judge import Delta
    from .tolerances import Tolerances


class GateSession(Protocol):
    """What the comparison reads of the run (``session.GateSession`` is one)."""

    @property
    def manifest(self) -> dict[str, Any]: ...

    def check(self, name: str, check: str) -> CheckResult: ...


def open_comparison(path: Path, tolerances: Tolerances, *, update: bool) -> CompareState:
    """The baseline at ``path`` read once; ``DataError``/``ConfigError`` with one line when it
    cannot be compared with (or, when ``update``, rewritten)."""
    from .baseline import load_run

    baseline = None
    if path.exists() or not update:
        baseline = load_run(path)
        if update and baseline.kind != "quantgate":
            raise ConfigError(  # problem()'s form, without quoting the description
                f"--quantgate-update: got a {baseline.kind} run at {str(path)!r}, expected a "
                "quantgate JSON report to rewrite; keep pytest-benchmark runs with "
                "--benchmark-save, and give --quantgate-compare a .json path of its own")
        if not update and not any(baseline.measures.values()) and not baseline.latency:
            # "0 regressions in 0 comparisons" would read as a pass
            raise ConfigError(problem(f"baseline {path}", "no measures", "a report with judged "
                                      "backends to compare with", "record one with "
                                      "--quantgate-update (a run whose backends all errored "
                                      "measured nothing)"))
    return CompareState(path, baseline, tolerances, update)


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
            from .baseline import RunSummary
            from .judge import machine_warnings

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
        from .judge import judge_measures

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
        from .judge import judge_latency

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
        from .judge import describe_source

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

    def accept(self, snapshot: RunSnapshot) -> str | None:
        """Rewrite the baseline with ``snapshot``; a line when its latency rests on few runs."""
        from ..atomic import write_json_atomic
        from .accept import accepted_report, few_runs

        old = json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
        report = accepted_report(snapshot.to_dict(), old, tolerance=self.tolerances.latency,
                                 same_conditions=not self.warnings)
        write_json_atomic(self.path, report)
        return few_runs(report)


def _timing(stats: LatencyStats) -> Timing:
    from .baseline import Timing

    return Timing.of(stats.rounds, stats.load_per_core, reference=stats.reference,
                     reference_rounds=stats.reference_rounds)
