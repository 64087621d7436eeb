"""pytest-quantgate: stop a quantised or recompiled model from shipping when it no longer
behaves like the model it came from.

The pytest plugin lives in ``pytest_quantgate.plugin``; everything else is plain Python that a
script can use: ``config.load`` -> ``session.GateSession`` -> ``records.CheckResult``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pytest-quantgate")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+source"
