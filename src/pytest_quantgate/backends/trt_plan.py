"""The parts of the TensorRT backends that need no TensorRT: shapes, dtypes, bindings, batches.

- Optimisation profiles: a (min, opt, max) range for the batch and for the sequence, from the
  backend's ``batch`` and ``sequence`` options (``0`` as the sequence maximum = ``max_length``),
  applied to every token input (all are ``(batch, sequence)``).
- Dtype rules: TensorRT's ``DataType`` names to numpy's; token inputs must be integers of rank
  2. An int64 feed into an int32 engine input is cast by the runner base and recorded in
  ``runner.casts`` (the contract check reports it); the base refuses a cast that would wrap.
- Binding plans: every engine input by name must be fed, every output is read back by name with
  the dtype the engine declares, and a feed larger than the profile's batch maximum runs in
  chunks.
- Calibration batches for the legacy implicit calibrator: fixed (batch, sequence) arrays at the
  profile's ``opt`` shape, re-packed from the gate's variable-size calibration batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import BackendError, ConfigError, problem

# TensorRT DataType enum names (str(trt.DataType.X) is "DataType.X") -> numpy dtype names
TRT_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8",
              "UINT8": "uint8", "INT32": "int32", "INT64": "int64", "BOOL": "bool"}


@dataclass(frozen=True)
class ShapeRange:
    min: int
    opt: int
    max: int


@dataclass(frozen=True)
class Profile:
    """Batch and sequence ranges of one optimisation profile, per token input."""

    batch: ShapeRange
    sequence: ShapeRange

    def shapes(self, inputs: Iterable[str]) -> dict[str, tuple[tuple[int, int], ...]]:
        """``{input: ((min_b, min_s), (opt_b, opt_s), (max_b, max_s))}`` for ``set_shape``."""
        b, s = self.batch, self.sequence
        return {n: ((b.min, s.min), (b.opt, s.opt), (b.max, s.max)) for n in inputs}

    def ort_trt_options(self, inputs: Iterable[str]) -> dict[str, str]:
        """The same profile as ONNX Runtime's TensorRT provider options (``name:BxS,...``)."""
        names = list(inputs)
        out = {}
        for key, pick in (("min", 0), ("opt", 1), ("max", 2)):
            dims = self.shapes(names)
            out[f"trt_profile_{key}_shapes"] = ",".join(
                f"{n}:{dims[n][pick][0]}x{dims[n][pick][1]}" for n in names)
        return out

    def as_dict(self) -> dict[str, list[int]]:
        return {"batch": [self.batch.min, self.batch.opt, self.batch.max],
                "sequence": [self.sequence.min, self.sequence.opt, self.sequence.max]}


def shape_range(option: str, value: object, *, top: int | None = None) -> ShapeRange:
    """Validate ``[min, opt, max]``; a ``max`` of 0 means ``top`` (the configured max_length)."""
    if not (isinstance(value, (list, tuple)) and len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise ConfigError(problem(f"TensorRT option {option}", value, "[min, opt, max] as three "
                                  "whole numbers", f"write e.g. {option} = [1, 16, 32]"))
    lo, opt, hi = (int(v) for v in value)
    if hi == 0 and top is not None:
        hi = top
        opt = min(opt, hi)
    if not 1 <= lo <= opt <= hi:
        raise ConfigError(problem(f"TensorRT option {option}", [lo, opt, hi],
                                  "1 <= min <= opt <= max", f"write e.g. {option} = "
                                  f"[1, {max(1, hi // 2)}, {max(1, hi)}]"))
    return ShapeRange(lo, opt, hi)


def profile_from_options(options: Mapping[str, object], max_length: int) -> Profile:
    batch = shape_range("batch", options.get("batch", [1, 16, 32]))
    sequence = shape_range("sequence", options.get("sequence", [1, 64, 0]), top=max_length)
    return Profile(batch, sequence)


def numpy_dtype(trt_name: str) -> str:
    """numpy dtype name of a TensorRT ``DataType`` (``"DataType.INT32"`` or ``"INT32"``)."""
    key = trt_name.rsplit(".", 1)[-1].upper()
    if key not in TRT_DTYPES:
        raise BackendError(problem("TensorRT tensor data type", trt_name,
                                   f"one of {sorted(TRT_DTYPES)}", "export the model with "
                                   "integer token inputs and float logits"))
    return TRT_DTYPES[key]


@dataclass(frozen=True)
class Binding:
    """One engine I/O tensor: name, direction and the numpy dtype the engine declares."""

    name: str
    is_input: bool
    dtype: str
    shape: tuple[int, ...]  # -1 = dynamic


def plan_bindings(name: str, tensors: Sequence[tuple[str, bool, str, Sequence[int]]],
                  token_inputs: Sequence[str]) -> list[Binding]:
    """Bindings from ``(tensor name, is_input, TensorRT dtype name, shape)`` in engine order."""
    plan = [Binding(t, inp, numpy_dtype(dt), tuple(int(d) for d in shape))
            for t, inp, dt, shape in tensors]
    inputs = [b for b in plan if b.is_input]
    outputs = [b for b in plan if not b.is_input]
    unknown = [b.name for b in inputs if b.name not in token_inputs]
    if unknown:
        raise BackendError(problem(f"backend {name!r} engine inputs", [b.name for b in inputs],
                                   f"a subset of the tokenizer's {list(token_inputs)}",
                                   "build the engine from an export with named token inputs"))
    bad = [b for b in inputs if np.dtype(b.dtype).kind not in "iu" or len(b.shape) != 2]
    if bad:
        b = bad[0]
        raise BackendError(problem(f"backend {name!r} engine input {b.name!r}",
                                   f"{b.dtype} {list(b.shape)}", "integer ids of rank 2",
                                   "build the engine from an export with (batch, sequence) "
                                   "integer token inputs"))
    if not outputs:
        raise BackendError(problem(f"backend {name!r} engine outputs", "none",
                                   "at least one output (logits)", "rebuild the engine"))
    return plan


def row_chunks(rows: int, max_batch: int) -> list[slice]:
    """Slices of at most ``max_batch`` rows (a feed larger than the profile runs in parts)."""
    return [slice(i, min(i + max_batch, rows)) for i in range(0, rows, max_batch)]


def check_feed_shape(name: str, shape: tuple[int, ...], profile: Profile) -> None:
    seq = profile.sequence
    if not seq.min <= shape[1] <= seq.max:
        raise BackendError(problem(f"backend {name!r} inference", f"sequence {shape[1]}",
                                   f"{seq.min} to {seq.max} (the engine's profile)",
                                   "check the feed shapes; raise the sequence = [min, opt, max] "
                                   "option (and rebuild) or lower max_length"))


def infer_pad_id(feed: Mapping[str, np.ndarray]) -> int:
    """The id under masked positions (the tokenizer's [PAD]); 0 when nothing is padded."""
    ids, mask = feed.get("input_ids"), feed.get("attention_mask")
    if ids is None or mask is None or not (mask == 0).any():
        return 0
    return int(ids[mask == 0][0])


def calibration_batches(feeds: Iterable[Mapping[str, np.ndarray]], *, batch: int, sequence: int,
                        pad_id: int | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Fixed ``(batch, sequence)`` int64 batches from variable ones: rows padded (input_ids
    with [PAD], the rest with 0) or cut to ``sequence``; the last batch is filled with the
    first rows again, so no text is dropped and every batch has the calibration shape."""
    pending: dict[str, list[np.ndarray]] = {}
    first: dict[str, np.ndarray] | None = None
    count = 0
    for feed in feeds:
        pad = infer_pad_id(feed) if pad_id is None else pad_id
        fixed = {k: _fit(np.asarray(v), sequence, pad if k == "input_ids" else 0)
                 for k, v in feed.items()}
        for k, v in fixed.items():
            pending.setdefault(k, []).append(v)
        count += len(next(iter(fixed.values())))
        while count >= batch:
            stacked = {k: np.concatenate(v) for k, v in pending.items()}
            out = {k: v[:batch] for k, v in stacked.items()}
            first = first or out
            yield out
            pending = {k: [v[batch:]] for k, v in stacked.items()}
            count -= batch
    if count:
        stacked = {k: np.concatenate(v) for k, v in pending.items()}
        source = first or stacked
        reps = -(-batch // len(next(iter(source.values()))))
        yield {k: np.concatenate([v, *[source[k]] * reps])[:batch] for k, v in stacked.items()}


def _fit(array: np.ndarray, sequence: int, pad: int) -> np.ndarray:
    rows, cols = array.shape
    if cols >= sequence:
        return np.ascontiguousarray(array[:, :sequence], dtype=np.int64)
    out = np.full((rows, sequence), pad, dtype=np.int64)
    out[:, :cols] = array
    return out
