"""Export a Hugging Face sequence classifier to one self-contained ONNX file, and cache it.

The model is wrapped in a module whose positional ``forward`` calls the model with keyword
arguments, so an input can never land in the wrong slot (BERT's forward takes
``(input_ids, attention_mask, token_type_ids)``, DistilBERT's has no token types: a positional
export of the raw model silently feeds one into the other). Graph inputs get explicit names,
the output is ``logits``, batch and sequence axes are dynamic.

Both torch exporters work in torch 2.13:

- ``legacy`` (TorchScript tracing, ``dynamo=False``): deprecated ("will be removed") but
  0.23-0.27 s for the demo 2-layer BERT here; the registry's default, for that speed.
- ``dynamo`` (``torch.export`` + onnxscript): 7.7 s cold, 5.3-6.3 s warm for the same model,
  same logits (max |diff| vs torch 1.4e-6, legacy 1.9e-6). It has no implementations below
  opset 18: asked for 17 it exports 18 and down-converts with the onnx C API (the opset written
  is recorded in the details). Its opset-18 files also carry per-node metadata (+0.3 MB here).

Every export is verified against torch on two samples whose shapes differ from the example it
was traced with, which catches shapes baked into the graph as well as wrong wiring.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import Artifact
from ..errors import BackendError, BackendUnavailable, DataError, problem
from .registry import BuildContext

EXPORTERS = ("legacy", "dynamo")
MODEL_FILE = "model.onnx"
DETAILS_FILE = "details.json"
VERIFY_TOLERANCE = 1e-4
_EXTERNAL_DATA_BYTES = 1_800_000_000  # protobuf's 2 GiB limit, with headroom


def export_model(
    model_dir: Path,
    out_file: Path,
    *,
    exporter: str,
    opset: int,
    input_names: tuple[str, ...] | list[str],
    max_length: int,
    swap_names: tuple[str, str] | None = None,
    task: str = "text-classification",
) -> dict[str, Any]:
    """Export the classifier (or causal LM) in ``model_dir`` to ``out_file``; returns what the
    export did.

    ``input_names`` that the model's forward does not accept are left out (the returned
    ``inputs`` says which remain). ``swap_names`` deliberately mislabels two graph inputs after
    export (the graph input named ``attention_mask`` then carries token types): the broken
    export users make by mistake, for tests and the demo; such a file is not verified.
    """
    import torch

    if exporter not in EXPORTERS:
        raise BackendError(problem("ONNX exporter", exporter, f"one of {list(EXPORTERS)}",
                                   "set exporter = 'legacy' or 'dynamo'"))
    model = load_model(model_dir, task)
    names = accepted_inputs(model, input_names)
    output = output_name(task)
    wrapper = _keyword_classifier_class()(model, names, lm_kwargs(model, task), output).eval()
    # a causal LM's logits are (batch, sequence, vocab), an encoder's last hidden state (batch,
    # sequence, hidden): both leading axes are dynamic
    out_axes = {0: "batch"} if task == "text-classification" else {0: "batch", 1: "sequence"}
    seq_cap = _sequence_cap(model, max_length)
    example = sample_feed(model, names, batch=2, length=min(8, seq_cap), seed=0)
    args = tuple(torch.from_numpy(example[n]) for n in names)
    out_file = Path(out_file)
    external = sum(p.numel() * p.element_size() for p in model.parameters()) > _EXTERNAL_DATA_BYTES
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # record the deprecation and tracer warnings
        try:
            if exporter == "legacy":
                axes = {n: {0: "batch", 1: "sequence"} for n in names}
                torch.onnx.export(wrapper, args, str(out_file), input_names=list(names),
                                  output_names=[output], opset_version=opset, dynamo=False,
                                  dynamic_axes={**axes, output: out_axes})
            else:
                batch = torch.export.Dim("batch")
                seq = torch.export.Dim("sequence", max=seq_cap)
                # forward(*inputs): one entry per positional parameter, a tuple for *inputs
                shapes = (tuple({0: batch, 1: seq} for _ in names),)
                torch.onnx.export(wrapper, args, str(out_file), input_names=list(names),
                                  output_names=[output], opset_version=opset, dynamo=True,
                                  dynamic_shapes=shapes, external_data=external, verbose=False,
                                  artifacts_dir=str(out_file.parent))
        except Exception as exc:  # exporter errors are pages long; keep the first line
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise BackendError(problem(f"ONNX export ({exporter}, opset {opset}) of {model_dir}",
                                       first, "a successful export",
                                       "try the other exporter (exporter = 'legacy' or "
                                       "'dynamo') or another opset")) from None
    seconds = time.perf_counter() - start
    import onnx

    proto = onnx.load(str(out_file))
    written_opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                        default=0)
    if swap_names is not None:
        _swap_graph_inputs(proto, swap_names)
        onnx.save(proto, str(out_file))
    details: dict[str, Any] = {
        "exporter": exporter, "opset_requested": opset, "opset": written_opset,
        "inputs": list(names), "export_seconds": round(seconds, 3),
        "warnings": sorted({w.category.__name__ for w in caught}),
        "swapped_inputs": list(swap_names) if swap_names else None,
    }
    if swap_names is None:
        details["verify_max_abs_diff"] = verify_export(wrapper, model, names, out_file, seq_cap,
                                                       output)
    return details


export_classifier = export_model  # the name the classification demo and older scripts use


def fp32_export(ctx: BuildContext, exporter: str, opset: int) -> Artifact:
    """The cached fp32 export of ``ctx.model_dir`` (key: model, exporter, opset, versions).

    Versions come from package metadata, not imports: a warm gate of ONNX backends must not pay
    the ~3 s of importing torch and transformers just to find its export in the cache.
    """
    import importlib.util

    from ..manifest import package_versions

    versions = package_versions()
    parts = {"model": ctx.model_hash, "exporter": exporter, "opset": opset,
             "inputs": list(ctx.input_names), "max_length": ctx.max_length,
             "torch": versions.get("torch"), "transformers": versions.get("transformers"),
             "onnx": versions.get("onnx")}
    if ctx.task != "text-classification":  # classification keys unchanged: caches stay valid
        parts["task"] = ctx.task

    def build(tmp: Path) -> None:
        missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
        if missing:
            raise BackendUnavailable(
                f"exporting {ctx.model_dir} to ONNX needs {', '.join(missing)}, which is not "
                "installed here; pip install 'pytest-quantgate[torch]', or declare your own "
                "export as a backend of kind 'onnx'")
        details = export_model(ctx.model_dir, tmp / MODEL_FILE, exporter=exporter,
                                    opset=opset, input_names=ctx.input_names,
                                    max_length=ctx.max_length, task=ctx.task)
        write_details(tmp, details)

    return ctx.cache.get_or_build("onnx-export", parts, build)


def verify_export(wrapper: Any, model: Any, names: tuple[str, ...], onnx_file: Path,
                  seq_cap: int, output: str = "logits") -> float:
    """Max |output diff| between ONNX Runtime and torch on two fresh shapes; raise if too
    big."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch, length, seed in ((1, min(5, seq_cap), 1), (3, min(13, seq_cap), 2)):
        feed = sample_feed(model, names, batch=batch, length=length, seed=seed)
        with torch.inference_mode():
            want = wrapper(*(torch.from_numpy(feed[n]) for n in names)).float().numpy()
        (got,) = session.run([output], feed)
        worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - want))))
    if not worst < VERIFY_TOLERANCE:  # also catches NaN
        raise BackendError(problem(f"ONNX export {onnx_file.name} vs torch, max |logit diff|",
                                   worst, f"< {VERIFY_TOLERANCE}",
                                   "the export is wrong: try the other exporter or opset"))
    return worst


def load_classifier(model_dir: Path) -> Any:
    """``AutoModelForSequenceClassification`` from ``model_dir`` in eval mode, one-line errors."""
    return load_model(model_dir, "text-classification")


# The Auto class each task loads, and what the one-line errors call such a model. An embedder
# is the bare encoder (AutoModel): its last hidden state is what sentence-transformers pools.
AUTO_CLASSES = {"causal-lm": ("AutoModelForCausalLM", "causal language model"),
                "embeddings": ("AutoModel", "text encoder")}
# The graph output each task's export names; what its runners return under that name.
OUTPUTS = {"embeddings": "last_hidden_state"}
# Weights an embedder may lack without harm: BERT's pooler (a dense layer over [CLS]) feeds
# only pooler_output, which sentence-transformers never reads; checkpoints saved without it
# load it at random, and the last hidden state does not see it.
_UNUSED = {"embeddings": ("pooler.",)}


def output_name(task: str) -> str:
    """The name of the one output a task's backends return: logits, or an encoder's
    last_hidden_state."""
    return OUTPUTS.get(task, "logits")


def load_model(model_dir: Path, task: str) -> Any:
    """The task's Auto class (sequence classification, causal LM, bare encoder) from
    ``model_dir``, in eval mode, with one-line errors."""
    import transformers

    auto, kind = AUTO_CLASSES.get(task, ("AutoModelForSequenceClassification",
                                         "sequence-classification model"))
    if not Path(model_dir).is_dir():
        raise DataError(problem("model directory", str(model_dir),
                                "a Hugging Face model directory", "fix model = ... in "
                                "[tool.quantgate]"))
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Loading weights" bar per backend clutters the run
    try:
        model, loading = getattr(transformers, auto).from_pretrained(str(model_dir),
                                                                     output_loading_info=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise DataError(problem(f"model in {model_dir}", first,
                                f"a {kind} transformers can load ({auto})",
                                "re-save it with save_pretrained(), or set the task it "
                                "does")) from None
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    # Weights missing from the checkpoint are initialised at random, differently on every load:
    # a sequence classifier under task causal-lm loaded as BertLMHeadModel with a random LM head
    # and "ran" (perplexity ~3000, every backend failing against a different random reference).
    missing = sorted(k for k in loading.get("missing_keys") or ()
                     if not k.startswith(_UNUSED.get(task, ())))
    if missing:
        saved = getattr(model.config, "architectures", None) or ["unknown"]
        raise DataError(problem(
            f"model in {model_dir} loaded as {type(model).__name__} ({auto})",
            f"{len(missing)} weights missing from the checkpoint ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''}), which transformers would initialise at "
            "random", f"a {kind} whose saved weights cover the whole model",
            f"its config.json says {', '.join(saved)}: set task to what it was trained for, "
            "or point model at a trained model"))
    return model.eval()


def lm_kwargs(model: Any, task: str) -> dict[str, Any]:
    """Extra keyword arguments of a forward call: a causal LM is asked for no KV cache (the
    gate scores whole windows; returning past key values would add outputs)."""
    import inspect

    if task == "causal-lm" and "use_cache" in inspect.signature(model.forward).parameters:
        return {"use_cache": False}
    return {}


def accepted_inputs(model: Any, input_names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The tokenizer inputs that ``model.forward`` takes as named parameters, in order given."""
    import inspect

    params = inspect.signature(model.forward).parameters
    named = {n for n, p in params.items()
             if p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)}
    names = tuple(n for n in input_names if n in named)
    if "input_ids" not in names:
        raise BackendError(problem(f"inputs of {type(model).__name__}.forward", sorted(named),
                                   "a forward that takes input_ids",
                                   "use a text classifier that takes token ids"))
    return names


def sample_feed(model: Any, names: tuple[str, ...], *, batch: int, length: int,
                seed: int) -> dict[str, np.ndarray]:
    """Deterministic int64 token ids, a padded last row and (when the model has them) mixed
    token types, so every input changes the logits and a swapped wiring shows."""
    cfg = model.config
    rng = np.random.default_rng(seed)
    vocab = int(getattr(cfg, "vocab_size", 100))
    ids = rng.integers(min(5, vocab - 1), vocab, size=(batch, length), dtype=np.int64)
    mask = np.ones((batch, length), dtype=np.int64)
    if length > 2:
        mask[-1, length // 2:] = 0
        ids[-1, length // 2:] = int(getattr(cfg, "pad_token_id", 0) or 0)
    types = np.zeros((batch, length), dtype=np.int64)
    if int(getattr(cfg, "type_vocab_size", 1) or 1) > 1 and length > 2:
        types[:, length // 2:] = 1
    full = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return {n: full[n] for n in names}


def write_details(directory: Path, details: dict[str, Any]) -> None:
    (Path(directory) / DETAILS_FILE).write_text(json.dumps(details, indent=2, default=str) + "\n")


def read_details(directory: Path) -> dict[str, Any]:
    path = Path(directory) / DETAILS_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _sequence_cap(model: Any, max_length: int) -> int:
    positions = int(getattr(model.config, "max_position_embeddings", max_length) or max_length)
    return max(2, min(int(max_length), positions))


def _swap_graph_inputs(proto: Any, pair: tuple[str, str]) -> None:
    """Exchange two graph inputs' names everywhere they are used: the mislabelled export."""
    a, b = pair
    present = {i.name for i in proto.graph.input}
    if a not in present or b not in present:
        raise BackendError(problem("inputs to swap", list(pair), f"two of {sorted(present)}",
                                   "name two inputs the graph has"))
    rename = {a: b, b: a}
    for value in proto.graph.input:
        value.name = rename.get(value.name, value.name)
    for node in proto.graph.node:
        for k, name in enumerate(node.input):
            if name in rename:
                node.input[k] = rename[name]


_CLASS: list[type] = []  # built on first use: defining an nn.Module needs torch


def _keyword_classifier_class() -> type:
    if not _CLASS:
        import torch

        class KeywordClassifier(torch.nn.Module):
            """Positional inputs in ``names`` order, passed to the model by keyword."""

            def __init__(self, model: Any, names: tuple[str, ...],
                         extra: dict[str, Any] | None = None, output: str = "logits") -> None:
                super().__init__()
                self.model = model
                self.names = tuple(names)
                self.extra = dict(extra or {})
                self.output = output  # logits, or an encoder's last_hidden_state

            def forward(self, *inputs: Any) -> Any:
                return getattr(self.model(**dict(zip(self.names, inputs, strict=True)),
                                          **self.extra), self.output)

        _CLASS.append(KeywordClassifier)
    return _CLASS[0]
