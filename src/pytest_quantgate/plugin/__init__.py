"""The pytest adapter of pytest-quantgate, registered through the ``pytest11`` entry point.

Thin on purpose: options, configuration at start-up, the marker, the fixtures, the gate items and
the summary. The core (config, session, gate, report) imports no pytest; frameworks are imported
only when a backend that needs them runs.
"""

from __future__ import annotations

from typing import Any

import pytest

from .fixtures import quantgate, quantgate_backend, quantgate_reference
from .options import add_options
from .state import STATE_KEY, State, state

__all__ = ["quantgate", "quantgate_backend", "quantgate_reference"]

MARKER = ("quantgate(**thresholds): thresholds for the quantgate fixtures of this test, e.g. "
          "@pytest.mark.quantgate(max_abs_logit=0.02, topk=5, topk_overlap=0.8); keywords: ")


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    from ..thresholds import KEYS

    config.addinivalue_line("markers", MARKER + ", ".join(KEYS))
    st = State(enabled=bool(config.getoption("quantgate")))
    config.stash[STATE_KEY] = st
    if config.getoption("help", False):
        return
    from .configure import load_config

    load_config(config, st)
    if st.config is not None:
        from .storage import into_cache

        into_cache(config, st.config.cache_dir)  # no .benchmarks/, .hypothesis/ in the repo
    if st.enabled and st.config is not None and st.config.latency:
        from ..latency import passive_thread_pools

        late = passive_thread_pools()  # before any backend imports torch
        if late:
            st.outcomes["threads"] = late
    if st.config is not None and st.config.compare is not None \
            or config.getoption("quantgate_update", False):
        from .comparing import setup_compare

        setup_compare(config, st)
    if st.enabled and st.config is not None:
        from .configure import check_inputs
        from .progress_lines import attach

        check_inputs(config, st)
        attach(config)  # long phases print count/total and rate (progress.py)


def pytest_report_header(config: pytest.Config) -> list[str]:
    st = config.stash.get(STATE_KEY, None)
    if st is None or not st.enabled:
        return []
    from ..manifest import cpu_isa_line
    from .collection import narrowed_note

    # The CPU first: INT8 results (and a baseline taken elsewhere) depend on its instruction sets.
    lines = [f"quantgate: {cpu_isa_line()}"]
    note = narrowed_note(config)
    if note:
        lines.append(f"quantgate: {note}")
    from ..checks import load_specs
    from ..extensions import PROBLEMS

    load_specs()  # the checks' entry points too (tasks' and kinds' were read at start-up)
    lines += [f"quantgate: {line}" for line in PROBLEMS]
    if st.config is None:
        return lines
    lines += [f"quantgate: {guess.header_line(name)}"
              for name, guess in st.config.inferred_precision.items()]
    if st.config.unselected:
        names = ", ".join(st.config.unselected)
        lines.append(f"quantgate: declared but not gated: {names} (not in backends; add them to "
                     "backends, or pass --quantgate-backends, to gate them)")
    return lines


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    st = state(config)
    if st.enabled:
        from .collection import gate_items

        items[:0] = gate_items(session, st)  # the gate first: it is what CI waits for


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    from .marker import read_marker

    read_marker(metafunc.definition)  # an unknown keyword fails at collection
    if "quantgate_backend" in metafunc.fixturenames:
        st = state(metafunc.config)
        names = list(st.config.backends) if st.config is not None else []
        if not names:
            st.session()  # raises the configuration problem
        expected = set(st.config.expect_fail) if st.config is not None else set()
        params = [pytest.param(name, id=name, marks=[pytest.mark.xfail(
            reason=f"{name} is listed in expect_fail", strict=False)] if name in expected else [])
            for name in names]
        metafunc.parametrize("quantgate_backend", params, indirect=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    st = config.stash.get(STATE_KEY, None)
    if st is not None and st.snapshot is not None and st.enabled:
        from .summary import write_summary

        write_summary(terminalreporter, st)
    if st is not None:
        from .summary import write_cache_line

        write_cache_line(terminalreporter, st)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    st = session.config.stash.get(STATE_KEY, None)
    if st is None:
        return
    from .xdist import is_worker, send

    if is_worker(session.config):
        if st.enabled:
            send(session.config, st)  # the controller renders and writes everything
        return  # and prunes the cache, once every worker is done with it
    from .finish import finish, prune_cache

    if st.enabled:
        finish(st)
    prune_cache(st, exitstatus)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist, on the controller: a worker finished; keep what it judged."""
    st = node.config.stash.get(STATE_KEY, None)
    output = getattr(node, "workeroutput", None)
    if st is not None and st.enabled and output:
        from .xdist import receive

        receive(output, st)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``-n N`` (``--dist load``): a backend's gate items stay on one worker."""
    st = config.stash.get(STATE_KEY, None)
    if st is None or not st.enabled or config.getvalue("dist") != "load":
        return None  # the user's own --dist choice, or no gate: xdist's own scheduler
    from .xdist import make_scheduler

    return make_scheduler(config, log)


def pytest_unconfigure(config: pytest.Config) -> None:
    from .progress_lines import detach
    from .storage import restore

    restore(config)
    detach()
    st = config.stash.get(STATE_KEY, None)
    if st is not None and st.gate is not None:
        st.gate.close()
