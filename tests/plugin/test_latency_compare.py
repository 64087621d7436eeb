"""Latency items through pytest-benchmark, and comparison with a baseline, as users run them."""

from __future__ import annotations

import json

import pytest

# Imported here, not first inside an in-process pytester run: numpy's submodules cannot be
# loaded twice in one process (see conftest.py).
import scipy.stats  # noqa: F401

import pytest_quantgate.compare.judge  # noqa: F401
import pytest_quantgate.latency  # noqa: F401

FAKE = """
[[tool.quantgate.backend]]
name = "ref"
kind = "fake"
delay = {ref_delay}

[[tool.quantgate.backend]]
name = "b"
kind = "fake"
drift = {drift}
delay = {delay}
"""
LOOSE = ('[tool.quantgate.thresholds."b"]\nmax_abs_logit = 9.0\nmean_abs_logit = 9.0\n'
         "kl_div = 9.0\ntop1_agreement = 0.1\ntopk_overlap = 0.1\naccuracy_delta = 0.9\n"
         "f1_delta = 0.9\n")
# The built-in checks and latency only: checks registered by other modules have tests of their own
GATE = ("--quantgate", "-k", "logits or topk or accuracy or latency")
LATENCY = ("latency = true\nlatency_batch_sizes = [1, 4]\nlatency_rounds = 12\nlatency_seconds = 0\n"
           "latency_warmup = 1\n")


def _ok(result):  # type: ignore[no-untyped-def]
    """Passed, whatever other checks are registered (their item counts are theirs to test)."""
    outcomes = result.parseoutcomes()
    assert result.ret == 0 and "failed" not in outcomes and "error" not in outcomes, outcomes
    return result


def _make(project, *, drift=0.0, delay=0.0, ref_delay=0.0, latency=False, rounds=12):  # type: ignore[no-untyped-def]
    lat = LATENCY.replace("= 12", f"= {rounds}") if latency else ""
    return project('backends = ["b"]\n' + lat + LOOSE,
                   backends_toml=FAKE.format(drift=drift, delay=delay, ref_delay=ref_delay))


def test_latency_items_carry_quality_in_extra_info(project):
    pytester = _make(project, latency=True)
    result = pytester.runpytest(*GATE, "-v", "--benchmark-json", "bench.json")
    _ok(result)
    result.stdout.fnmatch_lines([
        "*quantgate::b::latency[[]b1[]] PASSED*", "*quantgate::b::latency[[]b4[]] PASSED*",
        "latency (pytest-benchmark rounds; speedup: the reference ref's time / this one's, per "
        "paired round; memory: peak added / process peak, MB)",
        "b * 1 * *x * 12", "b * 4 * *x * 12", "*benchmark 'quantgate latency, batch 4'*", "b[[]b4[]] *"])
    bench = json.loads((pytester.path / "bench.json").read_text())["benchmarks"]
    info = {b["fullname"]: b["extra_info"] for b in bench}["quantgate::b::latency[b4]"]
    assert info["backend"] == "b" and info["precision"] == "fp32" and info["batch_size"] == 4
    assert info["size_bytes"] > 0 and info["build_seconds"] == 0.0
    assert info["metrics"]["top1_agreement"] == 1.0
    assert info["measures"]["topk"]["top1_agreement"] == [1.0, ">="]
    assert info["p50_s"] > 0 and info["items_per_second"] > 0
    assert info["reference"] == "ref" and len(info["reference_rounds_s"]) == 12
    assert info["relative"] > 0


def test_latency_is_off_by_default_and_says_when_untimed(project):
    result = _ok(_make(project).runpytest(*GATE, "-v"))
    assert "latency[" not in result.stdout.str()
    pytester = _make(project, latency=True)
    result = pytester.runpytest("--quantgate", "--benchmark-disable", "-k", "latency")
    _ok(result)
    result.stdout.fnmatch_lines(["b * 1 * 0 *not timed: --benchmark-disable is on; drop it*"])
    result = pytester.runpytest("--quantgate", "-p", "no:benchmark", "-rs", "-k", "latency")
    assert result.ret == 0 and result.parseoutcomes()["skipped"] == 2
    result.stdout.fnmatch_lines(["*latency is timed by pytest-benchmark, which is not installed "
                                 "or was disabled with -p no:benchmark; pip install*"])


def test_a_30_percent_slowdown_is_flagged_and_unchanged_is_not(project, monkeypatch):
    # The reference sleeps as long as b: each round of b is judged as a share of the reference's
    # round paired with it, and sleep()'s overshoot on a loaded machine hits both. 30 rounds a
    # side put p orders of magnitude below alpha (docs/latency-and-compare.md).
    quiet = ("pytest_quantgate.latency.load_per_core", lambda: 0.5)
    pytester = _make(project, delay=0.005, ref_delay=0.005, latency=True, rounds=30)
    with pytest.MonkeyPatch.context() as patch:  # the baseline and the slow run: judged
        patch.setattr(*quiet)                     # whatever else runs beside this test
        _ok(pytester.runpytest(*GATE, "--quantgate-json", "base.json"))
    for _ in range(2):  # unchanged, under the real load: passes
        _ok(pytester.runpytest(*GATE, "--quantgate-compare", "base.json"))
    monkeypatch.setattr(*quiet)
    _make(project, delay=0.0065, ref_delay=0.005, latency=True, rounds=30)
    result = pytester.runpytest(*GATE, "--quantgate-compare", "base.json")
    assert result.parseoutcomes()["failed"] == 2  # the two latency items, nothing else
    result.stdout.fnmatch_lines([
        "quantgate::b::latency[[]b1[]] regressed against the baseline *base.json (quantgate): "
        "time / ref * -> * (+0.*, +*%; slower than 20% counts; Mann-Whitney p=*, "
        "P(slower)=*; p50 * -> * ms; confirmed by a second timing (+*%)); if this change "
        "is intended, accept it with "
        "--quantgate-update",
        "*b * latency[[]b4[]] * time / ref *REGRESSED"])


def test_a_whole_machine_slowdown_is_not_a_regression(project, monkeypatch):
    # Both the reference and b get 40% slower (a busier or slower host): the pairs cancel it.
    monkeypatch.setattr("pytest_quantgate.latency.load_per_core", lambda: 0.5)
    pytester = _make(project, delay=0.004, ref_delay=0.004, latency=True, rounds=20)
    _ok(pytester.runpytest(*GATE, "--quantgate-json", "base.json"))
    _make(project, delay=0.0056, ref_delay=0.0056, latency=True, rounds=20)
    result = _ok(pytester.runpytest(*GATE, "--quantgate-compare", "base.json"))
    result.stdout.fnmatch_lines(["0 regressions in * comparisons"])
    # A baseline recorded before rounds were paired is judged on raw times, and says so.
    base = json.loads((pytester.path / "base.json").read_text())
    for stats in base["backends"]["b"]["latency"].values():
        stats["reference_rounds"] = []
    (pytester.path / "base.json").write_text(json.dumps(base))
    result = pytester.runpytest(*GATE, "--quantgate-compare", "base.json")
    assert result.parseoutcomes()["failed"] == 2
    result.stdout.fnmatch_lines(["*latency[[]b1[]] regressed*p50 ms 4.* -> *raw times: the "
                                 "baseline's rounds are not paired with the reference*"])


def test_record_pass_regress_fail_accept_pass(project):
    pytester = _make(project, drift=0.05)
    base = pytester.path / "base.json"
    args = [*GATE, "--quantgate-compare", "base.json"]
    result = pytester.runpytest(*args, "--quantgate-update")  # record
    _ok(result)
    result.stdout.fnmatch_lines(["quantgate baseline: none yet at *base.json; this run records it",
                                 "quantgate baseline rewritten: *base.json"])
    assert json.loads(base.read_text())["backends"]["b"]["verdict"] == "PASS"
    _ok(pytester.runpytest(*args))  # pass
    _make(project, drift=0.8)  # regress
    result = pytester.runpytest(*args)  # fail, showing baseline, now and delta
    assert result.parseoutcomes()["failed"] >= 2  # logits, topk (+ other checks that regressed)
    result.stdout.fnmatch_lines([
        "quantgate::b::topk regressed against the baseline *base.json (quantgate*): "
        "top1_agreement 1 -> 0.* (-0.*; allowed worse by 0.005)*accept it with --quantgate-update",
        "b *topk *top1_agreement * 1 * 0.* -0.* 0.005 *REGRESSED", "* regressions in * comparisons"])
    assert result.ret == 1
    result = pytester.runpytest(*args, "--quantgate-update")  # accept
    _ok(result)
    result.stdout.fnmatch_lines(["* regressions in * comparisons (accepted: --quantgate-update)",
                                 "quantgate baseline rewritten: *base.json"])
    _ok(pytester.runpytest(*args))  # pass


def test_accepting_the_same_code_again_keeps_its_runs(project, monkeypatch):
    monkeypatch.setattr("pytest_quantgate.latency.load_per_core", lambda: 0.5)
    pytester = _make(project, delay=0.003, ref_delay=0.003, latency=True)
    args = [*GATE, "--quantgate-compare", "base.json", "--quantgate-update"]

    def accepted(size: str) -> list[float]:
        base = json.loads((pytester.path / "base.json").read_text())
        return [r["relative"] for r in base["backends"]["b"]["latency"][size]["accepted"]]

    for runs in (1, 2, 3):  # record, then accept the same code twice more
        result = _ok(pytester.runpytest(*args))
        assert len(accepted("1")) == runs and len(accepted("4")) == runs
        few = "quantgate baseline: latency of 2 item(s) (b[b1], b[b4]) rests on fewer than 3 "
        assert (few in result.stdout.str()) == (runs < 3)
    assert all(0.8 < r < 1.25 for r in accepted("4"))
    _make(project, delay=0.0045, ref_delay=0.003, latency=True)  # accept a 50% slowdown:
    _ok(pytester.runpytest(*args))  # a new level, so the history starts again
    assert len(accepted("4")) == 1 and accepted("4")[0] > 1.3


def test_a_time_budget_adds_rounds_where_they_are_cheap(project):
    pytester = project('backends = ["b"]\nlatency = true\nlatency_batch_sizes = [2]\n'
                       "latency_rounds = 5\nlatency_seconds = 1\nlatency_warmup = 1\n" + LOOSE,
                       backends_toml=FAKE.format(drift=0.0, delay=0.002, ref_delay=0.002))
    result = _ok(pytester.runpytest(*GATE, "--quantgate-json", "r.json"))
    rounds = json.loads((pytester.path / "r.json").read_text())["backends"]["b"]["latency"]["2"]
    # 4 ms a pair of rounds: about 250 fit in a second (fewer where sleep() overshoots)
    assert 60 < len(rounds["rounds"]) == len(rounds["reference_rounds"]) <= 250
    result.stdout.fnmatch_lines([f"b * 2 * {len(rounds['rounds'])}"])


def test_a_pytest_benchmark_run_is_a_baseline_too(project):
    pytester = _make(project, drift=0.05, latency=True)
    _ok(pytester.runpytest(*GATE, "--benchmark-json", "bench.json"))
    _make(project, drift=0.8, latency=True)
    result = pytester.runpytest(*GATE, "--quantgate-compare", "bench.json")
    result.stdout.fnmatch_lines(["quantgate::b::topk regressed against the baseline *bench.json "
                                 "(pytest-benchmark*): top1_agreement 1 -> 0.*"])
    assert result.ret == 1
    result = pytester.runpytest(*GATE, "--quantgate-compare", "bench.json",
                                "--quantgate-update")
    result.stderr.fnmatch_lines(["*--quantgate-update: got a pytest-benchmark run at *bench.json"
                                 "*, expected a quantgate JSON report to rewrite; keep "
                                 "pytest-benchmark runs with --benchmark-save*"])


def test_another_machine_is_a_warning_in_the_failure(project):
    pytester = _make(project, drift=0.05)
    _ok(pytester.runpytest(*GATE, "--quantgate-json", "base.json"))
    base = json.loads((pytester.path / "base.json").read_text())
    base["manifest"]["machine"]["cpu"] = "Elsewhere CPU 9000"
    (pytester.path / "base.json").write_text(json.dumps(base))
    _ok(pytester.runpytest(*GATE, "--quantgate-compare", "base.json"))
    _make(project, drift=0.8)
    result = pytester.runpytest(*GATE, "--quantgate-compare", "base.json")
    result.stdout.fnmatch_lines([
        "  WARNING: the baseline ran under other conditions: CPU: baseline Elsewhere CPU 9000, "
        "current * (latency is not comparable)*",
        "WARNING: not like for like: CPU: baseline Elsewhere CPU 9000*"])


def test_compare_usage_errors(project):
    pytester = _make(project)
    result = pytester.runpytest(*GATE, "--quantgate-compare", "nope.json")
    result.stderr.fnmatch_lines(["*quantgate: baseline: got '*nope.json', expected an existing "
                                 "quantgate JSON report or pytest-benchmark saved run; record one "
                                 "with --quantgate-update*"])
    assert result.ret == 4
    result = pytester.runpytest(*GATE, "--quantgate-update")
    result.stderr.fnmatch_lines(["*--quantgate-update: got no baseline to rewrite, expected "
                                 "--quantgate-compare PATH*"])
    result = pytester.runpytest(*GATE, "--quantgate-tolerance", "latency")
    result.stderr.fnmatch_lines(["*--tolerance: got 'latency', expected NAME=VALUE*"])
    assert result.ret == 4
