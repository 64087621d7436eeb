"""Unit tests of the diagnostic checks (inspect/) on the fake backend, called on a real
``GateSession`` (and on a narrow hand-written context), without the pytest plugin."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import cast

import pytest
from fake_project import LABELS, write_project

from pytest_quantgate import checks
from pytest_quantgate.backends.base import Runner
from pytest_quantgate.checks import CheckContext, CheckSpec, checks_for
from pytest_quantgate.config import load
from pytest_quantgate.inspect import contract, determinism, int8_coverage
from pytest_quantgate.project_file import read_table
from pytest_quantgate.records import CheckResult
from pytest_quantgate.session import GateSession
from pytest_quantgate.tasks.base import Task

# name -> options of a fake backend (the reference "ref" is a plain fake)
FAKES: dict[str, str] = {
    "same": "",
    "swapped": "swap_inputs = true",
    "raw-int32": "raw_int32 = true",
    "permuted": "label_permutation = [1, 2, 0]",
    "dropout": "dropout = 0.3",
    "fake-int8": 'precision = "int8"',
}
SWAP = "inputs 'attention_mask' and 'token_type_ids' are swapped"


def write_fakes(root: Path) -> Path:
    """The fake project with a golden set of 45 headlines and every fake of FAKES declared."""
    decls = "".join(f'\n[[tool.quantgate.backend]]\nname = "{name}"\nkind = "fake"\n{opts}\n'
                    for name, opts in {"ref": "", **FAKES}.items())
    return write_project(root, f'cache_dir = "cache"\nadversarial_max_examples = 0\n'
                         f"backends = {json.dumps(list(FAKES))}", backends_toml=decls)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fakes(tmp_path_factory.mktemp("project"))


def session(root: Path) -> GateSession:
    cfg = load(read_table(root / "pyproject.toml"), base_dir=root, cli={}, cli_dir=root,
               source="pyproject.toml")
    return GateSession(cfg)


@pytest.fixture
def gate(root: Path) -> Iterator[GateSession]:
    g = session(root)
    yield g
    g.close()


@pytest.fixture
def registered() -> Iterator[list[str]]:
    """Names of checks a test registers; removed from EXTRA_CHECKS afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        checks.EXTRA_CHECKS.pop(name, None)


def register(names: list[str], name: str, func: str, tasks: tuple[str, ...] = ("text-classification",)
             ) -> CheckSpec:
    names.append(name)
    return checks.register(CheckSpec(name, f"{__name__}:{func}", lambda ctx, b: True, tasks=tasks))


def raising_check(ctx: CheckContext, backend: str) -> CheckResult:
    raise RuntimeError("probe exploded\nsecond line of the traceback text")


def counting_check(ctx: CheckContext, backend: str) -> CheckResult:
    ctx.state["counting"] = ctx.state.get("counting", 0) + 1
    return CheckResult(backend, "counting", "passed", f"call {ctx.state['counting']}")


# -- determinism ----------------------------------------------------------------------------------

def test_determinism_passes_on_a_plain_fake(gate: GateSession) -> None:
    result = determinism.check(gate, "same")
    assert (result.backend, result.check, result.verdict) == ("same", "determinism", "passed")
    assert result.measures[0].name == "max_rerun_diff" and result.measures[0].value == 0.0
    assert "causes" not in result.details


def test_determinism_fails_with_dropout_and_names_it(gate: GateSession) -> None:
    result = determinism.check(gate, "dropout")
    assert result.verdict == "failed"
    assert result.reason.startswith("the backend is not deterministic")
    assert "dropout" in result.reason
    (cause,) = result.details["causes"]
    assert "dropout left on at export" in cause
    measure = result.measures[0]
    assert measure.threshold is not None and measure.value > measure.threshold


# -- contract ---------------------------------------------------------------------------------------

def test_contract_passes_on_a_plain_fake(gate: GateSession) -> None:
    result = contract.check(gate, "same")
    assert result.verdict == "passed", result.reason
    assert result.details["causes"] == []
    assert "no wiring fault found" in result.reason
    assert result.details["outputs"]["logits"][1] == len(LABELS)


@pytest.mark.parametrize(("backend", "expected"), [
    ("swapped", SWAP),
    ("raw-int32", "int64 token ids are read as int32 bytes"),
    ("permuted", "the label order is permuted: column 0 holds 'Sports' (id2label says 'World')"),
])
def test_contract_names_the_wiring_fault(gate: GateSession, backend: str, expected: str) -> None:
    result = contract.check(gate, backend)
    assert result.verdict == "failed"
    (cause,) = result.details["causes"]
    assert expected in cause and expected in result.reason
    assert "with the fault undone" in cause


# -- int8-coverage ----------------------------------------------------------------------------------

def test_int8_coverage_of_a_fake_is_missing_never_passed(gate: GateSession) -> None:
    assert "int8-coverage" in checks_for(gate, "fake-int8")
    assert "int8-coverage" not in checks_for(gate, "same")  # fp32: not claimed to be INT8
    result = int8_coverage.check(gate, "fake-int8")
    assert result.verdict == "missing"
    assert "'fake' reports no op precisions" in result.reason
    assert gate.check("fake-int8", "int8-coverage").verdict == "missing"


# -- causes ------------------------------------------------------------------------------------------

def test_failed_records_carry_the_cause_and_passed_ones_none(gate: GateSession) -> None:
    records = gate.results("swapped")
    failed = [r for r in records.values() if r.verdict == "failed"]
    assert failed, {c: r.verdict for c, r in records.items()}
    for record in failed:
        assert any(SWAP in c and c.endswith("(contract check)") for c in record.details["causes"])
    for record in records.values():
        if record.verdict != "failed":
            assert "causes" not in record.details
    plain = gate.results("same")
    assert {r.verdict for r in plain.values()} == {"passed"}
    assert all("causes" not in r.details for r in plain.values())


def test_explain_leaves_passing_records_alone(gate: GateSession) -> None:
    from pytest_quantgate.inspect.causes import explain

    records = {"logits": CheckResult("same", "logits", "passed", "within thresholds")}
    assert explain(gate, "same", records) is records
    assert "same" not in gate.runners  # nothing ran to explain a pass


# -- registered checks ------------------------------------------------------------------------------

def test_a_raising_check_is_an_error_with_one_line(gate: GateSession, registered: list[str]) -> None:
    register(registered, "qg-test-boom", "raising_check")
    result = gate.check("same", "qg-test-boom")
    assert (result.check, result.verdict) == ("qg-test-boom", "error")
    assert "probe exploded" in result.reason
    assert "\n" not in result.reason and "second line" not in result.reason
    assert gate.records("same")["qg-test-boom"] is result


def test_checks_for_follows_the_spec_tasks(gate: GateSession, registered: list[str]) -> None:
    register(registered, "qg-test-classify", "counting_check")
    register(registered, "qg-test-lm", "counting_check", tasks=("causal-lm",))
    listed = checks_for(gate, "same")
    assert listed[:len(gate.builtin_checks)] == list(gate.builtin_checks)
    assert "qg-test-classify" in listed and "qg-test-lm" not in listed
    assert {"contract", "determinism"} <= set(listed)
    assert "contract" not in checks_for(gate, "ref")  # the reference is not checked against itself


def test_a_builtin_check_name_cannot_be_registered(registered: list[str]) -> None:
    with pytest.raises(ValueError, match="taken by a built-in check"):
        checks.register(CheckSpec("logits", f"{__name__}:counting_check", lambda ctx, b: True))


# -- state -------------------------------------------------------------------------------------------

def test_state_lives_as_long_as_its_session(root: Path, registered: list[str]) -> None:
    spec = register(registered, "qg-test-counting", "counting_check")
    first, second = session(root), session(root)
    assert first.state is not second.state
    assert spec.run(first, "same").reason == "call 1"
    assert spec.run(first, "same").reason == "call 2"  # the same session: its own earlier value
    assert spec.run(second, "same").reason == "call 1"  # a new session starts empty
    assert first.state == {"counting": 2} and second.state == {"counting": 1}


# -- a narrow context ------------------------------------------------------------------------------

class NarrowContext:
    """Only what determinism.check uses: runner, task (its probe) and thresholds."""

    def __init__(self, gate: GateSession) -> None:
        self._gate = gate
        self.task: Task = gate.task
        self.asked: list[str] = []

    def runner(self, name: str) -> Runner:
        self.asked.append(name)
        return self._gate.runner(name)

    def thresholds(self, name: str, overrides: Mapping[str, float | int] | None = None
                   ) -> dict[str, float | int]:
        return {"max_rerun_diff": 0.0}


def test_determinism_runs_on_a_narrow_context(gate: GateSession) -> None:
    ctx = NarrowContext(gate)
    result = determinism.check(cast(CheckContext, ctx), "same")
    assert isinstance(result, CheckResult)
    assert result.verdict == "passed" and result.measures[0].threshold == 0.0
    assert ctx.asked == ["same"]
    assert determinism.check(cast(CheckContext, ctx), "dropout").verdict == "failed"
    assert ctx.asked == ["same", "dropout"]
