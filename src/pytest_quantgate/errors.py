"""Exceptions raised by pytest-quantgate's core.

The tree::

    QuantgateError                 base: every error the core raises on purpose
    ├── ConfigError                bad [tool.quantgate] key, option or marker keyword
    ├── DataError                  missing, corrupt or inconsistent model / eval / calibration data
    └── BackendError               a runner failed to build, load or run
        └── BackendUnavailable     the runtime a backend needs is not installed here

Every message is one line that says what was wrong, what was received, what was expected
and how to fix it. The pytest adapter turns ConfigError into ``pytest.UsageError``.
"""

from __future__ import annotations


class QuantgateError(Exception):
    """Base class of every error pytest-quantgate raises on purpose."""


class ConfigError(QuantgateError):
    """Invalid configuration: a key, an option value or a marker keyword."""


class DataError(QuantgateError):
    """Missing, corrupt or inconsistent model, eval or calibration data."""


class BackendError(QuantgateError):
    """A backend failed to build, load or run."""


class BackendUnavailable(BackendError):
    """The runtime a backend needs is not installed; the backend is skipped with this reason."""


def problem(what: str, got: object, expected: str, fix: str) -> str:
    """Format the one-line message every error uses: what, got, expected, how to fix."""
    return f"{what}: got {got!r}, expected {expected}; {fix}"


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line: our own errors as written, others with their type name."""
    text = (str(exc).strip().splitlines() or [""])[0][:limit]
    return text if isinstance(exc, QuantgateError) else f"{type(exc).__name__}: {text}"
