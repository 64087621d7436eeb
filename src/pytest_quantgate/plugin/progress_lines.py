"""Progress lines of the gate's long phases (progress.py) in pytest's terminal.

Each line is written whole on its own line (``ensure_newline`` first), so pytest's progress dots
resume below it. Nothing under ``-q`` (verbosity below 0), nothing on a pytest-xdist worker
(its output is not shown; the controller prints its items' results), and nothing with
``--collect-only``, which runs no phase anyway.
"""

from __future__ import annotations

import pytest

from .. import progress


def attach(config: pytest.Config) -> None:
    if config.get_verbosity() < 0 or hasattr(config, "workerinput") \
            or config.getoption("collectonly", False):
        return
    def line(text: str) -> None:
        # looked up when writing: pytest's terminal reporter registers after our configure
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(text)

    progress.set_sink(line)


def detach() -> None:
    progress.set_sink(None)
