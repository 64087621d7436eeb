"""The causal-LM parts of a gate session: its build context, its streamed runs and their
cached reference, and its vocabulary as column names. ``GateSession`` calls these when
``task = "causal-lm"``; tasks/causal_lm.py holds the pass itself, without a session.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, overload

import numpy as np

from .backends.base import BackendInfo
from .backends.registry import BuildContext
from .reference_cache import reference_dir
from .session import BackendRun
from .tasks.causal_lm import (
    INPUT_NAMES,
    Tally,
    iter_windows,
    make_lm_feed,
    run_pass,
    window_batches,
)
from .tasks.lm_reference import ReferenceReader, ReferenceWriter
from .tasks.text_classification import Shapes, shape_policy

if TYPE_CHECKING:
    from .session import GateSession


class TokenNames(Sequence[str]):
    """A causal LM's vocabulary as column names, decoded on demand (50k+ tokens)."""

    def __init__(self, gate: GateSession) -> None:
        self._gate = gate

    def __len__(self) -> int:
        return self._gate.facts.vocab_size

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return repr(self._gate.token_text(int(index)))


def lm_context(gate: GateSession) -> BuildContext:
    """The build context of a causal LM: its input names, window and corpus windows."""
    cfg = gate.config

    def example_feed() -> dict[str, np.ndarray]:
        windows = iter_windows(gate.lm_source(), cfg.window, cfg.stride)
        return make_lm_feed([next(windows), next(windows)], gate.encoder.pad_id)

    def calibration_batches() -> Iterator[dict[str, np.ndarray]]:
        if cfg.calibration is None:
            return
        windows = iter_windows(gate.lm_source(cfg.calibration), cfg.window, cfg.stride)
        for _, feed in window_batches(windows, batch_size=cfg.batch_size,
                                      pad_id=gate.encoder.pad_id):
            yield feed

    return BuildContext(
        model_dir=cfg.model, model_hash=gate.model_hash, cache=gate.cache,
        max_length=cfg.window, num_labels=0, vocab_size=gate.facts.vocab_size,
        input_names=INPUT_NAMES, example_feed=example_feed,
        calibration_batches=calibration_batches,
        calibration_hash=gate.data_hashes.get("calibration"), base_dir=cfg.base_dir,
        task=cfg.task)


def run_lm(gate: GateSession, name: str) -> BackendRun:
    """One streaming pass of a causal LM: the reference records its numbers on disk, any
    other backend is compared with them as it goes (tasks/causal_lm.py)."""
    cfg, decl = gate.config, gate.config.decl(name)
    runner = gate.runner(name)
    shapes = shape_policy(runner, "longest", cfg.batch_size)
    is_ref = name == cfg.reference
    reader = None
    if not is_ref:
        ref = gate.run(cfg.reference)
        if ref.status != "ok":
            return BackendRun(name, decl.precision, "error",
                              f"the reference {ref.name!r} could not run: {ref.reason}")
        reader = lm_reader(gate)
    writer = ReferenceWriter(reference_dir(gate)) if is_ref else None
    k = gate.lm_k if is_ref else int(gate.thresholds(name)["topk"])
    start = time.perf_counter()
    try:
        tally = run_pass(runner, gate.lm_source(), window=cfg.window, stride=cfg.stride,
                         batch_size=cfg.batch_size, k=k, reference=reader, writer=writer,
                         worst_n=cfg.worst, static_length=shapes.static_length,
                         static_batch=shapes.static_batch)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if reader is not None:
            reader.close()
    seconds = time.perf_counter() - start
    run = BackendRun(name, decl.precision, "ok", info=runner.describe(), shapes=shapes,
                     seconds=seconds, infer_seconds=runner.infer_seconds, lm=tally)
    if writer is not None:
        assert run.info is not None
        writer.finish({"k": k, "tally": tally.to_dict(), "name": name,
                       "precision": run.precision, "info": asdict(run.info),
                       "shapes": asdict(shapes), "seconds": seconds,
                       "infer_seconds": run.infer_seconds})
    return run


def lm_reader(gate: GateSession) -> ReferenceReader:
    return ReferenceReader(reference_dir(gate))


def load_lm_reference(gate: GateSession) -> BackendRun | None:
    """The cached reference run, or None when absent, incomplete or recorded with a smaller k."""
    try:
        reader = lm_reader(gate)  # checks every file's size against the counts
        reader.close()
        meta = reader.meta
        tally = Tally(**meta["tally"])
        info = BackendInfo(**{**meta["info"], "cache_hit": True})
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if meta.get("k", 0) < gate.lm_k:
        return None
    return BackendRun(meta["name"], meta["precision"], "ok", info=info,
                      shapes=Shapes(**meta["shapes"]), seconds=meta["seconds"],
                      infer_seconds=meta["infer_seconds"], reference_cached=True, lm=tally)
