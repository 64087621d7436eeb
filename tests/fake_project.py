"""A user's repo on the fake backend (no torch): what the plugin's pytester runs and the core's
unit tests build their sessions on."""

from __future__ import annotations

import json
import random
from pathlib import Path

LABELS = ["World", "Sports", "Business"]
WORDS = {
    "World": "war treaty minister election border summit".split(),
    "Sports": "match goal team cup score league".split(),
    "Business": "market shares profit bank stocks merger".split(),
}

BACKENDS_TOML = """
[[tool.quantgate.backend]]
name = "ref"
kind = "fake"

[[tool.quantgate.backend]]
name = "same"
kind = "fake"

[[tool.quantgate.backend]]
name = "drifty"
kind = "fake"
drift = 0.5

[[tool.quantgate.backend]]
name = "swapped"
kind = "fake"
swap_inputs = true

[[tool.quantgate.backend]]
name = "poisoned"
kind = "fake"
nan_rate = 0.2
"""


def write_project(root: Path, table: str, *, backends_toml: str = BACKENDS_TOML) -> Path:
    """A user's repo: a fake model dir, a golden set and a pyproject with ``table``."""
    from pytest_quantgate.backends.fake_model import write_fake_model

    rng = random.Random(0)
    rows = []
    for i in range(45):
        label = LABELS[i % 3]
        words = [rng.choice(WORDS[label]) for _ in range(rng.randint(3, 9))]
        rows.append({"text": " ".join(words), "label": label})
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "golden.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    write_fake_model(root / "model", LABELS, [r["text"] for r in rows])
    # Adversarial items only where a test asks for them (before the table: it may open subtables).
    off = "" if "adversarial_max_examples" in table else "adversarial_max_examples = 0\n"
    (root / "pyproject.toml").write_text(
        '[tool.quantgate]\nmodel = "model"\neval = "data/golden.jsonl"\nreference = "ref"\n'
        + off + table + "\n" + backends_toml)
    return root


# Measured per run, not per backend: they differ between any two runs of the same code.
TIMINGS = frozenset({"created", "timing", "build_seconds", "seconds", "predict_seconds",
                     "infer_seconds"})


def without(data: object, keys: frozenset[str] = TIMINGS) -> object:
    """A JSON report with ``keys`` removed at every level, to compare two runs."""
    if isinstance(data, dict):
        return {k: without(v, keys) for k, v in data.items() if k not in keys}
    if isinstance(data, list):
        return [without(v, keys) for v in data]
    return data
