"""Build a TensorRT engine from an ONNX file with the TensorRT 10 Python API (no trtexec).

Builder -> network (explicit batch, the only mode in TensorRT 10) -> ONNX parser -> one
optimisation profile over every token input -> builder config (precision flags, workspace,
``ProfilingVerbosity.DETAILED`` so the inspector can report per-layer precisions) ->
``build_serialized_network`` -> plan bytes.

INT8 comes two ways:

- ``qdq`` (default): the network is the symmetric static-INT8 QDQ export; TensorRT reads the
  scales from its Q/DQ nodes ("explicit quantization") and the INT8 flag lets it pick INT8
  kernels. Nothing is calibrated here.
- ``calibrator`` (legacy, deprecated by TensorRT 10 but still shipped): the fp32 export with an
  ``IInt8EntropyCalibrator2`` fed fixed-shape batches at the profile's ``opt`` shape
  (``set_calibration_profile``) and a calibration cache file, reused when given.

Device buffers for calibration are torch CUDA tensors (see trt_runner.py for why not pycuda).
This module imports tensorrt and torch inside its functions only.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendError, problem
from .trt_plan import Profile, numpy_dtype

WORKSPACE_BYTES = 4 << 30


def build_engine(onnx_file: Path, plan_file: Path, *, precision: str, profile: Profile,
                 inputs: list[str], int8_mode: str = "qdq",
                 calibration: Iterable[Mapping[str, np.ndarray]] | None = None,
                 calibration_cache: Path | None = None,
                 workspace: int = WORKSPACE_BYTES) -> dict[str, Any]:
    """Write the serialized engine to ``plan_file``; returns what the build did."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_file)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BackendError(problem(f"TensorRT ONNX parser on {onnx_file}",
                                   (errors or ["unknown error"])[0][:300], "a parsed network",
                                   "export at another opset, or check the ops against TensorRT "
                                   f"{trt.__version__}'s ONNX parser"))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    opt_profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile.shapes(inputs).items():
        opt_profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(opt_profile)
    calibrator = None
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        if int8_mode == "calibrator":
            if calibration is None:
                raise BackendError(problem("trt-int8 (int8_mode = 'calibrator')",
                                           "no calibration data", "calibration batches",
                                           'set calibration = "data/calibration.jsonl"'))
            dtypes = {network.get_input(i).name: numpy_dtype(str(network.get_input(i).dtype))
                      for i in range(network.num_inputs)}
            calibrator = make_calibrator(calibration, dtypes, profile, calibration_cache)
            config.int8_calibrator = calibrator
            config.set_calibration_profile(opt_profile)
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if serialized is None:
        raise BackendError(problem(f"TensorRT build of {onnx_file} ({precision})", "None",
                                   "a serialized engine", "read TensorRT's log above; lower "
                                   "the profile's maximum shapes or raise the workspace"))
    plan_file.write_bytes(bytes(serialized))
    return {"tensorrt": trt.__version__, "precision": precision, "int8_mode":
            int8_mode if precision == "int8" else None, "profile": profile.as_dict(),
            "engine_build_seconds": round(seconds, 3),
            "calibration_batches": calibrator.batches if calibrator is not None else None}


def make_calibrator(batches: Iterable[Mapping[str, np.ndarray]], dtypes: Mapping[str, str],
                    profile: Profile, cache_file: Path | None) -> Any:
    """An ``IInt8EntropyCalibrator2`` over fixed-shape batches (the class needs tensorrt, so it
    is defined here rather than at module level)."""
    import tensorrt as trt
    import torch

    from .trt_plan import calibration_batches

    fixed = calibration_batches(batches, batch=profile.batch.opt, sequence=profile.sequence.opt)

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = 0
            self._held: dict[str, Any] = {}

        def get_batch_size(self) -> int:
            return profile.batch.opt

        def get_batch(self, names: list[str]) -> list[int] | None:
            try:
                feed = next(fixed)
            except StopIteration:
                return None
            self.batches += 1
            # keep the tensors alive until the next call: TensorRT reads them asynchronously
            self._held = {n: torch.from_numpy(feed[n].astype(dtypes.get(n, "int64"))).cuda()
                          for n in names}
            return [int(self._held[n].data_ptr()) for n in names]

        def read_calibration_cache(self) -> bytes | None:
            if cache_file is not None and cache_file.is_file():
                return cache_file.read_bytes()
            return None

        def write_calibration_cache(self, cache: Any) -> None:
            if cache_file is not None:
                cache_file.write_bytes(bytes(cache))

    return EntropyCalibrator()
