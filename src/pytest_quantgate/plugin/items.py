"""What every gate item shares: a failure shows its diagnosis, not a traceback."""

from __future__ import annotations

from typing import Any

import pytest


class QuantgateFailure(Exception):
    """A gate check failed; its text is the diagnosis."""


class DiagnosisItem(pytest.Item):
    """Shared by every gate item: a failure shows its diagnosis, not a traceback, and the
    report location has a line (skip marks such as --benchmark-only need one)."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, QuantgateFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, 0, self.nodeid
