"""pytest-quantgate: stop a quantised or recompiled model from shipping when it no longer
behaves like the model it came from.

The pytest plugin lives in ``pytest_quantgate.plugin``; everything else is plain Python that a
script can use: ``config.load`` -> ``session.GateSession`` -> ``records.CheckResult``.
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # importlib.metadata costs ~0.1 s; only pay it when someone asks for the version.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("pytest-quantgate")
        except PackageNotFoundError:  # running from a source tree
            return "0.0.0+source"
    raise AttributeError(name)
