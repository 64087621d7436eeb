"""Unit tests of tasks/batching.py, tasks/tokenizer.py and the ordering in predict_logits."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_quantgate.backends.base import TensorSpec
from pytest_quantgate.backends.fake import INPUTS, FakeRunner
from pytest_quantgate.backends.fake_model import write_fake_model
from pytest_quantgate.config import PADDINGS
from pytest_quantgate.errors import BackendError, DataError
from pytest_quantgate.tasks.batching import batches, make_feed
from pytest_quantgate.tasks.text_classification import predict_logits, shape_policy
from pytest_quantgate.tasks.tokenizer import Encoded, TextEncoder

LABELS = ("negative", "neutral", "positive")
WORDS = "the a film plot actor music was is not very good bad dull great long short".split()


def make_texts(n: int, seed: int = 0, longest: int = 20) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, longest)))) for _ in range(n)]


TEXTS = make_texts(45)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_model(tmp_path_factory.mktemp("model") / "m", LABELS, [" ".join(WORDS)])


@pytest.fixture(scope="module")
def encoder(model_dir: Path) -> TextEncoder:
    return TextEncoder.from_model_dir(model_dir, max_length=32)


def encoded(lengths: list[int]) -> list[Encoded]:
    """Items whose ids are 100*row + position, so every cell tells where it came from."""
    return [Encoded(np.arange(n, dtype=np.int64) + 100 * row, np.ones(n, dtype=np.int64))
            for row, n in enumerate(lengths)]


def runner(cls: type[FakeRunner] = FakeRunner, **options: Any) -> FakeRunner:
    r = cls("fake", "fp32", vocab_size=len(WORDS) + 4, num_labels=len(LABELS), options=options)
    r.activate()
    return r


def predict(r: FakeRunner, items: list[Encoded], *, batch_size: int = 32, padding: str = "longest",
            max_length: int = 32) -> np.ndarray:
    logits, _ = predict_logits(r, items, batch_size=batch_size, padding=padding, pad_id=0,
                               max_length=max_length, num_labels=len(LABELS))
    return logits


# -- make_feed and batches ----------------------------------------------------------------------

def test_make_feed_pads_and_masks() -> None:
    feed = make_feed(encoded([3, 1]), pad_id=7, length=4)
    assert set(feed) == set(INPUTS)
    assert all(a.dtype == np.int64 and a.shape == (2, 4) for a in feed.values())
    assert feed["input_ids"].tolist() == [[0, 1, 2, 7], [100, 7, 7, 7]]
    assert feed["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    assert feed["token_type_ids"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]


def test_make_feed_truncates_to_length() -> None:
    feed = make_feed(encoded([5]), pad_id=0, length=2)
    assert feed["input_ids"].tolist() == [[0, 1]]
    assert feed["attention_mask"].tolist() == [[1, 1]]


def test_longest_padding_sorts_by_length_and_covers_each_index_once() -> None:
    lengths = [5, 2, 9, 2, 7, 1, 3, 8, 4, 6, 2]
    items = encoded(lengths)
    got = list(batches(items, batch_size=3, padding="longest", pad_id=0, max_length=16))
    order = np.concatenate([b.indices for b in got])
    assert sorted(order.tolist()) == list(range(len(items)))
    assert [lengths[i] for i in order] == sorted(lengths)
    assert order[:3].tolist() == [5, 1, 3]  # stable: equal lengths keep their input order
    assert [len(b.indices) for b in got] == [3, 3, 3, 2]
    for b in got:
        width = max(lengths[i] for i in b.indices)
        assert all(a.shape == (len(b.indices), width) for a in b.feed.values())
        assert b.feed["attention_mask"].sum(axis=1).tolist() == [lengths[i] for i in b.indices]
        assert (b.feed["input_ids"][:, 0] == 100 * b.indices).all()  # rows match indices


def test_max_length_padding_keeps_input_order() -> None:
    lengths = [5, 2, 9, 2, 7]
    got = list(batches(encoded(lengths), batch_size=2, padding="max_length", pad_id=0,
                       max_length=12))
    assert np.concatenate([b.indices for b in got]).tolist() == [0, 1, 2, 3, 4]
    assert all(a.shape[1] == 12 for b in got for a in b.feed.values())


def test_static_length_and_batch() -> None:
    lengths = [5, 2, 9, 2, 7]
    got = list(batches(encoded(lengths), batch_size=32, padding="longest", pad_id=0,
                       max_length=128, static_length=6, static_batch=2))
    assert [b.indices.tolist() for b in got] == [[0, 1], [2, 3], [4]]  # no sorting
    assert all(a.shape == (2, 6) for b in got for a in b.feed.values())
    last = got[-1].feed
    assert last["attention_mask"][1].tolist() == [0] * 6  # filler row
    assert last["input_ids"][1].tolist() == [0] * 6
    assert got[1].feed["attention_mask"][0].sum() == 6  # 9 tokens cut to the static length


def test_batches_of_nothing() -> None:
    assert list(batches([], batch_size=4, padding="longest", pad_id=0, max_length=8)) == []


def test_longest_padding_of_empty_items_is_one_wide() -> None:
    (b,) = batches(encoded([0, 0]), batch_size=4, padding="longest", pad_id=9, max_length=8)
    assert b.feed["input_ids"].tolist() == [[9], [9]]
    assert b.feed["attention_mask"].tolist() == [[0], [0]]


# -- predict_logits puts results back in order ----------------------------------------------------

@pytest.mark.parametrize("options", [{}, {"drift": 0.3, "seed": 4}])
def test_logits_do_not_depend_on_padding_or_batch_size(encoder: TextEncoder,
                                                       options: dict[str, Any]) -> None:
    items = encoder.encode(TEXTS)
    r = runner(**options)
    # the per-item answer, one text per call, with no padding at all
    expected = np.concatenate([predict(r, [item], batch_size=1) for item in items])
    for padding in PADDINGS:
        for batch_size in (1, 7, 32):
            got = predict(r, items, batch_size=batch_size, padding=padding)
            np.testing.assert_array_equal(got, expected, err_msg=f"{padding} {batch_size}")
    assert expected.shape == (len(TEXTS), len(LABELS))
    assert expected.dtype == np.float32


def test_results_follow_the_input_order(encoder: TextEncoder) -> None:
    items = encoder.encode(TEXTS)
    r = runner()
    forward = predict(r, items, batch_size=7)
    backward = predict(r, items[::-1], batch_size=7)
    np.testing.assert_array_equal(forward, backward[::-1])


class StaticRunner(FakeRunner):
    """A fake engine built for exactly (4, 16) inputs, that records what it was fed."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.fed: list[dict[str, tuple[int, ...]]] = []

    def _input_specs_impl(self) -> list[TensorSpec]:
        return [TensorSpec(n, "int64", (4, 16)) for n in INPUTS]

    def _infer_impl(self, feed: dict[str, np.ndarray]) -> Mapping[str, Any]:
        self.fed.append({k: v.shape for k, v in feed.items()})
        return super()._infer_impl(feed)


def test_static_declared_shape_gets_exactly_that_shape(model_dir: Path) -> None:
    enc = TextEncoder.from_model_dir(model_dir, max_length=16)
    items = enc.encode(TEXTS[:10])
    static = runner(StaticRunner)
    assert isinstance(static, StaticRunner)
    logits, shapes = predict_logits(static, items, batch_size=32, padding="longest", pad_id=0,
                                    max_length=16, num_labels=len(LABELS))
    assert (shapes.padding, shapes.batch_size) == ("static", 4)
    assert (shapes.static_length, shapes.static_batch) == (16, 4)
    assert len(static.fed) == 3  # 4 + 4 + 2 texts, the last batch filled up
    assert all(shape == (4, 16) for call in static.fed for shape in call.values())
    np.testing.assert_array_equal(logits, predict(runner(), items, max_length=16))


def test_dynamic_shape_policy_follows_the_configuration() -> None:
    shapes = shape_policy(runner(), "max_length", 8)
    assert (shapes.padding, shapes.batch_size) == ("max_length", 8)
    assert (shapes.static_length, shapes.static_batch) == (None, None)


def test_predict_logits_wrong_label_count(encoder: TextEncoder) -> None:
    with pytest.raises(BackendError, match=re.escape(
            "backend 'fake' logits shape: got (2, 3), expected (batch, 5) for 5 labels; "
            "check the model's output and its id2label")):
        predict_logits(runner(), encoder.encode(TEXTS[:2]), batch_size=4, padding="longest",
                       pad_id=0, max_length=32, num_labels=5)


def test_predict_logits_of_no_texts() -> None:
    with pytest.raises(BackendError, match=re.escape(
            "inputs to predict: got 0, expected at least one text; "
            "configure a non-empty eval set")):
        predict(runner(), [])


# -- TextEncoder --------------------------------------------------------------------------------

def test_encoder_reads_the_fast_tokenizer(model_dir: Path) -> None:
    enc = TextEncoder.from_model_dir(model_dir, max_length=32)
    assert enc.source == "tokenizers"
    assert enc.pad_id == 0  # [PAD]
    (item,) = enc.encode(["The film"])
    vocab = json.loads((model_dir / "tokenizer.json").read_text())["model"]["vocab"]
    assert item.ids.tolist() == [vocab["[CLS]"], vocab["the"], vocab["film"], vocab["[SEP]"]]
    assert item.ids.dtype == np.int64 and item.type_ids.dtype == np.int64
    assert item.type_ids.tolist() == [0, 0, 0, 0]
    assert len(item) == 4


def test_encoder_truncates_to_max_length(model_dir: Path) -> None:
    enc = TextEncoder.from_model_dir(model_dir, max_length=5)
    long, short = enc.encode([" ".join(WORDS), "good"])
    assert len(long) == 5
    vocab = json.loads((model_dir / "tokenizer.json").read_text())["model"]["vocab"]
    assert long.ids[0] == vocab["[CLS]"] and long.ids[-1] == vocab["[SEP]"]  # specials kept
    assert len(short) == 3  # not padded


def test_encoder_of_no_texts(encoder: TextEncoder) -> None:
    assert encoder.encode([]) == []


@pytest.mark.parametrize(("pad_token", "pad_id"), [
    ("[SEP]", 3), ({"content": "[CLS]", "lstrip": False}, 2), (None, 0), ("<missing>", 0),
])
def test_encoder_reads_the_pad_id(model_dir: Path, tmp_path: Path, pad_token: Any,
                                  pad_id: int) -> None:
    copy = Path(shutil.copytree(model_dir, tmp_path / "m"))
    (copy / "tokenizer_config.json").write_text(json.dumps({"pad_token": pad_token}))
    assert TextEncoder.from_model_dir(copy, max_length=8).pad_id == pad_id


def test_encoder_without_tokenizer_config(model_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(model_dir, tmp_path / "m"))
    (copy / "tokenizer_config.json").unlink()
    assert TextEncoder.from_model_dir(copy, max_length=8).pad_id == 0


def test_encoder_invalid_tokenizer_config(model_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(model_dir, tmp_path / "m"))
    (copy / "tokenizer_config.json").write_text("{oops")
    with pytest.raises(DataError, match=re.escape(
            "tokenizer_config.json: got 'invalid JSON (Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1))', expected a JSON object; "
            f"fix or re-save {copy / 'tokenizer_config.json'}")):
        TextEncoder.from_model_dir(copy, max_length=8)


def test_encoder_invalid_tokenizer_file(model_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(model_dir, tmp_path / "m"))
    (copy / "tokenizer.json").write_text('{"not": "a tokenizer"}')
    with pytest.raises(DataError, match=re.escape(
            f"tokenizer file: got '{copy / 'tokenizer.json'}', expected a valid tokenizer.json; "
            "re-save the tokenizer (")):
        TextEncoder.from_model_dir(copy, max_length=8)
