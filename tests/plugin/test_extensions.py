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
    install(root, "quantgate-probe-check",
            "[pytest_quantgate.checks]\nprobe-diff = quantgate_probe_check:SPEC\n")


def install(root: Path, name: str, entry_points: str) -> None:
    """A dist-info on the path: an installed package with these entry points."""
    info = root / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


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


@pytest.mark.parametrize("task", ["text-classification", "causal-lm", "embeddings"])
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


BROKEN = """[pytest_quantgate.backends]
gpu-magic = quantgate_broken_kind:KIND
[pytest_quantgate.tasks]
sorting = quantgate_odd_task:helper
[pytest_quantgate.checks]
odd = quantgate_broken_kind.missing:SPEC
"""


def test_a_broken_extension_is_left_out_with_one_line_and_crashes_nothing(project) -> None:  # type: ignore[no-untyped-def]
    """Entry points are read on every pytest run: someone else's broken package must not stop
    an unrelated run, and the gate says which one it left out and why."""
    pytester = project('backends = ["same"]')
    (pytester.path / "quantgate_broken_kind.py").write_text(
        "raise RuntimeError('needs a GPU driver')\n")
    (pytester.path / "quantgate_odd_task.py").write_text("def helper():\n    pass\n")
    install(pytester.path, "quantgate-broken-kind", BROKEN)
    pytester.makepyfile(test_plain="def test_unrelated():\n    assert True\n")

    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_plain.py")
    plain.assert_outcomes(passed=1)
    assert "left out" not in plain.stdout.str() + plain.stderr.str()  # no gate, no word of it

    gated = pytester.runpytest_subprocess("--quantgate", "-p", "no:cacheprovider")
    # In the order read: tasks and kinds at start-up (the configuration's choices), checks
    # with the gate's header.
    gated.stdout.fnmatch_lines([
        "quantgate: entry point 'sorting' of group pytest_quantgate.tasks (left out): got "
        "'function quantgate_odd_task:helper', expected a TaskSpec; point it at a pytest_quantgate "
        "TaskSpec; *",
        "quantgate: entry point 'gpu-magic' of group pytest_quantgate.backends (left out): got "
        "'quantgate_broken_kind:KIND', expected an importable object; importing it raised "
        "RuntimeError: needs a GPU driver; fix or uninstall the package "
        "'quantgate-broken-kind' that provides it",
        "quantgate: entry point 'odd' of group pytest_quantgate.checks (left out): got "
        "'quantgate_broken_kind.missing:SPEC', expected an importable object; *",
    ])
    assert gated.ret == 0 and "failed" not in gated.stdout.lines[-1]

    # A configuration that names the missing kind: the usage error says why it is missing.
    (pytester.path / "pyproject.toml").write_text(
        (pytester.path / "pyproject.toml").read_text()
        + '\n[[tool.quantgate.backend]]\nname = "fast"\nkind = "gpu-magic"\n')
    named = pytester.runpytest_subprocess("--quantgate", "-p", "no:cacheprovider")
    assert named.ret == pytest.ExitCode.USAGE_ERROR
    named.stderr.fnmatch_lines([
        "*backend kind: got 'gpu-magic', expected one of *",
        "quantgate: entry point 'gpu-magic' of group pytest_quantgate.backends (left out): *",
    ])
