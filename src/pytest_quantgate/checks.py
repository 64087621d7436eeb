"""Checks beyond the built-in three, registered by name so each lives in its own module.

The built-in checks ``logits``, ``topk`` and ``accuracy`` are judged together from one run of
the backend (``GateSession.results``). Every other check (``contract``, ``adversarial``,
``int8-coverage``...) is a ``CheckSpec``: a cheap ``applies`` test (no framework imports; it
decides at collection whether the backend gets an item) and a function, named by import path and
imported only when the item runs, that returns the check's ``CheckResult``. A check that raises
is recorded as an "error" with the exception's first line, never as passed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import CheckResult
    from .session import GateSession

BUILTIN_CHECKS = ("logits", "topk", "accuracy")  # text classification
LM_BUILTIN_CHECKS = ("ppl", "next-token")  # causal LM (lm_gate.py)
CLASSIFICATION = ("text-classification",)


def builtin_checks(task: str) -> tuple[str, ...]:
    """The checks judged together from one run of a backend, for the task."""
    return LM_BUILTIN_CHECKS if task == "causal-lm" else BUILTIN_CHECKS


@dataclass(frozen=True)
class CheckSpec:
    """A check by name: whether a backend gets it, and where its function lives."""

    name: str
    func: str  # "module:function" taking (GateSession, backend name) -> CheckResult
    applies: Callable[[GateSession, str], bool]
    help: str = ""
    tasks: tuple[str, ...] = CLASSIFICATION  # tasks whose backends get it

    def run(self, gate: GateSession, backend: str) -> CheckResult:
        module, _, attr = self.func.partition(":")
        result: CheckResult = getattr(importlib.import_module(module), attr)(gate, backend)
        return result


EXTRA_CHECKS: dict[str, CheckSpec] = {}


def register(spec: CheckSpec) -> CheckSpec:
    """Add a check; the name becomes the last part of its item ids."""
    if spec.name in BUILTIN_CHECKS or spec.name in LM_BUILTIN_CHECKS:
        raise ValueError(f"check name {spec.name!r} is taken by a built-in check")
    EXTRA_CHECKS[spec.name] = spec
    return spec


def checks_for(gate: GateSession, backend: str) -> list[str]:
    """Every check a backend gets, built-in first, in registration order."""
    _load_builtin_specs()
    task = gate.config.task
    return [*builtin_checks(task), *(n for n, s in EXTRA_CHECKS.items()
                                     if task in s.tasks and s.applies(gate, backend))]


def _load_builtin_specs() -> None:
    """Import the modules that register the project's own extra checks (cheap: specs only)."""
    for module in _SPEC_MODULES:
        importlib.import_module(module)


# Modules whose import registers CheckSpecs. Each must stay import-light (no numpy-heavy work,
# no frameworks at module level): they run at collection time.
_SPEC_MODULES: tuple[str, ...] = ("pytest_quantgate.inspect.specs",
                                  "pytest_quantgate.adversarial.specs")
