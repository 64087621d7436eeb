"""The fixed-seed adversarial corpus is the same in every process, whatever it imported."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from pytest_quantgate.adversarial.search import generate
from pytest_quantgate.strategies import adversarial_texts

# A vocabulary as large as a real eval set's: index draws then range past 100, where
# Hypothesis's constants from source apply (it leaves |n| < 100 to its own weighting).
WORDS = [f"{stem}{i}" for i in range(300) for stem in ("market", "goal")]


def test_the_corpus_does_not_depend_on_the_modules_a_process_has_imported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hypothesis also draws constants it finds in the source of local modules already imported;
    a pytest-xdist worker that ran the calibration check first got another corpus (97 instead of
    100 of 100 inputs failing on the demo's all-ops static INT8)."""
    strategy = adversarial_texts(vocabulary=WORDS, max_length=128)
    before = generate(strategy, seed=0, max_examples=100)
    module = tmp_path / "qg_constants_probe.py"
    # Numbers of the sizes the strategies draw (Hypothesis skips |n| < 100), floats, words.
    numbers = ", ".join(str(i) for i in range(100, 500))
    floats = ", ".join(f"{i / 7:.3f}" for i in range(1, 200))
    texts = ", ".join(repr(f"probe{i}") for i in range(200))
    module.write_text(f"NUMBERS = [{numbers}]\nFLOATS = [{floats}]\nTEXTS = [{texts}]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("qg_constants_probe")
    assert generate(strategy, seed=0, max_examples=100) == before
