"""PyTorch backends: the model as saved (fp32, the usual reference), cast to bf16 or fp16, and
dynamic INT8 of its Linear layers.

The converted kinds are built once and cached as a pickled module (``torch.save``; loaded back
with ``weights_only=False``, which is safe only because the cache is our own), so a warm run
converts nothing and the size on disk and build time are real.

``torch-int8-dynamic`` uses ``torch.ao.quantization.quantize_dynamic``, deprecated in torch 2.10+
(its warning is recorded, not shown). Its successor is torchao:
``quantize_(model, Int8DynamicActivationInt8WeightConfig())``; not implemented yet.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import Artifact
from ..errors import BackendError, problem
from .base import BackendInfo, Runner, TensorSpec
from .onnx_export import accepted_inputs, lm_kwargs, load_model, output_name
from .registry import BackendDecl, BuildContext

MODULE_FILE = "model.pt"
DETAILS_FILE = "details.json"
TORCHAO_SUCCESSOR = ("torchao.quantization.quantize_(model, "
                     "Int8DynamicActivationInt8WeightConfig())")
_CONVERTED = ("torch-bf16", "torch-fp16", "torch-int8-dynamic")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class TorchRunner(Runner):
    """A Hugging Face sequence classifier, causal LM or bare encoder (embeddings: its last
    hidden state) run eagerly on the CPU under ``inference_mode``."""

    kind = "torch"

    def __init__(self, decl: BackendDecl, ctx: BuildContext, artifact: Artifact | None,
                 details: Mapping[str, Any]) -> None:
        super().__init__(decl.name, decl.precision)
        self.kind = decl.kind
        self._ctx = ctx
        self.artifact = artifact
        self._details = dict(details)
        self._model: Any = None
        self._extra: dict[str, Any] = {}

    def _activate_impl(self) -> None:
        if self.artifact is None:
            self._model = load_model(self._ctx.model_dir, self._ctx.task)
        else:
            self._model = _load_module(self.artifact.path / MODULE_FILE)
        self._extra = lm_kwargs(self._model, self._ctx.task)

    def _input_specs_impl(self) -> list[TensorSpec]:
        names = accepted_inputs(self._model, self._ctx.input_names)
        return [TensorSpec(n, "int64", (None, None)) for n in names]

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> Mapping[str, Any]:
        import torch

        inputs = {k: torch.from_numpy(v) for k, v in feed.items()}
        output = output_name(self._ctx.task)  # logits, or an encoder's last_hidden_state
        try:
            with torch.inference_mode():
                logits = getattr(self._model(**inputs, **self._extra), output)
                if logits.dtype != torch.float32:  # numpy has no bfloat16: widen inside torch
                    logits = logits.float()
        except (RuntimeError, IndexError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            shapes = {k: tuple(v.shape) for k, v in feed.items()}
            raise BackendError(problem(f"backend {self.name!r} inference", first,
                                       f"{output} for the feed", f"check the feed shapes {shapes} "
                                       "against the model (max_position_embeddings)")) from None
        return {output: logits.numpy()}

    def _describe_impl(self) -> BackendInfo:
        import torch

        art = self.artifact
        return BackendInfo(
            name=self.name, kind=self.kind, precision=self.precision,
            runtime=f"torch {torch.__version__} (CPU, eager)",
            size_bytes=art.size_bytes if art is not None else weights_size(self._ctx.model_dir),
            build_seconds=art.build_seconds if art is not None else 0.0,
            cache_hit=art.hit if art is not None else False,
            artifact=str(art.path / MODULE_FILE) if art is not None else str(self._ctx.model_dir),
            details=self._details,
        )

    def _close_impl(self) -> None:
        self._model = None


def create(decl: BackendDecl, ctx: BuildContext) -> TorchRunner:
    """Build (or load from the cache) a torch backend; the runner is returned not activated."""
    if decl.kind == "torch-fp32":
        return TorchRunner(decl, ctx, None, {"source": str(ctx.model_dir)})
    if decl.kind not in _CONVERTED:
        raise BackendError(problem("torch backend kind", decl.kind,
                                   f"one of {['torch-fp32', *_CONVERTED]}",
                                   "fix the registry entry"))
    import torch
    import transformers

    parts = {"model": ctx.model_hash, "torch": torch.__version__,
             "transformers": transformers.__version__}
    if ctx.task != "text-classification":  # classification keys unchanged: caches stay valid
        parts["task"] = ctx.task

    def build(tmp: Path) -> None:
        model = load_model(ctx.model_dir, ctx.task)
        converted, details = convert(model, decl.kind)
        torch.save(converted, tmp / MODULE_FILE)
        (tmp / DETAILS_FILE).write_text(json.dumps(details, indent=2) + "\n")

    artifact = ctx.cache.get_or_build(decl.kind, parts, build)
    try:
        details = json.loads((artifact.path / DETAILS_FILE).read_text())
    except (OSError, ValueError):
        details = {}
    if artifact.note:  # a damaged cache entry rebuilt: the JSON report's details tell it
        details["cache"] = artifact.note
    return TorchRunner(decl, ctx, artifact, details)


def convert(model: Any, kind: str) -> tuple[Any, dict[str, Any]]:
    """The converted module and what the conversion did."""
    import torch

    if kind == "torch-bf16":
        return model.to(torch.bfloat16), {"dtype": "bfloat16"}
    if kind == "torch-fp16":
        return model.to(torch.float16), {"dtype": "float16"}
    # GPT-2 style models compute with transformers' Conv1D (a Linear with its weight
    # transposed), which quantize_dynamic does not know: it would leave every block in float.
    linearised = _conv1d_to_linear(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear},
                                                           dtype=torch.qint8)
    dynamic_linear = torch.ao.nn.quantized.dynamic.Linear
    n_int8 = sum(isinstance(m, dynamic_linear) for m in quantized.modules())
    n_float = sum(type(m) is torch.nn.Linear for m in quantized.modules())
    deprecations = sorted({str(w.message).strip().splitlines()[0][:160] for w in caught
                           if issubclass(w.category, DeprecationWarning)})
    return quantized, {
        "quantized_linear": n_int8, "float_linear": n_float, "conv1d_as_linear": linearised,
        "quantized_engine": torch.backends.quantized.engine,
        "api": "torch.ao.quantization.quantize_dynamic (deprecated)",
        "successor": TORCHAO_SUCCESSOR, "deprecation_warnings": deprecations,
    }


def _conv1d_to_linear(model: Any) -> int:
    """Replace every transformers ``Conv1D`` by the equivalent ``nn.Linear``; returns how many."""
    import torch

    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # a transformers without Conv1D has nothing to replace
        return 0
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv1D):
                n_in, n_out = child.weight.shape  # Conv1D keeps (in, out); Linear (out, in)
                linear = torch.nn.Linear(n_in, n_out, bias=child.bias is not None)
                with torch.no_grad():
                    linear.weight.copy_(child.weight.t())
                    if child.bias is not None:
                        linear.bias.copy_(child.bias)
                setattr(parent, name, linear)
                count += 1
    return count


def weights_size(model_dir: Path) -> int:
    """Bytes of the weight files in a Hugging Face directory (safetensors, bin, shards)."""
    return sum(p.stat().st_size for p in Path(model_dir).iterdir()
               if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES))


def _load_module(path: Path) -> Any:
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage / quantized-tensor deprecations
            model = torch.load(path, weights_only=False)  # our own cache, not a user's file
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise BackendError(problem(f"cached torch module {path}", first, "a loadable module",
                                   "delete the cache directory and run again")) from None
    return model.eval()
