"""Build the converted ONNX artifacts: fp16, dynamic INT8 and static INT8 (QDQ).

Each builder takes the cached fp32 export and returns its own cached artifact, keyed by the
export's key, the options, the calibration data (static) and the library versions.

Measured on the demo BERT (2 layers, hidden 128), ORT 1.32, an AVX2-only AMD EPYC (no VNNI):

- fp16 on ONNX Runtime's CPU provider runs: ORT inserts Casts around every fp16 node that has
  no CPU fp16 kernel (for a BERT: Add, Div, Gather, Gemm, LayerNormalization, MatMul, Mul,
  Where), so those compute in fp32 and only the weights and the remaining ops are fp16. We
  block nothing ourselves (same numbers, and the file stays fully fp16 for GPU providers); the
  ops ORT falls back on are recorded in the artifact's details (``ort_fp32_fallback_ops``).
- static INT8 ``op_types = "default"`` quantises MatMul only. On the demo BERT, adding Gemm (in a
  BERT export that is only the pooler and the classifier, under 1% of the FLOPs) doubled the mean
  |logit diff| (0.0085 -> 0.017 with QUInt8 weights; 0.012 -> 0.126 with QInt8). ``"all"``
  quantises every op ORT's QDQ quantiser knows, Where and the attention-mask arithmetic
  included: the mask holds a huge negative number that an 8-bit scale cannot represent next to
  real activations, so padded positions leak into attention (top-1 agreement 0.11, chance for 9
  labels). It stays selectable because users do it.
- signed INT8 weights saturate in the U8S8 kernels of x86 CPUs without VNNI (max |logit diff|
  0.5-0.86 on the demo BERT here, vs 0.05-0.12 with ``reduce_range`` or QUInt8 weights), so the
  registry's default is ``reduce_range = true``: 7-bit weights, correct everywhere, and still the
  fast signed-weight kernels on VNNI/AMX machines.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import Artifact
from ..errors import BackendError, ConfigError, DataError, QuantgateError, problem
from .onnx_export import MODEL_FILE, read_details, write_details
from .registry import BuildContext

DEFAULT_STATIC_OPS = ("MatMul",)
# GPT-2 style LMs compute their blocks with transformers' Conv1D, which both exporters write as
# Gemm: MatMul alone left 8 of the demo GPT-2's 13 matrix multiplies in float (int8-coverage
# 38%). The Gemm in a BERT export is only the pooler and the classifier, hence the split.
DEFAULT_STATIC_OPS_LM = ("MatMul", "Gemm")
_QUANT_TYPES = {"qint8": "QInt8", "quint8": "QUInt8"}
_CALIBRATE = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


def fp16(ctx: BuildContext, export: Artifact, options: dict[str, Any]) -> Artifact:
    """``convert_float_to_float16`` of the export; runs on ORT's CPU provider."""
    keep_io = bool(options.get("keep_io_types", True))
    parts = {"export": export.key, "keep_io_types": keep_io, **_versions()}

    def build(tmp: Path) -> None:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = onnx.load(str(export.path / MODEL_FILE))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "truncated to 65504" notes; the check measures
            half = convert_float_to_float16(model, keep_io_types=keep_io)
        onnx.save(half, str(tmp / MODEL_FILE))
        details = {"source": read_details(export.path), "keep_io_types": keep_io,
                   "ort_fp32_fallback_ops": cpu_fp32_fallback_ops(tmp / MODEL_FILE, tmp)}
        write_details(tmp, details)

    return ctx.cache.get_or_build("onnx-fp16", parts, build)


def int8_dynamic(ctx: BuildContext, export: Artifact, options: dict[str, Any]) -> Artifact:
    """``quantize_dynamic``: int8 weights, activations quantised per batch at run time."""
    settings = {k: options[k] for k in ("weight_type", "per_channel", "reduce_range")}
    parts = {"export": export.key, **settings, **_versions()}

    def build(tmp: Path) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(export.path / MODEL_FILE), str(tmp / MODEL_FILE),
                             weight_type=getattr(QuantType, _QUANT_TYPES[settings["weight_type"]]),
                             per_channel=bool(settings["per_channel"]),
                             reduce_range=bool(settings["reduce_range"]))
        write_details(tmp, {"source": read_details(export.path), **settings})

    return ctx.cache.get_or_build("onnx-int8-dynamic", parts, build)


def int8_static(ctx: BuildContext, export: Artifact, options: dict[str, Any]) -> Artifact:
    """``quantize_static`` in QDQ format, calibrated on ``ctx.calibration_batches()``."""
    if ctx.calibration_hash is None:
        raise BackendError(problem("static INT8 calibration data set", "not configured",
                                   "a calibration set of texts (JSONL lines with \"text\")",
                                   'set calibration = "data/calibration.jsonl" in '
                                   "[tool.quantgate] (or --quantgate-calibration PATH)"))
    op_types = resolve_op_types(options.get("op_types", "default"), ctx.task)
    size = int(options.get("calibration_size", 0))
    settings = {"op_types": op_types, "calibrate_method": options["calibrate_method"],
                "activation_type": options["activation_type"],
                "weight_type": options["weight_type"], "per_channel": options["per_channel"],
                "reduce_range": options["reduce_range"], "calibration_size": size}
    if settings["activation_type"] == "qint8" and settings["weight_type"] == "quint8":
        raise ConfigError(problem("onnx-int8-static types", "activation_type = 'qint8' with "
                                  "weight_type = 'quint8'", "a pair ONNX Runtime supports",
                                  "use activation_type = 'quint8', or weight_type = 'qint8'"))
    if options.get("symmetric"):  # TensorRT takes only zero points of 0 (trt-int8's source)
        settings["symmetric"] = True
    parts = {"export": export.key, "calibration": ctx.calibration_hash, **settings, **_versions()}

    def build(tmp: Path) -> None:
        from onnxruntime.quantization import (
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        source = export.path / MODEL_FILE
        prepared, pre_note = _pre_process(source, tmp / "prepared.onnx")
        reader = _make_reader(prepared, ctx, size,
                              uniform=settings["calibrate_method"] != "minmax")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                quantize_static(
                    str(prepared), str(tmp / MODEL_FILE), reader,
                    quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=None if op_types == "all" else list(op_types),
                    per_channel=bool(settings["per_channel"]),
                    reduce_range=bool(settings["reduce_range"]),
                    activation_type=getattr(QuantType, _QUANT_TYPES[settings["activation_type"]]),
                    weight_type=getattr(QuantType, _QUANT_TYPES[settings["weight_type"]]),
                    calibrate_method=getattr(CalibrationMethod,
                                             _CALIBRATE[settings["calibrate_method"]]),
                    calibration_providers=["CPUExecutionProvider"],
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True}
                    if settings.get("symmetric") else None,
                )
            except QuantgateError:
                raise
            except Exception as exc:  # ORT's messages are long; keep the first line
                if reader.rows == 0:
                    raise DataError(problem("calibration set", "no rows",
                                            "at least one text to calibrate on",
                                            "fill the calibration file or set "
                                            "calibration_size = 0")) from None
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
                raise BackendError(problem("static INT8 quantisation", first,
                                           "a quantised model", "check the options against "
                                           "onnxruntime's quantize_static, or start from the "
                                           "defaults")) from None
        if prepared != source:
            prepared.unlink(missing_ok=True)
        for stray in tmp.glob("*.onnx"):  # calibration leaves augmented models behind
            if stray.name != MODEL_FILE:
                stray.unlink()
        # "quantized_op_types": the runner's details overlay the graph's op counts on "op_types"
        write_details(tmp, {"source": read_details(export.path), **settings,
                            "quantized_op_types": settings["op_types"],
                            "pre_process": pre_note, "calibration_rows": reader.rows})

    return ctx.cache.get_or_build("onnx-int8-static", parts, build)


def resolve_op_types(value: Any, task: str = "text-classification") -> str | list[str]:
    """'default' -> MatMul (causal LM: MatMul and Gemm); 'all' -> every op ORT can quantise;
    a list -> itself."""
    if value == "default":
        return list(DEFAULT_STATIC_OPS_LM if task == "causal-lm" else DEFAULT_STATIC_OPS)
    if value == "all":
        return "all"
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return list(value)
    raise ConfigError(problem("option op_types of onnx-int8-static", value,
                              "'default', 'all' or a non-empty list of ONNX op types",
                              'write e.g. op_types = ["MatMul", "Gemm"]'))


def cpu_fp32_fallback_ops(model_file: Path, scratch: Path) -> list[str]:
    """Op types ORT's CPU provider computes in fp32 (behind inserted Casts) in an fp16 model."""
    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.optimized_model_filepath = str(scratch / "ort-view.onnx")
    opts.log_severity_level = 3
    try:
        ort.InferenceSession(str(model_file), opts, providers=["CPUExecutionProvider"])
        graph = onnx.load(str(scratch / "ort-view.onnx")).graph
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise BackendError(problem("fp16 model on ONNX Runtime's CPU provider", first,
                                   "a session that loads", "use onnx-fp32 on this machine, or "
                                   "keep_io_types = true")) from None
    finally:
        (scratch / "ort-view.onnx").unlink(missing_ok=True)
    upcast = {n.output[0] for n in graph.node if n.op_type == "Cast"
              and n.name.startswith("InsertedPrecisionFreeCast")
              and any(a.name == "to" and a.i == onnx.TensorProto.FLOAT for a in n.attribute)}
    return sorted({n.op_type for n in graph.node if any(i in upcast for i in n.input)})


def _pre_process(source: Path, target: Path) -> tuple[Path, str]:
    """ORT's recommended pre-processing (basic graph optimisation, ONNX shape inference); the
    raw model if it fails, since quantising without it still works, only with fewer shapes."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # Symbolic shape inference is skipped: it fails on both exporters' BERT graphs
    # ("Incomplete symbolic shape inference") and, when it fails, ORT 1.32 saves
    # sym_shape_infer_temp.onnx plus a uuid-named .data file into the current directory.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quant_pre_process(str(source), str(target), skip_symbolic_shape=True)
        return target, "quant_pre_process (no symbolic shapes)"
    except Exception as exc:
        target.unlink(missing_ok=True)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return source, f"skipped: {first}"


def _make_reader(model_file: Path, ctx: BuildContext, size: int, *, uniform: bool) -> Any:
    """A CalibrationDataReader over the context's batches: graph inputs only, at most ``size``
    rows (0: all), cast to the dtypes the graph declares.

    ``uniform``: every batch gets one shape. ORT's histogram calibrators (entropy, percentile)
    stack each tensor over all batches with ``np.asarray`` and fail on per-batch padding
    ("inhomogeneous shape"); MinMax reduces batch by batch and takes any shapes.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader

    graph = onnx.load(str(model_file), load_external_data=False).graph
    dtypes = {i.name: onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type)
              for i in graph.input}

    def limited() -> Iterator[dict[str, np.ndarray]]:
        seen = 0
        for feed in ctx.calibration_batches():
            missing = [n for n in dtypes if n not in feed]
            if missing:
                raise BackendError(problem("calibration batch", sorted(feed),
                                           f"inputs {sorted(dtypes)}",
                                           "calibrate with the model's own tokenizer"))
            take = len(next(iter(feed.values())))
            if size > 0:
                take = min(take, size - seen)
            if take <= 0:
                return
            seen += take
            yield {n: np.ascontiguousarray(feed[n][:take], dtype=d) for n, d in dtypes.items()}

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.rows = 0
            self._it: Iterator[dict[str, np.ndarray]] = iter(())
            self.rewind()

        def get_next(self) -> dict[str, np.ndarray] | None:
            feed = next(self._it, None)
            if feed is not None:
                self.rows += len(next(iter(feed.values())))
            return feed

        def rewind(self) -> None:
            self.rows = 0
            self._it = _uniform(list(limited())) if uniform else limited()

    return Reader()


def _uniform(feeds: list[dict[str, np.ndarray]],
             batch: int = 32) -> Iterator[dict[str, np.ndarray]]:
    """Re-batch to one (batch, longest) shape: right-pad with the batch's own pad values
    (mask 0), and fill the last batch with rows from the start (a few rows count twice)."""
    if not feeds:
        return
    longest = max(next(iter(f.values())).shape[1] for f in feeds)
    rows: dict[str, list[np.ndarray]] = {}
    for feed in feeds:
        for name, array in feed.items():
            pad = array[:, -1:] if name == "input_ids" else np.zeros_like(array[:, -1:])
            widened = np.concatenate([array, np.repeat(pad, longest - array.shape[1], axis=1)],
                                     axis=1) if array.shape[1] < longest else array
            rows.setdefault(name, []).append(widened)
    merged = {name: np.concatenate(parts) for name, parts in rows.items()}
    total = len(next(iter(merged.values())))
    batch = min(batch, total)
    for start in range(0, total, batch):
        index = np.arange(start, start + batch) % total
        yield {name: np.ascontiguousarray(array[index]) for name, array in merged.items()}


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}

