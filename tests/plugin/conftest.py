"""Helpers for pytester runs of the plugin as users meet it, on the fake backend (no torch)."""

from __future__ import annotations

import numpy  # noqa: F401  (pytester's in-process runs drop modules first imported inside them;
import pytest  # numpy cannot be imported twice in one process, so import it out here)
from fake_project import write_project

import pytest_quantgate.run_record  # noqa: F401
import pytest_quantgate.session  # noqa: F401


@pytest.fixture
def project(pytester: pytest.Pytester):  # type: ignore[no-untyped-def]
    """Call with the rest of the [tool.quantgate] table; returns the pytester."""

    def make(table: str = 'backends = ["same"]', **kwargs: str) -> pytest.Pytester:
        write_project(pytester.path, table, **kwargs)
        return pytester

    return make
