"""Per-layer precisions of a TensorRT engine, from its engine inspector's JSON.

``engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)``
returns ``{"Layers": [...], "Bindings": [...]}``. An engine built with
``ProfilingVerbosity.DETAILED`` describes each layer as an object (``Name``, ``LayerType``,
``Inputs``/``Outputs`` with a ``Format/Datatype`` string such as ``"Row major linear FP32"`` or
``"Thirty-two wide channel vectorized row major Int8 format"``, ``Weights: {"Type": "Int8"}``,
``Origin`` such as ``"QDQ"``); built with less verbosity, layers are bare name strings and
precisions cannot be read. The same layout is what ``trtexec --exportLayerInfo`` writes.

A layer's precision here is the narrowest type among its inputs and weights: ``int8`` if any is
Int8, else ``fp8``, ``fp16``/``bf16``, else ``fp32``; layers that only move integers or booleans
(shape arithmetic, gathers of ids) are ``other``. That is what the INT8-coverage check needs: how
much of the arithmetic really ran in INT8 (TensorRT falls back to higher precision per layer,
silently, when it has no faster INT8 kernel).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import BackendError, problem

_DTYPE_WORDS = (("int8", "int8"), ("fp8", "fp8"), ("bf16", "bf16"), ("fp16", "fp16"),
                ("half", "fp16"), ("fp32", "fp32"), ("float", "fp32"), ("int32", "int"),
                ("int64", "int"), ("bool", "int"), ("uint8", "int"))
_RANK = {"int8": 0, "fp8": 1, "fp16": 2, "bf16": 2, "fp32": 3}


@dataclass(frozen=True)
class LayerInfo:
    name: str
    layer_type: str
    precision: str  # int8 | fp8 | fp16 | bf16 | fp32 | other
    origin: str | None


def tensor_type(format_datatype: str) -> str | None:
    """``"Row major linear FP32"`` -> ``fp32``; ``"... Int8 format"`` -> ``int8``."""
    words = re.findall(r"[a-z0-9]+", format_datatype.lower())
    for word, kind in _DTYPE_WORDS:
        if word in words:
            return kind
    return None


def layer_precision(layer: Mapping[str, Any]) -> str:
    types = [tensor_type(str(t.get("Format/Datatype", ""))) for t in layer.get("Inputs", [])
             if isinstance(t, Mapping)]
    weights = layer.get("Weights")
    if isinstance(weights, Mapping) and "Type" in weights:
        types.append(tensor_type(str(weights["Type"])))
    if not any(types):  # a layer with no inputs (constants): judge by what it writes
        types = [tensor_type(str(t.get("Format/Datatype", ""))) for t in layer.get("Outputs", [])
                 if isinstance(t, Mapping)]
    floats = [t for t in types if t in _RANK]
    if not floats:
        return "other"
    return min(floats, key=lambda t: _RANK[t])


def parse_engine_information(text: str, *, name: str = "engine") -> list[LayerInfo]:
    """Layers of an engine inspector's JSON; errors say how to get a readable one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BackendError(problem(f"{name} inspector output", f"invalid JSON ({exc.msg})",
                                   "the JSON of get_engine_information(LayerInformationFormat"
                                   ".JSON)", "pass the JSON format, not ONELINE")) from None
    layers = data.get("Layers") if isinstance(data, Mapping) else None
    if not isinstance(layers, list):
        raise BackendError(problem(f"{name} inspector output", type(data).__name__,
                                   'an object with a "Layers" list', "pass the engine "
                                   "information, not one layer's"))
    if layers and all(isinstance(layer, str) for layer in layers):
        raise BackendError(problem(f"{name} inspector output", "layer names only",
                                   "per-layer details", "build the engine with "
                                   "config.profiling_verbosity = ProfilingVerbosity.DETAILED"))
    out = []
    for layer in layers:
        if not isinstance(layer, Mapping):
            continue
        out.append(LayerInfo(str(layer.get("Name", "?")), str(layer.get("LayerType", "?")),
                             layer_precision(layer), layer.get("Origin")))
    return out


def summarize(layers: list[LayerInfo]) -> dict[str, Any]:
    """Counts per precision, the INT8 share of the arithmetic layers, the layer types that ran
    above INT8 (for the INT8-coverage item)."""
    counts = Counter(layer.precision for layer in layers)
    arithmetic = [layer for layer in layers if layer.precision != "other"
                  and layer.layer_type not in ("Reformat", "NoOp", "Shuffle")]
    int8 = sum(1 for layer in arithmetic if layer.precision == "int8")
    above = Counter(layer.layer_type for layer in arithmetic if layer.precision != "int8")
    return {"layers": len(layers), "layer_precisions": dict(sorted(counts.items())),
            "int8_share": round(int8 / len(arithmetic), 4) if arithmetic else 0.0,
            "non_int8_layer_types": dict(sorted(above.items())),
            "qdq_reformats": sum(1 for layer in layers if layer.origin == "QDQ")}
