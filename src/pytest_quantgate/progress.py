"""Progress of the gate's long phases: the reference's pass, each backend's pass, builds.

A phase reports through ``logging`` (logger ``pytest_quantgate``: its start and end at INFO,
visible with ``--log-cli-level=INFO``) and, where the plugin has set a sink, as terminal lines:
count/total and rate every ``EVERY`` seconds while it runs, and one line when it ends if it took
longer than that. A phase that cannot count (an export, a quantisation: one blocking call)
gets a line every ``EVERY`` seconds from a timer thread while it runs; the main thread is
blocked in the build then, so the lines do not interleave with pytest's own. Quick phases print
nothing, so a warm gate's output is unchanged. The core
holds no pytest: the plugin passes a function that writes a line (and passes none under ``-q``
or on a pytest-xdist worker, whose output nobody sees).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("pytest_quantgate")

EVERY = 5.0  # seconds between a running phase's lines; phases shorter than this stay silent

Sink = Callable[[str], None]
_sink: Sink | None = None


def set_sink(sink: Sink | None) -> None:
    """Where terminal lines go (None: logging only)."""
    global _sink
    _sink = sink


class Tracker:
    """One running phase: ``advance`` after each unit of work."""

    def __init__(self, what: str, total: int | None, unit: str,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.what, self.total, self.unit, self.clock = what, total, unit, clock
        self.count = 0
        self.start = self.last = clock()
        self.shown = False

    def advance(self, n: int = 1) -> None:
        self.count += n
        now = self.clock()
        if now - self.last >= EVERY:
            self.last = now
            self._show(self.line(now))

    def line(self, now: float) -> str:
        seconds = now - self.start
        of = f"/{self.total:,}" if self.total else ""
        rate = f", {self.count / seconds:,.0f} {self.unit}/s" if seconds > 0 and self.count else ""
        return f"quantgate: {self.what}: {self.count:,}{of} {self.unit}{rate}, {seconds:.0f} s"

    def finish(self) -> None:
        now = self.clock()
        seconds = now - self.start
        log.info("%s: done, %s %s in %.1f s", self.what, self.count, self.unit, seconds)
        if seconds >= EVERY:
            done = f"{self.count:,} {self.unit} " if self.count else ""
            self._show(f"quantgate: {self.what}: done, {done}in {seconds:.1f} s")

    def _show(self, line: str) -> None:
        self.shown = True
        if _sink is not None:
            _sink(line)


@contextmanager
def phase(what: str, total: int | None = None, unit: str = "inputs") -> Iterator[Tracker]:
    """A phase of work: ``with phase("reference torch-fp32", 603) as p: ... p.advance(32)``."""
    log.info("%s: started%s", what, f" ({total:,} {unit})" if total else "")
    tracker = Tracker(what, total, unit)
    try:
        yield tracker
    finally:
        tracker.finish()


@contextmanager
def blocking(what: str) -> Iterator[None]:
    """A phase that is one long call: a line every ``EVERY`` seconds while it runs."""
    done = threading.Event()
    tracker = Tracker(what, None, "")

    def beat() -> None:
        while not done.wait(EVERY):
            tracker._show(f"quantgate: {what}: running, {tracker.clock() - tracker.start:.0f} s")

    log.info("%s: started", what)
    thread = threading.Thread(target=beat, name="quantgate-progress", daemon=True)
    if _sink is not None:
        thread.start()
    try:
        yield
    finally:
        done.set()
        tracker.finish()
