"""pytest-xdist as users run it: ``-n 2`` gives the serial run's table, JSON, HTML and baseline.

Workers are separate processes, so these runs are in subprocesses (pytester.runpytest_subprocess):
what a worker judged reaches the controller only through ``config.workeroutput``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fake_project import BACKENDS_TOML, without

pytest.importorskip("xdist")

BACKENDS = 'backends = ["same", "drifty", "swapped", "poisoned"]'


def _summary(result: pytest.RunResult) -> list[str]:
    """The quantgate section, minus the lines that name the report file."""
    text = result.stdout.str().split("= quantgate =", 1)[1]
    lines = text.split("short test summary info")[0].splitlines()[1:]
    return [line for line in lines if "JSON report" not in line and "HTML report" not in line]


def _run(pytester: pytest.Pytester, workers: str, name: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--quantgate", "-p", "no:cacheprovider", "-n", workers, "--quantgate-json",
        f"{name}.json", "--quantgate-html", f"{name}.html", "--quantgate-cache-dir",
        f".cache-{name}", *args)


def test_two_workers_give_the_serial_table_and_report(project):
    pytester = project(BACKENDS)
    serial = _run(pytester, "0", "serial")
    parallel = _run(pytester, "2", "parallel")
    assert serial.ret == parallel.ret == 1
    assert serial.parseoutcomes() == parallel.parseoutcomes()
    assert _summary(parallel) == _summary(serial)
    assert "4 backends judged: 1 passed, 3 failed" in "\n".join(_summary(parallel))
    one, two = (json.loads((pytester.path / f"{n}.json").read_text())
                for n in ("serial", "parallel"))
    assert list(two["backends"]) == ["same", "drifty", "swapped", "poisoned"]
    assert two["not_run"] == [] and two["inspected"]
    assert without(two) == without(one)
    page = (pytester.path / "parallel.html").read_text()
    assert "not run:" not in page and "poisoned" in page


def test_update_under_two_workers_rewrites_the_baseline(project):
    pytester = project(BACKENDS)
    result = _run(pytester, "2", "run", "--quantgate-compare", "base.json", "--quantgate-update")
    result.stdout.fnmatch_lines(["quantgate baseline rewritten: *base.json"])
    base = json.loads((pytester.path / "base.json").read_text())
    assert set(base["backends"]) == {"same", "drifty", "swapped", "poisoned"}
    result = _run(pytester, "2", "run", "--quantgate-compare", "base.json")
    result.stdout.fnmatch_lines(["0 regressions in * comparisons"])


def test_latency_under_two_workers_is_never_passed_untimed(project):
    pytester = project('backends = ["same"]\nlatency = true\nlatency_batch_sizes = [1]\n'
                       "latency_rounds = 2\nlatency_seconds = 0\n")
    result = _run(pytester, "2", "run", "-rs")
    outcomes = result.parseoutcomes()
    assert result.ret == 0 and outcomes["skipped"] == 1, outcomes
    result.stdout.fnmatch_lines([
        "*not timed: pytest-benchmark disables timing under pytest-xdist; run the latency items "
        "with -p no:xdist (or -n 0)*"])
    report = json.loads((pytester.path / "run.json").read_text())
    assert report["backends"]["same"]["latency"]["1"]["timed"] is False
    assert (pytester.path / "run.html").is_file()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_malformed_eval_line_stops_the_run_at_start_up_with_one_line(project, workers: str):
    pytester = project('backends = ["same", "drifty"]')
    golden = Path(pytester.path / "data" / "golden.jsonl")
    golden.write_text(golden.read_text() + '{"text": "unterminated\n')
    result = _run(pytester, workers, "run")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # found before any model ran
    err = result.stderr.str()
    assert "Traceback" not in err + result.stdout.str()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "golden.jsonl:46: got '{\"text\": \"unterminated'" in lines[0], lines


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_run_time_fault_leaves_the_summary_and_reports(project, workers: str):
    """A reference whose outputs turn out NaN is found only when it runs: every backend's
    checks record it, and the summary, the table and both reports are still written."""
    poisoned = BACKENDS_TOML.replace('name = "ref"\nkind = "fake"\n',
                                     'name = "ref"\nkind = "fake"\nnan_rate = 0.5\n', 1)
    pytester = project('backends = ["same", "drifty"]', backends_toml=poisoned)
    result = _run(pytester, workers, "run")
    assert result.ret == 1
    assert "Traceback" not in result.stdout.str() and "INTERNALERROR" not in result.stdout.str()
    lines = _summary(result)
    assert any(line.startswith("same: ERROR: logits/topk/accuracy") and "NaN/Inf" in line
               for line in lines), lines
    report = json.loads((pytester.path / "run.json").read_text())
    assert report["backends"]["same"]["verdict"] == "ERROR"
    assert report["backends"]["drifty"]["verdict"] == "ERROR"
    assert (pytester.path / "run.html").is_file()


def test_the_reference_pass_runs_once_across_processes(tmp_path, monkeypatch):
    """Two sessions on one cache (two workers' worth): one runs the reference, one loads it."""
    import threading
    import time

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    from fake_project import write_project

    from pytest_quantgate.config import load
    from pytest_quantgate.project_file import read_table
    from pytest_quantgate.session import GateSession

    root = write_project(tmp_path, 'backends = ["same"]')
    config = load(read_table(root / "pyproject.toml"), base_dir=root, cli={}, cli_dir=root,
                  source="test")
    passes: list[str] = []
    real = GateSession._run

    def slow_run(self: GateSession, name: str) -> Any:
        passes.append(name)
        time.sleep(0.3)  # long enough for the other session to reach the lock
        return real(self, name)

    monkeypatch.setattr(GateSession, "_run", slow_run)
    runs = []
    sessions = [GateSession(config), GateSession(config)]
    threads = [threading.Thread(target=lambda g=g: runs.append(g.run("ref"))) for g in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert passes == ["ref"]
    assert sorted(r.reference_cached for r in runs) == [False, True]


def test_a_report_path_that_is_a_directory_is_one_line_and_the_rest_is_written(project):
    pytester = project('backends = ["same"]')
    (pytester.path / "out").mkdir()
    result = pytester.runpytest("--quantgate", "--quantgate-json", "out",
                                "--quantgate-html", "page.html")
    assert result.ret == 0 and "Traceback" not in result.stdout.str()
    result.stdout.fnmatch_lines([
        "quantgate JSON report: could not write '*out' (Is a directory); expected a writable "
        "file path; fix the path or its folder's permissions",
        "quantgate HTML report: *page.html"])
    assert list((pytester.path / "out").iterdir()) == []  # no temporary file left behind
