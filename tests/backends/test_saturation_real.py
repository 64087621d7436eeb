"""The ``saturation`` check end to end on the tiny BERT: ORT's default recipe (int8 weights at
full range) built and rebuilt with reduce_range = true through the session's artifact cache,
with the CPU's VNNI forced off. Where the CPU really has VNNI (or AMX) the drift does not fall,
so no cause; on an AVX2-only CPU it may, and the record must then name it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

from pytest_quantgate.backends import registry  # noqa: E402
from pytest_quantgate.checks import load_specs  # noqa: E402
from pytest_quantgate.config import load  # noqa: E402
from pytest_quantgate.inspect import saturation  # noqa: E402
from pytest_quantgate.session import GateSession  # noqa: E402

BACKEND = "ort-defaults"  # onnx-int8-dynamic as ORT's quantize_dynamic does it by default


@pytest.fixture(scope="module")
def project(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("saturation")
    (root / "golden.jsonl").write_text("\n".join(json.dumps(g) for g in demo.golden[:64]) + "\n")
    return root


def session(demo: Any, root: Path, **thresholds: float) -> GateSession:
    table: dict[str, Any] = {
        "model": str(demo.model_dir), "eval": "golden.jsonl", "max_length": 64,
        "cache_dir": "cache", "backends": [BACKEND], "adversarial_max_examples": 0,
        "backend": [{"name": BACKEND, "kind": "onnx-int8-dynamic", "reduce_range": False}],
    }
    if thresholds:
        table["thresholds"] = {BACKEND: thresholds}
    return GateSession(load(table, base_dir=root, cli={}, cli_dir=root, source="test"))


@pytest.fixture
def no_vnni(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(saturation, "cpu_int8_flags", lambda: ["avx2"])
    monkeypatch.setattr(saturation, "cpu_machine", lambda: "x86_64")
    # as if the backend drifted beyond its thresholds: the check measures only then
    monkeypatch.setattr(saturation, "_eval_drift", lambda gate, backend: float("inf"))


@pytest.fixture
def gate(demo: Any, project: Path) -> Iterator[GateSession]:
    load_specs()  # gate.check finds registered checks by name; collection would have loaded them
    g = session(demo, project)
    yield g
    g.close()


def test_without_vnni_the_check_rebuilds_and_measures(gate: GateSession, no_vnni: None) -> None:
    start = time.perf_counter()
    result = gate.check(BACKEND, "saturation")
    seconds = time.perf_counter() - start
    assert result.verdict in ("passed", "failed"), result.reason
    measures = {m.name: m for m in result.measures}
    built = measures["probe_mean_abs_logit"].value
    rebuilt = measures["probe_mean_abs_logit_reduce_range"].value
    assert 0 < built < 1 and 0 < rebuilt < 1  # a real INT8 drift, finite, on both sides
    assert result.n_inputs == 32 and all(m.n == 32 for m in measures.values())
    threshold = float(gate.thresholds(BACKEND)["mean_abs_logit"])
    cause = saturation.saturation_cause(["avx2"], "qint8", False, built, rebuilt, threshold)
    if cause is None:  # this CPU does not saturate (VNNI): 7-bit weights drift as much or more
        assert result.verdict == "passed" and result.reason.startswith("no u8s8 saturation")
    else:  # an AVX2-only CPU: the signature of the kernel
        assert result.verdict == "failed" and result.details["causes"] == [cause]
    rebuilt_file = Path(result.details["rebuilt_artifact"])
    own_file = Path(str(gate.runner(BACKEND).describe().artifact))
    assert rebuilt_file.is_file() and rebuilt_file != own_file  # its own cache entry
    assert seconds < 60, seconds


def test_with_the_real_flags_on_a_vnni_cpu_nothing_is_rebuilt(gate: GateSession,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    flags = saturation.cpu_int8_flags() or []
    if not {"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags):
        pytest.skip(f"this CPU has no VNNI (flags {flags}): the check measures here")
    monkeypatch.setattr(saturation, "rebuild", _no_rebuild)
    result = gate.check(BACKEND, "saturation")
    assert result.verdict == "passed" and result.reason.startswith("not applicable: this CPU has")
    assert result.measures == () and BACKEND not in gate.runners


def _no_rebuild(*args: Any) -> Any:
    raise AssertionError("rebuilt on a CPU with VNNI")


def test_a_failing_backend_names_saturation_when_reduce_range_restores_it(
        demo: Any, project: Path, no_vnni: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # What an AVX2-only CPU does, played here: the rebuilt backend is the fp32 export (no drift
    # to speak of), so the drift falls far more than half; the built-ins fail on a tightened
    # max_abs_logit, and their diagnosis must carry the cause.
    def fp32_twin(gate: Any, decl: Any) -> Any:
        twin = registry.declare("fp32-twin", "onnx-fp32", {}, "test")
        return registry.create_runner(twin, gate.context()).activate()

    monkeypatch.setattr(saturation, "rebuild", fp32_twin)
    g = session(demo, project, max_abs_logit=1e-4)
    try:
        records = g.results(BACKEND)
    finally:
        g.close()
    failed = [r for r in records.values() if r.verdict == "failed"]
    assert failed, {c: r.reason for c, r in records.items()}
    for record in failed:
        (cause,) = [c for c in record.details["causes"] if c.endswith("(saturation check)")]
        assert cause.startswith("u8s8 saturation on a CPU without VNNI: int8 weights at full "
                                "range overflow the AVX2 u8s8 kernel (mean |logit diff| ")
