"""Write a tiny model directory (config.json + tokenizer.json) that needs no framework.

With the ``fake`` backend as reference and backends, this is enough to try the plugin, and for
the plugin's own tests to run without torch or ONNX Runtime.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path


def write_fake_model(out_dir: Path, labels: Sequence[str], texts: Sequence[str]) -> Path:
    """A WordLevel tokenizer over ``texts`` with BERT-like special tokens, and a config."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    # A vocabulary built here, sorted, rather than by the trainer: its ties are ordered by a
    # hash map, so ids (and the fake model's outputs) would change from run to run.
    words = sorted({w for t in texts for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(t))})
    vocab = {token: i for i, token in enumerate([*specials, *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[(t, tok.token_to_id(t)) for t in ("[CLS]", "[SEP]")])
    tok.save(str(out_dir / "tokenizer.json"))
    (out_dir / "tokenizer_config.json").write_text(json.dumps({"pad_token": "[PAD]"}))
    config = {"model_type": "fake", "vocab_size": tok.get_vocab_size(),
              "id2label": {str(i): name for i, name in enumerate(labels)},
              "label2id": {name: i for i, name in enumerate(labels)}}
    (out_dir / "config.json").write_text(json.dumps(config, indent=2))
    return out_dir
