"""How an encoder's token vectors become one vector per text, as its sentence-transformers
configuration says, and that pooling done in numpy on a backend's output.

A sentence-transformers directory lists its modules in ``modules.json`` (Transformer, then
Pooling, then optionally Normalize); the Pooling module's ``1_Pooling/config.json`` says which
mode (``pooling_mode_mean_tokens``, ``pooling_mode_cls_token``, ``pooling_mode_max_tokens``).
The pooling runs here, after the runner, not inside an exported graph: sentence-transformers'
ONNX and OpenVINO backends (via optimum) export the bare encoder, whose output is
``last_hidden_state``, and pool in the host language; a graph that pools itself (an output named
``sentence_embedding``) is read as it is, so a user's export is judged on what it returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, problem

MODES = ("mean", "cls", "max")
_ST_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls",
             "pooling_mode_max_tokens": "max"}
# sentence-transformers modes the gate does not compute: a model using one cannot be judged
_UNSUPPORTED = ("pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens",
                "pooling_mode_lasttoken")
# Module types after pooling that change the vector and that we do not run (a Dense layer
# projects it): gating without them would judge another vector than the model's
_UNSUPPORTED_MODULES = ("Dense", "LayerNorm", "WordWeights", "CNN", "LSTM")
# Output names a pooled graph uses (sentence-transformers' own ONNX export)
POOLED_OUTPUTS = ("sentence_embedding", "sentence_embeddings")  # not BERT's pooler_output
TOKEN_OUTPUTS = ("last_hidden_state", "token_embeddings")


@dataclass(frozen=True)
class Pooling:
    """The pooling a gate applies, and where each choice came from (for the report)."""

    mode: str  # "mean" | "cls" | "max"
    normalize: bool
    source: str  # "modules.json", "configured", "default (no sentence-transformers config)"

    def describe(self) -> str:
        return f"{self.mode} pooling{', L2-normalised' if self.normalize else ''} ({self.source})"


def read_pooling(model_dir: Path, mode: str = "auto", normalize: bool | None = None) -> Pooling:
    """The pooling of ``model_dir``: configured values win over the sentence-transformers
    files; without either, mean pooling and no normalisation."""
    st_mode, st_norm = _sentence_transformers(Path(model_dir))
    chosen = mode if mode != "auto" else st_mode or "mean"
    norm = normalize if normalize is not None else bool(st_norm)
    configured = mode != "auto" or normalize is not None
    source = ("configured" if configured else "modules.json" if st_mode
              else "default: mean, no modules.json")
    return Pooling(chosen, norm, source)


def _sentence_transformers(model_dir: Path) -> tuple[str | None, bool]:
    """(mode, normalise) from modules.json and the Pooling module's config; (None, False)
    where the directory has no modules.json."""
    modules = _json(model_dir / "modules.json")
    if modules is None:
        return None, False
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise DataError(problem(str(model_dir / "modules.json"), type(modules).__name__,
                                "a list of {\"type\": ..., \"path\": ...} modules",
                                "re-save the model with sentence-transformers' save()"))
    types = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    extra = [t for t in types if t in _UNSUPPORTED_MODULES]
    if extra:
        raise DataError(problem(f"{model_dir / 'modules.json'}: modules", types,
                                "Transformer, Pooling and optionally Normalize (the modules the "
                                "gate runs)", f"gate a model without {extra[0]}, or export the "
                                "whole pipeline to ONNX with a sentence_embedding output and "
                                "gate that file as the reference"))
    mode = None
    for module, kind in zip(modules, types, strict=True):
        if kind != "Pooling":
            continue
        path = model_dir / str(module.get("path", "")) / "config.json"
        config = _json(path)
        if not isinstance(config, dict):
            raise DataError(problem(str(path), "missing or not a JSON object",
                                    "the Pooling module's config.json",
                                    "re-save the model, or set pooling = \"mean\" or \"cls\""))
        odd = [k for k in _UNSUPPORTED if config.get(k)]
        if odd:
            raise DataError(problem(f"{path}: {odd[0]}", True, f"one of {sorted(_ST_MODES)}",
                                    "gate it with pooling = \"mean\", \"cls\" or \"max\" if "
                                    "that is what you deploy"))
        chosen = [name for key, name in _ST_MODES.items() if config.get(key)]
        if len(chosen) != 1:
            raise DataError(problem(f"{path}: pooling modes", chosen or "none",
                                    "exactly one of mean, cls, max",
                                    "set pooling = \"mean\", \"cls\" or \"max\""))
        mode = chosen[0]
    return mode, "Normalize" in types


def _json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(problem(str(path), f"invalid JSON ({exc})", "a JSON file",
                                "re-save the model")) from None


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """One float64 vector per row of ``hidden`` (batch, sequence, dim), padded positions
    (``mask`` 0) left out, as sentence-transformers' Pooling does."""
    h = hidden.astype(np.float64)
    m = mask[:, : h.shape[1]].astype(np.float64)[:, :, None]
    if mode == "cls":
        return h[:, 0]
    if mode == "max":
        return np.where(m > 0, h, -1e9).max(axis=1)
    return (h * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)


def normalise(vectors: np.ndarray) -> np.ndarray:
    """L2-normalised rows (sentence-transformers' Normalize: a zero vector stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def pooled_output(outputs: dict[str, np.ndarray], mask: np.ndarray, pooling: Pooling
                  ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The pooled vectors of one batch's outputs, the token vectors where the graph returned
    them (None where it pooled itself), and which output was read.

    A graph's own pooled output wins (``sentence_embedding``: what that export's users
    get); then the token vectors, pooled here as configured; else the first output, by rank."""
    named = next((n for n in POOLED_OUTPUTS if n in outputs and outputs[n].ndim == 2), None) \
        or next((n for n in TOKEN_OUTPUTS if n in outputs and outputs[n].ndim == 3), None) \
        or next(iter(outputs))
    value = np.asarray(outputs[named])
    if value.ndim == 3:
        vectors = pool(value, mask, pooling.mode)
        return (normalise(vectors) if pooling.normalize else vectors), value, named
    if value.ndim == 2:
        return value.astype(np.float64), None, named
    raise DataError(problem(f"backend output {named!r} shape", value.shape,
                            "(batch, sequence, dim) token vectors or (batch, dim) sentence "
                            "vectors", "export the encoder's last_hidden_state or a pooled "
                            "sentence_embedding"))
