"""PyTorch on a CUDA GPU: the model as saved (fp32), or cast to fp16 or bf16.

The half-precision kinds reuse the CPU kinds' cached conversion (``torch-fp16``'s pickled
module), so running ``torch-fp16`` and ``torch-cuda-fp16`` converts once; the module is moved to
the GPU when activated. Where no CUDA device is visible the factory raises
``BackendUnavailable``: the backend is skipped with the reason, never run on the CPU instead.

Timing: ``infer`` copies the feed to the device, runs, and copies the logits back; the base
class's ``_synchronize`` hook waits for the device, so a timed call ends when the GPU is done.
Activation runs one untimed warm-up batch (cuBLAS handles and kernel loading cost the first call
hundreds of milliseconds).

Out-of-range positions or token ids raise a device-side assert on CUDA, which leaves the whole
CUDA context unusable for the rest of the process; the feed's length and ids are therefore
checked on the host before anything is copied to the device.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import BackendError, BackendUnavailable, problem
from .base import BackendInfo
from .registry import BackendDecl, BuildContext
from .torch_runner import TorchRunner

# our kind -> the CPU kind whose (cached) conversion it moves to the GPU
CPU_KIND = {"torch-cuda-fp32": "torch-fp32", "torch-cuda-fp16": "torch-fp16",
            "torch-cuda-bf16": "torch-bf16"}


class TorchCudaRunner(TorchRunner):
    """A Hugging Face sequence classifier run eagerly on one CUDA device."""

    kind = "torch-cuda"

    def __init__(self, decl: BackendDecl, ctx: BuildContext, cpu: TorchRunner,
                 device: str) -> None:
        super().__init__(decl, ctx, cpu.artifact, cpu.describe().details)
        self.device = device
        self._limits: tuple[int | None, int | None] = (None, None)

    def _activate_impl(self) -> None:
        import torch

        super()._activate_impl()  # loads on the CPU (from the cache, or the model directory)
        self._model = self._model.to(self.device)
        config = getattr(self._model, "config", None)
        self._limits = (getattr(config, "max_position_embeddings", None),
                        getattr(config, "vocab_size", None))
        self._details.update(device_details(self.device))
        self._details["attn_implementation"] = getattr(config, "_attn_implementation", None)
        self._details["tf32_matmul"] = bool(torch.backends.cuda.matmul.allow_tf32)
        warm = self._ctx.example_feed()
        self._infer_impl({s.name: warm[s.name] for s in self._input_specs_impl() if s.name in warm})
        self._synchronize()

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> Mapping[str, Any]:
        import torch

        self._check_on_host(feed)
        inputs = {k: torch.from_numpy(v).to(self.device) for k, v in feed.items()}
        try:
            with torch.inference_mode():
                logits = self._model(**inputs).logits.float()
        except (RuntimeError, IndexError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            shapes = {k: tuple(v.shape) for k, v in feed.items()}
            raise BackendError(problem(f"backend {self.name!r} inference", first,
                                       "logits for the feed", f"check the feed shapes {shapes} "
                                       "against the model (max_position_embeddings)")) from None
        return {"logits": logits.cpu().numpy()}

    def _check_on_host(self, feed: Mapping[str, np.ndarray]) -> None:
        max_pos, vocab = self._limits
        ids = feed.get("input_ids")
        length = max((v.shape[1] for v in feed.values() if v.ndim == 2), default=0)
        if max_pos is not None and length > max_pos:
            shapes = {k: tuple(v.shape) for k, v in feed.items()}
            raise BackendError(problem(f"backend {self.name!r} inference", f"sequence {length}",
                                       f"at most max_position_embeddings = {max_pos}",
                                       f"check the feed shapes {shapes} against the model "
                                       "(max_position_embeddings); lower max_length"))
        if vocab is not None and ids is not None and ids.size and (
                int(ids.max()) >= vocab or int(ids.min()) < 0):
            raise BackendError(problem(f"backend {self.name!r} inference",
                                       f"token ids in [{int(ids.min())}, {int(ids.max())}]",
                                       f"ids in [0, {vocab})", "check the feed shapes and the "
                                       "tokenizer: it does not belong to this model"))

    def _synchronize(self) -> None:
        import torch

        torch.cuda.synchronize(self.device)

    def _describe_impl(self) -> BackendInfo:
        import torch

        info = super()._describe_impl()
        name = self._details.get("gpu") or self.device
        return replace(info, runtime=f"torch {torch.__version__} ({name}, CUDA "
                                     f"{torch.version.cuda}, eager)")

    def _close_impl(self) -> None:
        import torch

        super()._close_impl()
        torch.cuda.empty_cache()


def device_details(device: str) -> dict[str, Any]:
    """GPU name, compute capability and memory, for the report."""
    import torch

    props = torch.cuda.get_device_properties(device)
    return {"device": device, "gpu": props.name, "capability": f"{props.major}.{props.minor}",
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "cuda": torch.version.cuda}


def require_cuda(name: str) -> str:
    """The device string, or ``BackendUnavailable`` that says why there is none."""
    import torch

    if torch.version.cuda is None:
        raise BackendUnavailable(
            f"backend {name!r} needs a CUDA build of torch: got torch {torch.__version__} "
            "(CPU-only), expected a +cuXXX build; install torch from the CUDA wheel index on a "
            "machine with an NVIDIA GPU")
    if not torch.cuda.is_available():
        raise BackendUnavailable(
            f"backend {name!r} needs a CUDA GPU: got torch {torch.__version__} with "
            "torch.cuda.is_available() False, expected a visible device; run it on a machine "
            "with an NVIDIA GPU and driver (check nvidia-smi and CUDA_VISIBLE_DEVICES)")
    return f"cuda:{torch.cuda.current_device()}"


def create(decl: BackendDecl, ctx: BuildContext) -> TorchCudaRunner:
    """A torch backend on the GPU; raises ``BackendUnavailable`` where no GPU is visible."""
    from . import torch_runner

    if decl.kind not in CPU_KIND:
        raise BackendError(problem("torch CUDA backend kind", decl.kind,
                                   f"one of {sorted(CPU_KIND)}", "fix the registry entry"))
    device = require_cuda(decl.name)
    cpu = torch_runner.create(replace(decl, kind=CPU_KIND[decl.kind]), ctx)
    return TorchCudaRunner(decl, ctx, cpu, device)
