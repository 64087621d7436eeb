"""Backend kinds by name: what each needs, which options it takes, and where its factory lives.

Factories are named by import path and imported only when a backend of that kind is built, so
naming, validating and describing backends costs no framework import. Third-party kinds register
through the ``pytest_quantgate.backends`` entry-point group (value: a ``BackendKind``).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BackendUnavailable, ConfigError, problem

if TYPE_CHECKING:  # numpy and the runner base are not needed to name and validate backends
    import numpy as np

    from ..cache import ArtifactCache
    from .base import Runner


@dataclass(frozen=True)
class OptionSpec:
    """One option a backend kind accepts: its type, default and allowed values."""

    type: type | tuple[type, ...]
    default: Any
    choices: tuple[Any, ...] | None = None
    help: str = ""
    low: float | None = None  # numbers: the allowed range, inclusive
    high: float | None = None


@dataclass(frozen=True)
class BackendKind:
    """A family of backends: ``onnx-int8-static``, ``torch-fp16``, ``onnx`` (a user's file)..."""

    kind: str
    precision: str | None  # None: the declaration says (a user's ONNX file may be anything)
    requires: tuple[str, ...]  # importable modules needed at run time
    extra: str  # the pip extra that installs them
    factory: str  # "module:function", imported lazily
    options: Mapping[str, OptionSpec] = field(default_factory=dict)
    help: str = ""
    tasks: tuple[str, ...] = ("text-classification",)  # the tasks it can run
    needs_calibration: bool = False  # built from the calibration set: none configured is an error


@dataclass(frozen=True)
class BackendDecl:
    """A backend the user asked for: its name, its kind and its validated options."""

    name: str
    kind: str
    precision: str
    options: Mapping[str, Any]


@dataclass
class BuildContext:
    """What a factory may use to build or load its artifact."""

    model_dir: Path
    model_hash: str
    cache: ArtifactCache
    max_length: int
    num_labels: int
    vocab_size: int
    input_names: tuple[str, ...]
    example_feed: Callable[[], dict[str, np.ndarray]]
    calibration_batches: Callable[[], Iterator[dict[str, np.ndarray]]]
    calibration_hash: str | None
    base_dir: Path
    task: str = "text-classification"  # causal-lm: load AutoModelForCausalLM, export 3-D logits;
    # embeddings: load AutoModel, return and export its last_hidden_state


_EXPORT = {
    "exporter": OptionSpec(str, "legacy", ("legacy", "dynamo"),
                           "torch.onnx exporter: TorchScript-based 'legacy' or 'dynamo'"),
    "opset": OptionSpec(int, 17, None, "ONNX opset of the export", low=7),
}
_INT8 = {
    "weight_type": OptionSpec(str, "qint8", ("qint8", "quint8"), "integer type of the weights"),
    "per_channel": OptionSpec(bool, True, None, "one scale per output channel of each weight"),
    # True: signed 8-bit weights saturate on x86 CPUs without VNNI (see onnx_quantize.py)
    "reduce_range": OptionSpec(bool, True, None, "7-bit weights: avoids saturation on CPUs "
                               "without VNNI"),
}
_ORT = "pytest_quantgate.backends.onnx_runner:create"
_TORCH = "pytest_quantgate.backends.torch_runner:create"
_TORCH_REQ = ("torch", "transformers")
_ONNX_REQ = ("onnxruntime", "onnx")
# GPU kinds (docs/gpu.md): their factories raise BackendUnavailable where no GPU or provider is
_TORCH_CUDA = "pytest_quantgate.backends.torch_cuda:create"
_ORT_GPU = "pytest_quantgate.backends.onnx_gpu:create"
_TRT = "pytest_quantgate.backends.trt_runner:create"
_TRT_REQ = ("tensorrt", "torch", "transformers", "onnx", "onnxruntime")
_PROFILE = {
    "batch": OptionSpec(list, [1, 16, 32], None, "engine profile [min, opt, max] batch"),
    "sequence": OptionSpec(list, [1, 64, 0], None,
                           "engine profile [min, opt, max] sequence (max 0: max_length)"),
}
_DEVICE = {"device_id": OptionSpec(int, 0, None, "CUDA device ordinal", low=0)}
_TRT_INT8 = {
    "int8_mode": OptionSpec(str, "qdq", ("qdq", "calibrator"),
                            "'qdq': scales from the symmetric static-INT8 ONNX; 'calibrator': "
                            "legacy implicit entropy calibration"),
    "calibration_cache": OptionSpec(str, "", None, "calibrator cache file to reuse ('': none)"),
    "calibration_size": OptionSpec(int, 0, None, "use only the first N calibration texts",
                                   low=0),
}

BUILTIN: dict[str, BackendKind] = {
    k.kind: k
    for k in (
        BackendKind("torch-fp32", "fp32", _TORCH_REQ, "torch", _TORCH,
                    help="the PyTorch model as saved (the default reference)"),
        BackendKind("torch-bf16", "bf16", _TORCH_REQ, "torch", _TORCH,
                    help="the PyTorch model cast to bfloat16"),
        BackendKind("torch-fp16", "fp16", _TORCH_REQ, "torch", _TORCH,
                    help="the PyTorch model cast to float16"),
        BackendKind("torch-int8-dynamic", "int8", _TORCH_REQ, "torch", _TORCH,
                    help="PyTorch dynamic INT8 of the Linear layers (torch.ao, deprecated)"),
        BackendKind("onnx-fp32", "fp32", _ONNX_REQ, "onnx", _ORT, dict(_EXPORT),
                    help="ONNX export run by ONNX Runtime (CPU)"),
        BackendKind("onnx-fp16", "fp16", _ONNX_REQ, "onnx", _ORT,
                    {**_EXPORT, "keep_io_types": OptionSpec(bool, True, None,
                                                            "keep float32 inputs and outputs")},
                    help="ONNX export converted to float16"),
        BackendKind("onnx-int8-dynamic", "int8", _ONNX_REQ, "onnx", _ORT, {**_EXPORT, **_INT8},
                    help="ONNX Runtime dynamic INT8 (weights int8, activations at run time)"),
        BackendKind("onnx-int8-static", "int8", _ONNX_REQ, "onnx", _ORT,
                    {**_EXPORT, **_INT8,
                     "op_types": OptionSpec((str, list), "default", None,
                                            "'default' (MatMul), 'all', or a list of op types"),
                     "calibrate_method": OptionSpec(str, "minmax", ("minmax", "entropy",
                                                                    "percentile"),
                                                    "how activation ranges are chosen"),
                     "activation_type": OptionSpec(str, "quint8", ("qint8", "quint8"),
                                                   "integer type of the activations"),
                     "calibration_size": OptionSpec(int, 0, None,
                                                    "use only the first N calibration texts "
                                                    "(0: all)", low=0)},
                    help="ONNX Runtime static INT8 (QDQ), calibrated on the calibration set",
                    needs_calibration=True),
        BackendKind("onnx", None, _ONNX_REQ, "onnx", _ORT,
                    {"path": OptionSpec(str, None, None, "the ONNX file (required)")},
                    help="a user-supplied ONNX file, fed the inputs it declares"),
        *(BackendKind(f"torch-cuda-{p}", p, _TORCH_REQ, "gpu", _TORCH_CUDA,
                      help=f"the PyTorch model in {p} on a CUDA GPU")
          for p in ("fp32", "fp16", "bf16")),
        *(BackendKind(k, p, _ONNX_REQ, "gpu", _ORT_GPU, {**_EXPORT, **_DEVICE, **extra},
                      help=f"ONNX Runtime's {ep} provider ({p}); a CPU fallback is an error")
          for k, p, ep, extra in (("onnx-cuda", "fp32", "CUDA", {}),
                                  ("onnx-cuda-fp16", "fp16", "CUDA", {}),
                                  ("onnx-trt", "fp32", "TensorRT", _PROFILE),
                                  ("onnx-trt-fp16", "fp16", "TensorRT", _PROFILE))),
        *(BackendKind(f"trt-{p}", p, _TRT_REQ, "tensorrt", _TRT,
                      {**_EXPORT, **_PROFILE, **(_TRT_INT8 if p == "int8" else {})},
                      help=f"TensorRT {p} engine built from the ONNX export")
          for p in ("fp32", "fp16", "int8")),
        BackendKind("tensorrt", None, ("tensorrt", "torch"), "tensorrt", _TRT,
                    {"engine": OptionSpec(str, None, None, "the .plan/.engine file (required)")},
                    help="a user-supplied TensorRT engine, fed by name with its own dtypes"),
        BackendKind("fake", None, (), "", "pytest_quantgate.backends.fake:create",
                    {"seed": OptionSpec(int, 0, None, "weights of the fake model", low=0),
                     "drift": OptionSpec((int, float), 0.0, None, "std of noise added to logits",
                                         low=0),
                     "nan_rate": OptionSpec((int, float), 0.0, None, "share of rows made NaN",
                                            low=0, high=1),
                     "swap_inputs": OptionSpec(bool, False, None,
                                               "swap attention_mask and token_type_ids"),
                     "delay": OptionSpec((int, float), 0.0, None, "seconds slept per batch",
                                         low=0),
                     "input_dtype": OptionSpec(str, "int64", ("int64", "int32"),
                                               "declared dtype of the inputs"),
                     "raw_int32": OptionSpec(bool, False, None,
                                             "declare int64 inputs but read their bytes as "
                                             "int32 (a raw-buffer path that skips the cast)"),
                     "label_permutation": OptionSpec(list, [], None,
                                                     "output column i holds label "
                                                     "permutation[i] (a permuted label order)"),
                     "dropout": OptionSpec((int, float), 0.0, None,
                                           "share of embedding rows dropped at random per "
                                           "call (dropout left on: nondeterministic)",
                                           low=0, high=1),
                     "digit_percent_fault": OptionSpec(bool, False, None,
                                                       "misbehave (roll the logits) only on "
                                                       "inputs where a digit token is followed "
                                                       "by the '%' token (a planted fault)")},
                    help="pure-numpy model with knobs, for trying and testing the plugin"),
    )
}

# Kinds that also run a causal LM (task "causal-lm") and a text encoder (task "embeddings");
# GPU and TensorRT kinds do not yet.
LM_KINDS = ("torch-fp32", "torch-bf16", "torch-fp16", "torch-int8-dynamic", "onnx-fp32",
            "onnx-fp16", "onnx-int8-dynamic", "onnx-int8-static", "onnx")
for _name in LM_KINDS:
    BUILTIN[_name] = replace(BUILTIN[_name],
                             tasks=("text-classification", "causal-lm", "embeddings"))

# Options that every kind accepts.
COMMON = {
    "precision": OptionSpec(str, None, ("fp32", "fp16", "bf16", "int8"),
                            "precision of a user-supplied backend (thresholds follow it)"),
}


@functools.cache
def all_kinds() -> dict[str, BackendKind]:
    """Built-in kinds plus those registered by installed packages' entry points."""
    from ..extensions import registered

    kinds = dict(BUILTIN)
    for kind in registered("pytest_quantgate.backends", BackendKind):
        kinds.setdefault(kind.kind, kind)
    return kinds


def declare(name: str, kind: str, options: Mapping[str, Any], where: str) -> BackendDecl:
    """Validate a backend declaration: its kind exists and every option is known and typed."""
    kinds = all_kinds()
    if kind not in kinds:
        raise ConfigError(problem(f"{where}: backend kind", kind, f"one of {sorted(kinds)}",
                                  "fix the spelling or install the package that provides it"))
    spec = kinds[kind]
    allowed = {**spec.options, **COMMON}
    values: dict[str, Any] = {}
    for key, value in options.items():
        if key not in allowed:
            raise ConfigError(problem(f"{where}: option of backend {name!r} ({kind})", key,
                                      f"one of {sorted(allowed)}", "remove or rename it"))
        opt = allowed[key]
        if isinstance(value, bool) and opt.type in (int, float, (int, float)) or \
                not isinstance(value, opt.type):
            raise ConfigError(problem(f"{where}: option {key!r} of backend {name!r}", value,
                                      f"a value of type {_type_name(opt.type)}",
                                      f"write it as e.g. {key} = {opt.default!r}"))
        if opt.choices is not None and value not in opt.choices:
            raise ConfigError(problem(f"{where}: option {key!r} of backend {name!r}", value,
                                      f"one of {list(opt.choices)}", "pick one of those"))
        if isinstance(value, (int, float)) and not isinstance(value, bool) and (
                opt.low is not None and value < opt.low or opt.high is not None and value > opt.high):
            bounds = (f"in [{opt.low}, {opt.high}]" if opt.low is not None and opt.high is not None
                      else f">= {opt.low}" if opt.low is not None else f"<= {opt.high}")
            raise ConfigError(problem(f"{where}: option {key!r} of backend {name!r}", value,
                                      f"a value {bounds}", f"e.g. {key} = {opt.default!r}"))
        values[key] = value
    for key, opt in spec.options.items():
        if key not in values:
            if opt.default is None:
                raise ConfigError(problem(f"{where}: backend {name!r} ({kind})",
                                          f"no {key!r}", f"option {key!r}: {opt.help}",
                                          f"add {key} = ... to its declaration"))
            values[key] = opt.default
    precision = values.pop("precision", None) or spec.precision or "fp32"
    return BackendDecl(name=name, kind=kind, precision=precision, options=values)


def missing_requirements(kind: BackendKind) -> list[str]:
    return [m for m in kind.requires if importlib.util.find_spec(m) is None]


def create_runner(decl: BackendDecl, ctx: BuildContext) -> Runner:
    """Build or load the runner of a declared backend (not yet activated)."""
    kind = all_kinds()[decl.kind]
    missing = missing_requirements(kind)
    if missing:
        raise BackendUnavailable(
            f"backend {decl.name!r} needs {', '.join(missing)}, which is not installed here; "
            f"pip install 'pytest-quantgate[{kind.extra}]' to run it"
        )
    module, _, func = kind.factory.partition(":")
    factory = getattr(importlib.import_module(module), func)
    runner: Runner = factory(decl, ctx)
    return runner


def _type_name(t: type | tuple[type, ...]) -> str:
    if isinstance(t, tuple):
        return " or ".join(x.__name__ for x in t)
    return t.__name__
