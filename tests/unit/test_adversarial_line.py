"""The terminal summary's adversarial line, drawn from the report slices alone."""

from __future__ import annotations

from typing import Any

from pytest_quantgate.report.adversarial import adversarial_line
from pytest_quantgate.snapshot import BackendSummary, RunSnapshot


def _snapshot(*slices: dict[str, Any] | None) -> RunSnapshot:
    backends = {f"b{i}": BackendSummary(f"b{i}", adversarial=s) for i, s in enumerate(slices)}
    return RunSnapshot(manifest={}, config={}, reference=None, backends=backends)


BASE = {"profile": "dev", "seed": 7, "n_inputs": 200, "budget_seconds": 30.0,
        "corpus_cached": False, "corpus_seconds": 4.5, "seconds": 0.25}


def test_no_slice_no_line() -> None:
    assert adversarial_line(_snapshot(None, None)) is None


def test_the_line_sums_the_searches_and_names_a_stop_at_the_budget() -> None:
    clean = {**BASE, "searched": False, "search_seconds": None, "inputs_tried": 0,
             "tried_one_by_one": 0, "budget_exhausted": False}
    failing = {**BASE, "searched": True, "search_seconds": 29.5, "inputs_tried": 140,
               "tried_one_by_one": 90, "budget_exhausted": True, "seconds": 30.1,
               "corpus_seconds": 4.0}  # another worker's corpus: the longest is shown
    assert adversarial_line(_snapshot(clean, failing)) == (
        "adversarial (dev profile, seed 7): 200 generated inputs per backend, corpus drawn and "
        "scored by the reference in 4.50 s; searched 1 of 2 backends (those with a failing input "
        "or a saved failure): 140 inputs tried, 90 of them scored one by one, in 29.50 s; 1 "
        "stopped at the 30 s budget (adversarial_budget); 34.85 s in all")


def test_a_cached_corpus_and_a_report_from_before_the_search_keys() -> None:
    cached = {**BASE, "profile": "ci", "seed": 0, "corpus_cached": True, "corpus_seconds": 0.002}
    assert adversarial_line(_snapshot(cached)) == (
        "adversarial (ci profile, seed 0): 200 generated inputs per backend, corpus and the "
        "reference's outputs on it read from the cache; 0.25 s in all")


def test_workers_with_their_own_fresh_seeds_are_named() -> None:
    one, two = ({**BASE, "seed": seed, "searched": False, "inputs_tried": 0,
                 "tried_one_by_one": 0, "search_seconds": None} for seed in (7, 9))
    line = adversarial_line(_snapshot(one, two))
    assert line is not None and line.startswith(
        "adversarial (dev profile, seeds 7, 9, one per pytest-xdist worker): 200 generated ")
