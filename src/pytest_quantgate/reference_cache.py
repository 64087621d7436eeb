"""The reference backend's outputs on the eval set, kept on disk by content.

The key hashes everything the outputs depend on (model, eval set, tokenizer, shapes, the
reference backend's declaration and the library versions), so a later run with the same inputs
reads the logits instead of running the reference again, and any change misses the cache.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .atomic import write_bytes_atomic, write_json_atomic
from .backends.base import BackendInfo
from .cache import hash_parts
from .tasks.text_classification import Shapes

if TYPE_CHECKING:
    from .session import BackendRun, GateSession


def reference_parts(gate: GateSession) -> dict[str, Any]:
    from .manifest import package_versions

    cfg, decl = gate.config, gate.config.decl(gate.config.reference)
    parts = {"model": gate.model_hash, "eval": gate.data_hashes["eval"],
             "max_length": cfg.max_length, "padding": cfg.padding,
             "batch_size": cfg.batch_size, "backend": [decl.kind, dict(decl.options)],
             "tokenizer": gate.encoder.source, "versions": package_versions()}
    if gate.is_lm:  # classification keys stay as they were: existing caches stay valid
        parts.update(task=cfg.task, window=cfg.window, stride=cfg.stride, k=gate.lm_k)
    return parts


def reference_dir(gate: GateSession) -> Path:
    return gate.config.cache_dir / "reference" / hash_parts(reference_parts(gate))[:24]


def load_reference(gate: GateSession) -> BackendRun | None:
    """The cached run of the reference, or None (not cached, unreadable or another shape)."""
    if gate.is_lm:
        from .lm_session import load_lm_reference

        return load_lm_reference(gate)
    from .session import BackendRun

    folder = reference_dir(gate)
    try:
        meta = json.loads((folder / "run.json").read_text())
        logits = np.load(folder / "logits.npy", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if logits.shape != (len(gate.examples), len(gate.facts.labels)):
        return None
    info = BackendInfo(**{**meta["info"], "cache_hit": True})
    return BackendRun(meta["name"], meta["precision"], "ok", logits=logits, info=info,
                      shapes=Shapes(**meta["shapes"]), seconds=meta["seconds"],
                      infer_seconds=meta["infer_seconds"], reference_cached=True)


def save_reference(gate: GateSession, run: BackendRun) -> None:
    """Logits first, then run.json (what a reader opens first), each written atomically."""
    assert run.logits is not None and run.info is not None and run.shapes is not None
    folder = reference_dir(gate)
    buffer = io.BytesIO()
    np.save(buffer, run.logits, allow_pickle=False)
    write_bytes_atomic(folder / "logits.npy", buffer.getvalue())
    write_json_atomic(folder / "run.json", {
        "name": run.name, "precision": run.precision, "info": asdict(run.info),
        "shapes": asdict(run.shapes), "seconds": run.seconds,
        "infer_seconds": run.infer_seconds})
