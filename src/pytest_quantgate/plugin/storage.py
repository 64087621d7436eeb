"""Other plugins' files go under the quantgate cache, not into the user's repository.

pytest-benchmark creates ``.benchmarks/`` in the working directory at every start-up (its
``--benchmark-storage`` default, made in its own ``pytest_configure``), and Hypothesis writes
``.hypothesis/`` there when the adversarial check draws text (its Unicode tables, its example
database, the constants it collects). In a repository configured for quantgate both go under
``<cache_dir>/benchmarks`` and ``<cache_dir>/hypothesis-storage`` instead: CI caches that folder,
and it is the one folder the gate leaves.

Only what the user has not chosen: an explicit ``--benchmark-storage``, a
``HYPOTHESIS_STORAGE_DIRECTORY``, or a ``.benchmarks/`` or ``.hypothesis/`` already in the working
directory (the user's own saved benchmarks, or their own Hypothesis tests' database) are kept.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

BENCHMARK_DEFAULT = "file://./.benchmarks"  # pytest-benchmark's own default for the option
HYPOTHESIS_ENV = "HYPOTHESIS_STORAGE_DIRECTORY"  # read by Hypothesis at its first storage use
_SET_ENV = pytest.StashKey[bool]()


def into_cache(config: pytest.Config, cache_dir: Path) -> None:
    """Point pytest-benchmark's storage and Hypothesis's directory into ``cache_dir``. Runs in
    our ``pytest_configure``, before pytest-benchmark's (``trylast``) creates its storage."""
    here = Path.cwd()  # where both plugins would write
    option = getattr(config.option, "benchmark_storage", None)
    if option == BENCHMARK_DEFAULT and not (here / ".benchmarks").exists():
        config.option.benchmark_storage = f"file://{cache_dir / 'benchmarks'}"
    if HYPOTHESIS_ENV not in os.environ and not (here / ".hypothesis").exists():
        # The variable, not hypothesis.configuration: Hypothesis is not imported at start-up.
        os.environ[HYPOTHESIS_ENV] = str(cache_dir / "hypothesis-storage")
        config.stash[_SET_ENV] = True


def restore(config: pytest.Config) -> None:
    """Unset what ``into_cache`` set, so that nothing outlives the run (a pytester run in-process,
    an IDE that reuses its interpreter)."""
    if config.stash.get(_SET_ENV, False):
        os.environ.pop(HYPOTHESIS_ENV, None)
