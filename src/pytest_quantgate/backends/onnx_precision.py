"""The precision of a user's ONNX file (kind ``onnx``), read from its graph when its declaration
names none.

Thresholds follow a backend's precision, and a user's file may be anything: judged against fp32
thresholds, a dynamic-INT8 file fails on drift it is expected to have. So at config time the
graph is read (``onnx.load`` without external data: op types, initializer dtypes and shapes,
never the weights' bytes) and an integer compute op means ``int8``; float16 (bfloat16) weights
making up most of the float weights mean ``fp16`` (``bf16``); anything else stays ``fp32``. A
declared ``precision`` always wins. Light on purpose: ``onnx`` is imported only inside
``infer_precision``, and not at all where the ``onnx`` extra is missing.

The config is loaded on every pytest run of a project with a ``[tool.quantgate]`` table, with
``--quantgate`` or without: importing onnx and parsing a large export costs ~1 s (0.84 s for a
436 MB file) that a plain ``pytest tests/unit`` would pay each time. So ``cached_precisions``
keeps each inferred precision in ``<cache_dir>/onnx-precision.json``, keyed by the file's
resolved path and stat, and a run where the file is unchanged neither imports onnx nor reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .registry import BackendDecl

# Ops that compute in integers. The standard ones, and ONNX Runtime's fused contrib
# (com.microsoft) forms that its quantizer and graph optimiser write in their place.
INTEGER_OPS: tuple[str, ...] = (
    "MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv", "DynamicQuantizeLinear",
    "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QGemm", "QAttention",
)
# Float ops that ORT runs as integer kernels when an int8/uint8 DequantizeLinear feeds them (QDQ)
QDQ_CONSUMERS: tuple[str, ...] = ("MatMul", "Gemm", "Conv")
# Ops between a DequantizeLinear and its consumer that change no values (exporters put a
# Transpose on a weight).
_PASS_THROUGH = frozenset({"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})

# onnx.TensorProto data types, by number: the module need not import onnx to name them.
_UINT8, _INT8, _FLOAT, _FLOAT16, _DOUBLE, _BFLOAT16 = 2, 3, 1, 10, 11, 16
_INT8_TYPES = frozenset({_UINT8, _INT8})
_FLOAT_TYPES = {_FLOAT: "float32", _FLOAT16: "float16", _DOUBLE: "float64", _BFLOAT16: "bfloat16"}
_HALF = {_FLOAT16: "fp16", _BFLOAT16: "bf16"}

OVERRIDE = 'declare precision = "..." in its [[tool.quantgate.backend]] table to override'


@dataclass(frozen=True)
class InferredPrecision:
    """What the graph says a user's file computes in, and why."""

    precision: str  # "fp32" | "fp16" | "bf16" | "int8"
    inferred: bool  # False: the graph could not be read, and precision is the fp32 fallback
    why: str  # the evidence ("24 MatMulInteger"), or why it could not be read

    def header_line(self, name: str) -> str:
        if self.inferred:
            return f"{name} precision {self.precision}, inferred from its graph ({self.why}); {OVERRIDE}"
        return (f"{name} precision {self.precision}: could not be inferred from its graph "
                f"({self.why}), so fp32 thresholds apply; {OVERRIDE}")

    def to_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "inferred": self.inferred, "why": self.why}


def user_file(raw: object, base_dir: Path) -> Path:
    """The path of a user's file as its ``path`` option names it: relative to ``base_dir``
    (the pyproject's directory), ``~`` expanded."""
    path = Path(str(raw)).expanduser()
    return path if path.is_absolute() else Path(base_dir) / path


def infer_precision(path: Path) -> InferredPrecision:
    """The precision of the ONNX file at ``path``; fp32, not inferred, when it cannot be read."""
    try:
        import onnx
    except ImportError:
        return InferredPrecision("fp32", False, "onnx is not installed here; pip install "
                                                "'pytest-quantgate[onnx]'")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # any parse failure: the runner reports a broken file itself
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return InferredPrecision("fp32", False, f"{path.name} is not a readable ONNX model: {first}")
    return precision_of_model(proto)


# The cache of inferred precisions, in the config's cache_dir. An entry is only reused under the
# FORMAT, plugin version and source of this module that wrote it; bump FORMAT when what an entry
# holds changes.
CACHE_FILE = "onnx-precision.json"
CACHE_FORMAT = 1
_PRECISIONS = frozenset({"fp32", "fp16", "bf16", "int8"})


def cached_precisions(paths: Iterable[Path], cache_dir: Path) -> dict[Path, InferredPrecision]:
    """``infer_precision`` of each of ``paths``, reusing what ``cache_dir`` holds for a file
    whose resolved path, size, mtime and ctime are unchanged since it was inferred.

    Never an error because of the cache: a corrupt, unreadable or unwritable cache only means the
    files are read again. Only what was inferred is kept: "onnx is not installed" or "not a
    readable model" must be tried again next run, when the extra or the file may be fixed. The
    cache file (and ``cache_dir``) is written only when something new was inferred."""
    out: dict[Path, InferredPrecision] = {}
    todo = list(dict.fromkeys(paths))
    if not todo:
        return out
    cache = Path(cache_dir) / CACHE_FILE
    stamp = _cache_stamp()
    known = _read_cache(cache, stamp)
    fresh: dict[str, dict[str, Any]] = {}
    for path in todo:
        # Stat before reading: a file replaced while it is parsed is stored under the old stat,
        # which the new file does not match, so the next run reads it again.
        key, stat = _file_key(path)
        entry = known.get(key) if key is not None else None
        hit = _entry_precision(entry, stat)
        if hit is not None:
            out[path] = hit
            continue
        out[path] = result = infer_precision(path)
        if result.inferred and key is not None:
            fresh[key] = {"stat": stat, **result.to_dict()}
    if fresh:
        _write_cache(cache, stamp, fresh)
    return out


def infer_undeclared(declared: dict[str, BackendDecl], names: list[str], entries: list[Any],
                     base_dir: Path, cache_dir: Path) -> dict[str, InferredPrecision]:
    """Set the precision of each gated user ONNX file that declares none from its graph, here
    at configuration rather than when it is built, so that its thresholds (and the
    fixtures') follow it; ``declared`` is updated in place.

    This runs on every pytest run of the project, --quantgate or not, so the results are cached
    in cache_dir (cached_precisions): an unchanged file is not parsed again and
    onnx not imported. A file that does not exist is left at fp32 and unread: building it fails
    with the path."""
    explicit = {e["name"] for e in entries if "precision" in e}  # validated: tables with a name
    paths: dict[str, Path] = {}
    for name in dict.fromkeys(names):
        decl = declared[name]
        if decl.kind != "onnx" or name in explicit:
            continue
        path = user_file(decl.options.get("path"), base_dir)
        if path.is_file():
            paths[name] = path
    found = cached_precisions(paths.values(), cache_dir)
    out: dict[str, InferredPrecision] = {}
    for name, path in paths.items():
        out[name] = found[path]
        declared[name] = replace(declared[name], precision=out[name].precision)
    return out


def _cache_stamp() -> dict[str, Any]:
    """What a cache entry is only valid under. The plugin's version is read from its metadata
    (a few ms: pytest has already imported importlib.metadata to load its plugins)."""
    from .. import __version__

    # This module's source too: an editable install keeps its version number when the rules
    # above change (the adversarial corpus's key does the same with the code that draws).
    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    return {"format": CACHE_FORMAT, "version": __version__, "code": code}


def _file_key(path: Path) -> tuple[str | None, list[int]]:
    """The resolved path and [size, mtime_ns, ctime_ns] of ``path``; (None, []) when it cannot be
    stat'ed (it is then inferred, and not cached). ctime too: a rewrite that keeps the size and
    sets the mtime back (a copy with preserved times) still changes it."""
    try:
        resolved = Path(path).resolve()
        st = resolved.stat()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop, on older Pythons
        return None, []
    return str(resolved), [st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _read_cache(cache: Path, stamp: dict[str, Any]) -> dict[str, Any]:
    """The entries of the cache file, by resolved path; empty when it is missing, unreadable,
    not ours, or written under another stamp (another format or plugin version)."""
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError: bad JSON or bad UTF-8; both mean "start over"
        return {}
    if not isinstance(data, dict) or any(data.get(k) != v for k, v in stamp.items()):
        return {}
    entries = data.get("files")
    return entries if isinstance(entries, dict) else {}


def _entry_precision(entry: Any, stat: list[int]) -> InferredPrecision | None:
    """The cached result in ``entry`` if it is well formed and for a file with ``stat``."""
    if not isinstance(entry, dict) or not stat or entry.get("stat") != stat:
        return None
    precision, inferred, why = entry.get("precision"), entry.get("inferred"), entry.get("why")
    if precision not in _PRECISIONS or inferred is not True or not isinstance(why, str):
        return None
    return InferredPrecision(precision, True, why)


def _write_cache(cache: Path, stamp: dict[str, Any], fresh: dict[str, dict[str, Any]]) -> None:
    """Merge ``fresh`` into the cache file as it is now (pytest-xdist workers each load the
    config and may write at once: each write is an atomic replace, the last one wins, and an
    entry another worker wrote in between is at worst inferred again). Entries of files that are
    gone are dropped, so the file does not grow with every temporary path. A cache_dir that
    cannot be created or written leaves the run uncached, not broken."""
    from ..atomic import write_json_atomic

    files = {k: v for k, v in _read_cache(cache, stamp).items() if os.path.exists(k)}
    files.update(fresh)
    try:
        write_json_atomic(cache, {**stamp, "files": files})
    except OSError:
        pass


def precision_of_model(proto: Any) -> InferredPrecision:
    """``infer_precision`` of a loaded ``onnx.ModelProto``."""
    graphs = list(_graphs(proto.graph))
    nodes = [n for g in graphs for n in g.node] + [n for f in proto.functions for n in f.node]
    integer = Counter(n.op_type for n in nodes if n.op_type in INTEGER_OPS)
    qdq = _qdq_consumers(graphs, nodes)
    if integer or qdq:
        parts = [f"{c} {op}" for op, c in sorted(integer.items(), key=lambda kv: (-kv[1], kv[0]))]
        parts += [f"{c} {op} with int8 Q/DQ inputs" for op, c in sorted(qdq.items())]
        return InferredPrecision("int8", True, ", ".join(parts))
    weights = _float_weights(graphs, nodes)
    total = sum(weights.values())
    if not total:
        return InferredPrecision("fp32", True, "no integer ops and no float weights")
    for dtype, precision in _HALF.items():
        # "Most": a half-precision model keeps a few float32 tensors (LayerNorm, the I/O casts)
        if weights[dtype] * 2 > total:
            return InferredPrecision(precision, True, f"{_FLOAT_TYPES[dtype]} weights: "
                                     f"{weights[dtype] / total:.0%} of {total:,} elements")
    share = ", ".join(f"{_FLOAT_TYPES[t]} {c / total:.0%}" for t, c in weights.most_common())
    return InferredPrecision("fp32", True, f"no integer ops; float weights of {total:,} "
                             f"elements: {share}")


def _graphs(graph: Any) -> Iterator[Any]:
    """The graph and every subgraph (If/Loop/Scan bodies) in it."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _graphs(attr.g)
            for sub in attr.graphs:
                yield from _graphs(sub)


def _qdq_consumers(graphs: list[Any], nodes: list[Any]) -> Counter[str]:
    """MatMul/Gemm/Conv nodes fed (through pass-through ops) by an int8/uint8 DequantizeLinear."""
    produced_by = {out: n for n in nodes for out in n.output if out}
    types: dict[str, int] = {}
    for g in graphs:
        types.update((t.name, t.data_type) for t in g.initializer)
        for value in [*g.input, *g.output, *g.value_info]:
            if value.type.HasField("tensor_type"):
                types[value.name] = value.type.tensor_type.elem_type
    for n in nodes:
        if n.op_type == "Constant" and n.output:
            for attr in n.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    types[n.output[0]] = attr.t.data_type

    def elem_type(name: str) -> int | None:
        if name in types:
            return types[name]
        node = produced_by.get(name)
        if node is not None and node.op_type == "QuantizeLinear":
            return quantized_type(node)
        return None

    def quantized_type(node: Any) -> int | None:
        """The integer type of a QuantizeLinear's output or a DequantizeLinear's input: that of
        the zero point; without one, QuantizeLinear's output_dtype (uint8 by default) or the
        DequantizeLinear's input."""
        if len(node.input) > 2 and node.input[2]:
            return elem_type(node.input[2])
        if node.op_type == "QuantizeLinear":
            dtype = next((a.i for a in node.attribute if a.name == "output_dtype"), 0)
            return dtype or _UINT8
        return elem_type(node.input[0]) if node.input else None

    def from_int8_dq(name: str) -> bool:
        for _ in range(8):  # a few pass-through ops at most: no walk through the whole graph
            node = produced_by.get(name)
            if node is None:
                return False
            if node.op_type == "DequantizeLinear":
                return quantized_type(node) in _INT8_TYPES
            if node.op_type not in _PASS_THROUGH or not node.input:
                return False
            name = node.input[0]
        return False

    return Counter(n.op_type for n in nodes if n.op_type in QDQ_CONSUMERS
                   and any(from_int8_dq(i) for i in n.input[:2] if i))


def _float_weights(graphs: list[Any], nodes: list[Any]) -> Counter[int]:
    """Elements of float weights by data type: initializers, Constant tensors, and float graph
    inputs that are not initializers (weights fed as inputs; unknown dimensions count 1)."""
    weights: Counter[int] = Counter()

    def add(data_type: int, dims: Any) -> None:
        if data_type in _FLOAT_TYPES:
            count = 1
            for d in dims:
                count *= max(int(d), 1)
            weights[data_type] += count

    for g in graphs:
        names = set()
        for t in g.initializer:
            names.add(t.name)
            add(t.data_type, t.dims)
        for value in g.input:
            tensor = value.type.tensor_type if value.type.HasField("tensor_type") else None
            if tensor is not None and value.name not in names:
                add(tensor.elem_type, [d.dim_value for d in tensor.shape.dim])
    for n in nodes:
        if n.op_type == "Constant":
            for attr in n.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    add(attr.t.data_type, attr.t.dims)
    return weights
