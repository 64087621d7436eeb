"""``--quantgate-compare BASELINE`` and the accept step ``--quantgate-update``.

The baseline is read once at start-up (a missing or foreign file stops the run with one line).
Each gate item then compares its own measures with the baseline's and fails when one got worse
beyond its tolerance, showing baseline, now and the change; a latency item does the same with
its rounds. With ``--quantgate-update`` regressions are shown, not failed, and the baseline is
rewritten atomically at the end of the run with this run's report (backends this run did not
judge keep their baseline entries, so ``-k`` accepts one backend without dropping the rest).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .state import State

if TYPE_CHECKING:
    from ..compare.baseline import RunSummary
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

    @cached_property
    def warnings(self) -> list[str]:
        """What differs between the baseline's conditions and this run's (the manifest)."""
        if self.baseline is None or self.gate is None:
            return []
        from ..compare.baseline import RunSummary
        from ..compare.judge import machine_warnings

        return machine_warnings(self.baseline, RunSummary("this run", "quantgate",
                                                          current_manifest(self.gate)))

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

    def latency_regression(self, gate: GateSession, backend: str, stats: LatencyStats
                           ) -> str | None:
        if self.baseline is None:
            return None
        from ..compare.baseline import Timing
        from ..compare.judge import judge_latency

        base = self.baseline.latency.get((backend, stats.batch_size))
        if base is None:
            return None
        delta = judge_latency(backend, stats.batch_size, base,
                              Timing.of(stats.rounds, stats.load_per_core,
                                        reference=stats.reference,
                                        reference_rounds=stats.reference_rounds),
                              self.tolerances)
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


def current_manifest(gate: GateSession) -> dict[str, Any]:
    from ..manifest import build_manifest

    cfg = gate.config
    files = {"eval": cfg.eval, **({"calibration": cfg.calibration} if cfg.calibration else {})}
    return build_manifest(model_dir=cfg.model, data_files=files,
                          extra={"tokenizer": gate.encoder.source, "task": cfg.task})


def accept(st: State) -> Path | None:
    """Rewrite the baseline with this run's report (the controller only, never a worker)."""
    cmp = st.compare
    if cmp is None or not cmp.update or st.gate is None or os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    import json

    from ..cache import write_json_atomic
    from ..report.json_report import build_report

    report = build_report(st.gate)
    if cmp.path.exists():
        old = json.loads(cmp.path.read_text(encoding="utf-8"))
        for name, entry in (old.get("backends") or {}).items():
            if name not in report["backends"]:
                report["backends"][name] = entry  # not judged in this run: keep its baseline
            elif not report["backends"][name].get("latency") and entry.get("latency"):
                report["backends"][name]["latency"] = entry["latency"]
        report["not_run"] = [n for n in report.get("not_run", []) if n not in report["backends"]]
    write_json_atomic(cmp.path, report)
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
        lines = render_comparison(result, show_all=False)
        if cmp.update and result.regressions:
            lines[-1] += " (accepted: --quantgate-update)"
        for line in lines:
            reporter.write_line(line)
    if "baseline" in st.outcomes:
        reporter.write_line(f"quantgate baseline rewritten: {st.outcomes['baseline']}")
