"""Session state kept in ``config.stash`` (pytest's own junitxml plugin is the model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..compare.comparison import CompareState
    from ..config import Config
    from ..session import GateSession
    from ..snapshot import RunSnapshot


@dataclass
class State:
    """What the plugin knows in one pytest session."""

    config: Config | None = None
    enabled: bool = False  # --quantgate given
    gate: GateSession | None = None
    error: str | None = None  # configuration problem to report when fixtures are used
    outcomes: dict[str, str] = field(default_factory=dict)
    compare: CompareState | None = None  # --quantgate-compare: the baseline, judged per item
    parts: list[RunSnapshot] = field(default_factory=list)  # pytest-xdist: the workers' shares
    inspect_parts: list[dict[str, Any]] = field(default_factory=list)  # and their logits
    snapshot: RunSnapshot | None = None  # the whole run, taken once at session end

    def session(self) -> GateSession:
        if self.config is None:
            raise pytest.UsageError(
                self.error or "quantgate is not configured: got no [tool.quantgate] table, "
                "expected one in pyproject.toml; add it (see the README) or pass --quantgate-model "
                "and --quantgate-eval")
        if self.gate is None:
            from ..session import GateSession

            self.gate = GateSession(self.config)
        return self.gate


STATE_KEY = pytest.StashKey[State]()


def state(config: pytest.Config) -> State:
    return config.stash[STATE_KEY]
