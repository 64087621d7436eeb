"""The diagnostic checks' registrations: cheap ``applies`` tests, functions by import path.

Imported at collection (``checks._SPEC_MODULES``): no numpy, no frameworks here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..checks import CheckSpec, register

if TYPE_CHECKING:
    from ..checks import CheckContext

_HERE = "pytest_quantgate.inspect"
# every diagnostic applies to both tasks but saturation (a classification rebuild of the recipe)
BOTH = ("text-classification", "causal-lm")
# determinism and int8-coverage read only the runner: every task, embedders included
ANY = (*BOTH, "embeddings")


def _not_reference(gate: CheckContext, backend: str) -> bool:
    return backend != gate.config.reference


def _int8(gate: CheckContext, backend: str) -> bool:
    return _not_reference(gate, backend) and gate.config.decl(backend).precision == "int8"


def _onnx_int8(gate: CheckContext, backend: str) -> bool:
    # Only ORT's own INT8 builds: the check rebuilds their recipe with reduce_range = true
    return _not_reference(gate, backend) and gate.config.decl(backend).kind in (
        "onnx-int8-dynamic", "onnx-int8-static")


def _static_int8(gate: CheckContext, backend: str) -> bool:
    # the plugin's static builds, and a user's INT8 ONNX file (declared or inferred), whose
    # graph may carry calibrated ranges: the check reads it (a dynamic one is skipped there)
    decl = gate.config.decl(backend)
    return _not_reference(gate, backend) and (
        decl.kind == "onnx-int8-static" or decl.kind == "onnx" and decl.precision == "int8")


register(CheckSpec("contract", f"{_HERE}.contract:check", _not_reference,
                   "inputs, outputs and label map as expected; names a wiring fault",
                   tasks=ANY))
register(CheckSpec("determinism", f"{_HERE}.determinism:check", _not_reference,
                   "the same batch twice gives the same logits", tasks=ANY))
register(CheckSpec("int8-coverage", f"{_HERE}.int8_coverage:check", _int8,
                   "share of matrix multiplies that really run in integer precision", tasks=ANY))
register(CheckSpec("calibration", f"{_HERE}.calibration:check", _static_int8,
                   "share of golden activations outside the calibrated ranges", tasks=ANY))
register(CheckSpec("saturation", f"{_HERE}.saturation:check", _onnx_int8,
                   "int8 weights at full range saturating the u8s8 kernel of a CPU without VNNI"))
