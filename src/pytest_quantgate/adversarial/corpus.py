"""The session's generated corpus and the reference's outputs on it: drawn, or read from the cache.

Under a fixed seed (the ci profile, or any run with ``adversarial_seed`` set) the texts Hypothesis
draws and the reference's logits on them are a pure function of what went in: the seed, the
number of examples, the vocabulary and text length the strategy is built from, the code that
draws (strategies.py, search.py), Hypothesis's and Python's versions, and everything the
reference's outputs depend on (reference_cache.corpus_parts: model, reference backend, tokenizer,
shapes, task, library versions). They are kept in the artifact cache under the hash of all of
that (``artifacts/adversarial/<key>/``), so a warm run neither draws again nor runs the reference,
and imports neither Hypothesis nor the reference's framework. The artifact cache gives the rules
the other artifacts follow: written into a temporary folder renamed into place, under a lock so
one pytest-xdist worker builds while the others wait and load, and an entry whose files changed
since it was written is removed and rebuilt with a note.

A fresh seed (the dev profile) draws a new corpus every run, so nothing is kept.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..atomic import write_bytes_atomic, write_text_atomic
from ..errors import DataError, first_line
from ..reference_cache import corpus_parts
from .search import Plan

if TYPE_CHECKING:
    from ..checks import CheckContext

KIND = "adversarial"  # the artifact cache's folder for corpora
# Bump when what is stored, or how a corpus is drawn from the same inputs, changes.
FORMAT = 1
TEXTS, OUTPUTS = "texts.json", "reference.npy"
# The code that decides which texts a seed draws: its source is part of the key, so an edited
# strategy (an editable install keeps its version number) never reads a stale corpus.
DRAWING_CODE = ("pytest_quantgate.strategies", "pytest_quantgate.adversarial.search")


@dataclass
class Corpus:
    """The session's generated inputs and the reference's logits on them."""

    plan: Plan
    texts: list[str]
    ref: np.ndarray
    seconds: float  # this session's: drawing and scoring, or reading the cache
    cached: bool = False  # read from the cache: nothing drawn, the reference not run
    note: str = ""  # one line when the cache could not be used as it should


def vocabulary(gate: CheckContext) -> list[str]:
    """The words the strategy draws from: the task's sample (a long corpus's first documents
    are vocabulary enough), as the strategy keeps them (unique, sorted, not blank)."""
    return sorted({w for t in gate.task.sample_texts() for w in t.split() if w.strip()})


def corpus_key_parts(gate: CheckContext, plan: Plan, words: list[str]) -> dict[str, Any]:
    """Everything the fixed-seed corpus and the reference's outputs on it depend on."""
    try:
        hypothesis = metadata.version("hypothesis")
    except metadata.PackageNotFoundError:
        hypothesis = None
    drawn = {"format": FORMAT, "seed": plan.seed, "max_examples": plan.max_examples,
             "words": _sha256(json.dumps(words).encode()), "text_length": gate.task.text_length,
             "hypothesis": hypothesis, "python": platform.python_version(),
             "code": _code_hash()}
    return {**corpus_parts(gate, gate.task), "corpus": drawn}


def session_corpus(gate: CheckContext, plan: Plan,
                   draw: Callable[[list[str]], list[str]]) -> Corpus:
    """The corpus for ``plan``: from the cache under a fixed seed, else drawn with ``draw(words)``
    and scored by the reference (and, under a fixed seed, kept)."""
    words = vocabulary(gate)
    start = time.perf_counter()

    def make() -> tuple[list[str], np.ndarray]:
        texts = draw(words)
        return texts, gate.predict(gate.config.reference, texts)

    if not plan.fixed:
        texts, ref = make()
        return Corpus(plan, texts, ref, time.perf_counter() - start)
    parts = corpus_key_parts(gate, plan, words)
    made: list[tuple[list[str], np.ndarray]] = []
    started: list[bool] = []

    def build(folder: Path) -> None:
        started.append(True)
        made.append(make())
        _write(folder, *made[0])

    note = ""
    for _ in range(2):  # a second time only after removing an entry that could not be read
        try:
            artifact = gate.cache.get_or_build(KIND, parts, build)
        except DataError as exc:  # the cache directory itself: read-only, full, in the way
            if started and not made:
                raise  # drawing or the reference failed: that is the item's error
            texts, ref = made[0] if made else make()
            return Corpus(plan, texts, ref, time.perf_counter() - start,
                          note=f"adversarial corpus not cached: {first_line(exc)}")
        note = note or artifact.note  # damaged and rebuilt: say so once
        if made:
            return Corpus(plan, *made[0], time.perf_counter() - start, note=note)
        loaded = _read(artifact.path)
        if isinstance(loaded, tuple):
            return Corpus(plan, *loaded, time.perf_counter() - start, cached=True, note=note)
        # Sizes and checksums matched what was written, yet it does not read as a corpus.
        note = (f"cache entry {KIND}/{artifact.key} could not be read ({loaded}); rebuilt")
        shutil.rmtree(artifact.path, ignore_errors=True)
    raise AssertionError("unreachable: the second pass builds")  # pragma: no cover


def _write(folder: Path, texts: list[str], ref: np.ndarray) -> None:
    # ensure_ascii: a lone surrogate or a control character survives the round trip
    write_text_atomic(folder / TEXTS, json.dumps(texts))
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(ref), allow_pickle=False)
    write_bytes_atomic(folder / OUTPUTS, buffer.getvalue())


def _read(folder: Path) -> tuple[list[str], np.ndarray] | str:
    """The stored texts and outputs, or what is wrong with them."""
    try:
        texts = json.loads((folder / TEXTS).read_text())
        ref = np.load(folder / OUTPUTS, allow_pickle=False)
    except (OSError, ValueError) as exc:
        return first_line(exc)
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        return f"{TEXTS} is not a list of texts"
    if ref.ndim != 2 or ref.shape[0] != len(texts):
        return f"{OUTPUTS} has shape {ref.shape} for {len(texts)} texts"
    return texts, ref


def _code_hash() -> str:
    digest = hashlib.sha256()
    for name in DRAWING_CODE:
        spec = importlib.util.find_spec(name)  # located, not imported (no Hypothesis import)
        origin = spec.origin if spec is not None else None
        digest.update(name.encode() + b"\0")
        if origin and Path(origin).is_file():
            digest.update(Path(origin).read_bytes())
    return digest.hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
