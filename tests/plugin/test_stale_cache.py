"""The cache as users meet it: at the end of a gate run, entries unused for
``cache_max_age_days`` are removed and one line says so, serial and under ``-n 2`` (where the
controller prunes after its workers are done); what the run used stays, however old its files.

Subprocess runs: each is a new process, as a user's next run is (cache.py remembers in-process
what it used), and pytest-xdist's workers are processes anyway."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pytest_quantgate.cache import META, USED

DAY = 86_400


def _backdate(folder: Path, days: int) -> None:
    when = time.time() - days * DAY
    for file in folder.rglob("*"):
        os.utime(file, (when, when))


def _stale_entry(root: Path, size: int = 2_000_000) -> Path:
    """An export no model of the project builds any more, last used 30 days ago."""
    folder = root / ".quantgate-cache" / "artifacts" / "onnx-export" / ("ab" * 12)
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"w" * size)
    (folder / META).write_text(json.dumps({"build_seconds": 1.0, "size_bytes": size}))
    (folder / USED).touch()
    _backdate(folder, 30)
    return folder


def _cache_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if line.startswith("quantgate cache:")]


# The project's conftest.py: who calls cache_pruning.prune (the serial run or the controller, never a
# pytest-xdist worker, which would remove what another worker may still be loading).
SPY = """
import os
from pathlib import Path

import pytest_quantgate.cache_pruning as cache

real = cache.prune


def spy(*args, **kwargs):
    with (Path(__file__).parent / "prune-calls.txt").open("a") as log:
        log.write(os.environ.get("PYTEST_XDIST_WORKER", "main") + "\\n")
    return real(*args, **kwargs)


cache.prune = spy
"""


def _run(pytester: pytest.Pytester, workers: str | None, *args: str) -> pytest.RunResult:
    xdist = ("-n", workers) if workers else ()
    return pytester.runpytest_subprocess("--quantgate", "-p", "no:cacheprovider", *xdist, *args)


@pytest.mark.parametrize("workers", [None, "2"], ids=["serial", "xdist"])
def test_a_stale_entry_is_removed_at_the_end_with_one_line(project, workers: str | None) -> None:
    if workers:
        pytest.importorskip("xdist")
    pytester = project()
    pytester.makeconftest(SPY)
    stale = _stale_entry(pytester.path)
    result = _run(pytester, workers)
    result.assert_outcomes(passed=5)
    assert _cache_lines(result) == ["quantgate cache: removed 1 entry unused for 14 days (2 MB)"]
    assert (pytester.path / "prune-calls.txt").read_text() == "main\n"  # once, not by workers
    assert not stale.exists()
    assert not [p for p in stale.parent.iterdir() if ".tmp-" in p.name]
    [reference] = [p for p in (pytester.path / ".quantgate-cache" / "reference").iterdir()
                   if p.is_dir()]

    # The reference's outputs, used by this run, look 30 days old to the next one until it
    # loads them: loading stamps them, so they stay; nothing removed, nothing printed.
    _backdate(reference, 30)
    again = _run(pytester, workers)
    again.assert_outcomes(passed=5)
    assert _cache_lines(again) == []
    assert (reference / USED).is_file() and len(list(reference.iterdir())) > 1


def test_zero_days_keeps_everything(project) -> None:
    pytester = project()
    stale = _stale_entry(pytester.path)
    result = _run(pytester, None, "--quantgate-cache-max-age-days", "0")
    result.assert_outcomes(passed=5)
    assert _cache_lines(result) == []
    assert (stale / "model.onnx").is_file()


def test_the_limit_is_a_pyproject_key(project) -> None:
    pytester = project('backends = ["same"]\ncache_max_age_days = 60')
    stale = _stale_entry(pytester.path)
    assert _cache_lines(_run(pytester, None)) == []
    assert stale.is_dir()
    result = _run(pytester, None, "--quantgate-cache-max-age-days=7")  # the option wins
    assert _cache_lines(result) == ["quantgate cache: removed 1 entry unused for 7 days (2 MB)"]
