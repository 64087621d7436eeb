"""The run snapshot: JSON round trip, merging workers' shares, verdicts from records."""

from __future__ import annotations

from dataclasses import replace

from pytest_quantgate.records import CheckResult, Measure
from pytest_quantgate.report.html.page import header
from pytest_quantgate.report.table import summary_lines
from pytest_quantgate.snapshot import BackendSummary, RunSnapshot, merge

FAILED = CheckResult("b", "topk", "failed", "top1_agreement 0.5 < 0.99",
                     (Measure("top1_agreement", 0.5, 0.99, ">=", False, 10),))
PASSED = CheckResult("b", "logits", "passed", "ok")


def _snap(*backends: BackendSummary, errors: tuple[str, ...] = ()) -> RunSnapshot:
    return RunSnapshot(manifest={"python": "3.11"}, config={"task": "text-classification",
                       "reference": "ref", "backends": ["a", "b"]},
                       reference=BackendSummary("ref"), backends={b.name: b for b in backends},
                       errors=errors)


def test_round_trip_through_json() -> None:
    snap = _snap(BackendSummary("b", metrics={"top1_agreement": 0.5},
                                checks=(PASSED, FAILED)).judged())
    again = RunSnapshot.from_dict(snap.to_dict())
    assert again == snap
    assert again.backends["b"].verdict == "FAIL" and again.not_run == ["a"]


def test_merge_unites_a_backends_checks_from_two_workers_and_judges_again() -> None:
    one = _snap(BackendSummary("b", checks=(PASSED,)).judged(), errors=("x",))
    two = _snap(BackendSummary("b", checks=(FAILED,)).judged(),
                BackendSummary("a", checks=(PASSED,)).judged(), errors=("x", "y"))
    merged = merge([one, two])
    assert list(merged.backends) == ["a", "b"]  # configured order, not arrival order
    assert [r.check for r in merged.backends["b"].checks] == ["logits", "topk"]
    assert merged.backends["b"].verdict == "FAIL" and merged.errors == ("x", "y")
    assert merged.summary.startswith("2 backends judged: 1 passed, 1 failed")


def test_a_regression_is_the_verdict_where_nothing_failed() -> None:
    snap = _snap(BackendSummary("b", checks=(PASSED,)).judged())
    judged = snap.with_comparison({"baseline": "base.json"}, {"b": ["logits"]})
    assert judged.backends["b"].verdict == "REGRESSED"
    assert judged.backends["b"].reason == "worse than the baseline: logits"
    assert "1 failed" in judged.summary


def test_a_report_of_an_older_version_reads() -> None:
    old = {"version": 2, "config": {"backends": ["b"]}, "backends": {"b": {
        "verdict": "PASS", "checks": [{"check": "logits", "verdict": "passed",
                                       "measures": [{"name": "max_abs_logit", "value": 0.1}]}]}}}
    snap = RunSnapshot.from_dict(old)
    assert snap.version == 2 and snap.backends["b"].records["logits"].backend == "b"
    assert snap.backends["b"].checks[0].measures[0].threshold is None


def test_warnings_round_trip_merge_in_order_and_render() -> None:
    one = replace(_snap(BackendSummary("b", checks=(PASSED,)).judged()), warnings=("w1", "w2"))
    two = replace(_snap(BackendSummary("a", checks=(PASSED,)).judged()), warnings=("w2", "w3"))
    assert RunSnapshot.from_dict(one.to_dict()) == one
    merged = merge([one, two])
    assert merged.warnings == ("w1", "w2", "w3")  # union, first seen first, each once
    assert [line for line in summary_lines(merged) if line.startswith("warning:")] == [
        "warning: w1", "warning: w2", "warning: w3"]
    assert '<p class="warning">warning: w3</p>' in header(merged.to_dict())


def test_a_report_without_warnings_reads_as_having_none() -> None:
    data = _snap(BackendSummary("b", checks=(PASSED,)).judged()).to_dict()
    del data["warnings"]  # a version-3 report written before warnings existed
    assert RunSnapshot.from_dict(data).warnings == ()
    assert not any(line.startswith("warning:")
                   for line in summary_lines(RunSnapshot.from_dict(data)))


def test_merge_tells_the_reference_as_the_worker_that_computed_it() -> None:
    loaded = replace(_snap(BackendSummary("a", checks=(PASSED,)).judged()),
                     reference=BackendSummary("ref", status="ok",
                                              timing={"reference_cached": True}))
    computed = replace(_snap(BackendSummary("b", checks=(PASSED,)).judged()),
                       reference=BackendSummary("ref", status="ok",
                                                timing={"reference_cached": False,
                                                        "predict_seconds": 1.5}))
    for parts in ([loaded, computed], [computed, loaded]):  # whichever worker ends first
        merged = merge(parts)
        assert merged.reference is not None
        assert merged.reference.timing["reference_cached"] is False
