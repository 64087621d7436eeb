"""What a run leaves in the user's repository (the cache and the reports, nothing of other
plugins), and what a missing optional package says."""

from __future__ import annotations

import os
import sys

import scipy.stats  # noqa: F401  (imported out here: see conftest.py)

import pytest_quantgate.compare.judge  # noqa: F401
import pytest_quantgate.latency  # noqa: F401
from pytest_quantgate.plugin.storage import HYPOTHESIS_ENV

LATENCY = "latency = true\nlatency_rounds = 3\nlatency_seconds = 0\nlatency_warmup = 0\n"
ADVERSARIAL = "adversarial_max_examples = 10\nadversarial_budget = 2\n"


def test_benchmarks_and_hypothesis_files_go_under_the_cache(project, monkeypatch):
    monkeypatch.delenv(HYPOTHESIS_ENV, raising=False)
    pytester = project('backends = ["same"]\n' + LATENCY + ADVERSARIAL)
    result = pytester.runpytest("--quantgate", "--benchmark-autosave")
    assert result.ret == 0, result.stdout.str()[-2000:]
    assert not (pytester.path / ".benchmarks").exists()
    assert not (pytester.path / ".hypothesis").exists()
    cache = pytester.path / ".quantgate-cache"
    assert list((cache / "benchmarks").rglob("*.json"))  # the autosaved run
    assert HYPOTHESIS_ENV not in os.environ  # set for the run only


def test_a_users_own_benchmarks_and_choices_are_kept(project, monkeypatch):
    monkeypatch.delenv(HYPOTHESIS_ENV, raising=False)
    pytester = project('backends = ["same"]\n' + LATENCY)
    (pytester.path / ".benchmarks").mkdir()  # the user's own saved runs live here
    pytester.runpytest("--quantgate", "--benchmark-autosave")
    assert list((pytester.path / ".benchmarks").rglob("*.json"))
    pytester.runpytest("--quantgate", "--benchmark-autosave", "--benchmark-storage", "mine")
    assert list((pytester.path / "mine").rglob("*.json"))
    assert not (pytester.path / ".quantgate-cache" / "benchmarks").exists()


def test_without_the_table_nothing_is_redirected(pytester, monkeypatch):
    monkeypatch.delenv(HYPOTHESIS_ENV, raising=False)
    pytester.makepyfile("def test_plain():\n    pass\n")
    pytester.runpytest().assert_outcomes(passed=1)
    assert not (pytester.path / ".quantgate-cache").exists()  # dormant: costs nothing


def test_comparing_latency_without_scipy_stops_at_start_up_naming_the_extra(project, monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)  # as if not installed
    pytester = project('backends = ["same"]\n' + LATENCY)
    pytester.runpytest("--quantgate", "--quantgate-json", "base.json")
    result = pytester.runpytest("--quantgate", "--quantgate-compare", "base.json")
    assert result.ret == 4
    result.stderr.fnmatch_lines([
        "ERROR: quantgate: comparing latency with a baseline: got 'no scipy installed', expected "
        "scipy (its Mann-Whitney U and Welch tests judge a slowdown); pip install "
        "'pytest-quantgate[latency]'"])


def test_latency_without_pytest_benchmark_names_the_extra(project):
    pytester = project('backends = ["same"]\n' + LATENCY)
    result = pytester.runpytest("--quantgate", "-p", "no:benchmark", "-rs", "-k", "latency")
    result.stdout.fnmatch_lines(["*latency is timed by pytest-benchmark, which is not installed "
                                 "or was disabled with -p no:benchmark; pip install "
                                 "'pytest-quantgate[[]latency[]]'"])
