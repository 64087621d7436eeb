"""TensorRT backends: ``trt-fp32``, ``trt-fp16``, ``trt-int8`` built from the ONNX export, and
``tensorrt``, a user's ``.plan`` / ``.engine`` file. Written to the TensorRT 10 Python API.

Engines are cached like every artifact; the key holds the source ONNX artifact, the precision,
the profile, the INT8 mode, the TensorRT version and the GPU (name and compute capability): a
plan runs only on the TensorRT version and GPU family that built it.

Bindings are by name (``num_io_tensors``, ``get_tensor_name``, ``get_tensor_mode``), dtypes are
read from the engine (``get_tensor_dtype``), so an int32 engine gets int32 ids: the runner
base casts an int64 feed, refuses one that would wrap, and records the cast in ``runner.casts``
for the contract check. A feed larger than the profile's batch maximum runs in chunks.

Device memory is torch CUDA tensors (``data_ptr()`` into ``set_tensor_address``, the run on
torch's current stream with ``execute_async_v3``): pycuda is not needed. pycuda compiles against
the local CUDA toolkit at install time (often no wheel), keeps its own context that must be
pushed and popped around torch's, and would be one more GPU library to match to the driver;
torch is already required for the export, and its caching allocator reuses buffers between
batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendError, DataError, problem
from .base import BackendInfo, Runner, TensorSpec
from .registry import BackendDecl, BuildContext
from .trt_plan import Binding, Profile, ShapeRange, check_feed_shape, plan_bindings, row_chunks

PLAN_FILE = "model.plan"
_TORCH_DTYPES = ("float32", "float16", "bfloat16", "int32", "int64", "int8", "uint8", "bool")


class TrtRunner(Runner):
    """One deserialized engine and one execution context on the current CUDA device."""

    kind = "tensorrt"

    def __init__(self, decl: BackendDecl, plan_file: Path, *, artifact: Any,
                 details: Mapping[str, Any], profile: Profile | None, ctx: BuildContext) -> None:
        super().__init__(decl.name, decl.precision)
        self.kind = decl.kind
        self.plan_file = Path(plan_file)
        self.artifact = artifact
        self.profile = profile
        self._ctx = ctx
        self._details = dict(details)
        self._engine: Any = None
        self._context: Any = None
        self._bindings: list[Binding] = []

    def _activate_impl(self) -> None:
        import tensorrt as trt

        from .trt_inspect import parse_engine_information, summarize

        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = runtime.deserialize_cuda_engine(self.plan_file.read_bytes())
        if engine is None:
            raise BackendError(problem(f"backend {self.name!r}: engine {self.plan_file}",
                                       "not deserializable", f"a plan built by TensorRT "
                                       f"{trt.__version__} for this GPU", "rebuild the engine on "
                                       "this machine (plans are tied to the version and GPU)"))
        tensors = []
        for i in range(engine.num_io_tensors):
            tname = engine.get_tensor_name(i)
            tensors.append((tname, engine.get_tensor_mode(tname) == trt.TensorIOMode.INPUT,
                            str(engine.get_tensor_dtype(tname)),
                            tuple(engine.get_tensor_shape(tname))))
        self._bindings = plan_bindings(self.name, tensors, self._ctx.input_names)
        if self.profile is None:  # a user's engine: read its profile 0
            first = next(b.name for b in self._bindings if b.is_input)
            lo, opt, hi = engine.get_tensor_profile_shape(first, 0)
            self.profile = Profile(ShapeRange(lo[0], opt[0], hi[0]),
                                   ShapeRange(lo[1], opt[1], hi[1]))
        self._engine, self._context = engine, engine.create_execution_context()
        self._details["engine_inputs"] = {b.name: b.dtype for b in self._bindings if b.is_input}
        self._details["engine_outputs"] = {b.name: b.dtype for b in self._bindings
                                           if not b.is_input}
        self._details["profile"] = self.profile.as_dict()
        info = engine.create_engine_inspector().get_engine_information(
            trt.LayerInformationFormat.JSON)
        try:
            self._details.update(summarize(parse_engine_information(info, name=self.name)))
        except BackendError as exc:  # a user's engine built without detailed verbosity
            self._details["layer_precisions"] = None
            self._details["inspector_note"] = str(exc)

    def _input_specs_impl(self) -> list[TensorSpec]:
        return [TensorSpec(b.name, b.dtype, tuple(d if d > 0 else None for d in b.shape))
                for b in self._bindings if b.is_input]

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> Mapping[str, Any]:
        profile = self.profile or Profile(ShapeRange(1, 1, 1), ShapeRange(1, 1, 1))  # set above
        rows, length = next(iter(feed.values())).shape
        check_feed_shape(self.name, (rows, length), profile)
        parts: dict[str, list[np.ndarray]] = {}
        for rows_slice in row_chunks(rows, profile.batch.max):
            for name, array in self._run_chunk({k: v[rows_slice] for k, v in feed.items()}):
                parts.setdefault(name, []).append(array)
        return {k: np.concatenate(v) for k, v in parts.items()}

    def _run_chunk(self, feed: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
        import torch

        device = torch.device("cuda")
        held = []
        for b in self._bindings:
            if b.is_input:
                tensor = torch.from_numpy(np.ascontiguousarray(feed[b.name])).to(device)
                self._context.set_input_shape(b.name, tuple(tensor.shape))
                held.append((b, tensor))
        outputs = []
        for b in self._bindings:
            if not b.is_input:
                shape = tuple(self._context.get_tensor_shape(b.name))
                tensor = torch.empty(shape, dtype=_torch_dtype(b.dtype), device=device)
                outputs.append((b, tensor))
        for b, tensor in held + outputs:
            self._context.set_tensor_address(b.name, int(tensor.data_ptr()))
        stream = torch.cuda.current_stream(device)
        if not self._context.execute_async_v3(stream.cuda_stream):
            shapes = {k: tuple(v.shape) for k, v in feed.items()}
            raise BackendError(problem(f"backend {self.name!r} inference", "execute_async_v3 "
                                       "returned False", "outputs for the feed", f"check the feed "
                                       f"shapes {shapes} against the engine's profile"))
        # numpy has no bfloat16: widen on the device (the base widens fp16 itself)
        return [(b.name, (t.float() if t.dtype == torch.bfloat16 else t).cpu().numpy())
                for b, t in outputs]

    def _synchronize(self) -> None:
        import torch

        torch.cuda.synchronize()

    def _describe_impl(self) -> BackendInfo:
        import tensorrt as trt

        art = self.artifact
        return BackendInfo(
            name=self.name, kind=self.kind, precision=self.precision,
            runtime=f"tensorrt {trt.__version__}",
            size_bytes=self.plan_file.stat().st_size,
            build_seconds=art.build_seconds if art is not None else 0.0,
            cache_hit=art.hit if art is not None else False, artifact=str(self.plan_file),
            details=self._details)

    def _close_impl(self) -> None:
        self._context = None
        self._engine = None


def create(decl: BackendDecl, ctx: BuildContext) -> TrtRunner:
    """Build (or load from the cache) a TensorRT engine; the runner is returned not active."""
    from .torch_cuda import device_details, require_cuda

    device = require_cuda(decl.name)
    if decl.kind == "tensorrt":
        return _user_engine(decl, ctx)
    import tensorrt as trt

    from . import onnx_quantize
    from .onnx_export import MODEL_FILE, fp32_export, read_details
    from .onnx_gpu import export_inputs
    from .trt_build import build_engine
    from .trt_plan import profile_from_options

    precision = {"trt-fp32": "fp32", "trt-fp16": "fp16", "trt-int8": "int8"}.get(decl.kind)
    if precision is None:
        raise BackendError(problem("TensorRT backend kind", decl.kind,
                                   "trt-fp32, trt-fp16, trt-int8 or tensorrt",
                                   "fix the registry entry"))
    opts = dict(decl.options)
    profile = profile_from_options(opts, ctx.max_length)
    export = fp32_export(ctx, str(opts.get("exporter", "legacy")), int(opts.get("opset", 17)))
    inputs = export_inputs(export.path, ctx)
    mode = str(opts.get("int8_mode", "qdq"))
    source = export
    if precision == "int8" and mode == "qdq":
        source = onnx_quantize.int8_static(ctx, export, {
            "op_types": "default", "calibrate_method": "minmax", "activation_type": "qint8",
            "weight_type": "qint8", "per_channel": True, "reduce_range": False,
            "calibration_size": int(opts.get("calibration_size", 0)), "symmetric": True})
    gpu = device_details(device)
    user_cache = opts.get("calibration_cache") or None
    parts = {"source": source.key, "precision": precision, "profile": profile.as_dict(),
             "int8_mode": mode if precision == "int8" else None, "tensorrt": trt.__version__,
             "gpu": gpu["gpu"], "capability": gpu["capability"],
             "calibration": ctx.calibration_hash if mode == "calibrator" else None}

    def build(tmp: Path) -> None:
        import json

        cache_file = tmp / "calibration.cache"
        if user_cache:
            cache_file.write_bytes(_resolve(ctx, str(user_cache), "calibration_cache").read_bytes())
        details = build_engine(source.path / MODEL_FILE, tmp / PLAN_FILE, precision=precision,
                               profile=profile, inputs=inputs, int8_mode=mode,
                               calibration=ctx.calibration_batches()
                               if mode == "calibrator" else None,
                               calibration_cache=cache_file if mode == "calibrator" else None)
        details["source"] = read_details(source.path)
        (tmp / "details.json").write_text(json.dumps({**details, **gpu}, indent=2) + "\n")

    artifact = ctx.cache.get_or_build(decl.kind, parts, build)
    details = read_details(artifact.path)
    if artifact.note:  # a damaged cache entry was rebuilt (cache.py): the report says so
        details["cache"] = artifact.note
    return TrtRunner(decl, artifact.path / PLAN_FILE, artifact=artifact,
                     details=details, profile=profile, ctx=ctx)


def _user_engine(decl: BackendDecl, ctx: BuildContext) -> TrtRunner:
    path = _resolve(ctx, str(decl.options.get("engine")), "engine")
    return TrtRunner(decl, path, artifact=None, details={"source": str(path)}, profile=None,
                     ctx=ctx)


def _resolve(ctx: BuildContext, raw: str, option: str) -> Path:
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = Path(ctx.base_dir) / path
    if not path.is_file():
        raise DataError(problem(f"TensorRT option {option}", str(path), "an existing file",
                                f"fix {option} = ... in the backend's [[tool.quantgate.backend]] "
                                "table (relative paths start at the pyproject's directory)"))
    return path


def _torch_dtype(name: str) -> Any:
    import torch

    if name not in _TORCH_DTYPES:
        raise BackendError(problem("TensorRT output dtype", name, f"one of {_TORCH_DTYPES}",
                                         "rebuild the engine with float outputs"))
    return getattr(torch, name)
