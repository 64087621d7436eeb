"""The causal-LM demo fixture: the story generator (stdlib only, fast) and, marked slow, the
tiny GPT-2 built from it by ``fixtures.build_demo.build_lm``."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures import build_demo, stories
from fixtures.stories import MESSY_IN_EVAL, SPLIT_FILES, generate, messy_paragraphs, write_dataset

ROOT = Path(__file__).resolve().parents[2]
SPLITS = ("train", "calibration", "eval")
# A sentence ends at . ! or ? (maybe inside a closing quote) before a space or the end;
# "$4.5 million" does not end one.
SENTENCE_END = re.compile(r"[.!?]\"?(?= |$)")


@pytest.fixture(scope="module")
def data() -> dict[str, list[str]]:
    return generate(0)


@pytest.fixture(scope="module")
def messy() -> set[str]:
    return set(messy_paragraphs(MESSY_IN_EVAL, 0))


def test_same_seed_same_output(data: dict[str, list[str]]) -> None:
    assert generate(0) == data
    assert messy_paragraphs(20, 3) == messy_paragraphs(20, 3)


def test_different_seed_different_output(data: dict[str, list[str]]) -> None:
    other = generate(1)
    for split in SPLITS:
        assert other[split] != data[split]
    assert messy_paragraphs(20, 1) != messy_paragraphs(20, 2)


def test_split_sizes(data: dict[str, list[str]]) -> None:
    assert set(data) == set(SPLITS)
    assert len(data["train"]) >= 3000
    assert 90 <= len(data["calibration"]) <= 110
    assert 200 <= len(data["eval"]) <= 300


@pytest.mark.parametrize("split", SPLITS)
def test_every_document_is_one_stripped_line(data: dict[str, list[str]], split: str) -> None:
    for text in data[split]:
        assert text and text == text.strip() and "\n" not in text and "\r" not in text


@pytest.mark.parametrize("split", ("train", "calibration"))
def test_clean_paragraphs_have_1_to_4_sentences_of_15_to_80_words(
    data: dict[str, list[str]], split: str
) -> None:
    for text in data[split]:
        assert 15 <= len(text.split()) <= 80, text
        assert 1 <= len(SENTENCE_END.findall(text)) <= 4, text
        assert SENTENCE_END.search(text[-2:]), text  # ends a sentence
        assert "{" not in text and "}" not in text, text  # every slot filled
        assert text[0].isupper(), text


def test_splits_are_disjoint_and_messy_text_is_eval_only(
    data: dict[str, list[str]], messy: set[str]
) -> None:
    train, calibration, evals = (set(data[s]) for s in SPLITS)
    assert len(train) == len(data["train"])  # no duplicates within a split either
    assert not train & calibration and not train & evals and not calibration & evals
    in_eval = [t for t in data["eval"] if t in messy]
    assert len(in_eval) == MESSY_IN_EVAL
    assert 0.10 <= len(in_eval) / len(data["eval"]) <= 0.20  # ~15% of eval
    assert not messy & (train | calibration)
    # Interleaved, not appended: messy documents appear in both halves of eval.txt.
    half = len(data["eval"]) // 2
    assert any(t in messy for t in data["eval"][:half]) and any(
        t in messy for t in data["eval"][half:]
    )


def test_text_has_structure_to_learn(data: dict[str, list[str]]) -> None:
    texts = data["train"]
    vocab = {w.strip('.,"').lower() for t in texts for w in t.split()}
    assert len(vocab) > 300
    assert sum(any(ch.isdigit() for ch in t) for t in texts) > len(texts) // 4
    assert sum('"' in t for t in texts) > len(texts) // 10  # quoted speech
    assert any("%" in t for t in texts) and any("$" in t for t in texts)
    # A paragraph keeps its people: the relative asked about is referred to by a
    # pronoun of the right gender.
    asked = re.compile(r"^\w+ asked (?:his|her) (\w+) if (he|she) had seen")
    female = set(stories.SLOTS["she_relative"]) - set(stories.SLOTS["he_relative"])
    male = set(stories.SLOTS["he_relative"]) - set(stories.SLOTS["she_relative"])
    matches = [m.groups() for t in texts if (m := asked.match(t))]
    assert len(matches) > 50
    for relative, pronoun in matches:
        assert relative not in (female if pronoun == "he" else male), (relative, pronoun)


def test_messy_paragraphs_are_harder(messy: set[str]) -> None:
    texts = messy_paragraphs(MESSY_IN_EVAL, 0)
    assert len(texts) == MESSY_IN_EVAL == len(messy)
    for text in texts:
        assert text and text == text.strip() and "\n" not in text
    assert any(t.isupper() for t in texts)  # ALL CAPS
    assert any("http" in t or "www." in t for t in texts)  # URLs
    assert any("%" in t and "YoY" in t for t in texts)  # figures
    assert any("SELECT" in t or "def " in t or "{" in t for t in texts)  # code
    assert any(not t.isascii() for t in texts)  # accents, emoji
    assert any(len(t.split()) > 120 for t in texts)  # very long
    clean_words = {w for t in generate(0)["train"] for w in t.split()}
    typo_words = {w for t in texts for w in t.split() if w.isalpha() and w.islower()}
    assert len(typo_words - clean_words) >= 5  # misspelt words a clean text never has


def test_write_dataset_layout_and_bytes(tmp_path: Path, data: dict[str, list[str]]) -> None:
    paths = write_dataset(tmp_path / "a", seed=0)
    assert {s: p.name for s, p in paths.items()} == SPLIT_FILES
    for split in ("train", "eval"):
        raw = paths[split].read_text(encoding="utf-8")
        assert raw.endswith("\n") and not raw.endswith("\n\n") and "\n\n\n" not in raw
        assert raw[:-1].split("\n\n") == data[split]  # one blank line between paragraphs
        assert stories.read_paragraphs(paths[split]) == data[split]
    lines = paths["calibration"].read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [{"text": t} for t in data["calibration"]]
    assert stories.read_paragraphs(paths["calibration"]) == data["calibration"]
    # Same seed, same bytes; rewriting in place leaves no temp files behind.
    again = write_dataset(tmp_path / "b", seed=0)
    for split in SPLITS:
        assert paths[split].read_bytes() == again[split].read_bytes()
    write_dataset(tmp_path / "a", seed=0)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(SPLIT_FILES.values())


def test_the_plugin_reads_the_same_documents(tmp_path: Path, data: dict[str, list[str]]) -> None:
    from pytest_quantgate.tasks.corpus import iter_documents

    paths = write_dataset(tmp_path, seed=0)
    for split in SPLITS:
        assert [d.text for d in iter_documents(paths[split])] == data[split]


def test_render_paragraphs_rejects_what_would_split_a_document() -> None:
    assert stories.render_paragraphs(["One.", "Two."]) == "One.\n\nTwo.\n"
    for bad in ("", "two\nlines", " padded"):
        with pytest.raises(ValueError, match="a paragraph must be one non-empty stripped line"):
            stories.render_paragraphs(["fine", bad])


def test_build_lm_refuses_a_root_holding_the_classifier(tmp_path: Path) -> None:
    (tmp_path / "models" / build_demo.MODEL_NAME).mkdir(parents=True)
    with pytest.raises(ValueError) as info:
        build_demo.build_lm(tmp_path, size="tiny")
    assert str(info.value) == (
        f"{tmp_path} already holds the text-classification fixture (models/headline-bert); the"
        f" causal-lm fixture would overwrite its data/calibration.jsonl: build it under another"
        f" root (e.g. {tmp_path.name}-causal-lm)"
    )
    assert not (tmp_path / "data").exists()


def test_hashes_differ_per_task_and_bad_task_is_named() -> None:
    kw: dict[str, Any] = {"size": "tiny", "seed": 0}
    assert build_demo.fixture_hash(**kw) == build_demo.fixture_hash(**kw, task="text-classification")
    assert build_demo.fixture_hash(**kw) != build_demo.fixture_hash(**kw, task="causal-lm")
    with pytest.raises(ValueError, match=r"task must be one of \('text-classification', "
                                         r"'causal-lm', 'embeddings'\), got 'lm'"):
        build_demo.fixture_hash(**kw, task="lm")


# --- the tiny model: trains in a few seconds, so slow-marked like the backend suite ---------

MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
               "tokenizer_config.json")


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".fixture-build.lock"}


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> build_demo.LMPaths:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("lm-tiny")
    return build_demo.build_lm(root, size="tiny", seed=0)


@pytest.mark.slow
def test_tiny_lm_layout(tiny_lm: build_demo.LMPaths) -> None:
    assert tiny_lm.rebuilt and tiny_lm.metrics is not None
    root = tiny_lm.data_dir.parent
    assert tiny_lm == build_demo.LMPaths(
        root / "models" / "story-gpt2", root / "data" / "train.txt",
        root / "data" / "calibration.jsonl", root / "data" / "eval.txt",
        rebuilt=True, metrics=tiny_lm.metrics,
    )
    assert sorted(p.name for p in tiny_lm.data_dir.iterdir()) == sorted(SPLIT_FILES.values())
    # Nothing left over from the atomic swap, and the stamp is current.
    assert sorted(p.name for p in tiny_lm.model_dir.parent.iterdir()) == ["story-gpt2"]
    assert sorted(p.name for p in tiny_lm.model_dir.iterdir()) == sorted(
        [*MODEL_FILES, build_demo.STAMP_NAME]
    )
    stamp = (tiny_lm.model_dir / build_demo.STAMP_NAME).read_text().strip()
    assert stamp == build_demo.fixture_hash(size="tiny", seed=0, task="causal-lm")


@pytest.mark.slow
def test_tiny_lm_loads_and_starts_every_text_with_endoftext(tiny_lm: build_demo.LMPaths) -> None:
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    raw = Tokenizer.from_file(str(tiny_lm.model_dir / "tokenizer.json"))
    eos, pad = raw.token_to_id("<|endoftext|>"), raw.token_to_id("<|pad|>")
    assert eos is not None and pad is not None and eos != pad
    assert raw.encode("Hello world").ids[0] == eos
    assert raw.encode("").ids == [eos]
    assert raw.decode(raw.encode("na\u00efve \U0001f642 SELECT *").ids) == "na\u00efve \U0001f642 SELECT *"
    settings = json.loads((tiny_lm.model_dir / "tokenizer_config.json").read_text())
    assert (settings["bos_token"], settings["eos_token"], settings["pad_token"]) == (
        "<|endoftext|>", "<|endoftext|>", "<|pad|>")
    auto = AutoTokenizer.from_pretrained(tiny_lm.model_dir)
    assert auto("Hello world")["input_ids"] == raw.encode("Hello world").ids
    model = AutoModelForCausalLM.from_pretrained(tiny_lm.model_dir)
    assert not model.training
    config = model.config
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (eos, eos, pad)
    assert config.vocab_size == raw.get_vocab_size() == tiny_lm.metrics["vocab_size"]  # type: ignore[index]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([raw.encode("Hello world").ids])).logits
    assert logits.shape == (1, 6, config.vocab_size)


@pytest.mark.slow
def test_tiny_lm_perplexity_is_far_below_uniform(tiny_lm: build_demo.LMPaths) -> None:
    import math

    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    metrics = tiny_lm.metrics or {}
    assert metrics["uniform_perplexity"] == metrics["vocab_size"]
    assert metrics["eval_perplexity"] < metrics["uniform_perplexity"] / 10
    assert metrics["calibration_perplexity"] < metrics["eval_perplexity"]  # messy text is harder
    # Recomputed from the saved files with transformers' own loss: per paragraph, the BOS
    # as context only, cut to the model's positions.
    model = AutoModelForCausalLM.from_pretrained(tiny_lm.model_dir)
    raw = Tokenizer.from_file(str(tiny_lm.model_dir / "tokenizer.json"))
    total, count = 0.0, 0
    with torch.no_grad():
        for text in stories.read_paragraphs(tiny_lm.eval):
            ids = torch.tensor([raw.encode(text).ids[: model.config.n_positions]])
            loss = model(input_ids=ids, labels=ids).loss
            total += float(loss) * (ids.shape[1] - 1)
            count += ids.shape[1] - 1
    assert count == metrics["eval_tokens"]
    assert math.isclose(total / count, metrics["eval_loss"], rel_tol=1e-4)


@pytest.mark.slow
def test_tiny_lm_rebuild_is_a_stamp_hit(tiny_lm: build_demo.LMPaths,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    root = tiny_lm.data_dir.parent
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    start = time.perf_counter()
    again = build_demo.build_lm(root, size="tiny", seed=0)
    assert time.perf_counter() - start < 0.5
    assert not again.rebuilt and again.metrics is None and again.model_dir == tiny_lm.model_dir
    assert build_demo.main([str(root), "--task", "causal-lm", "--size", "tiny"]) == 0
    assert capsys.readouterr().out == f"up to date: {tiny_lm.model_dir} (size=tiny, seed=0)\n"
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before
    assert build_demo.is_up_to_date(root, size="tiny", seed=0, task="causal-lm")
    assert not build_demo.is_up_to_date(root, size="tiny", seed=1, task="causal-lm")
    assert not build_demo.is_up_to_date(root, size="demo", seed=0, task="causal-lm")
    assert not build_demo.is_up_to_date(root, size="tiny", seed=0)  # not the classifier


@pytest.mark.slow
def test_tiny_lm_is_byte_identical_in_another_process(
    tiny_lm: build_demo.LMPaths, tmp_path: Path
) -> None:
    # Rust HashMap order is randomised per process: only a second process can show a tie
    # broken differently (it did for the WordPiece trainer, see fixtures/train_model.py).
    code = ("import sys; from fixtures.build_demo import build_lm; "
            "build_lm(sys.argv[1], size='tiny', seed=0)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    assert _digests(tmp_path) == _digests(tiny_lm.data_dir.parent)
