"""The ``saturation`` check (inspect/saturation.py): the decision from recorded numbers, and the
check's flow on a narrow hand-written context with the CPU's flags injected, so what a CPU
without VNNI would do is tested on any machine (this one has VNNI and cannot saturate)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pytest

from pytest_quantgate.backends.base import Runner
from pytest_quantgate.backends.registry import BackendDecl
from pytest_quantgate.checks import EXTRA_CHECKS, CheckContext, load_specs
from pytest_quantgate.inspect import causes, saturation
from pytest_quantgate.records import CheckResult
from pytest_quantgate.tasks.base import BackendRun, Probe

AVX2 = ["avx2"]  # an AVX2-only AMD EPYC (Zen 2) as /proc/cpuinfo lists it for the manifest
ZEN4 = ["avx2", "avx512f", "avx512_vnni", "avx_vnni"]
SAPPHIRE = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_tile"]
INT8_MEAN = 0.25  # the int8 default of mean_abs_logit (thresholds.py)
CAUSE = "u8s8 saturation on a CPU without VNNI: int8 weights at full range overflow the AVX2 u8s8 kernel"

# (cpu flags, machine, weight_type, reduce_range, drift as built, drift rebuilt, threshold,
#  expected: None or a fragment of the cause)
TABLE: list[tuple[Any, ...]] = [
    # issue 18: tiny BERT dynamic INT8, max |logit diff| 0.81 on an AVX2-only AMD, 0.19 on a VNNI
    # CPU; with reduce_range the AVX2 figure falls to the VNNI one: the drift halves
    pytest.param(AVX2, "x86_64", "qint8", False, 0.81, 0.19, INT8_MEAN,
                 "(mean |logit diff| 0.81 as built, 0.19 with reduce_range = true)", id="issue-avx2"),
    pytest.param(ZEN4, "x86_64", "qint8", False, 0.81, 0.19, INT8_MEAN, None, id="issue-on-vnni"),
    # docs/thresholds.md, demo BERT on the AVX2-only EPYC: mean 0.126 (QInt8), 0.0075 reduce_range
    pytest.param(AVX2, "x86_64", "qint8", False, 0.126, 0.0075, INT8_MEAN, CAUSE, id="demo-avx2"),
    pytest.param(SAPPHIRE, "x86_64", "qint8", False, 0.126, 0.0075, INT8_MEAN, None, id="amx"),
    pytest.param(["avx2", "avx_vnni"], "x86_64", "qint8", False, 0.126, 0.0075, INT8_MEAN, None,
                 id="avx-vnni-alone"),
    pytest.param(["amx_int8"], "x86_64", "qint8", False, 0.126, 0.0075, INT8_MEAN, None,
                 id="amx-flag-alone"),
    # the recipe is already safe: nothing to blame whatever the numbers
    pytest.param(AVX2, "x86_64", "quint8", False, 0.126, 0.0075, INT8_MEAN, None, id="quint8"),
    pytest.param(AVX2, "x86_64", "qint8", True, 0.126, 0.0075, INT8_MEAN, None, id="reduced"),
    # the drift must at least halve ...
    pytest.param(AVX2, "x86_64", "qint8", False, 0.126, 0.08, INT8_MEAN, None, id="no-halving"),
    pytest.param(AVX2, "x86_64", "qint8", False, 0.2, 0.1, INT8_MEAN, CAUSE, id="exactly-half"),
    # ... and land within the threshold (all-ops static INT8 stays broken either way)
    pytest.param(AVX2, "x86_64", "qint8", False, 3.14, 1.2, INT8_MEAN, None, id="still-broken"),
    # 7-bit weights are coarser: on a kernel that does not saturate the drift grows
    pytest.param(AVX2, "x86_64", "qint8", False, 0.0064, 0.0075, INT8_MEAN, None, id="grows"),
    pytest.param(AVX2, "x86_64", "qint8", False, 0.0, 0.0, INT8_MEAN, None, id="no-drift"),
    # NaN/Inf outputs (agreement's inf) are not saturation: it clips to finite values
    pytest.param(AVX2, "x86_64", "qint8", False, float("inf"), 0.01, INT8_MEAN, None, id="nan"),
    # flags unknown: measured on x86 (macOS has no /proc/cpuinfo), not elsewhere
    pytest.param(None, "x86_64", "qint8", False, 0.126, 0.0075, INT8_MEAN,
                 "u8s8 saturation on a CPU whose VNNI support is unknown", id="unknown-x86"),
    pytest.param(None, "aarch64", "qint8", False, 0.126, 0.0075, INT8_MEAN, None, id="arm"),
]


@pytest.mark.parametrize(("flags", "machine", "weight_type", "reduce_range", "built", "rebuilt",
                          "threshold", "expected"), TABLE)
def test_decision_from_recorded_numbers(flags: list[str] | None, machine: str, weight_type: str,
                                        reduce_range: bool, built: float, rebuilt: float,
                                        threshold: float, expected: str | None) -> None:
    cause = saturation.saturation_cause(flags, weight_type, reduce_range, built, rebuilt,
                                        threshold, machine)
    if expected is None:
        assert cause is None
        return
    assert cause is not None and expected in cause
    assert cause.endswith('set reduce_range = true (or weight_type = "quint8") in the backend\'s '
                          "table")
    assert "\n" not in cause


@pytest.mark.parametrize(("flags", "weight_type", "reduce_range", "machine", "expected"), [
    (ZEN4, "qint8", False, "x86_64",
     "not applicable: this CPU has AVX-512 VNNI, whose kernel does not saturate"),
    (["avx2", "avx_vnni"], "qint8", False, "x86_64",
     "not applicable: this CPU has AVX-VNNI, whose kernel does not saturate"),
    (AVX2, "qint8", True, "x86_64", "not applicable: reduce_range = true: 7-bit weights"),
    (AVX2, "quint8", False, "x86_64", "not applicable: weight_type = 'quint8': uint8 weights"),
    (None, "qint8", False, "arm64", "not applicable: this CPU is arm64"),
    (AVX2, "qint8", False, "x86_64", None),
    (None, "qint8", False, "x86_64", None),
])
def test_safe_reason(flags: list[str] | None, weight_type: str, reduce_range: bool, machine: str,
                     expected: str | None) -> None:
    reason = saturation.safe_reason(flags, weight_type, reduce_range, machine)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith(expected)


# -- the check on a narrow context ------------------------------------------------------------------

N, LABELS = 8, 3
REF = np.linspace(-2.0, 2.0, N * LABELS).reshape(N, LABELS)


class FixedRunner:
    """A runner whose logits are fixed (what a built or rebuilt backend gives on the probe)."""

    def __init__(self, logits: np.ndarray, model_file: str | None = None) -> None:
        self.logits = logits
        self.model_file = model_file
        self.closed = False

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"logits": self.logits.astype(np.float32)}

    def close(self) -> None:
        self.closed = True


@dataclass
class Config:
    decls: dict[str, BackendDecl]
    reference: str = "ref"
    task: str = "text-classification"
    adversarial_max_examples: int = 0

    def decl(self, name: str) -> BackendDecl:
        return self.decls[name]


class Task:
    def probe(self, runner: Any, size: int) -> Probe:
        return Probe(np.arange(N), {"input_ids": np.ones((N, 4), dtype=np.int64)})


@dataclass
class Gate:
    """What saturation.check (and causes.explain) use; every call is logged."""

    config: Config
    built: np.ndarray
    calls: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    task: Task = field(default_factory=Task)

    def runner(self, name: str) -> Runner:
        self.calls.append(f"runner {name}")
        return cast(Runner, FixedRunner(self.built))

    def run(self, name: str) -> BackendRun:
        self.calls.append(f"run {name}")
        return BackendRun(name, "fp32", "ok", logits=REF)

    def thresholds(self, name: str, overrides: Mapping[str, float | int] | None = None
                   ) -> dict[str, float | int]:
        return {"mean_abs_logit": INT8_MEAN}

    def context(self) -> Any:
        raise AssertionError("the check builds through saturation.rebuild only")

    def check(self, name: str, check: str) -> CheckResult:
        if check == "saturation":
            return saturation.check(cast(CheckContext, self), name)
        return CheckResult(name, check, "passed", "stub")


def int8(name: str = "ort-defaults", kind: str = "onnx-int8-dynamic", **options: Any) -> BackendDecl:
    return BackendDecl(name, kind, "int8", {"weight_type": "qint8", "per_channel": True,
                                            "reduce_range": False, **options})


def gate_for(decl: BackendDecl, built_drift: float) -> Gate:
    ref = BackendDecl("ref", "torch-fp32", "fp32", {})
    return Gate(Config({"ref": ref, decl.name: decl}), REF + built_drift)


@dataclass
class Rebuilds:
    """What ``saturation.rebuild`` is replaced by: ``drift`` is the rebuilt backend's (None:
    a test that must not rebuild), ``runners`` what it handed out."""

    drift: float | None = None
    runners: list[FixedRunner] = field(default_factory=list)

    def __call__(self, gate: Any, decl: BackendDecl) -> FixedRunner:
        assert self.drift is not None, f"{decl.name} was rebuilt"
        assert decl.options["reduce_range"] is False  # the backend's own; rebuild derives the twin
        runner = FixedRunner(REF + self.drift, "rebuilt/model.onnx")
        self.runners.append(runner)
        return runner


@pytest.fixture
def rebuilt(monkeypatch: pytest.MonkeyPatch) -> Rebuilds:
    rebuilds = Rebuilds()
    monkeypatch.setattr(saturation, "rebuild", rebuilds)
    return rebuilds


def cpu(monkeypatch: pytest.MonkeyPatch, flags: list[str] | None, machine: str = "x86_64",
        drift: float | None = float("inf")) -> None:
    """This CPU, and the backend's mean |logit diff| on the eval set (inf: beyond any
    threshold, so the check measures)."""
    monkeypatch.setattr(saturation, "cpu_int8_flags", lambda: flags)
    monkeypatch.setattr(saturation, "cpu_machine", lambda: machine)
    monkeypatch.setattr(saturation, "_eval_drift", lambda gate, backend: drift)


def test_on_a_vnni_cpu_the_check_is_not_applicable_and_rebuilds_nothing(
        monkeypatch: pytest.MonkeyPatch, rebuilt: Rebuilds) -> None:
    cpu(monkeypatch, ZEN4)
    gate = gate_for(int8(), 0.81)
    result = saturation.check(cast(CheckContext, gate), "ort-defaults")
    assert (result.check, result.verdict) == ("saturation", "passed")
    assert result.reason == "not applicable: this CPU has AVX-512 VNNI, whose kernel does not saturate"
    assert gate.calls == [] and rebuilt.runners == []  # nothing built, run or probed
    assert result.details["cpu_flags"] == ZEN4 and result.details["reduce_range"] is False


def test_on_this_machine_with_vnni_the_check_is_not_applicable(rebuilt: Rebuilds) -> None:
    flags = saturation.cpu_int8_flags()
    if not flags or not {"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags):
        pytest.skip(f"this CPU has no VNNI (flags {flags}): the check would measure here")
    gate = gate_for(int8(), 0.81)
    result = saturation.check(cast(CheckContext, gate), "ort-defaults")
    assert result.verdict == "passed" and result.reason.startswith("not applicable: this CPU has ")
    assert result.reason.endswith("VNNI, whose kernel does not saturate")
    assert gate.calls == [] and rebuilt.runners == []


@pytest.mark.parametrize("options", [{"reduce_range": True}, {"weight_type": "quint8"}])
def test_a_safe_recipe_is_not_applicable_even_without_vnni(
        monkeypatch: pytest.MonkeyPatch, rebuilt: Rebuilds, options: dict[str, Any]) -> None:
    cpu(monkeypatch, AVX2)
    gate = gate_for(int8(**options), 0.81)
    result = saturation.check(cast(CheckContext, gate), "ort-defaults")
    assert result.verdict == "passed" and result.reason.startswith("not applicable: ")
    assert gate.calls == [] and rebuilt.runners == []


def test_without_vnni_a_halving_drift_names_the_cause(monkeypatch: pytest.MonkeyPatch,
                                                     rebuilt: Rebuilds) -> None:
    cpu(monkeypatch, AVX2)
    rebuilt.drift = 0.0075  # the drift of the rebuilt backend (demo BERT, docs/thresholds.md)
    gate = gate_for(int8(kind="onnx-int8-static"), 0.126)
    result = saturation.check(cast(CheckContext, gate), "ort-defaults")
    assert result.verdict == "failed"
    (cause,) = result.details["causes"]
    assert cause == result.reason and cause.startswith(CAUSE)
    assert "(mean |logit diff| 0.126 as built, 0.0075 with reduce_range = true)" in cause
    measures = {m.name: m for m in result.measures}
    assert measures["probe_mean_abs_logit"].value == pytest.approx(0.126)
    assert measures["probe_mean_abs_logit_reduce_range"].value == pytest.approx(0.0075)
    assert all(m.n == N for m in result.measures) and result.n_inputs == N
    assert rebuilt.runners[0].closed  # the twin's session is released
    assert gate.calls == ["runner ort-defaults", "run ref"]
    assert result.details["rebuilt_artifact"] == "rebuilt/model.onnx"


def test_without_vnni_a_drift_that_does_not_fall_is_measured_and_passes(
        monkeypatch: pytest.MonkeyPatch, rebuilt: Rebuilds) -> None:
    cpu(monkeypatch, AVX2)
    rebuilt.drift = 0.09
    result = saturation.check(cast(CheckContext, gate_for(int8(), 0.12)), "ort-defaults")
    assert result.verdict == "passed" and "causes" not in result.details
    assert result.reason.startswith("no u8s8 saturation measured: mean |logit diff| 0.12 as built, "
                                    "0.09 with reduce_range = true on 8 golden inputs")
    assert [m.name for m in result.measures] == ["probe_mean_abs_logit",
                                                 "probe_mean_abs_logit_reduce_range"]


def test_the_spec_applies_to_ort_int8_kinds_that_are_not_the_reference() -> None:
    load_specs()
    spec = EXTRA_CHECKS["saturation"]
    decls = {name: int8(name, kind) for name, kind in (
        ("dyn", "onnx-int8-dynamic"), ("static", "onnx-int8-static"))}
    decls["torch-int8"] = BackendDecl("torch-int8", "torch-int8-dynamic", "int8", {})
    decls["user"] = BackendDecl("user", "onnx", "int8", {"path": "m.onnx"})
    decls["ref"] = int8("ref")
    gate = cast(CheckContext, Gate(Config(decls), REF))
    assert {n for n in decls if spec.applies(gate, n)} == {"dyn", "static"}
    assert spec.tasks == ("text-classification",)


def test_a_failing_backend_s_diagnosis_names_saturation(monkeypatch: pytest.MonkeyPatch,
                                                        rebuilt: Rebuilds) -> None:
    assert "saturation" in causes.FINDERS
    cpu(monkeypatch, AVX2)
    rebuilt.drift = 0.0075
    gate = gate_for(int8(), 0.126)
    records = {"logits": CheckResult("ort-defaults", "logits", "failed", "max_abs_logit 0.87"),
               "topk": CheckResult("ort-defaults", "topk", "passed", "ok")}
    explained = causes.explain(cast(CheckContext, gate), "ort-defaults", records)
    (cause,) = explained["logits"].details["causes"]
    assert cause.startswith(CAUSE) and cause.endswith("(saturation check)")
    assert "causes" not in explained["topk"].details


def test_a_backend_within_its_thresholds_is_not_rebuilt(monkeypatch: pytest.MonkeyPatch,
                                                        rebuilt: Rebuilds) -> None:
    cpu(monkeypatch, ["avx2"], drift=0.01)  # AVX2 only, and a drift within mean_abs_logit 0.25
    gate = gate_for(int8(), 0.81)
    result = saturation.check(cast(CheckContext, gate), "ort-defaults")
    assert result.verdict == "passed" and result.reason.startswith("not needed: mean |logit diff|")
    assert rebuilt.runners == []  # a diagnostic explains a drift; it never fails a good backend
