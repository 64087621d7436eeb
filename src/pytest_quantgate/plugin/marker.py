"""The ``quantgate`` marker, read once into validated thresholds (never ``kwargs.get``)."""

from __future__ import annotations

import pytest

from ..errors import ConfigError
from ..thresholds import validate


def read_marker(node: pytest.Item | pytest.Function) -> dict[str, float | int]:
    """Thresholds set by the closest ``@pytest.mark.quantgate`` (class/module marks merged)."""
    values: dict[str, float | int] = {}
    for mark in reversed(list(node.iter_markers("quantgate"))):  # closest last, so it wins
        if mark.args:
            raise pytest.UsageError(
                f"{node.nodeid}: @pytest.mark.quantgate got positional {mark.args!r}, expected "
                "keywords only; write e.g. @pytest.mark.quantgate(max_abs_logit=0.02)")
        try:
            values.update(validate(mark.kwargs, f"{node.nodeid}: @pytest.mark.quantgate"))
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
    return values
