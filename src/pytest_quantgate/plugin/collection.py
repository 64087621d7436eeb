"""The built-in gate's items: ``quantgate::<backend>::<check>``, one per backend and check.

Selecting them: ``-k`` matches substrings, so ``-k onnx-int8-static`` also selects
``onnx-int8-static-allops``. Every gate item therefore carries its node id as a keyword, and
``-k "::onnx-int8-static::"`` (the backend between the id's separators) selects exactly one
backend; ``-k "::onnx-int8-static::topk"`` one item.

A run whose path arguments all name test files (``pytest --quantgate tests/test_x.py``, an IDE's
run button, ``tests/test_x.py::test_y``) is about those tests: the gate is not collected, and the
header says so. No path, or any directory (``.``, ``tests/``), collects it: a CI job that names
its test folder still gates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .items import DiagnosisItem, QuantgateFailure
from .state import STATE_KEY, State

__all__ = ["DiagnosisItem", "GateCollector", "QuantgateFailure"]


class GateCollector(pytest.Collector):
    """``quantgate``: the root of the gate items, beneath the session."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        st: State = self.config.stash[STATE_KEY]
        assert st.config is not None
        return [BackendCollector.from_parent(self, name=name, nodeid=f"quantgate::{name}")
                for name in st.config.backends]

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, "quantgate"


class BackendCollector(pytest.Collector):
    """``quantgate::<backend>``."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        st: State = self.config.stash[STATE_KEY]
        assert st.config is not None
        from ..checks import checks_for
        from .latency import latency_items

        items: list[pytest.Item | pytest.Collector] = []
        for item in [*(GateItem.from_parent(self, name=check, nodeid=f"{self.nodeid}::{check}",
                                            backend=self.name, check=check)
                       for check in checks_for(st.session(), self.name)),
                     *latency_items(self, self.name, st)]:
            # -k "::<backend>::" selects this backend exactly (names are matched as substrings)
            item.extra_keyword_matches.add(item.nodeid)
            if self.name in st.config.expect_fail:
                item.add_marker(pytest.mark.xfail(
                    reason=f"{self.name} is listed in expect_fail", strict=True,
                    raises=QuantgateFailure))
            items.append(item)
        return items

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"quantgate::{self.name}"


class GateItem(DiagnosisItem):
    """One check of one backend; running it runs the backend (once) and reads its record."""

    def __init__(self, *, backend: str, check: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backend = backend
        self.check = check

    def runtest(self) -> None:
        st: State = self.config.stash[STATE_KEY]
        gate = st.session()
        result = gate.check(self.backend, self.check)
        st.outcomes[self.nodeid] = result.verdict
        failing = [r for r in gate.records(self.backend).values()
                   if r.verdict in ("failed", "error")]
        if result.expected_failure and failing and result not in failing:
            # Expected failure is a property of the backend: its other checks xfail with it.
            raise QuantgateFailure(f"{self.nodeid}: {result.verdict} on its own; the backend "
                                   f"fails as expected on {', '.join(r.check for r in failing)}")
        regression = None  # against the --quantgate-compare baseline (plugin/comparing.py)
        if st.compare is not None and result.verdict in ("passed", "failed"):
            regression = st.compare.item_regression(gate, self.backend, self.check)
        if result.verdict == "skipped":
            if gate.config.strict:
                raise QuantgateFailure(f"{self.nodeid} not run: {result.reason} "
                                       "(strict: a backend that cannot run fails the gate; "
                                       "install its runtime or remove it from backends)")
            pytest.skip(result.reason)
        if result.verdict == "missing":
            pytest.skip(f"not measured: {result.reason}")
        if result.verdict == "inconclusive":  # the sample cannot decide (uncertainty.py)
            if gate.config.inconclusive == "fail":
                raise QuantgateFailure(f"{self.nodeid} {result.reason} (inconclusive = "
                                       "\"fail\": an undecided check fails the gate)")
            if gate.config.inconclusive == "skip":
                pytest.skip(f"{result.reason} (inconclusive = \"pass\" or \"fail\" to "
                            "decide it otherwise)")
            return
        if result.verdict in ("failed", "error"):
            from ..report.diagnosis import diagnosis

            raise QuantgateFailure(diagnosis(result) + (f"\n{regression}" if regression else ""))
        if regression:
            raise QuantgateFailure(regression)



def named_files(config: pytest.Config) -> list[str]:
    """The path arguments when every one names a test file (or a test in one), else []."""
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        return []  # testpaths or the current directory: the whole suite
    files = []
    for arg in config.args:
        path = Path(arg.split("::", 1)[0])
        if not (path if path.is_absolute() else config.invocation_params.dir / path).is_file():
            return []  # a directory (or --pyargs): a suite run, which the gate belongs to
        files.append(arg)
    return files


def narrowed_note(config: pytest.Config) -> str | None:
    """The header's line when the gate is left out for named test files."""
    files = named_files(config)
    if not files:
        return None
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return (f"gate items not collected: the run names test files only ({shown}); run without "
            "paths, or with a directory such as ., to gate")


def gate_items(session: pytest.Session, st: State) -> list[pytest.Item]:
    if st.config is None:
        st.session()  # raises the configuration problem
    if named_files(session.config):
        return []  # pytest_report_header said so (narrowed_note)
    root = GateCollector.from_parent(session, name="quantgate", nodeid="quantgate")
    items: list[pytest.Item] = []
    for backend in root.collect():
        # Through pytest's collect-report hooks, so "collected N items" and -k see them.
        report = session.ihook.pytest_make_collect_report(collector=backend)
        session.ihook.pytest_collectreport(report=report)
        items.extend(i for i in report.result if isinstance(i, pytest.Item))
    return items

