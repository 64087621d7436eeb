"""Extending the gate as a package would: a check registered through the
``pytest_quantgate.checks`` entry-point group runs on the narrow check context, and every task
answers the whole ``Task`` protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CHECK_MODULE = '''
from pytest_quantgate.checks import CheckSpec
from pytest_quantgate.records import CheckResult


def applies(ctx, backend):
    return backend != ctx.config.reference


def run(ctx, backend):
    """Probe the backend and the reference on the task's probe rows: fail on a difference."""
    import numpy as np

    probe = ctx.task.probe(ctx.runner(backend), 8)
    ours = ctx.runner(backend).infer(probe.feed)["logits"]
    ref = ctx.runner(ctx.config.reference).infer(probe.feed)["logits"]
    worst = float(np.abs(np.asarray(ours, float) - np.asarray(ref, float)).max())
    ctx.state.setdefault("probed", []).append(backend)  # per-session state, kept by the session
    verdict = "passed" if worst < 0.1 else "failed"
    return CheckResult(backend, "probe-diff", verdict, f"max diff {worst:.3g} on "
                       f"{len(probe.rows)} rows (session probed {ctx.state['probed']})",
                       n_inputs=len(probe.rows))


SPEC = CheckSpec("probe-diff", "quantgate_probe_check:run", applies, "a third-party check")
'''


def install_check(root: Path) -> None:
    """A package on the path with a dist-info that registers ``probe-diff``."""
    (root / "quantgate_probe_check.py").write_text(CHECK_MODULE)
    info = root / "quantgate_probe_check-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: quantgate-probe-check\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[pytest_quantgate.checks]\nprobe-diff = quantgate_probe_check:SPEC\n")


def test_an_entry_point_check_gets_an_item_per_backend_and_its_records(project) -> None:  # type: ignore[no-untyped-def]
    pytester = project('backends = ["same", "drifty"]\njson = "report.json"')
    install_check(pytester.path)
    result = pytester.runpytest_subprocess("--quantgate", "-p", "no:cacheprovider", "-rA")
    out = result.stdout.str()
    assert "PASSED quantgate::same::probe-diff" in out
    assert "FAILED quantgate::drifty::probe-diff" in out
    assert "quantgate::ref::probe-diff" not in out  # applies() keeps the reference out
    report = json.loads((pytester.path / "report.json").read_text())
    record = next(c for c in report["backends"]["drifty"]["checks"] if c["check"] == "probe-diff")
    assert record["verdict"] == "failed" and record["n_inputs"] > 0
    assert "session probed ['same', 'drifty']" in record["reason"]  # one state per session


@pytest.mark.parametrize("task", ["text-classification", "causal-lm"])
def test_every_task_answers_the_whole_task_protocol(task: str) -> None:
    import importlib

    from pytest_quantgate.task_registry import task_spec
    from pytest_quantgate.tasks.base import Task

    module, _, name = task_spec(task).factory.partition(":")
    cls = getattr(importlib.import_module(module), name)
    wanted = {m for m in vars(Task) if not m.startswith("_")} | set(Task.__annotations__)
    assert not sorted(m for m in wanted if not hasattr(cls, m) and m not in vars(cls).get(
        "__annotations__", {})), f"{cls.__name__} lacks part of the Task protocol"
    assert cls.name == task
