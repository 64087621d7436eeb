"""Where ONNX Runtime really ran a graph: the provider checks of the GPU kinds, without ORT.

ONNX Runtime falls back silently in two ways. A session asked for ``CUDAExecutionProvider``
whose CUDA or cuDNN libraries fail to load is created on the CPU provider alone (a log line at
error severity, nothing raised); and a session on a GPU provider places every node that provider
has no kernel for on the CPU. Both would count a CPU run as a GPU result, so:

- ``check_providers`` compares what was asked for, what this ORT build offers and what the
  session reports (``session.get_providers()``): the provider missing from the build is
  ``BackendUnavailable`` (a skip: onnxruntime-gpu is not installed); missing from the session is
  ``BackendError`` (the fallback).
- ``node_placement`` reads one profiled run (``SessionOptions.enable_profiling``; each node's
  ``*_kernel_time`` event names its provider) and ``check_placement`` fails when a compute op
  (MatMul, Gemm, attention, normalisation...) ran on the CPU. Shape arithmetic on the CPU is
  normal (ORT puts it there on purpose) and only recorded.

Everything here takes plain values, so it is tested on a CPU-only machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import BackendError, BackendUnavailable, problem

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"

# Ops whose placement on the CPU means the model's arithmetic did not run on the GPU.
COMPUTE_OPS = frozenset({
    "MatMul", "Gemm", "Conv", "ConvTranspose", "FusedMatMul", "MatMulInteger", "QLinearMatMul",
    "QLinearConv", "DynamicQuantizeMatMul", "Attention", "MultiHeadAttention",
    "LayerNormalization", "SkipLayerNormalization", "EmbedLayerNormalization",
    "SimplifiedLayerNormalization", "Softmax", "Gelu", "FastGelu", "BiasGelu", "Erf",
})


def check_providers(name: str, requested: Sequence[str], available: Sequence[str],
                    active: Sequence[str], *, ort_version: str = "?") -> None:
    """Raise unless ``requested[0]`` is both built into ORT and active in the session."""
    wanted = requested[0]
    if wanted not in available:
        raise BackendUnavailable(problem(
            f"backend {name!r} needs ONNX Runtime's {wanted}", list(available),
            f"{wanted} among onnxruntime {ort_version}'s providers",
            "pip uninstall onnxruntime && pip install onnxruntime-gpu (a CUDA build matching "
            "the driver), or drop the backend on machines without a GPU"))
    if wanted not in active:
        raise BackendError(problem(
            f"backend {name!r}: ONNX Runtime fell back to the CPU", list(active),
            f"{wanted} among the session's providers", "ORT could not load the GPU libraries "
            "(CUDA, cuDNN, TensorRT) its build needs; run with ORT logging at warning level to "
            "see which, and match them to onnxruntime-gpu's requirements"))


def node_placement(events: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Op-type counts per provider from ORT profile events (one entry per node executed)."""
    placed: dict[str, Counter[str]] = {}
    seen: set[str] = set()
    for event in events:
        if event.get("cat") != "Node":
            continue
        node = str(event.get("name", ""))
        args = event.get("args") or {}
        provider = args.get("provider")
        if not node.endswith("_kernel_time") or not provider or node in seen:
            continue
        seen.add(node)
        placed.setdefault(str(provider), Counter())[str(args.get("op_name", "?"))] += 1
    return {p: dict(sorted(c.items())) for p, c in sorted(placed.items())}


def check_placement(name: str, provider: str, placement: Mapping[str, Mapping[str, int]],
                    *, compute_ops: frozenset[str] = COMPUTE_OPS) -> dict[str, Any]:
    """Fail when compute ops ran on the CPU or nothing ran on ``provider``; else a summary."""
    if not placement:
        raise BackendError(problem(f"backend {name!r} node placement", "no node events",
                               "a profiled run that lists each node's provider",
                               "report this with the onnxruntime version"))
    on_cpu = dict(placement.get(CPU, {}))
    compute_on_cpu = {op: n for op, n in on_cpu.items() if op in compute_ops}
    if compute_on_cpu:
        raise BackendError(problem(
            f"backend {name!r}: compute ops ran on the CPU, not {provider}", compute_on_cpu,
            f"every {sorted(compute_ops & set(compute_on_cpu))} node on {provider}",
            "the provider has no kernel for them at this opset or dtype; export at another "
            "opset, or gate it as a CPU backend"))
    if not placement.get(provider):
        raise BackendError(problem(f"backend {name!r} node placement", dict(placement),
                                   f"nodes on {provider}", "the provider took no node; check "
                                   "its options and the model's ops"))
    total = sum(sum(ops.values()) for ops in placement.values())
    return {"node_placement": {p: sum(ops.values()) for p, ops in placement.items()},
            "cpu_nodes": on_cpu, "nodes": total}
