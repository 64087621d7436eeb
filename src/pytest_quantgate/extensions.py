"""What installed packages add through entry points: tasks, backend kinds and checks.

One loader for the three groups, so they treat a broken extension alike. The groups are read
when the plugin starts (the task and kind names are the configuration's choices), on every
pytest run in an environment with the plugin installed, so a package whose entry point fails to
import, or names something that is not a spec, must not crash the user's unrelated test run: it
is left out and kept as a one-line problem, which the gate's header prints and a configuration
error naming a missing task or kind repeats (that is how a user learns why their kind is
unknown). Nothing here imports numpy, pytest or the engine.
"""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any, TypeVar

from .errors import first_line, problem

log = logging.getLogger(__name__)

T = TypeVar("T")

# One line per entry point left out in this process, in the order met (the groups are read once
# each: their loaders are cached).
PROBLEMS: list[str] = []


def registered(group: str, expected: type[T], modules: bool = False) -> list[T]:
    """The values of ``group``'s entry points that are ``expected`` (or a list or tuple of them).

    ``modules``: a module is accepted too and yields nothing (a module that registers what it
    holds on import, as checks may). Anything else is left out with a problem line."""
    found: list[T] = []
    for ep in entry_points(group=group):
        try:
            value = ep.load()
        except Exception as exc:  # any import-time failure of someone else's package
            _left_out(ep, group, ep.value, "an importable object",
                      f"importing it raised {first_line(exc)}; fix or uninstall {_origin(ep)}")
            continue
        if modules and isinstance(value, ModuleType):
            continue
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        wrong = [v for v in values if not isinstance(v, expected)]
        if wrong:
            _left_out(ep, group, _described(wrong[0]), f"a {expected.__name__}"
                      + (" or a list of them" if len(values) > 1 else ""),
                      f"point it at a pytest_quantgate {expected.__name__}; fix or uninstall "
                      f"{_origin(ep)}")
            continue
        found += values
    return found


def _left_out(ep: EntryPoint, group: str, got: object, expected: str, fix: str) -> None:
    line = problem(f"entry point {ep.name!r} of group {group} (left out)", got, expected, fix)
    if line not in PROBLEMS:
        PROBLEMS.append(line)
        # Not a warning: a plain pytest run (no gate) prints nothing about the gate's plugins;
        # the gate's header and configuration errors show it.
        log.info("%s", line)


def _origin(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    return f"the package {name!r} that provides it" if name else "the package that provides it"


def _described(value: Any) -> str:
    qualname = getattr(value, "__qualname__", None)
    shown = f"{getattr(value, '__module__', '?')}:{qualname}" if qualname else repr(value)
    return f"{type(value).__name__} {shown}"[:120]
