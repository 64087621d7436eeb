"""The public strategies yield valid, diverse inputs of each kind, and reject bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_quantgate.errors import ConfigError
from pytest_quantgate.strategies import (
    KINDS,
    adversarial_texts,
    headlines,
    perturbed,
    token_batches,
)

VOCAB = "markets rally after vote shares fall bank profit".split()
FAST = settings(max_examples=20, deadline=None, database=None)


@FAST
@given(headlines(vocabulary=VOCAB, min_words=2, max_words=5))
def test_headlines_are_words_of_the_vocabulary(text):
    words = text.split()
    assert 2 <= len(words) <= 5 and set(words) <= set(VOCAB)


CHECKS = {
    "emoji": lambda t: any(ord(c) > 0x7F for c in t),
    "script": lambda t: any(ord(c) > 0x370 for c in t),
    "number": lambda t: any(c.isdigit() for c in t),
    "url": lambda t: any(s in t for s in ("://", "www.", "@")),
    "markup": lambda t: any(s in t for s in ("<", "&", "**", "](")),
    "long": lambda t: len(t.split()) > 16,
    "empty": lambda t: len(t.strip()) <= 1,
    "repeat": lambda t: len(set(t.split())) == 1 and len(t.split()) >= 2,
    "control": lambda t: any(c in t for c in "\t\n\r\x00\x0b\x0c\u200b\u200e\ufeff\x1b"),
    "slang": lambda t: t.split()[-1:] in [[a] for a in ("lol", "smh", "tbh", "imo", "fr", "ngl", "idk", "omg",
                                                    "wtf", "brb")],
    "casing": lambda t: {w.lower() for w in t.split()} <= set(VOCAB),  # words kept, case changed
}


@pytest.mark.parametrize("kind", sorted(CHECKS))
def test_each_kind_yields_its_perturbation(kind):
    @FAST
    @given(perturbed(headlines(vocabulary=VOCAB), kinds=[kind], max_length=16))
    def prop(text):
        assert isinstance(text, str) and CHECKS[kind](text), text

    prop()


def test_the_mix_is_diverse():
    seen: list[str] = []

    # Derandomised: diversity is asserted on a fixed sample, so the test cannot flake.
    @settings(max_examples=120, deadline=None, database=None, derandomize=True)
    @given(adversarial_texts(vocabulary=VOCAB, max_length=16))
    def prop(text):
        seen.append(text)

    prop()
    hits = {k for k, ok in CHECKS.items() if k != "casing" and any(ok(t) for t in seen)}
    assert len(set(seen)) > 60 and hits >= {"number", "script", "long", "empty", "control"}


@FAST
@given(st.data())
def test_token_batches_are_valid(data):
    batch = data.draw(token_batches(vocab_size=30, max_length=12, pad_id=0, unk_id=1, max_batch=5))
    ids, mask, types = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
    assert ids.dtype == mask.dtype == types.dtype == np.int64
    assert ids.shape == mask.shape == types.shape and 1 <= ids.shape[0] <= 5
    assert ids.shape[1] <= 12 and ((0 <= ids) & (ids < 30)).all()
    assert (np.diff(mask, axis=1) <= 0).all() and (mask[:, 0] == 1).all()  # ones, then zeros
    assert (ids[mask == 0] == 0).all() and (ids[mask == 1] != 0).all()
    assert (types[mask == 0] == 0).all() and (np.diff(types, axis=1)[mask[:, 1:] == 1] >= 0).all()


def test_token_batches_cover_padding_patterns():
    seen = {"full": False, "padded": False, "pair": False, "unk": False}

    @settings(max_examples=80, deadline=None, database=None, derandomize=True)
    @given(token_batches(vocab_size=30, max_length=8, unk_id=1))
    def prop(batch):
        mask = batch["attention_mask"]
        seen["full"] |= bool(mask.shape[1] == 8 and (mask == 1).all(axis=1).any())
        seen["padded"] |= bool((mask == 0).any())
        seen["pair"] |= bool(batch["token_type_ids"].any())
        seen["unk"] |= bool((batch["input_ids"] == 1).any())

    prop()
    assert all(seen.values()), seen


@pytest.mark.parametrize("call, message", [
    (lambda: headlines(vocabulary="markets rally"), "strategy argument vocabulary: got 'str', "
     "expected a sequence of words (str)"),
    (lambda: headlines(vocabulary=[" "]), "expected at least one non-blank word"),
    (lambda: headlines(vocabulary=VOCAB, max_words=0), "strategy argument max_words: got 0, "
     "expected a whole number >= 1"),
    (lambda: perturbed(headlines(vocabulary=VOCAB), kinds=["typos"]),
     "strategy argument kinds: got 'typos', expected one or more of"),
    (lambda: perturbed("text"), "perturbed(base=...): got 'str', expected a Hypothesis strategy"),
    (lambda: token_batches(vocab_size=10, max_length=4, pad_id=10),
     "token_batches(pad_id=...): got 10, expected a token id in [0, 10)"),
    (lambda: token_batches(vocab_size=10, max_length=0), "strategy argument max_length: got 0"),
])
def test_bad_arguments_fail_when_the_strategy_is_made(call, message):
    with pytest.raises(ConfigError) as err:
        call()
    assert message in str(err.value)


def test_kinds_are_all_implemented():
    for kind in KINDS:
        perturbed(headlines(vocabulary=VOCAB), kinds=[kind])
