"""Comparison with a baseline: tolerances, measure deltas, the latency test, baseline files."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pytest

from pytest_quantgate.compare.baseline import Timing, load_run, summarize
from pytest_quantgate.compare.judge import compare_runs, judge_latency, judge_measures
from pytest_quantgate.compare.tolerances import (
    Tolerance,
    Tolerances,
    parse_cli,
    validate_tolerances,
)
from pytest_quantgate.errors import ConfigError, DataError

TOL = Tolerances.build()


# -- tolerances ---------------------------------------------------------------------------------

def test_tolerance_forms() -> None:
    got = validate_tolerances({"top1_agreement": 0.01, "max_abs_logit": "50%",
                               "kl_div": "10% + 0.001", "latency": "15%", "alpha": 0.05}, "t")
    assert got["top1_agreement"] == Tolerance(0.01)
    assert got["max_abs_logit"] == Tolerance(0.0, 0.5)
    assert got["kl_div"] == Tolerance(0.001, 0.1)
    tol = Tolerances.build(got)
    assert (tol.latency, tol.alpha) == (0.15, 0.05)
    assert tol.of("kl_div").allowed(0.02) == pytest.approx(0.003)
    assert tol.of("a_new_measure").allowed(2.0) == pytest.approx(0.2)  # the 10% fallback
    assert str(Tolerance(0.001, 0.1)) == "10% + 0.001"


@pytest.mark.parametrize(("key", "value", "text"), [
    ("top1_agreement", -0.1, "t: top1_agreement: got -0.1, expected a number >= 0, a share such "
     "as '25%', or '25% + 0.001'; e.g. top1_agreement = 0.005"),
    ("f1_delta", "lots", "t: f1_delta: got 'lots', expected a number >= 0"),
    ("alpha", 1.5, "t: alpha: got 1.5, expected a number between 0 and 1; e.g. alpha = 0.01"),
    ("latency", "fast", "t: latency: got 'fast', expected a share such as '10%'; "
     "e.g. latency = '10%'"),
])
def test_bad_tolerances_say_what_and_how(key: str, value: object, text: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(text)):
        validate_tolerances({key: value}, "t")


def test_cli_tolerance_is_rejected_at_parse_time() -> None:
    assert parse_cli("latency=15%") == ("latency", 0.15)
    assert parse_cli("top1_agreement=0.02") == ("top1_agreement", Tolerance(0.02))
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(
            "--tolerance: got 'latency', expected NAME=VALUE; e.g. top1_agreement=0.005")):
        parse_cli("latency")


# -- measures -----------------------------------------------------------------------------------

def test_measures_regress_only_beyond_tolerance_in_their_direction() -> None:
    base = {"top1_agreement": (0.98, ">="), "max_abs_logit": (0.2, "<=")}
    same = judge_measures("b", "topk", base, base, TOL)
    assert [d.regressed for d in same] == [False, False]
    better = judge_measures("b", "topk", base, {"top1_agreement": (0.99, ">="),
                                                "max_abs_logit": (0.1, "<=")}, TOL)
    assert not any(d.regressed for d in better)
    small = judge_measures("b", "topk", base, {"top1_agreement": (0.977, ">="),
                                               "max_abs_logit": (0.24, "<=")}, TOL)
    assert not any(d.regressed for d in small)  # within 0.005 and 25% + 0.001
    worse = judge_measures("b", "topk", base, {"top1_agreement": (0.95, ">="),
                                               "max_abs_logit": (0.3, "<=")}, TOL)
    assert [d.regressed for d in worse] == [True, True]
    assert worse[0].line() == "top1_agreement 0.98 -> 0.95 (-0.03; allowed worse by 0.005)"


# -- latency ------------------------------------------------------------------------------------

def _rounds(seed: int, median: float, n: int = 20) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(median * (1 + np.abs(rng.normal(0, 0.03, n))))  # right-skewed like real timings


def test_identical_latency_passes_and_30_percent_slower_is_flagged() -> None:
    base = Timing.of(_rounds(0, 0.010))
    for seed in range(1, 6):
        assert not judge_latency("b", 32, base, Timing.of(_rounds(seed, 0.010)), TOL).regressed
    slow = judge_latency("b", 32, base, Timing.of(_rounds(9, 0.013)), TOL)
    assert slow.regressed and slow.worse_by == pytest.approx(0.3, abs=0.05)
    assert "Mann-Whitney p=" in slow.line() and slow.check == "latency[b32]"


def test_a_small_significant_drift_is_not_a_regression() -> None:
    base = Timing.of([0.010 + i * 1e-6 for i in range(20)])
    drift = judge_latency("b", 1, base, Timing.of([0.0105 + i * 1e-6 for i in range(20)]), TOL)
    assert "p=" in drift.note and not drift.regressed  # significant, but 5% < 10%


def test_latency_from_summary_statistics_uses_welch() -> None:
    base = Timing((), 20, 0.010, 0.0003, 0.010)
    slow = judge_latency("b", 1, base, Timing.of(_rounds(3, 0.013)), TOL)
    assert slow.regressed and "Welch" in slow.note
    assert not judge_latency("b", 1, base, Timing.of(_rounds(4, 0.010)), TOL).regressed


def _paired(seed: int, speed: float, share: float, n: int = 20) -> Timing:
    """Rounds on a machine of speed ``speed`` (drifting within the run); the backend takes
    ``share`` of the reference's time on the same round."""
    rng = np.random.default_rng(seed)
    machine = speed * (1 + 0.3 * np.sin(np.arange(n) / 3))  # the host speeds up and slows down
    reference = machine * 0.010 * (1 + np.abs(rng.normal(0, 0.02, n)))
    ours = reference * share * (1 + rng.normal(0, 0.02, n))
    return Timing.of(list(ours), reference="ref", reference_rounds=list(reference))


def test_paired_rounds_cancel_the_machine_and_keep_the_slowdown() -> None:
    base = _paired(0, 1.0, 0.5)
    for seed, speed in ((1, 1.6), (2, 0.7), (3, 1.0)):  # the same code on a slower/faster host
        same = judge_latency("b", 32, base, _paired(seed, speed, 0.5), TOL)
        assert not same.regressed and same.name == "time / ref", same.line()
    slow = judge_latency("b", 32, base, _paired(4, 0.7, 0.65), TOL)  # 30% slower, faster host
    assert slow.regressed and slow.worse_by == pytest.approx(0.3, abs=0.05)
    assert slow.baseline == pytest.approx(0.5, abs=0.02) and "p50 " in slow.note
    # the raw times of that slow run are faster than the baseline's: only the pairs see it
    before, after = (float(x) for x in slow.note.split("p50 ")[1].split(" ms")[0].split(" -> "))
    assert after < before


def test_unpaired_or_differently_paired_rounds_fall_back_to_raw_times() -> None:
    paired = _paired(0, 1.0, 0.5)
    raw = Timing.of(list(paired.rounds))
    assert raw.relative == () and raw.reference is None
    for base, now, why in ((raw, paired, "the baseline's rounds are not paired"),
                           (paired, raw, "this run's rounds are not paired"),
                           (paired, Timing.of(list(paired.rounds), reference="other",
                                              reference_rounds=[0.01] * 20),
                            "the runs were paired with different references (ref, other)")):
        delta = judge_latency("b", 1, base, now, TOL)
        assert delta.name == "p50 ms" and f"raw times: {why}" in delta.note


def test_reference_rounds_must_match_the_rounds() -> None:
    # a mismatched count (a truncated file) is not paired, never misaligned
    assert Timing.of([0.01] * 5, reference="ref", reference_rounds=[0.02] * 4).relative == ()


# -- baseline files -----------------------------------------------------------------------------

def _report(top1: float, rounds: list[float]) -> dict[str, object]:
    return {"format": "pytest-quantgate-report", "version": 1,
            "manifest": {"machine": {"cpu": "X", "cpu_flags": ["avx2"]}, "git": {"commit": "abc"}},
            "backends": {"b": {"verdict": "PASS", "checks": [
                {"check": "topk", "measures": [{"name": "top1_agreement", "value": top1,
                                                "op": ">="}]}],
                "latency": {"32": {"rounds": rounds, "timed": True}}}}}


def test_report_and_benchmark_run_read_alike(tmp_path: Path) -> None:
    report = summarize(_report(0.98, [0.01] * 5), "r.json")
    assert report.measures == {"b": {"topk": {"top1_agreement": (0.98, ">=")}}}
    assert report.latency[("b", 32)].n == 5 and report.commit == "abc"
    bench = {"machine_info": {"cpu": {"brand_raw": "Y"}}, "commit_info": {"id": "def"},
             "benchmarks": [
                 {"extra_info": {"quantgate": 1, "backend": "b", "batch_size": 32, "measures": {
                     "topk": {"top1_agreement": [0.9, ">="]}}}, "stats": {"data": [0.02] * 4}},
                 {"extra_info": {}, "stats": {"data": [1.0]}}]}  # a user's own benchmark
    path = tmp_path / "0001_run.json"
    path.write_text(json.dumps(bench))
    run = load_run(path)
    assert run.kind == "pytest-benchmark" and run.measures["b"]["topk"]["top1_agreement"][0] == 0.9
    assert list(run.latency) == [("b", 32)]
    result = compare_runs(report, run, TOL)
    assert [d.name for d in result.regressions] == ["top1_agreement", "p50 ms"]


def test_unusable_baselines_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=re.escape(
            "expected an existing quantgate JSON report or pytest-benchmark saved run; record "
            "one with --quantgate-update")):
        load_run(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(DataError, match=re.escape("x.json: format: got ['hello'], expected a "
                                                  "'pytest-quantgate-report' report")):
        load_run(tmp_path / "x.json")
    with pytest.raises(DataError, match=re.escape("report version: got 9, expected <= 3; "
                                                  "upgrade pytest-quantgate")):
        summarize({"format": "pytest-quantgate-report", "version": 9}, "r")


def test_machine_differences_are_warnings() -> None:
    a = summarize(_report(0.98, [0.01] * 5), "a")
    b = summarize(_report(0.98, [0.01] * 5), "b")
    assert b.manifest is not None
    b.manifest["machine"] = {"cpu": "Z", "cpu_flags": ["avx2", "avx512_vnni"]}
    warnings = compare_runs(a, b, TOL).warnings
    assert any("CPU instruction sets differ" in w for w in warnings)
    assert any(w.startswith("CPU: baseline X, current Z (latency is not comparable)")
               for w in warnings)


def test_latency_on_an_oversubscribed_machine_is_not_judged() -> None:
    base = Timing.of(_rounds(0, 0.010), load_per_core=0.8)
    busy = judge_latency("b", 1, base, Timing.of(_rounds(9, 0.016), load_per_core=4.0), TOL)
    assert not busy.regressed
    assert busy.note.endswith("; not judged; machine oversubscribed (load per core 0.8 in the "
                              "baseline, 4.0 now; rerun on a quiet machine)")
    quiet = judge_latency("b", 1, base, Timing.of(_rounds(9, 0.016), load_per_core=0.9), TOL)
    assert quiet.regressed


def test_cli_compare_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_quantgate.cli import main

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_report(0.98, _rounds(0, 0.010))))
    b.write_text(json.dumps(_report(0.98, _rounds(1, 0.010))))
    assert main(["compare", str(a), str(b), "--all"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"b +latency\[b32\] +p50 ms", out)
    assert out.rstrip().endswith("0 regressions in 2 comparisons")
    b.write_text(json.dumps(_report(0.90, _rounds(1, 0.010))))
    assert main(["compare", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"b +topk +top1_agreement +0\.98 +0\.9 +-0\.08 +0\.005 +REGRESSED", out)
    assert main(["compare", str(a), str(b), "--tolerance", "top1_agreement=0.1"]) == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(tmp_path / "none.json")]) == 2
    assert "quantgate: baseline: got '" in capsys.readouterr().err
    assert main(["show", str(a)]) == 0
    out = capsys.readouterr().out
    assert "machine: X (avx2)" in out and re.search(r"\nb +32 +10\.\d+ +10\.\d+ +20 ", out)


def test_generated_inputs_and_measured_only_values_are_not_compared() -> None:
    # The adversarial corpus is drawn afresh each run: its worst input is no regression of the
    # code. A causal LM's ppl is measured only (threshold-free); ppl_delta is what is judged.
    tol = Tolerances.build()
    assert judge_measures("b", "adversarial", {"max_abs_logit": (0.1, "<=")},
                          {"max_abs_logit": (5.0, "<=")}, tol) == []
    deltas = judge_measures("b", "ppl", {"ppl": (20.0, ""), "ppl_delta": (0.001, "<=")},
                            {"ppl": (40.0, ""), "ppl_delta": (0.5, "<=")}, tol)
    assert [(d.name, d.regressed) for d in deltas] == [("ppl_delta", True)]


# -- accepted runs and a second timing ----------------------------------------------------------

def _entry(ratio: float, reference: str = "ref", **extra: object) -> dict[str, object]:
    return {"relative": ratio, "reference": reference, **extra}


def _theirs(t: Timing) -> list[float]:
    """The reference's rounds a paired timing was computed from."""
    return [a / r for a, r in zip(t.rounds, t.relative, strict=True)]


def test_accepted_runs_grow_within_their_range_and_restart_outside_it() -> None:
    from pytest_quantgate.compare.history import ACCEPTED_RUNS, accepted_runs

    def accept(old: dict[str, object] | None, ratio: float, same: bool = True,
               reference: str = "ref") -> list[dict[str, object]]:
        return accepted_runs(old, _entry(ratio, reference), tolerance=0.1, same_conditions=same,
                             commit="c")

    runs = accept(None, 0.50)
    assert runs == [{"relative": 0.50, "commit": "c"}]
    for ratio in (0.52, 0.48, 0.51, 0.53, 0.49):  # the same code, run again: kept, newest last
        runs = accept(_entry(runs[-1]["relative"], accepted=runs), ratio)  # type: ignore[arg-type]
    assert [r["relative"] for r in runs] == [0.52, 0.48, 0.51, 0.53, 0.49]
    assert len(runs) == ACCEPTED_RUNS
    old = _entry(0.49, accepted=runs)
    assert [r["relative"] for r in accept(old, 0.65)] == [0.65]  # an accepted slowdown
    assert [r["relative"] for r in accept(old, 0.40)] == [0.40]  # an accepted speed-up
    assert len(accept(old, 0.50, same=False)) == 1  # another machine or library versions
    assert len(accept(old, 0.50, reference="other")) == 1
    # a baseline written before histories counts as one accepted run; an unpaired run keeps none
    assert [r["relative"] for r in accept(_entry(0.5), 0.52)] == [0.5, 0.52]
    assert accepted_runs(None, {"relative": None}, tolerance=0.1, same_conditions=True,
                         commit=None) == []


def test_several_accepted_runs_move_the_bar_to_their_median() -> None:
    # The stored rounds are the last accepted run's, which happened to be fast (0.40); the
    # runs before it sat at 0.50-0.52. Against that one run the same code looks 27% slower.
    last = _paired(0, 1.0, 0.40)
    now = _paired(1, 1.0, 0.51)
    assert judge_latency("b", 32, last, now, TOL).regressed
    history = Timing.of(list(last.rounds), reference="ref", reference_rounds=_theirs(last),
                        accepted=(0.50, 0.52, 0.51, 0.40))
    delta = judge_latency("b", 32, history, now, TOL)
    assert not delta.regressed and delta.baseline == pytest.approx(0.505)
    assert "baseline: median of 4 accepted runs, which spread 0.4-0.52" in delta.note
    assert judge_latency("b", 32, history, _paired(2, 1.0, 0.66), TOL).regressed  # +30%


def test_a_report_keeps_and_reads_the_accepted_runs(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_quantgate.cli import main

    report = _report(0.98, [0.02] * 5)
    stats = report["backends"]["b"]["latency"]["32"]  # type: ignore[index]
    stats.update(reference="ref", reference_rounds=[0.04] * 5, relative=0.5,
                 accepted=[{"relative": 0.48, "commit": "a"}, {"relative": 0.5, "commit": "b"}])
    assert summarize(report, "r").latency[("b", 32)].accepted == (0.48, 0.5)
    (tmp_path / "r.json").write_text(json.dumps(report))
    assert main(["show", str(tmp_path / "r.json")]) == 0  # speedup 2x, 2 accepted runs
    assert re.search(r"\nb +32 +20\.000 +20\.000 +5 +1600\.0 +2\.00x +2\n", capsys.readouterr().out)


def test_a_slowdown_must_show_in_a_second_timing() -> None:
    from pytest_quantgate.compare.comparison import CompareState
    from pytest_quantgate.latency import LatencyStats

    base = _paired(0, 1.0, 0.5)
    run = summarize(_report(0.98, [0.01] * 5), "base.json")
    run.latency[("b", 32)] = base

    def stats(seed: int, share: float) -> LatencyStats:
        t = _paired(seed, 1.0, share)
        return LatencyStats.from_rounds(32, t.rounds, reference="ref",
                                        reference_rounds=_theirs(t))

    state = CompareState(Path("base.json"), run, TOL, update=False)
    assert state.latency_regression(None, "b", stats(1, 0.65), lambda: stats(2, 0.5)) is None  # type: ignore[arg-type]
    cleared = state.deltas["quantgate::b::latency[b32]"][0]
    assert "not confirmed by a second timing (+" in cleared.note and cleared.retimed is not None
    assert not cleared.regressed and abs(cleared.retimed) < 0.05
    text = state.latency_regression(None, "b", stats(3, 0.65), lambda: stats(4, 0.66))  # type: ignore[arg-type]
    assert text is not None and "; confirmed by a second timing (+3" in text
    state.deltas["x"] = [cleared]  # the summary names what the second timing cleared

    class Reporter:
        lines: list[str] = []

        def write_line(self, line: str) -> None:
            self.lines.append(line)

    from pytest_quantgate.plugin.comparing import write_comparison
    from pytest_quantgate.plugin.state import State

    write_comparison(Reporter(), State(compare=state))  # type: ignore[arg-type]
    assert any(line.startswith("note: latency that looked slower but a second timing did not "
                               "confirm: b latency[b32] +3") for line in Reporter.lines)


def test_a_time_budget_buys_rounds_where_they_are_cheap() -> None:
    from pytest_quantgate.latency import MAX_ROUNDS, planned_rounds

    assert planned_rounds(20, 2, 0.004) == 500  # 4 ms a pair: 500 fit in 2 s
    assert planned_rounds(20, 2, 0.5) == 20  # never fewer than asked for
    assert planned_rounds(20, 0, 0.004) == 20  # budget off
    assert planned_rounds(20, 2, 1e-7) == MAX_ROUNDS
    assert planned_rounds(20, 2, 0.0) == 20
