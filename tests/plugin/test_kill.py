"""A run killed (SIGKILL: no clean-up, no finally) at a chosen point, then run again: the report
is the uninterrupted run's, and no temporary file or held lock is left under the project.

The fake backend is too fast for a timer to land anywhere in particular, so the project gets a
conftest that kills its own process at a deterministic point: the ``os.replace`` that would put
a file in place (its temporary sibling is written, the rename never happens), or a gate item's
call.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from fake_project import TIMINGS, without

from pytest_quantgate.atomic import TMP, locked

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

# Measured per run, not per backend (as in test_xdist.py), and whether the reference's outputs
# came from the cache: that depends on where the last run was killed, not on what was measured.
PER_RUN = TIMINGS | {"cache_hit"}

KILLER = '''
import os
import signal

import pytest

KILL = os.environ.get("QG_KILL", "")


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


if KILL.startswith("replace:"):  # the temporary file is written, never renamed into place
    _replace = os.replace

    def _replace_or_die(src, dst, *args, **kwargs):
        if os.fspath(dst).endswith(KILL.split(":", 1)[1]):
            _die()
        return _replace(src, dst, *args, **kwargs)

    os.replace = _replace_or_die

_calls = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    _calls.append(item.nodeid)
    if KILL == f"call:{len(_calls)}":
        _die()
'''

POINTS = [
    "replace:logits.npy",  # the reference pass done, its outputs half-saved
    "replace:run.json",  # the outputs saved, the file a reader opens first not
    "call:3",  # in the middle of the gate items
    "replace:report.json",  # everything judged, the JSON report half-written
]


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, cache: str,
         kill: str = "") -> pytest.RunResult:
    monkeypatch.setenv("QG_KILL", kill)
    return pytester.runpytest_subprocess(
        "--quantgate", "-p", "no:cacheprovider", "-p", "no:xdist", "--quantgate-json",
        "report.json", "--quantgate-cache-dir", cache)


def _report(pytester: pytest.Pytester) -> object:
    return without(json.loads((pytester.path / "report.json").read_text()), PER_RUN)


def _left_behind(root: Path) -> list[str]:
    """Temporary files, and lock files some process still holds, anywhere under ``root``."""
    found = [str(p.relative_to(root)) for p in root.rglob("*") if TMP in p.name]
    for lock in root.rglob("*.lock"):
        with locked(lock, wait=False) as held:
            if not held:
                found.append(f"{lock.relative_to(root)} (held)")
    return found


def test_a_killed_run_leaves_nothing_that_changes_the_next_one(
        project: Callable[[str], pytest.Pytester], monkeypatch: pytest.MonkeyPatch) -> None:
    pytester = project('backends = ["same", "drifty"]')
    pytester.makeconftest(KILLER)
    whole = _run(pytester, monkeypatch, ".cache-whole")
    assert whole.ret == 1  # drifty fails: a complete run
    expected = _report(pytester)
    assert "cache_hit" not in json.dumps(expected) and "timing" not in json.dumps(expected)
    for point in POINTS:
        (pytester.path / "report.json").unlink(missing_ok=True)
        cache = f".cache-{point.replace(':', '-')}"
        killed = _run(pytester, monkeypatch, cache, point)
        assert killed.ret == -signal.SIGKILL, (point, killed.stdout.str()[-2000:])
        if point.startswith("replace:"):  # the half-written file is there to be cleaned up
            assert _left_behind(pytester.path), point
        again = _run(pytester, monkeypatch, cache)
        assert again.ret == 1, (point, again.stdout.str()[-2000:])
        assert "Traceback" not in again.stdout.str(), point
        assert _report(pytester) == expected, point
        assert _left_behind(pytester.path) == [], point



def test_the_comparison_leaves_out_only_per_run_fields() -> None:
    data = {"info": {"cache_hit": True, "size_bytes": 3, "build_seconds": 1.0}, "n": [{"a": 1}]}
    assert without(data, PER_RUN) == {"info": {"size_bytes": 3}, "n": [{"a": 1}]}
