"""Checks beyond a task's built-in ones, registered by name so each lives in its own module.

A task's built-in checks (``logits``/``topk``/``accuracy``, ``ppl``/``next-token``) are judged
together from one run of the backend (``GateSession.results``). Every other check
(``contract``, ``adversarial``, ``int8-coverage``...) is a ``CheckSpec``: a cheap ``applies``
test (no framework imports; it decides at collection whether the backend gets an item) and a
function, named by import path and imported only when the item runs, that takes a
``CheckContext`` and the backend's name and returns the check's ``CheckResult``. A check that
raises is recorded as an "error" with the exception's first line, never as passed.

A package adds checks through the ``pytest_quantgate.checks`` entry-point group: the value is a
``CheckSpec`` (or a list of them), or a module whose import registers them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .task_registry import all_tasks, task_spec
from .tasks.base import Session

if TYPE_CHECKING:
    import numpy as np

    from .backends.registry import BuildContext
    from .records import CheckResult
    from .tasks.base import Task

CLASSIFICATION = ("text-classification",)
ENTRY_POINTS = "pytest_quantgate.checks"


class CheckContext(Session, Protocol):
    """What a check may use: what a task may ask of the session (tasks/base.py ``Session``:
    configuration, runners, runs, thresholds, model facts), plus other checks' records, the
    task (probes, sample texts, predictions), and ``state``, a dict that lives as long as the
    session (a check keeps what it computes once per session there, under its own name).
    ``GateSession`` is one; a unit test may pass a smaller object."""

    state: dict[str, Any]

    @property
    def task(self) -> Task: ...

    def predict(self, name: str, texts: Sequence[str]) -> np.ndarray: ...

    def check(self, name: str, check: str) -> CheckResult: ...

    def context(self) -> BuildContext: ...


def builtin_checks(task: str) -> tuple[str, ...]:
    """The checks judged together from one run of a backend, for the task."""
    return task_spec(task).builtin_checks


@dataclass(frozen=True)
class CheckSpec:
    """A check by name: whether a backend gets it, and where its function lives."""

    name: str
    func: str  # "module:function" taking (CheckContext, backend name) -> CheckResult
    applies: Callable[[CheckContext, str], bool]
    help: str = ""
    tasks: tuple[str, ...] = CLASSIFICATION  # tasks whose backends get it

    def run(self, ctx: CheckContext, backend: str) -> CheckResult:
        module, _, attr = self.func.partition(":")
        result: CheckResult = getattr(importlib.import_module(module), attr)(ctx, backend)
        return result


EXTRA_CHECKS: dict[str, CheckSpec] = {}


def register(spec: CheckSpec) -> CheckSpec:
    """Add a check; the name becomes the last part of its item ids."""
    taken = {c for t in all_tasks().values() for c in t.builtin_checks}
    if spec.name in taken:
        raise ValueError(f"check name {spec.name!r} is taken by a built-in check")
    EXTRA_CHECKS[spec.name] = spec
    return spec


def checks_for(ctx: CheckContext, backend: str) -> list[str]:
    """Every check a backend gets, built-in first, in registration order."""
    load_specs()
    task = ctx.config.task
    return [*builtin_checks(task), *(n for n, s in EXTRA_CHECKS.items()
                                     if task in s.tasks and s.applies(ctx, backend))]


_LOADED: list[bool] = []


def load_specs() -> None:
    """Import the modules that register the project's own extra checks, then the installed
    packages' (cheap: specs only). Once per process."""
    if _LOADED:
        return
    _LOADED.append(True)
    for module in _SPEC_MODULES:
        importlib.import_module(module)
    from .extensions import registered

    # A module registers on import; a spec (or a list of them) is registered here.
    for spec in registered(ENTRY_POINTS, CheckSpec, modules=True):
        if spec.name not in EXTRA_CHECKS:
            register(spec)


# Modules whose import registers CheckSpecs. Each must stay import-light (no numpy-heavy work,
# no frameworks at module level): they run at collection time.
_SPEC_MODULES: tuple[str, ...] = ("pytest_quantgate.inspect.specs",
                                  "pytest_quantgate.adversarial.specs")
