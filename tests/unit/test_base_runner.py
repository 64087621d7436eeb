"""Unit tests of backends/base.py (the checks every runner shares), driven through FakeRunner."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from pytest_quantgate.backends.base import FeedCast, Runner, TensorSpec
from pytest_quantgate.backends.fake import INPUTS, FakeRunner
from pytest_quantgate.errors import BackendError

VOCAB, LABELS = 50, 3


def fake(name: str = "fake", precision: str = "fp32", cls: type[FakeRunner] = FakeRunner,
         **options: Any) -> FakeRunner:
    return cls(name, precision, vocab_size=VOCAB, num_labels=LABELS, options=options)


def feed(batch: int = 2, length: int = 5, dtype: Any = np.int64) -> dict[str, np.ndarray]:
    ids = (np.arange(batch * length).reshape(batch, length) % VOCAB).astype(dtype)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids),
            "token_type_ids": np.zeros_like(ids)}


def fails(runner: Runner, message: str, given: Mapping[str, Any]) -> None:
    with pytest.raises(BackendError, match=re.escape(message)):
        runner.infer(given)


# -- construction and lifecycle -----------------------------------------------------------------

@pytest.mark.parametrize("precision", ["fp8", "FP32", "", "int4"])
def test_bad_precision_is_rejected_at_construction(precision: str) -> None:
    with pytest.raises(BackendError, match=re.escape(
            f"backend 'mine' precision: got {precision!r}, expected one of "
            "('fp32', 'fp16', 'bf16', 'int8'); fix the backend's declaration")):
        fake("mine", precision)


def test_infer_before_activate() -> None:
    message = ("backend 'fake' state: got 'inactive', expected an activated runner; call "
               "activate() (or use it as a context manager) before infer()")
    runner = fake()
    fails(runner, message, feed())
    with pytest.raises(BackendError, match=re.escape(message)):
        runner.input_specs()
    assert runner.infer_calls == 0


def test_infer_after_close() -> None:
    runner = fake().activate()
    runner.infer(feed())
    runner.close()
    fails(runner, "call activate()", feed())


def test_context_manager_activates_and_closes() -> None:
    runner = fake()
    with runner as active:
        assert active is runner
        assert active.infer(feed())["logits"].shape == (2, LABELS)
    fails(runner, "call activate()", feed())


def test_activate_twice_and_close_twice() -> None:
    calls: list[str] = []

    class Counting(FakeRunner):
        def _activate_impl(self) -> None:
            calls.append("activate")

        def _close_impl(self) -> None:
            calls.append("close")

    runner = fake(cls=Counting)
    assert runner.activate().activate() is runner
    runner.close()
    runner.close()
    assert calls == ["activate", "close"]


def test_input_specs_and_describe() -> None:
    runner = fake(seed=3, precision="fp16").activate()
    specs = runner.input_specs()
    assert list(specs) == list(INPUTS)
    assert specs["input_ids"] == TensorSpec("input_ids", "int64", (None, None))
    assert not specs["input_ids"].is_static(0) and not specs["input_ids"].is_static(2)
    assert TensorSpec("x", "int64", (4, None)).is_static(0)
    info = runner.describe()
    assert (info.name, info.kind, info.precision) == ("fake", "fake", "fp16")
    assert info.details["knobs"]["seed"] == 3


def test_infer_counts_calls_and_time() -> None:
    runner = fake().activate()
    runner.infer(feed())
    runner.infer(feed())
    assert runner.infer_calls == 2
    assert runner.infer_seconds > 0


# -- the feed -----------------------------------------------------------------------------------

def test_int32_feed_is_cast_to_the_declared_int64() -> None:
    runner = fake().activate()
    out32 = runner.infer(feed(dtype=np.int32))
    assert runner.casts == {n: FeedCast(n, "int32", "int64") for n in INPUTS}
    np.testing.assert_array_equal(out32["logits"], fake().activate().infer(feed())["logits"])


def test_int64_feed_is_cast_to_a_declared_int32() -> None:
    seen: list[np.dtype[Any]] = []

    class Recording(FakeRunner):
        def _infer_impl(self, given: dict[str, np.ndarray]) -> Mapping[str, Any]:
            seen.extend(a.dtype for a in given.values())
            return super()._infer_impl(given)

    runner = fake(cls=Recording, input_dtype="int32").activate()
    runner.infer(feed())
    assert runner.casts == {n: FeedCast(n, "int64", "int32") for n in INPUTS}
    assert seen == [np.dtype(np.int32)] * 3


def test_matching_dtype_records_no_cast() -> None:
    runner = fake().activate()
    runner.infer(feed())
    assert runner.casts == {}
    assert runner.dropped_inputs == set()


def test_bool_mask_is_cast() -> None:
    runner = fake().activate()
    given = feed()
    given["attention_mask"] = given["attention_mask"].astype(bool)
    runner.infer(given)
    assert runner.casts == {"attention_mask": FeedCast("attention_mask", "bool", "int64")}


def test_extra_feed_keys_are_dropped_and_recorded() -> None:
    seen: list[list[str]] = []

    class Recording(FakeRunner):
        def _infer_impl(self, given: dict[str, np.ndarray]) -> Mapping[str, Any]:
            seen.append(sorted(given))
            return super()._infer_impl(given)

    runner = fake(cls=Recording).activate()
    runner.infer({**feed(), "position_ids": np.zeros((2, 5), dtype=np.int64)})
    assert runner.dropped_inputs == {"position_ids"}
    assert seen == [sorted(INPUTS)]


def test_missing_input() -> None:
    given = feed()
    del given["token_type_ids"]
    fails(fake().activate(), "backend 'fake' feed: got ['attention_mask', 'input_ids'], "
          "expected inputs ['attention_mask', 'input_ids', 'token_type_ids']; the tokenizer "
          "produced no ['token_type_ids']; check the model's declared inputs", given)


def test_wrong_rank() -> None:
    given = feed()
    given["input_ids"] = given["input_ids"][0]
    fails(fake().activate(), "backend 'fake' input 'input_ids' rank: got 1, expected rank 2 "
          "(shape (None, None)); feed arrays shaped (batch, sequence)", given)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_float_feed(dtype: Any) -> None:
    given = feed()
    given["attention_mask"] = given["attention_mask"].astype(dtype)
    name = np.dtype(dtype).name
    fails(fake().activate(), f"backend 'fake' input 'attention_mask' dtype: got {name!r}, "
          "expected int64; feed integer token ids", given)


def test_lists_are_accepted_as_feeds() -> None:
    runner = fake().activate()
    out = runner.infer({k: v.tolist() for k, v in feed().items()})
    assert out["logits"].shape == (2, LABELS)


# -- the outputs --------------------------------------------------------------------------------

class Returning(FakeRunner):
    """Returns whatever ``self.result`` holds."""

    result: Any = None

    def _infer_impl(self, given: dict[str, np.ndarray]) -> Any:
        return self.result


def returning(result: Any) -> Returning:
    runner = fake(cls=Returning).activate()
    assert isinstance(runner, Returning)
    runner.result = result
    return runner


def test_outputs_are_copied() -> None:
    kept = np.ones((2, LABELS), dtype=np.float32)
    runner = returning({"logits": kept})
    first = runner.infer(feed())["logits"]
    first[:] = 99.0
    assert (kept == 1.0).all()
    assert (runner.infer(feed())["logits"] == 1.0).all()
    assert runner.infer(feed())["logits"] is not kept


def test_fp16_outputs_are_widened_to_float32() -> None:
    runner = returning({"logits": np.array([[1.5, -2.0, 65504.0]], dtype=np.float16)})
    out = runner.infer(feed())["logits"]
    assert out.dtype == np.float32
    assert out.tolist() == [[1.5, -2.0, 65504.0]]


def test_wider_and_integer_outputs_are_kept() -> None:
    runner = returning({"f64": np.zeros((1, 2)), "ids": np.array([[1, 2]], dtype=np.int32),
                        "ok": np.array([True])})
    out = runner.infer(feed())
    assert {k: v.dtype.name for k, v in out.items()} == {"f64": "float64", "ids": "int32",
                                                         "ok": "bool"}


def test_bf16_outputs_are_widened_to_float32() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    runner = returning({"logits": np.array([[1.5, -2.0]], dtype=ml_dtypes.bfloat16)})
    out = runner.infer(feed())["logits"]
    assert out.dtype == np.float32 and out.tolist() == [[1.5, -2.0]]


def test_fp8_outputs_are_widened_to_float32() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    runner = returning({"logits": np.array([[1.5, -2.0]], dtype=ml_dtypes.float8_e4m3fn)})
    out = runner.infer(feed())["logits"]
    assert out.dtype == np.float32 and out.tolist() == [[1.5, -2.0]]


@pytest.mark.parametrize(("result", "got"), [
    ((np.zeros((2, 3)),), "tuple"), ([np.zeros((2, 3))], "list"), ({}, "dict"),
    (None, "NoneType"), (np.zeros((2, 3)), "ndarray"),
])
def test_outputs_that_are_not_a_mapping(result: Any, got: str) -> None:
    fails(returning(result), f"backend 'fake' outputs: got {got!r}, expected a non-empty "
          "mapping of output name to array; fix the runner's _infer_impl", feed())


@pytest.mark.parametrize(("value", "dtype"), [
    (np.array(["a", "b"]), "str32"), (np.array([1 + 2j]), "complex128"),
    (np.array([object()], dtype=object), "object"),
])
def test_non_numeric_output(value: Any, dtype: str) -> None:
    fails(returning({"logits": value}), f"backend 'fake' output 'logits' dtype: got {dtype!r}, "
          "expected a numeric array; return numpy arrays from _infer_impl", feed())
