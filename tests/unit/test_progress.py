"""progress.py: what a long phase says, and that a quick one says nothing."""

from __future__ import annotations

import logging
import time

import pytest

from pytest_quantgate import progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lines() -> list[str]:
    said: list[str] = []
    progress.set_sink(said.append)
    yield said
    progress.set_sink(None)


def test_a_long_phase_shows_count_total_rate_and_its_end(lines: list[str]) -> None:
    clock = Clock()
    tracker = progress.Tracker("reference torch-fp32 on the eval set", 20000, "inputs", clock)
    clock.now = 2.0
    tracker.advance(1000)  # under EVERY seconds: nothing yet
    assert lines == []
    clock.now = 6.0
    tracker.advance(2000)
    assert lines == ["quantgate: reference torch-fp32 on the eval set: 3,000/20,000 inputs, "
                     "500 inputs/s, 6 s"]
    clock.now = 40.0
    tracker.advance(17000)
    tracker.finish()
    assert lines[-1] == ("quantgate: reference torch-fp32 on the eval set: done, 20,000 inputs "
                         "in 40.0 s")


def test_a_quick_phase_says_nothing_but_logs(lines: list[str],
                                             caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pytest_quantgate"):
        with progress.phase("backend onnx-fp32 on the eval set", 45) as tracker:
            tracker.advance(45)
    assert lines == []
    assert [r.getMessage().split(":")[1].strip().split(",")[0] for r in caplog.records] == [
        "started (45 inputs)", "done"]


def test_a_blocking_call_gets_a_line_while_it_runs(lines: list[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "EVERY", 0.05)
    with progress.blocking("building onnx-int8-static"):
        time.sleep(0.3)
    assert any(line.startswith("quantgate: building onnx-int8-static: running, ")
               for line in lines), lines
    assert lines[-1].startswith("quantgate: building onnx-int8-static: done, in ")


def test_without_a_sink_nothing_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    progress.set_sink(None)
    monkeypatch.setattr(progress, "EVERY", 0.0)
    with progress.phase("x", 1) as tracker:
        tracker.advance(1)  # no sink: no error, nothing to write to
