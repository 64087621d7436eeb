"""The ``saturation`` check of ONNX Runtime INT8 backends: do int8 weights at full range overflow
the u8s8 kernel of an x86 CPU without VNNI?

ONNX Runtime multiplies uint8 activations by int8 weights (u8s8). Without AVX-512 VNNI or
AVX-VNNI its x86 kernel uses ``vpmaddubsw``, which adds each pair of u8 x s8 products into a
saturating int16: 255 x 127 x 2 = 64770 does not fit, so large activations meeting large weights
are clipped and the model drifts on those CPUs only (VNNI's ``vpdpbusd`` sums in int32). ORT's
advice for such CPUs is ``reduce_range`` (7-bit weights: 255 x 64 x 2 = 32640 fits) or uint8
weights (the u8u8 kernel widens to int16 before multiplying). The registry defaults to
``reduce_range = true``; a backend declared with ``reduce_range = false`` and ``weight_type =
"qint8"`` (ORT's own defaults) is the one at risk.

The check rebuilds that recipe with ``reduce_range = true`` (the backend's own factory and
builders, through the artifact cache, so a warm run loads it) and runs the 32-input probe through
both: when the mean |logit diff| against the reference at least halves and lands within the
backend's ``mean_abs_logit`` threshold, saturation is the cause. Seven-bit weights are coarser, so
on a CPU that does not saturate the rebuilt backend drifts as much or more; a halving is the
kernel's signature, not the quantisation's.

Where the kernel cannot saturate (a VNNI or AMX CPU, a CPU that is not x86) or the recipe is
already safe, nothing is rebuilt: the check passes and its reason says why.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..checks import CheckContext
from ..errors import BackendUnavailable
from ..records import CheckResult, Measure
from .probes import PROBE_SIZE, agreement, logits_of

if TYPE_CHECKING:
    from ..backends.base import Runner
    from ..backends.registry import BackendDecl

CHECK = "saturation"
KINDS = ("onnx-int8-dynamic", "onnx-int8-static")
# Flags whose kernels accumulate u8 x s8 in int32 (AMX CPUs have AVX-512 VNNI too; listed so a
# flag list that names only AMX still counts).
GUARDS = (("avx512_vnni", "AVX-512 VNNI"), ("avx_vnni", "AVX-VNNI"), ("amx_int8", "AMX-INT8"))
X86 = ("x86_64", "amd64", "i386", "i686", "x86")
FALL = 0.5  # the rebuilt drift must be at most this share of the drift as built


def cpu_int8_flags() -> list[str] | None:
    """This CPU's INT8-relevant flags (``manifest.cpu_flags``), None where unknown. The one place
    the check asks the hardware: tests monkeypatch it to play a CPU without VNNI."""
    from ..manifest import cpu_flags

    flags = cpu_flags()["cpu_flags"]
    return None if flags is None else list(flags)


def cpu_machine() -> str:
    """The machine architecture (``platform.machine``), lower case; monkeypatched with the flags."""
    return platform.machine().lower()


def safe_reason(flags: Sequence[str] | None, weight_type: str, reduce_range: bool,
                machine: str = "x86_64") -> str | None:
    """Why this recipe cannot saturate on this CPU (the "not applicable" reason), or None."""
    if weight_type != "qint8":
        return (f"not applicable: weight_type = {weight_type!r}: uint8 weights run the u8u8 "
                "kernel, which does not saturate")
    if reduce_range:
        return ("not applicable: reduce_range = true: 7-bit weights keep each pair of products "
                "within the u8s8 kernel's int16 sum")
    if flags is not None:
        guard = next((name for flag, name in GUARDS if flag in flags), None)
        if guard is not None:
            return f"not applicable: this CPU has {guard}, whose kernel does not saturate"
    elif machine not in X86:
        return (f"not applicable: this CPU is {machine or 'not x86'}, and the saturating u8s8 "
                "kernel is x86's (AVX2 without VNNI)")
    return None


def saturation_cause(flags: Sequence[str] | None, weight_type: str, reduce_range: bool,
                     built: float, rebuilt: float, threshold: float,
                     machine: str = "x86_64") -> str | None:
    """The cause line when the measured drifts show saturation, else None.

    ``built``/``rebuilt``: mean |logit diff| against the reference on the probe, as built and
    with reduce_range = true; ``threshold``: the backend's ``mean_abs_logit``.
    """
    if safe_reason(flags, weight_type, reduce_range, machine) is not None:
        return None
    # NaN/Inf outputs are not saturation (it clips to finite values): another finder names them.
    if not (math.isfinite(built) and math.isfinite(rebuilt)) or built <= 0.0:
        return None
    if rebuilt > FALL * built or rebuilt > threshold:
        return None
    where = ("a CPU without VNNI" if flags is not None
             else "a CPU whose VNNI support is unknown (no x86 flags in /proc/cpuinfo)")
    return (f"u8s8 saturation on {where}: int8 weights at full range overflow the AVX2 u8s8 "
            f"kernel (mean |logit diff| {built:.3g} as built, {rebuilt:.3g} with reduce_range "
            "= true); set reduce_range = true (or weight_type = \"quint8\") in the backend's "
            "table")


def rebuild(gate: CheckContext, decl: BackendDecl) -> Runner:
    """The backend's recipe with reduce_range = true, built by its own factory through the
    session's artifact cache (keyed by the options, so it never overwrites the backend's own),
    activated. The caller closes it."""
    from ..backends.registry import create_runner

    twin = replace(decl, name=f"{decl.name} with reduce_range = true",
                   options={**decl.options, "reduce_range": True})
    return create_runner(twin, gate.context()).activate()


def check(gate: CheckContext, backend: str) -> CheckResult:
    decl = gate.config.decl(backend)
    weight_type, reduce_range = str(decl.options["weight_type"]), bool(decl.options["reduce_range"])
    flags, machine = cpu_int8_flags(), cpu_machine()
    details: dict[str, Any] = {"cpu_flags": flags, "machine": machine,
                               "weight_type": weight_type, "reduce_range": reduce_range}
    safe = safe_reason(flags, weight_type, reduce_range, machine)
    if safe is not None:
        return CheckResult(backend, CHECK, "passed", safe, details=details)
    threshold = float(gate.thresholds(backend)["mean_abs_logit"])
    drift = _eval_drift(gate, backend)
    if drift is not None and drift <= threshold:
        # A diagnostic explains a drift; it does not fail a backend within its thresholds (nor
        # rebuild one on every run of an AVX2 machine).
        return CheckResult(backend, CHECK, "passed", f"not needed: mean |logit diff| {drift:.3g} "
                           f"on the eval set is within mean_abs_logit {threshold:.3g}; a recipe "
                           "with int8 weights at full range may still saturate on this CPU's "
                           "u8s8 kernel (reduce_range = true avoids it)", details=details)
    runner = gate.runner(backend)
    probe = gate.task.probe(runner, PROBE_SIZE)
    n = len(probe.rows)
    ref = _reference_rows(gate, probe.rows)
    built = agreement(ref, logits_of(runner, probe.feed, n))[0]
    twin = rebuild(gate, decl)
    try:
        rebuilt = agreement(ref, logits_of(twin, probe.feed, n))[0]
        model_file = getattr(twin, "model_file", None)
        details["rebuilt_artifact"] = str(model_file) if model_file is not None else None
    finally:
        twin.close()
    measures = (Measure("probe_mean_abs_logit", built, None, "<=", True, n),
                Measure("probe_mean_abs_logit_reduce_range", rebuilt, None, "<=", True, n))
    details.update(probe_inputs=n, mean_abs_logit_threshold=threshold)
    cause = saturation_cause(flags, weight_type, reduce_range, built, rebuilt, threshold, machine)
    if cause is None:
        return CheckResult(backend, CHECK, "passed",
                           f"no u8s8 saturation measured: mean |logit diff| {built:.3g} as built, "
                           f"{rebuilt:.3g} with reduce_range = true on {n} golden inputs (a cause "
                           "needs the drift to halve and fall within mean_abs_logit "
                           f"{threshold:.3g})",
                           measures, n, details=details)
    return CheckResult(backend, CHECK, "failed", cause, measures, n,
                       details={**details, "causes": [cause]})


def _eval_drift(gate: CheckContext, backend: str) -> float | None:
    """Mean |logit diff| of the backend's eval run against the reference's (None: no logits)."""
    ref, run = gate.run(gate.config.reference), gate.run(backend)
    if ref.logits is None or run.logits is None:
        return None
    diff = np.abs(np.asarray(ref.logits, np.float64) - np.asarray(run.logits, np.float64))
    return float(diff.mean()) if np.isfinite(diff).all() else None


def _reference_rows(gate: CheckContext, rows: np.ndarray) -> np.ndarray:
    """The reference's logits of the probe rows, from its cached run over the eval set: the same
    inputs, without loading the float model again."""
    run = gate.run(gate.config.reference)
    if run.logits is None:
        raise BackendUnavailable(f"the reference {run.name!r} could not run: {run.reason}")
    return np.asarray(run.logits, dtype=np.float64)[rows]
