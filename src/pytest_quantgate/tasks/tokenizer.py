"""Turn texts into token ids the way the model's own tokenizer does.

When the model directory holds a ``tokenizer.json`` (every fast Hugging Face tokenizer, and the
only file transformers v5 saves) we load it with the ``tokenizers`` library: the same Rust code
``AutoTokenizer`` runs, without importing transformers (about 3 s here). Otherwise we fall back
to ``AutoTokenizer``. Padding is not done here: batching pads per batch (see batching.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import DataError, problem


@dataclass(frozen=True)
class Encoded:
    """One text's token ids and token type ids, truncated, unpadded."""

    ids: np.ndarray
    type_ids: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.shape[0])


class _Backend(Protocol):
    def encode(self, texts: list[str]) -> list[tuple[list[int], list[int]]]: ...

    def decode(self, ids: list[int]) -> str: ...

    def vocab_size(self) -> int: ...

    def unk_id(self) -> int | None: ...


class TextEncoder:
    """Encodes texts with the model's tokenizer, truncated to ``max_length`` (0: never; a causal
    LM's documents are cut into windows instead)."""

    def __init__(self, backend: _Backend, pad_id: int, max_length: int, source: str) -> None:
        self._backend = backend
        self.pad_id = pad_id
        self.max_length = max_length
        self.source = source  # "tokenizers" or "transformers", for the report

    @classmethod
    def from_model_dir(cls, model_dir: Path, max_length: int) -> TextEncoder:
        model_dir = Path(model_dir)
        tok_file = model_dir / "tokenizer.json"
        settings = _read_json(model_dir / "tokenizer_config.json")
        if tok_file.is_file():
            fast = _FastBackend(tok_file, max_length)
            pad = settings.get("pad_token") or "[PAD]"
            pad = pad.get("content", "[PAD]") if isinstance(pad, dict) else pad
            pad_id = fast.token_to_id(str(pad))
            return cls(fast, 0 if pad_id is None else pad_id, max_length, "tokenizers")
        slow = _AutoBackend(model_dir, max_length)
        return cls(slow, slow.pad_id, max_length, "transformers")

    @property
    def vocab_size(self) -> int:
        """Token ids the tokenizer can produce (added tokens included)."""
        return self._backend.vocab_size()

    @property
    def unk_id(self) -> int | None:
        """The id of the unknown token (None: the tokenizer has none, e.g. byte-level BPE)."""
        return self._backend.unk_id()

    def decode_token(self, token_id: int) -> str:
        """The text of one token id (for showing predicted next tokens)."""
        return self._backend.decode([token_id])

    def encode(self, texts: list[str]) -> list[Encoded]:
        return [
            Encoded(np.asarray(ids, dtype=np.int64), np.asarray(types, dtype=np.int64))
            for ids, types in self._backend.encode(list(texts))
        ]


class _FastBackend:
    def __init__(self, path: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        try:
            self._tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # the Rust error text is long; keep its first line
            raise DataError(problem("tokenizer file", str(path), "a valid tokenizer.json",
                                    f"re-save the tokenizer ({str(exc).splitlines()[0]})")) from None
        self._tok.no_padding()
        if max_length:
            self._tok.enable_truncation(max_length=max_length)
        else:
            self._tok.no_truncation()

    def token_to_id(self, token: str) -> int | None:
        result: int | None = self._tok.token_to_id(token)
        return result

    def encode(self, texts: list[str]) -> list[tuple[list[int], list[int]]]:
        return [(e.ids, e.type_ids) for e in self._tok.encode_batch(texts)]

    def decode(self, ids: list[int]) -> str:
        return str(self._tok.decode(ids, skip_special_tokens=False))

    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    def unk_id(self) -> int | None:
        token = getattr(self._tok.model, "unk_token", None)
        return self.token_to_id(str(token)) if token else None


class _AutoBackend:
    def __init__(self, model_dir: Path, max_length: int) -> None:
        from transformers import AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(str(model_dir))
        self._max_length = max_length
        self.pad_id = int(self._tok.pad_token_id or 0)

    def decode(self, ids: list[int]) -> str:
        return str(self._tok.decode(ids, skip_special_tokens=False))

    def vocab_size(self) -> int:
        return len(self._tok)

    def unk_id(self) -> int | None:
        unk = self._tok.unk_token_id
        return None if unk is None else int(unk)

    def encode(self, texts: list[str]) -> list[tuple[list[int], list[int]]]:
        out = self._tok(texts, truncation=bool(self._max_length),
                        max_length=self._max_length or None, return_token_type_ids=True)
        return [(ids, types) for ids, types in zip(out["input_ids"], out["token_type_ids"], strict=True)]


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(problem(f"{path.name}", f"invalid JSON ({exc})", "a JSON object",
                                f"fix or re-save {path}")) from None
    return data if isinstance(data, dict) else {}
