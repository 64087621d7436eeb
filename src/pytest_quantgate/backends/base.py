"""The runner protocol and the base class every backend derives from.

A runner is built or loaded (by its factory), activated, asked for its input specs, fed named
numpy arrays and closed. The base class does what every runner needs, so subclasses only load
and run: it checks the feed against the declared inputs, casts token ids to the dtype the
runtime declares (and remembers that it did, for the contract check), verifies and copies the
outputs, widens low-precision floats before anyone subtracts them, and times the call.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import BackendError, problem

PRECISIONS = ("fp32", "fp16", "bf16", "int8")


def read_as_int32(array: np.ndarray) -> np.ndarray:
    """An int64 buffer read as int32, as a runtime handed the raw pointer does: the flat
    buffer's first ``size`` int32 values (little-endian: id, 0, id, 0, ...), in the same shape."""
    flat = np.ascontiguousarray(array, dtype=np.int64).reshape(-1).view(np.int32)
    return flat[: array.size].reshape(array.shape).astype(np.int64)


@dataclass(frozen=True)
class TensorSpec:
    """One declared input or output: name, numpy dtype name and shape (None = dynamic dim)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]

    def is_static(self, axis: int) -> bool:
        return len(self.shape) > axis and isinstance(self.shape[axis], int)


@dataclass(frozen=True)
class BackendInfo:
    """What a backend is and what it cost to build; goes into the table and the report."""

    name: str
    kind: str
    precision: str
    runtime: str
    size_bytes: int | None = None
    build_seconds: float | None = None
    cache_hit: bool = False
    artifact: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FeedCast:
    """A feed array cast to the dtype the backend declares (int64 ids into an int32 engine)."""

    input: str
    given: str
    declared: str


class Runner(ABC):
    """Base of every backend. Subclasses implement the ``_*_impl`` hooks only."""

    kind: str = "abstract"

    def __init__(self, name: str, precision: str) -> None:
        if precision not in PRECISIONS:
            raise BackendError(
                problem(f"backend {name!r} precision", precision, f"one of {PRECISIONS}",
                        "fix the backend's declaration")
            )
        self.name = name
        self.precision = precision
        self.casts: dict[str, FeedCast] = {}
        self.dropped_inputs: set[str] = set()
        self.infer_seconds = 0.0
        self.infer_calls = 0
        self._specs: dict[str, TensorSpec] | None = None
        self._active = False
        self._quiet_failures = False  # see quiet_failures

    # -- lifecycle -------------------------------------------------------------------------
    def activate(self) -> Runner:
        if not self._active:
            self._activate_impl()
            self._active = True
        return self

    def close(self) -> None:
        if self._active:
            self._close_impl()
            self._active = False

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata --------------------------------------------------------------------------
    def input_specs(self) -> Mapping[str, TensorSpec]:
        self._require_active()
        if self._specs is None:
            self._specs = {s.name: s for s in self._input_specs_impl()}
        return self._specs

    def describe(self) -> BackendInfo:
        return self._describe_impl()

    # -- inference -------------------------------------------------------------------------
    @contextlib.contextmanager
    def quiet_failures(self) -> Iterator[Runner]:
        """Runs whose failure the caller expects and handles: a probe trying candidate faults,
        some of which cannot run (token ids fed as token types). A runtime that logs its own
        failures (ONNX Runtime, in C++ to stderr) keeps quiet meanwhile, so no user reads an
        error line that was part of a search. The failure still raises."""
        before, self._quiet_failures = self._quiet_failures, True
        try:
            yield self
        finally:
            self._quiet_failures = before

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch. Returns outputs by name, float outputs widened to at least float32."""
        self._require_active()
        prepared = self._prepare_feed(feed)
        start = time.perf_counter()
        raw = self._infer_impl(prepared)
        self._synchronize()
        self.infer_seconds += time.perf_counter() - start
        self.infer_calls += 1
        return self._check_outputs(raw)

    def _prepare_feed(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        specs = self.input_specs()
        missing = [n for n in specs if n not in feed]
        if missing:
            raise BackendError(
                problem(f"backend {self.name!r} feed", sorted(feed), f"inputs {sorted(specs)}",
                        f"the tokenizer produced no {missing}; check the model's declared inputs")
            )
        self.dropped_inputs |= set(feed) - set(specs)
        prepared: dict[str, np.ndarray] = {}
        for name, spec in specs.items():
            array = np.asarray(feed[name])
            if len(spec.shape) and array.ndim != len(spec.shape):
                raise BackendError(
                    problem(f"backend {self.name!r} input {name!r} rank", array.ndim,
                            f"rank {len(spec.shape)} (shape {spec.shape})",
                            "feed arrays shaped (batch, sequence)")
                )
            if array.dtype != np.dtype(spec.dtype):
                if array.dtype.kind in "iub" and np.dtype(spec.dtype).kind in "iu":
                    self.casts[name] = FeedCast(name, array.dtype.name, spec.dtype)
                    _check_fits(self.name, name, array, np.dtype(spec.dtype))
                    array = array.astype(spec.dtype)
                else:
                    raise BackendError(
                        problem(f"backend {self.name!r} input {name!r} dtype", array.dtype.name,
                                spec.dtype, "feed integer token ids")
                    )
            prepared[name] = np.ascontiguousarray(array)
        return prepared

    def _check_outputs(self, raw: Mapping[str, Any]) -> dict[str, np.ndarray]:
        if not isinstance(raw, Mapping) or not raw:
            raise BackendError(
                problem(f"backend {self.name!r} outputs", type(raw).__name__,
                        "a non-empty mapping of output name to array", "fix the runner's _infer_impl")
            )
        out: dict[str, np.ndarray] = {}
        for name, value in raw.items():
            array = np.array(value, copy=True)
            kind = array.dtype.kind  # .name is slow; look at it only for ml_dtypes' floats
            if kind == "f" and array.dtype.itemsize < 4 or kind == "V" and (
                    array.dtype.name == "bfloat16" or array.dtype.name.startswith("float8")):
                array = array.astype(np.float32)
            elif kind not in "fiub":
                raise BackendError(
                    problem(f"backend {self.name!r} output {name!r} dtype", array.dtype.name,
                            "a numeric array", "return numpy arrays from _infer_impl")
                )
            out[name] = array
        return out

    def _require_active(self) -> None:
        if not self._active:
            raise BackendError(
                problem(f"backend {self.name!r} state", "inactive", "an activated runner",
                        "call activate() (or use it as a context manager) before infer()")
            )

    # -- hooks for subclasses ----------------------------------------------------------------
    @abstractmethod
    def _activate_impl(self) -> None: ...

    @abstractmethod
    def _input_specs_impl(self) -> list[TensorSpec]: ...

    @abstractmethod
    def _infer_impl(self, feed: dict[str, np.ndarray]) -> Mapping[str, Any]: ...

    @abstractmethod
    def _describe_impl(self) -> BackendInfo: ...

    def _close_impl(self) -> None:  # noqa: B027  (optional hook)
        """Release sessions and memory; the default has nothing to release."""

    def _synchronize(self) -> None:  # noqa: B027  (optional hook)
        """Wait for asynchronous devices so timings are honest; CPU runners need nothing."""


def _check_fits(backend: str, name: str, array: np.ndarray, declared: np.dtype) -> None:
    """Refuse an integer cast that would wrap (int64 ids into an int32 engine): a wrapped id
    is another token, so casting silently would feed the model the wrong text."""
    if array.size == 0 or np.can_cast(array.dtype, declared):
        return
    info = np.iinfo(declared)
    lo, hi = int(array.min()), int(array.max())
    if lo < info.min or hi > info.max:
        raise BackendError(
            problem(f"backend {backend!r} input {name!r}", f"{array.dtype.name} ids in "
                    f"[{lo}, {hi}]", f"values that fit its declared {declared.name}",
                    "these are not token ids of this model; check the tokenizer and the feed")
        )
