"""A pure-numpy text classifier with knobs, shipped so the plugin can be tried and tested
without torch or ONNX Runtime (the idea of httpx's MockTransport).

The model is a bag of embeddings: logits = mean over real tokens of (E[id] + T[type]) + b.
Knobs make it misbehave the way real backends do: ``drift`` adds noise to the logits,
``nan_rate`` poisons a share of rows, ``swap_inputs`` swaps attention_mask and token_type_ids
(the keyword-export bug), ``delay`` slows every batch, ``input_dtype`` declares int32 inputs,
``raw_int32`` reads int64 ids as int32 bytes (the TensorRT raw-buffer bug), ``label_permutation``
reorders the output columns, ``dropout`` drops random tokens on every call (nondeterminism),
``digit_percent_fault`` rolls the logits of rows where a digit token is followed by the ``%``
token (the fake sees ids, not text: it finds those ids in the model dir's tokenizer.json).
Noise and NaN rows depend only on a row's tokens, so results do not depend on batching.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import BackendError, problem
from .base import BackendInfo, Runner, TensorSpec, read_as_int32
from .registry import BackendDecl, BuildContext

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class FakeRunner(Runner):
    kind = "fake"

    def __init__(self, name: str, precision: str, *, vocab_size: int, num_labels: int,
                 options: Mapping[str, Any]) -> None:
        super().__init__(name, precision)
        self.options = dict(options)
        rng = np.random.default_rng(int(options.get("seed", 0)))
        self._emb = rng.normal(0.0, 2.0, size=(max(vocab_size, 1), num_labels))
        self._types = rng.normal(0.0, 2.0, size=(2, num_labels))
        self._bias = rng.normal(0.0, 0.1, size=num_labels)
        perm = [int(i) for i in options.get("label_permutation") or range(num_labels)]
        if sorted(perm) != list(range(num_labels)):
            raise BackendError(problem(f"backend {name!r} option label_permutation", perm,
                                       f"a permutation of 0..{num_labels - 1}",
                                       "list every class id once"))
        self._perm = np.array(perm)
        self._calls = 0
        self.digit_ids = np.zeros(0, dtype=np.int64)  # set by create() for digit_percent_fault
        self.percent_id = -1

    def _activate_impl(self) -> None:
        pass

    def _input_specs_impl(self) -> list[TensorSpec]:
        dtype = str(self.options.get("input_dtype", "int64"))
        return [TensorSpec(n, dtype, (None, None)) for n in INPUTS]

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> Mapping[str, Any]:
        mask, types = feed["attention_mask"], feed["token_type_ids"]
        if self.options.get("raw_int32"):
            feed = {k: read_as_int32(v) for k, v in feed.items()}
            mask, types = feed["attention_mask"], feed["token_type_ids"]
        ids = feed["input_ids"].astype(np.int64) % self._emb.shape[0]
        if self.options.get("swap_inputs"):
            mask, types = types, mask
        weights = mask.astype(np.float64)
        if self.options.get("dropout"):
            self._calls += 1
            keep = np.random.default_rng(self._calls).random(weights.shape)
            weights = weights * (keep >= float(self.options["dropout"]))
        types = np.clip(types.astype(np.int64), 0, 1)
        summed = np.einsum("bs,bsl->bl", weights, self._emb[ids] + self._types[types])
        logits = summed / np.maximum(weights.sum(axis=1, keepdims=True), 1.0) + self._bias
        drift, nan_rate = float(self.options.get("drift", 0.0)), float(self.options.get("nan_rate", 0.0))
        if drift or nan_rate:
            for row in range(logits.shape[0]):
                rng = np.random.default_rng(_row_seed(feed["input_ids"][row], mask[row]))
                logits[row] += rng.normal(0.0, drift, size=logits.shape[1]) if drift else 0.0
                if nan_rate and rng.random() < nan_rate:
                    logits[row] = np.nan
        if self.options.get("digit_percent_fault"):
            ids = feed["input_ids"].astype(np.int64)
            hit = np.isin(ids[:, :-1], self.digit_ids) & (ids[:, 1:] == self.percent_id) \
                & (mask[:, 1:] != 0)
            rows = hit.any(axis=1)
            logits[rows] = np.roll(logits[rows], 1, axis=1) * 3.0
        if self.options.get("delay"):
            time.sleep(float(self.options["delay"]))
        return {"logits": logits[:, self._perm].astype(np.float32)}

    def _describe_impl(self) -> BackendInfo:
        size = self._emb.nbytes + self._types.nbytes + self._bias.nbytes
        return BackendInfo(self.name, self.kind, self.precision, f"numpy {np.__version__}",
                           size_bytes=size, build_seconds=0.0, cache_hit=False,
                           details={"knobs": self.options})


def _row_seed(ids: np.ndarray, mask: np.ndarray) -> int:
    # Only real tokens count, so padding to another length gives the same noise.
    real = np.asarray(ids, dtype=np.int64)[np.asarray(mask) != 0]
    return int.from_bytes(hashlib.blake2b(real.tobytes(), digest_size=8).digest(), "little")


def _digit_percent_ids(model_dir: Any) -> tuple[np.ndarray, int]:
    """Ids of the all-digit tokens and of '%' in the model dir's tokenizer.json (-1: absent)."""
    import json
    from pathlib import Path

    try:
        vocab = json.loads((Path(model_dir) / "tokenizer.json").read_text())["model"]["vocab"]
    except (OSError, ValueError, KeyError, TypeError):
        vocab = {}
    digits = [int(i) for tok, i in dict(vocab).items() if tok.isdigit()]
    return np.array(digits, dtype=np.int64), int(vocab.get("%", -1))


def create(decl: BackendDecl, ctx: BuildContext) -> FakeRunner:
    runner = FakeRunner(decl.name, decl.precision, vocab_size=ctx.vocab_size,
                        num_labels=ctx.num_labels, options=decl.options)
    if decl.options.get("digit_percent_fault"):
        runner.digit_ids, runner.percent_id = _digit_percent_ids(ctx.model_dir)
    return runner
