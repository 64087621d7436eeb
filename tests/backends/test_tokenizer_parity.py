"""The gate tokenises with `tokenizers` (no transformers import); it must give AutoTokenizer's ids."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_quantgate.tasks.tokenizer import TextEncoder

TEXTS = [
    "Cybersecurity breach exposes NHS patient records",
    "",
    "Ünïcödé café — naïve résumé 東京 😀",
    "word " * 300,  # far past max_length: truncation must agree
    "Striker signs record deal as club shares jump 12%",
]


def test_tokenizers_gives_the_ids_autotokenizer_gives(demo):  # type: ignore[no-untyped-def]
    transformers = pytest.importorskip("transformers")
    auto = transformers.AutoTokenizer.from_pretrained(str(demo.model_dir))
    encoder = TextEncoder.from_model_dir(demo.model_dir, 64)
    assert encoder.source == "tokenizers"
    texts = TEXTS + [g["text"] for g in demo.golden[:200]]
    ours = encoder.encode(texts)
    theirs = auto(texts, truncation=True, max_length=64, return_token_type_ids=True)
    for mine, ids, types in zip(ours, theirs["input_ids"], theirs["token_type_ids"], strict=True):
        np.testing.assert_array_equal(mine.ids, ids)
        np.testing.assert_array_equal(mine.type_ids, types)
    assert encoder.pad_id == auto.pad_token_id
