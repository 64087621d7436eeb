"""The fixed-seed adversarial corpus: the same in every process, whatever it imported, and kept in
the cache with the reference's outputs on it, by everything that decides them."""

from __future__ import annotations

import importlib
import json
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_project import write_project

from pytest_quantgate.adversarial import check as check_module
from pytest_quantgate.adversarial.corpus import FORMAT, KIND, corpus_key_parts, vocabulary
from pytest_quantgate.adversarial.search import generate, plan_for
from pytest_quantgate.cache import hash_parts
from pytest_quantgate.checks import load_specs
from pytest_quantgate.config import load
from pytest_quantgate.project_file import read_table
from pytest_quantgate.session import GateSession
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


# -- the fixed-seed corpus is cached by content (issue 20) -------------------------------------

def _session(root: Path, **cli: object) -> GateSession:
    config = load(read_table(root / "pyproject.toml"), base_dir=root,
                  cli={"adversarial_profile": "ci", **cli}, cli_dir=root, source="test")
    load_specs()  # the registered checks, as collection loads them
    return GateSession(config)


def _adversarial(gate: GateSession, backend: str = "same") -> dict[str, Any]:
    result = gate.check(backend, "adversarial")
    assert result.verdict == "passed", result.reason
    slice_: dict[str, Any] = result.details["adversarial"]
    return {**slice_, "notes": result.details.get("notes", [])}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_project(tmp_path, 'backends = ["same"]\nadversarial_max_examples = 30\n'
                         'cache_dir = "cache"')


def _entries(root: Path) -> list[Path]:
    folder = root / "cache" / "artifacts" / KIND
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def test_a_warm_fixed_seed_run_neither_draws_nor_runs_the_reference(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cold = _session(root)
    first = _adversarial(cold)
    assert not first["corpus_cached"] and not first["searched"] and first["n_inputs"] == 30
    texts = cold.state["adversarial"].texts
    assert len(_entries(root)) == 1

    warm = _session(root)
    warm.run("ref")  # the eval-set reference: loaded from its own cache, not run
    predicted: list[str] = []
    real_predict = GateSession.predict

    def spy(self: GateSession, name: str, batch: Any) -> Any:
        predicted.append(name)
        return real_predict(self, name, batch)

    def no_drawing(*args: object, **kwargs: object) -> list[str]:
        raise AssertionError("a warm run drew the corpus again")

    monkeypatch.setattr(GateSession, "predict", spy)
    monkeypatch.setattr(check_module, "generate", no_drawing)
    monkeypatch.setattr(check_module, "search", no_drawing)
    second = _adversarial(warm)
    assert second["corpus_cached"] and second["seed"] == 0
    assert predicted == ["same"]  # the backend, once, batched; never the reference
    assert warm.state["adversarial"].texts == texts
    assert np.array_equal(warm.state["adversarial"].ref, cold.state["adversarial"].ref)
    assert warm.runners.keys() == {"same"}


def test_the_key_holds_everything_that_decides_the_corpus(root: Path) -> None:
    def key(gate: GateSession, **plan: Any) -> str:
        base = plan_for(gate.config)
        return hash_parts(corpus_key_parts(gate, replace(base, **plan), vocabulary(gate)))

    gate = _session(root)
    base = key(gate)
    assert key(_session(root)) == base  # the same inputs, another session: the same key
    variants = {
        "seed": key(gate, seed=1),
        "max_examples": key(gate, max_examples=31),
        "text_length": key(_session(root, max_length=64)),
        "padding": key(_session(root, padding="max_length")),
        "batch_size": key(_session(root, batch_size=8)),
    }
    table = (root / "pyproject.toml").read_text()
    (root / "pyproject.toml").write_text(table.replace('name = "ref"\nkind = "fake"\n',
                                                      'name = "ref"\nkind = "fake"\nseed = 3\n', 1))
    variants["reference options"] = key(_session(root))
    (root / "pyproject.toml").write_text(table)
    golden = root / "data" / "golden.jsonl"
    golden.write_text(golden.read_text() + json.dumps({"text": "ceasefire", "label": "World"})
                      + "\n")
    variants["words"] = key(_session(root))
    assert len(set(variants.values())) == len(variants) and base not in variants.values()
    parts = corpus_key_parts(gate, plan_for(gate.config), vocabulary(gate))
    drawn = parts["corpus"]
    assert drawn["format"] == FORMAT and drawn["hypothesis"] and drawn["code"]
    assert parts["task"] == "text-classification" and parts["model"] == gate.model_hash
    assert "eval" not in parts  # the words stand for the eval set


def test_a_damaged_entry_is_rebuilt_and_says_so(root: Path) -> None:
    _adversarial(_session(root))
    (entry,) = _entries(root)
    outputs = entry / "reference.npy"
    outputs.write_bytes(outputs.read_bytes()[:-8])  # a truncated copy
    again = _adversarial(_session(root))
    assert not again["corpus_cached"]
    assert any("was damaged (reference.npy:" in n and "rebuilt" in n for n in again["notes"])
    assert _adversarial(_session(root))["corpus_cached"]  # and whole again


def test_a_fresh_seed_keeps_nothing(root: Path) -> None:
    gate = _session(root, adversarial_profile="dev")
    assert not _adversarial(gate)["corpus_cached"]
    assert _entries(root) == []


def test_two_sessions_on_one_cache_draw_once(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two pytest-xdist workers' worth: one draws and scores under the cache's lock, the other
    waits and reads."""
    draws: list[int] = []
    real = check_module.generate

    def slow(*args: Any, **kwargs: Any) -> list[str]:
        draws.append(1)
        time.sleep(0.3)  # long enough for the other session to reach the lock
        return real(*args, **kwargs)

    monkeypatch.setattr(check_module, "generate", slow)
    slices: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda g=g: slices.append(_adversarial(g)))
               for g in (_session(root), _session(root))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(draws) == 1
    assert sorted(s["corpus_cached"] for s in slices) == [False, True]


def test_a_cache_that_cannot_be_written_costs_a_draw_not_the_verdict(root: Path) -> None:
    blocked = root / "cache" / "artifacts" / KIND
    blocked.parent.mkdir(parents=True)
    blocked.write_text("in the way")
    part = _adversarial(_session(root))
    assert not part["corpus_cached"] and part["n_inputs"] == 30
    (note,) = part["notes"]
    assert note.startswith("adversarial corpus not cached: artifact cache directory ") and \
        f"a file at {blocked}" in note, note
