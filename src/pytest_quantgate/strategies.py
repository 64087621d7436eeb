"""Hypothesis strategies for adversarial inputs, public for users' own property tests.

Text strategies start from realistic headlines (words drawn from a vocabulary, usually the eval
set's) and perturb them the ways quantised models break on: typos, casing, slang, emoji,
non-Latin scripts, numbers and percentages, URLs, code, markup, texts far past ``max_length``,
near-empty texts, repeated tokens and control characters. Token strategies give valid
``input_ids`` / ``attention_mask`` / ``token_type_ids`` batches for a tokenizer's vocabulary.

Every argument is keyword-only and validated when the strategy is made (Hypothesis itself
validates lazily, at the first draw)::

    from hypothesis import given
    from pytest_quantgate.strategies import adversarial_texts

    @given(adversarial_texts(vocabulary=["markets", "rally", "after", "vote"]))
    def test_never_nan(quantgate, text): ...

Importing this module imports Hypothesis (``pip install 'pytest-quantgate[adversarial]'``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st

from .errors import ConfigError, problem

__all__ = ["KINDS", "adversarial_texts", "headlines", "perturbed", "token_batches"]

KINDS = ("plain", "typo", "casing", "slang", "emoji", "script", "number", "url", "code", "markup",
         "long", "empty", "repeat", "control")

_SLANG = {"you": "u", "are": "r", "before": "b4", "for": "4", "to": "2", "great": "gr8",
          "tonight": "2nite", "people": "ppl", "because": "bc", "with": "w/", "and": "&"}
_ABBREV = ("lol", "smh", "tbh", "imo", "fr", "ngl", "idk", "omg", "wtf", "brb")
_EMOJI = "😀🔥🚀💸📉📈⚽🏆🌍🤖❤️✨🙏😭👀" + "©®™°±§¶•…€£¥₹"
_SCRIPTS = ("Кибератака на больницы", "中国股市大涨", "الأسواق ترتفع", "भारत ने मैच जीता",
            "東京で地震", "Ελλάδα εκλογές", "שוק המניות", "한국 경제 성장", "ตลาดหุ้นไทย")
_URLS = ("https://example.com/news?id=42&ref=rss", "www.bbc.co.uk/sport", "http://x.co/a%20b",
         "ftp://10.0.0.1/file.txt", "user@example.com")
_CODE = ("def f(x): return x**2", "SELECT * FROM users WHERE id=1;", "if (a && b) { x++; }",
         "import numpy as np", "console.log('hi')", "rm -rf /tmp/*")
_MARKUP = ("<b>{}</b>", "<a href='#'>{}</a>", "&lt;{}&gt; &amp;", "**{}**", "[{}](http://x.y)",
           "<script>alert(1)</script>{}", "{}<br/>")
_CONTROL = "\t\n\r\x00\x0b\x0c\u200b\u200e\ufeff\x1b"


def headlines(*, vocabulary: Sequence[str], min_words: int = 1, max_words: int = 12
              ) -> st.SearchStrategy[str]:
    """Headline-like texts: ``min_words`` to ``max_words`` words from ``vocabulary``."""
    words = _vocabulary(vocabulary)
    _check_int("min_words", min_words, 0)
    _check_int("max_words", max_words, max(min_words, 1))
    return st.lists(st.sampled_from(words), min_size=min_words, max_size=max_words).map(" ".join)


def perturbed(base: st.SearchStrategy[str], *, kinds: Sequence[str] = KINDS, max_length: int = 128
              ) -> st.SearchStrategy[str]:
    """Texts from ``base`` changed by one perturbation of ``kinds`` (see ``KINDS``).

    ``max_length`` (tokens) sets how long "long" texts get: past it, so truncation is exercised.
    """
    if not isinstance(base, st.SearchStrategy):
        raise ConfigError(problem("perturbed(base=...)", type(base).__name__,
                                  "a Hypothesis strategy of str", "pass e.g. headlines(...)"))
    chosen = _kinds(kinds)
    _check_int("max_length", max_length, 1)
    return _perturbed(base, chosen, max_length)


def adversarial_texts(*, vocabulary: Sequence[str], kinds: Sequence[str] = KINDS,
                      max_length: int = 128) -> st.SearchStrategy[str]:
    """Realistic headlines from ``vocabulary``, each perturbed by one of ``kinds``."""
    return perturbed(headlines(vocabulary=vocabulary), kinds=kinds, max_length=max_length)


def token_batches(*, vocab_size: int, max_length: int, pad_id: int = 0, unk_id: int | None = None,
                  min_batch: int = 1, max_batch: int = 8, pair_probability: float = 0.3
                  ) -> st.SearchStrategy[dict[str, np.ndarray]]:
    """Valid int64 ``input_ids`` / ``attention_mask`` / ``token_type_ids`` batches.

    Rows are right-padded with ``pad_id`` (the mask is a run of ones then zeros); some rows use
    the full ``max_length``, some are one token; ``unk_id`` shows up when given; a share of rows
    (``pair_probability``) are sentence pairs whose second segment has token type 1.
    """
    _check_int("vocab_size", vocab_size, 2)
    _check_int("max_length", max_length, 1)
    _check_int("min_batch", min_batch, 1)
    _check_int("max_batch", max_batch, min_batch)
    for name, value in (("pad_id", pad_id), ("unk_id", unk_id)):
        if value is not None and (not isinstance(value, int) or not 0 <= value < vocab_size):
            raise ConfigError(problem(f"token_batches({name}=...)", value,
                                      f"a token id in [0, {vocab_size})", "use the tokenizer's id"))
    if not isinstance(pair_probability, (int, float)) or not 0.0 <= pair_probability <= 1.0:
        raise ConfigError(problem("token_batches(pair_probability=...)", pair_probability,
                                  "a number in [0, 1]", "e.g. pair_probability=0.3"))
    return _token_batches(vocab_size, max_length, pad_id, unk_id, min_batch, max_batch,
                          float(pair_probability))


# -- validation ---------------------------------------------------------------------------------
def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(problem(f"strategy argument {name}", value,
                                  f"a whole number >= {minimum}", f"pass {name}={max(minimum, 1)}"))


def _vocabulary(vocabulary: Sequence[str]) -> list[str]:
    if isinstance(vocabulary, str) or not all(isinstance(w, str) for w in vocabulary):
        raise ConfigError(problem("strategy argument vocabulary", type(vocabulary).__name__,
                                  "a sequence of words (str)", "pass e.g. text.split()"))
    words = sorted({w for w in vocabulary if w.strip()})
    if not words:
        raise ConfigError(problem("strategy argument vocabulary", list(vocabulary)[:3],
                                  "at least one non-blank word", "pass the eval set's words"))
    return words


def _kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    chosen = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    unknown = [k for k in chosen if k not in KINDS]
    if unknown or not chosen:
        raise ConfigError(problem("strategy argument kinds", unknown[0] if unknown else chosen,
                                  f"one or more of {list(KINDS)}", "fix the spelling"))
    return chosen


# -- the strategies -----------------------------------------------------------------------------
Draw = Callable[[st.SearchStrategy[Any]], Any]


@st.composite
def _perturbed(draw: Draw, base: st.SearchStrategy[str], kinds: tuple[str, ...],
               max_length: int) -> str:
    kind = draw(st.sampled_from(kinds))
    text: str = draw(base)
    return str(_PERTURB[kind](draw, text, max_length))


def _typo(draw: Draw, text: str, _: int) -> str:
    if len(text) < 2:
        return text + text
    i = draw(st.integers(0, len(text) - 2))
    how = draw(st.sampled_from(("swap", "drop", "double")))
    if how == "swap":
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    return text[:i] + text[i + 1:] if how == "drop" else text[:i] + text[i] + text[i:]


def _casing(draw: Draw, text: str, _: int) -> str:
    how = draw(st.sampled_from(("upper", "lower", "title", "alternate")))
    if how == "alternate":
        return "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(text))
    return str(getattr(text, how)())


def _slang(draw: Draw, text: str, _: int) -> str:
    words = [_SLANG.get(w.lower(), w) for w in text.split()]
    return " ".join([*words, draw(st.sampled_from(_ABBREV))])


def _insert(draw: Draw, text: str, piece: str) -> str:
    words = text.split()
    at = draw(st.integers(0, len(words)))
    return " ".join([*words[:at], piece, *words[at:]])


def _emoji(draw: Draw, text: str, _: int) -> str:
    return _insert(draw, text, draw(st.text(st.sampled_from(_EMOJI), min_size=1, max_size=3)))


def _script(draw: Draw, text: str, _: int) -> str:
    return _insert(draw, text, draw(st.sampled_from(_SCRIPTS)))


@st.composite
def _number_piece(draw: Draw) -> str:
    n = draw(st.integers(0, 100))
    how = draw(st.sampled_from(("percent", "plain", "decimal", "currency", "date")))
    if how == "percent":
        return f"{n}%"
    if how == "decimal":
        return f"{n}.{draw(st.integers(0, 99))}"
    if how == "currency":
        return f"{draw(st.sampled_from('$€£¥'))}{n}{draw(st.sampled_from(('', 'm', 'bn', 'k')))}"
    if how == "date":
        return f"{2000 + n % 30}-{1 + n % 12:02d}-{1 + n % 28:02d}"
    return str(n)


def _number(draw: Draw, text: str, _: int) -> str:
    return _insert(draw, text, draw(_number_piece()))


def _url(draw: Draw, text: str, _: int) -> str:
    return _insert(draw, text, draw(st.sampled_from(_URLS)))


def _code(draw: Draw, text: str, _: int) -> str:
    return _insert(draw, text, draw(st.sampled_from(_CODE)))


def _markup(draw: Draw, text: str, _: int) -> str:
    return str(draw(st.sampled_from(_MARKUP))).format(text)


def _long(draw: Draw, text: str, max_length: int) -> str:
    # Every word is at least one token, so max_length + 1 words pass the limit.
    words = text.split() or ["word"]
    times = max_length // len(words) + 1 + draw(st.integers(0, 2))
    return " ".join(words * times)


def _empty(draw: Draw, text: str, _: int) -> str:
    return str(draw(st.sampled_from(("", " ", "\t", "\n", "   \n ", ".", text[:1]))))


def _repeat(draw: Draw, text: str, _: int) -> str:
    words = text.split() or ["word"]
    word = draw(st.sampled_from(words))
    return " ".join([word] * draw(st.integers(2, 12)))


def _control(draw: Draw, text: str, _: int) -> str:
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(st.text(st.sampled_from(_CONTROL), min_size=1, max_size=3)) + text[at:]


_PERTURB: dict[str, Callable[[Draw, str, int], str]] = {
    "plain": lambda _d, text, _n: text, "typo": _typo, "casing": _casing, "slang": _slang,
    "emoji": _emoji, "script": _script, "number": _number, "url": _url, "code": _code,
    "markup": _markup, "long": _long, "empty": _empty, "repeat": _repeat, "control": _control,
}


@st.composite
def _token_batches(draw: Draw, vocab_size: int, max_length: int, pad_id: int, unk_id: int | None,
                   min_batch: int, max_batch: int, pair_probability: float
                   ) -> dict[str, np.ndarray]:
    batch = draw(st.integers(min_batch, max_batch))
    full = draw(st.booleans())  # a batch padded to max_length, or to its longest row
    width = max_length if full else draw(st.integers(1, max_length))
    real_ids = [i for i in range(vocab_size) if i != pad_id] or [pad_id]
    token = st.sampled_from(real_ids)
    if unk_id is not None:
        token = st.one_of(token, st.just(unk_id))
    ids = np.full((batch, width), pad_id, dtype=np.int64)
    mask = np.zeros((batch, width), dtype=np.int64)
    types = np.zeros((batch, width), dtype=np.int64)
    for row in range(batch):
        length = draw(st.sampled_from((width, 1)) | st.integers(1, width))
        ids[row, :length] = draw(st.lists(token, min_size=length, max_size=length))
        mask[row, :length] = 1
        if length > 1 and draw(st.floats(0.0, 1.0)) < pair_probability:
            types[row, draw(st.integers(1, length - 1)):length] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
