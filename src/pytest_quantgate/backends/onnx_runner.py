"""ONNX Runtime backends: the fp32 export, its fp16 and INT8 conversions, and a user's file.

Every kind runs on ``CPUExecutionProvider``; GPU providers belong to their own kinds. Threads:
ONNX Runtime starts one intra-op thread per physical core in every session, so several
sessions (one per backend, times pytest-xdist workers) oversubscribe the CPU and latency
figures turn to noise. ``QUANTGATE_THREADS`` (else ``OMP_NUM_THREADS``) caps them; unset, ORT
chooses. The value used is recorded in the backend's details.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import Artifact
from ..errors import BackendError, DataError, problem
from .base import BackendInfo, Runner, TensorSpec
from .onnx_export import MODEL_FILE, fp32_export, read_details
from .onnx_precision import user_file
from .registry import BackendDecl, BuildContext

PROVIDER = "CPUExecutionProvider"
THREADS_ENV = ("QUANTGATE_THREADS", "OMP_NUM_THREADS")

# ONNX Runtime's type strings -> numpy dtype names
_ORT_DTYPES = {
    "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32", "tensor(uint64)": "uint64", "tensor(bool)": "bool",
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(bfloat16)": "bfloat16",
}


class OnnxRunner(Runner):
    """One ONNX Runtime session on the CPU provider over one ``.onnx`` file."""

    kind = "onnx"

    def __init__(self, decl: BackendDecl, model_file: Path, *, artifact: Artifact | None,
                 details: Mapping[str, Any]) -> None:
        super().__init__(decl.name, decl.precision)
        self.kind = decl.kind
        self.model_file = Path(model_file)
        self.artifact = artifact
        self._details = dict(details)
        self._session: Any = None
        self._outputs: list[str] = []

    def _activate_impl(self) -> None:
        import onnxruntime as ort

        opts = session_options(ort)
        try:
            self._session = ort.InferenceSession(str(self.model_file), opts, providers=[PROVIDER])
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            if "protobuf" in first.lower() or "parse" in first.lower():
                raise DataError(problem(f"backend {self.name!r}: ONNX file {self.model_file}",
                                        first, "a valid ONNX model",
                                        "re-export or re-copy the file")) from None
            raise BackendError(problem(f"backend {self.name!r}: ONNX Runtime session for "
                                       f"{self.model_file}", first, f"a model {PROVIDER} runs",
                                       "check the ops and opset against onnxruntime "
                                       f"{ort.__version__}")) from None
        self._outputs = [o.name for o in self._session.get_outputs()]

    def _input_specs_impl(self) -> list[TensorSpec]:
        specs = []
        for value in self._session.get_inputs():
            dtype = _ORT_DTYPES.get(value.type)
            if dtype is None:
                raise BackendError(problem(f"backend {self.name!r} input {value.name!r} type",
                                           value.type, f"one of {sorted(_ORT_DTYPES)}",
                                           "export the model with integer token inputs"))
            shape = tuple(d if isinstance(d, int) and d > 0 else None for d in value.shape)
            specs.append(TensorSpec(value.name, dtype, shape))
        return specs

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> Mapping[str, Any]:
        try:
            values = self._session.run(self._outputs, feed,
                                       _quiet_run() if self._quiet_failures else None)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            shapes = {k: tuple(v.shape) for k, v in feed.items()}
            raise BackendError(problem(f"backend {self.name!r} inference", first,
                                       "outputs for the feed", f"check the feed shapes {shapes} "
                                       "against the model (max_position_embeddings)")) from None
        return dict(zip(self._outputs, values, strict=True))

    def _describe_impl(self) -> BackendInfo:
        import onnxruntime as ort

        art = self.artifact
        size = art.size_bytes if art is not None else _file_size(self.model_file)
        return BackendInfo(
            name=self.name, kind=self.kind, precision=self.precision,
            runtime=f"onnxruntime {ort.__version__} ({PROVIDER})",
            size_bytes=size, build_seconds=art.build_seconds if art is not None else 0.0,
            cache_hit=art.hit if art is not None else False, artifact=str(self.model_file),
            details={**self._details, "threads": session_threads() or "ort-default"},
        )

    def _close_impl(self) -> None:
        self._session = None


def create(decl: BackendDecl, ctx: BuildContext) -> OnnxRunner:
    """Build (or load from the cache) the artifact of an ONNX kind; the runner is not active."""
    from . import onnx_quantize

    opts = dict(decl.options)
    if decl.kind == "onnx":
        return _user_file(decl, ctx)
    export = fp32_export(ctx, str(opts.get("exporter", "legacy")), int(opts.get("opset", 17)))
    builders = {"onnx-fp32": None, "onnx-fp16": onnx_quantize.fp16,
                "onnx-int8-dynamic": onnx_quantize.int8_dynamic,
                "onnx-int8-static": onnx_quantize.int8_static}
    if decl.kind not in builders:
        raise BackendError(problem("ONNX backend kind", decl.kind, f"one of {sorted(builders)}",
                                   "fix the registry entry"))
    builder = builders[decl.kind]
    artifact = export if builder is None else builder(ctx, export, opts)
    model_file = artifact.path / MODEL_FILE
    details = {**read_details(artifact.path), **graph_summary(model_file)}
    # A damaged cache entry rebuilt (the export's too: a converted kind hits on its own key)
    # is told in the backend's details, which the JSON report carries.
    notes = list(dict.fromkeys(a.note for a in (export, artifact) if a.note))
    if notes:
        details["cache"] = "; ".join(notes)
    return OnnxRunner(decl, model_file, artifact=artifact, details=details)


def _user_file(decl: BackendDecl, ctx: BuildContext) -> OnnxRunner:
    # Resolved as config.py resolved it to infer the precision: the same file.
    path = user_file(decl.options.get("path"), ctx.base_dir)
    if not path.is_file():
        raise DataError(problem(f"backend {decl.name!r}: ONNX file", str(path),
                                "an existing .onnx file",
                                "fix path = ... in its [[tool.quantgate.backend]] table "
                                "(relative paths start at the pyproject's directory)"))
    return OnnxRunner(decl, path, artifact=None, details=graph_summary(path))


def graph_summary(model_file: Path) -> dict[str, Any]:
    """Op-type counts and opset of a graph (for the INT8-coverage check); weights not loaded."""
    import onnx

    try:
        proto = onnx.load(str(model_file), load_external_data=False)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise DataError(problem(f"ONNX file {model_file}", first, "a valid ONNX model",
                                "re-export or re-copy the file")) from None
    ops = Counter(n.op_type for n in proto.graph.node)
    for fn in proto.functions:  # dynamo exports may keep local functions
        ops.update(n.op_type for n in fn.node)
    opset = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
    return {"op_types": dict(sorted(ops.items())), "opset_import": opset,
            "producer": f"{proto.producer_name} {proto.producer_version}".strip()}


_QUIET: list[Any] = []


def _quiet_run() -> Any:
    """Run options that log nothing, not even errors (severity 4, fatal only): for
    Runner.quiet_failures. Made once, when first needed (onnxruntime is imported lazily)."""
    if not _QUIET:
        import onnxruntime as ort

        options = ort.RunOptions()
        options.log_severity_level = 4
        _QUIET.append(options)
    return _QUIET[0]


def session_options(ort: Any) -> Any:
    """Options every gate session shares: quiet logs, the thread count, no spinning.

    ORT's intra-op threads spin after each op by default; the gate keeps several sessions and a
    PyTorch model in one process and times them in alternation, so a spinning idle pool takes
    the cores of the backend being timed (see ``latency.passive_thread_pools``).
    """
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # ORT's warnings go to stderr, not through Python
    threads = session_threads()
    if threads:
        opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def session_threads() -> int | None:
    """Intra-op threads from QUANTGATE_THREADS or OMP_NUM_THREADS; None lets ORT choose."""
    for var in THREADS_ENV:
        text = os.environ.get(var, "").strip()
        if not text:
            continue
        try:
            value = int(text)
        except ValueError:
            raise BackendError(problem(f"environment variable {var}", text,
                                       "a positive whole number of threads",
                                       f"export {var}=2, or unset it")) from None
        if value < 1:
            raise BackendError(problem(f"environment variable {var}", value,
                                       "a positive whole number of threads",
                                       f"export {var}=2, or unset it"))
        return value
    return None


def _file_size(path: Path) -> int:
    """The file plus any external-data files beside it that it names."""
    size = path.stat().st_size
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        names = {e.value for t in proto.graph.initializer for e in t.external_data
                 if e.key == "location"}
        size += sum((path.parent / n).stat().st_size for n in names if (path.parent / n).is_file())
    except Exception:  # size is informative; a broken file fails at activation with its message
        pass
    return size
