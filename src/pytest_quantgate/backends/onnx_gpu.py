"""ONNX Runtime on the GPU: the CUDA and TensorRT execution providers.

``onnx-cuda`` / ``onnx-cuda-fp16`` run the fp32 export (or its fp16 conversion) on
``CUDAExecutionProvider``; ``onnx-trt`` / ``onnx-trt-fp16`` on ``TensorrtExecutionProvider``
(CUDA, then CPU, for what TensorRT does not take), with the optimisation profile of the
``batch`` / ``sequence`` options and ORT's TensorRT engine cache under the artifact cache.

A GPU result must come from the GPU: activation checks the session's providers and profiles one
warm-up run to see where every node ran (``ort_placement``); a session that fell back to the CPU,
or ran compute ops there, is an error, never a result. The placement goes into the details.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..cache import mark_used
from ..errors import BackendError, problem
from . import ort_placement as placement
from .base import BackendInfo
from .onnx_export import MODEL_FILE, fp32_export, read_details
from .onnx_runner import OnnxRunner, graph_summary, session_options
from .registry import BackendDecl, BuildContext
from .trt_plan import Profile, profile_from_options


class OnnxGpuRunner(OnnxRunner):
    """One ONNX Runtime session on a GPU provider, checked to have really used it."""

    def __init__(self, decl: BackendDecl, model_file: Path, *, artifact: Any,
                 details: dict[str, Any], providers: list[Any], ctx: BuildContext) -> None:
        super().__init__(decl, model_file, artifact=artifact, details=details)
        self.providers = providers
        self.provider = _provider_name(providers[0])
        self._ctx = ctx

    def _activate_impl(self) -> None:
        import onnxruntime as ort

        opts = session_options(ort)
        with tempfile.TemporaryDirectory(prefix="quantgate-ort-prof-") as scratch:
            opts.enable_profiling = True
            opts.profile_file_prefix = str(Path(scratch) / "profile")
            try:
                session = ort.InferenceSession(str(self.model_file), opts,
                                               providers=self.providers)
            except Exception as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
                raise BackendError(problem(f"backend {self.name!r}: ONNX Runtime session on "
                                           f"{self.provider}", first, "a session that loads",
                                           "check the provider options and the GPU libraries "
                                           f"onnxruntime {ort.__version__} needs")) from None
            placement.check_providers(self.name, [self.provider],
                                      ort.get_available_providers(), session.get_providers(),
                                      ort_version=ort.__version__)
            self._session = session
            self._outputs = [o.name for o in session.get_outputs()]
            warm = self._ctx.example_feed()
            feed = {s.name: warm[s.name].astype(s.dtype) for s in self._input_specs_impl()}
            self._infer_impl(feed)  # profiled: where each node ran
            events = json.loads(Path(session.end_profiling()).read_text())  # stops profiling
        placed = placement.node_placement(events)
        self._details.update(placement.check_placement(self.name, self.provider, placed))
        self._details["providers"] = session.get_providers()

    def _describe_impl(self) -> BackendInfo:
        import onnxruntime as ort

        info = super()._describe_impl()
        return replace(info, runtime=f"onnxruntime {ort.__version__} ({self.provider})")


def create(decl: BackendDecl, ctx: BuildContext) -> OnnxGpuRunner:
    """Check the provider first (cheap), then build or load the ONNX artifact."""
    import onnxruntime as ort

    from . import onnx_quantize

    trt = decl.kind.startswith("onnx-trt")
    wanted = placement.TENSORRT if trt else placement.CUDA
    placement.check_providers(decl.name, [wanted], ort.get_available_providers(), [wanted],
                              ort_version=ort.__version__)
    opts = dict(decl.options)
    export = fp32_export(ctx, str(opts.get("exporter", "legacy")), int(opts.get("opset", 17)))
    artifact = export
    if decl.kind == "onnx-cuda-fp16":
        artifact = onnx_quantize.fp16(ctx, export, {"keep_io_types": True})
    model_file = artifact.path / MODEL_FILE
    details = {**read_details(artifact.path), **graph_summary(model_file)}
    notes = list(dict.fromkeys(a.note for a in (export, artifact) if a.note))
    if notes:  # a damaged cache entry was rebuilt (cache.py): the report says so
        details["cache"] = "; ".join(notes)
    device = {"device_id": int(opts.get("device_id", 0))}
    providers: list[Any] = [(placement.CUDA, device), placement.CPU]
    if trt:
        profile = profile_from_options(opts, ctx.max_length)
        providers.insert(0, (placement.TENSORRT,
                             trt_provider_options(decl, ctx, profile, artifact.key, device,
                                                  export_inputs(export.path, ctx))))
        details["profile"] = profile.as_dict()
    return OnnxGpuRunner(decl, model_file, artifact=artifact, details=details,
                         providers=providers, ctx=ctx)


def trt_provider_options(decl: BackendDecl, ctx: BuildContext, profile: Profile, key: str,
                         device: dict[str, int], inputs: list[str]) -> dict[str, Any]:
    """TensorRT provider options: precision, profile, engine cache under the artifact cache."""
    cache_dir = Path(ctx.cache.root) / "onnx-trt-engines" / key
    cache_dir.mkdir(parents=True, exist_ok=True)
    # TensorRT writes its engines here itself; the stamp makes the folder an entry that pruning
    # dates by its use like the export it belongs to (cache_pruning.prune), instead of one kept forever.
    mark_used(cache_dir)
    return {**device, "trt_fp16_enable": decl.kind == "onnx-trt-fp16",
            "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir),
            **profile.ort_trt_options(inputs)}


def export_inputs(path: Path, ctx: BuildContext) -> list[str]:
    """The token inputs the export kept (BERT: all three; DistilBERT: no token types)."""
    kept = read_details(path).get("inputs")
    return [str(n) for n in kept] if isinstance(kept, list) and kept else list(ctx.input_names)


def _provider_name(entry: Any) -> str:
    return str(entry[0] if isinstance(entry, tuple) else entry)
