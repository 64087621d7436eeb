"""Progress of long phases in the terminal of a real run, and silence under -q (issue 21)."""

from __future__ import annotations

import pytest
from fake_project import write_project

pytest_plugins = ["pytester"]


@pytest.fixture
def slow_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_quantgate import progress

    monkeypatch.setattr(progress, "EVERY", 0.0)  # every phase counts as long


def test_passes_print_count_total_and_their_end(pytester: pytest.Pytester,
                                                slow_enough: None) -> None:
    write_project(pytester.path, 'backends = ["same"]')
    result = pytester.runpytest("--quantgate", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([
        "quantgate: reference ref on the eval set: */45 inputs*",
        "quantgate: backend same on the eval set: done, 45 inputs in * s",
    ])


def test_quiet_runs_and_collect_only_print_none(pytester: pytest.Pytester,
                                                slow_enough: None) -> None:
    write_project(pytester.path, 'backends = ["same"]')
    quiet = pytester.runpytest("--quantgate", "-p", "no:cacheprovider", "-q")
    assert "on the eval set" not in quiet.stdout.str()
    collected = pytester.runpytest("--quantgate", "-p", "no:cacheprovider", "--collect-only")
    assert "on the eval set" not in collected.stdout.str()
