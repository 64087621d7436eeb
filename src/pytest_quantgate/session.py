"""One gate run: load data once, get the reference outputs, run each backend, judge it.

No pytest here: the plugin asks this object for records, and a script can use it directly::

    gate = GateSession(config)
    for name in config.backends:
        print(gate.results(name))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .atomic import locked
from .backends.base import Runner
from .backends.registry import BuildContext, create_runner
from .cache import ArtifactCache, hash_path
from .config import Config
from .errors import BackendUnavailable, QuantgateError, first_line
from .records import CheckResult
from .reference_cache import reference_dir
from .task_registry import create_task, task_spec
from .tasks.base import BackendRun, Task
from .tasks.data import ModelFacts, read_model_facts
from .tasks.tokenizer import TextEncoder
from .thresholds import resolve

if TYPE_CHECKING:
    from .latency import LatencyStats

__all__ = ["BackendRun", "GateSession"]


class GateSession:
    """Lazily loads everything; each backend is built and run at most once. What differs
    between tasks is the task object's (``self.task``, tasks/base.py); this class never asks
    which task it runs."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.cache = ArtifactCache(config.cache_dir / "artifacts")
        self.runners: dict[str, Runner] = {}
        self._runs: dict[str, BackendRun] = {}
        self._results: dict[str, dict[str, CheckResult]] = {}
        self.metrics: dict[str, dict[str, float]] = {}
        self._extra: dict[str, dict[str, CheckResult]] = {}  # records of registered checks
        self.latency: dict[str, dict[int, LatencyStats]] = {}  # backend -> batch size -> timing
        self.state: dict[str, Any] = {}  # per-session state of the checks (checks.py)

    # -- data --------------------------------------------------------------------------------
    @cached_property
    def task(self) -> Task:
        task: Task = create_task(self.config.task, self)
        return task

    @cached_property
    def facts(self) -> ModelFacts:
        return read_model_facts(self.config.model,
                                need_labels=task_spec(self.config.task).labels)

    @cached_property
    def encoder(self) -> TextEncoder:
        return TextEncoder.from_model_dir(self.config.model, self.task.truncate_at)

    def predict(self, name: str, texts: Sequence[str]) -> np.ndarray:
        """Per text, what the backend outputs for it, widened to at least float32: the class
        logits, or for a causal LM the next-token logits after the text (its final position)."""
        return self.task.predict(name, list(texts))

    @cached_property
    def model_hash(self) -> str:
        return hash_path(self.config.model)

    @cached_property
    def data_hashes(self) -> dict[str, str]:
        files = {"eval": self.config.eval, "calibration": self.config.calibration}
        return {k: hash_path(v) for k, v in files.items() if v is not None}

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """What this run measured on (versions, commit, machine, model and data hashes), once
        per session: the snapshot and the baseline comparison's warnings both read it."""
        from .manifest import build_manifest

        cfg = self.config
        files = {"eval": cfg.eval, **({"calibration": cfg.calibration} if cfg.calibration else {})}
        return build_manifest(model_dir=cfg.model, data_files=files,
                              extra={"tokenizer": self.encoder.source, "task": cfg.task})

    def context(self) -> BuildContext:
        return self.task.build_context()

    @cached_property
    def reference_folder(self) -> Path:
        """Where the reference's outputs are cached (reference_cache.py): keyed by the model,
        data and settings, once per session (every backend's pass is handed it)."""
        return reference_dir(self, self.task)

    # -- running -----------------------------------------------------------------------------
    def runner(self, name: str) -> Runner:
        """The activated runner of a backend, built or loaded on first use."""
        if name not in self.runners:
            self.runners[name] = create_runner(self.config.decl(name), self.context()).activate()
        return self.runners[name]

    def ran(self, name: str) -> BackendRun | None:
        """The backend's run if it has run in this session (never starts one)."""
        return self._runs.get(name)

    def run(self, name: str) -> BackendRun:
        if name not in self._runs:
            self._runs[name] = (self._reference_run() if name == self.config.reference
                                else self._run(name))
        return self._runs[name]

    def _run(self, name: str) -> BackendRun:
        decl = self.config.decl(name)
        try:
            return self.task.run(name, self.reference_folder)
        except BackendUnavailable as exc:
            return BackendRun(name, decl.precision, "unavailable", str(exc))
        except QuantgateError as exc:
            return BackendRun(name, decl.precision, "error", str(exc))
        except Exception as exc:  # a runtime's own error: keep its type and first line
            return BackendRun(name, decl.precision, "error",
                              f"backend {name!r} raised {first_line(exc)}")

    def _reference_run(self) -> BackendRun:
        """The reference's outputs from the cache, or its pass run once across processes: under
        a lock per cache entry, so a second pytest-xdist worker waits and then loads them."""
        name = self.config.reference
        try:
            folder = self.reference_folder
        except Exception as exc:  # the model or eval set cannot be read: that is the record
            return BackendRun(name, self.config.decl(name).precision, "error", first_line(exc))
        try:
            with locked(folder.with_name(folder.name + ".lock")):
                return self._reference_pass(folder)
        except OSError as exc:  # the cache folder itself: read-only, full, a file in the way
            from .cache import cache_error

            known = cache_error(exc, self.config.cache_dir, "reference", "reference cache",
                                "outputs")
            return BackendRun(name, self.config.decl(name).precision, "error",
                              str(known) if known is not None else first_line(exc))

    def _reference_pass(self, folder: Path) -> BackendRun:
        """Under the lock: the cached outputs, or the pass run and its outputs kept."""
        cached = self.task.load_reference(folder)
        if cached is not None:
            return cached
        run = self._run(self.config.reference)
        if run.status == "ok":
            try:
                self.task.save_reference(folder, run)
            except OSError as exc:  # the run is good; only the next one pays for it again
                run.extra["cache"] = (f"reference outputs not cached: {first_line(exc)}; "
                                      "make cache_dir writable")
        return run

    # -- judging -----------------------------------------------------------------------------
    def thresholds(self, name: str, overrides: Mapping[str, float | int] | None = None
                   ) -> dict[str, float | int]:
        return resolve(name, self.config.decl(name).precision, self.config.thresholds, overrides,
                       self.config.task, self.task.logit_scale())

    @property
    def builtin_checks(self) -> tuple[str, ...]:
        return task_spec(self.config.task).builtin_checks

    def results(self, name: str) -> dict[str, CheckResult]:
        """The records of the built-in checks of one backend."""
        if name not in self._results:
            expected = name in self.config.expect_fail
            try:
                self._results[name] = self._judge(name, expected)
            except Exception as exc:  # recorded once as the checks' error, never raised again
                verdict = "skipped" if isinstance(exc, BackendUnavailable) else "error"
                self._results[name] = {c: CheckResult(name, c, verdict, first_line(exc),
                                                      expected_failure=expected)
                                       for c in self.builtin_checks}
        return self._results[name]

    def _judge(self, name: str, expected: bool) -> dict[str, CheckResult]:
        ref, run = self.run(self.config.reference), self.run(name)
        problem_run = run if run.status != "ok" else ref if ref.status != "ok" else None
        if problem_run is not None:
            verdict = "skipped" if problem_run.status == "unavailable" else "error"
            reason = problem_run.reason
            if problem_run is ref:
                reason = f"the reference {ref.name!r} could not run: {reason}"
            return {c: CheckResult(name, c, verdict, reason, expected_failure=expected)
                    for c in self.builtin_checks}
        judged = self.task.judge(name, ref, run, expected)
        self.metrics[name] = judged.metrics
        from .inspect.causes import explain

        return explain(self, name, judged.records)  # a failure names its cause (diagnostics.md)

    def check(self, name: str, check: str) -> CheckResult:
        """The record of any check of a backend: built-in ones from ``results``, others from
        their registered function (run once, errors recorded, never passed)."""
        from .checks import EXTRA_CHECKS

        if check in self.builtin_checks:
            return self.results(name)[check]
        done = self._extra.setdefault(name, {})
        if check not in done:
            expected = name in self.config.expect_fail
            try:
                result = EXTRA_CHECKS[check].run(self, name)
            except BackendUnavailable as exc:
                result = CheckResult(name, check, "skipped", str(exc))
            except Exception as exc:  # a bug or a runtime's error: an error record, not a pass
                result = CheckResult(name, check, "error", first_line(exc))
            if result.expected_failure != expected:
                from dataclasses import replace

                result = replace(result, expected_failure=expected)
            done[check] = result
        return done[check]

    def records(self, name: str) -> dict[str, CheckResult]:
        """Every record of a backend computed so far, built-in checks first."""
        return {**self.results(name), **self._extra.get(name, {})}

    def judged(self) -> list[str]:
        """Backends whose checks have run, in configured order (a -k run judges fewer)."""
        return [name for name in self.config.backends if name in self._results]

    def all_results(self) -> list[CheckResult]:
        return [r for name in self.judged() for r in self.records(name).values()]

    def close(self) -> None:
        for runner in self.runners.values():
            runner.close()
        self.runners.clear()
