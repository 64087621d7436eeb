"""Unit tests of tasks/data.py: labels from config.json, examples from JSONL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_quantgate.errors import DataError
from pytest_quantgate.tasks.data import Example, ModelFacts, read_examples, read_model_facts

LABELS = ("negative", "neutral", "positive")
CHOICES = "one of ['negative', 'neutral', 'positive'] or an id 0..2"


def jsonl(tmp_path: Path, *lines: Any, name: str = "eval.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines),
                    encoding="utf-8")
    return path


def config(tmp_path: Path, data: Any) -> Path:
    (tmp_path / "config.json").write_text(data if isinstance(data, str) else json.dumps(data))
    return tmp_path


def fails(message: str, path: Path, labels: tuple[str, ...] = LABELS, **kw: Any) -> None:
    with pytest.raises(DataError, match=re.escape(message)):
        read_examples(path, labels, **kw)


# -- read_examples ------------------------------------------------------------------------------

def test_labels_by_name_by_id_and_by_digit_string(tmp_path: Path) -> None:
    path = jsonl(tmp_path, {"text": "bad", "label": "negative"}, {"text": "ok", "label": 1},
                 {"text": "good", "label": "2"}, {"text": "fine", "label": "neutral", "x": 1})
    assert read_examples(path, LABELS) == [
        Example("bad", 0, 1), Example("ok", 1, 2), Example("good", 2, 3), Example("fine", 1, 4)]


def test_a_name_wins_over_a_digit_string(tmp_path: Path) -> None:
    path = jsonl(tmp_path, {"text": "a", "label": "1"}, {"text": "b", "label": 1})
    assert [e.label for e in read_examples(path, ("1", "0"))] == [0, 1]


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    path = jsonl(tmp_path, "", {"text": "bad", "label": 0}, "   ", {"text": "good", "label": 2})
    assert [(e.text, e.line) for e in read_examples(path, LABELS)] == [("bad", 2), ("good", 4)]


def test_unicode_text(tmp_path: Path) -> None:
    path = jsonl(tmp_path, {"text": "très bien ✓", "label": 2})
    assert read_examples(path, LABELS)[0].text == "très bien ✓"


def test_labels_optional(tmp_path: Path) -> None:
    path = jsonl(tmp_path, {"text": "a"}, {"text": "b", "label": None}, {"text": "c", "label": 0})
    assert [e.label for e in read_examples(path, LABELS, require_label=False)] == [None, None, 0]


def test_missing_label(tmp_path: Path) -> None:
    path = jsonl(tmp_path, {"text": "a", "label": 0}, {"text": "b"})
    fails(f"{path}:2: label: got None, expected {CHOICES}; add a label to that line", path)


@pytest.mark.parametrize("label", ["happy", 3, -1, "3", True, 1.0, [0], "Negative"])
def test_unknown_label_names_the_file_and_line(tmp_path: Path, label: Any) -> None:
    path = jsonl(tmp_path, {"text": "a", "label": 0}, {"text": "b", "label": 1},
                 {"text": "c", "label": label})
    fails(f"{path}:3: label: got {label!r}, expected {CHOICES}; "
          "fix the label or the model's id2label", path)


def test_superscript_digit_label(tmp_path: Path) -> None:
    path = jsonl(tmp_path, {"text": "a", "label": "²"})
    fails(f"{path}:1: label: got '²'", path)


def test_invalid_json_line(tmp_path: Path) -> None:
    path = jsonl(tmp_path, {"text": "a", "label": 0}, '{"text": "b", "label": 0')
    fails(f"{path}:2: got '{{\"text\": \"b\", \"label\": 0', expected a JSON object like "
          "{\"text\": \"...\", \"label\": \"...\"}; fix that line (Expecting ',' delimiter: "
          "line 1 column 25 (char 24))", path)


def test_invalid_json_line_is_cut_to_60_characters(tmp_path: Path) -> None:
    path = jsonl(tmp_path, "x" * 200)
    with pytest.raises(DataError) as info:
        read_examples(path, LABELS)
    assert f"{path}:1: got '{'x' * 60}', expected" in str(info.value)


@pytest.mark.parametrize(("line", "got"), [
    ({"label": 0}, "None"), ({"text": 3, "label": 0}, "3"), ({"Text": "a"}, "None"),
    (["a", 0], "['a', 0]"), ('"just a string"', "'just a string'"),
])
def test_missing_text(tmp_path: Path, line: Any, got: str) -> None:
    path = jsonl(tmp_path, line)
    fails(f"{path}:1: text: got {got}, expected a string under the key 'text'; fix that line",
          path)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "eval.jsonl"
    path.write_text(content)
    fails(f"data file: got '{path} (no examples)', expected at least one JSONL line; "
          "fill the file or point the config at another one", path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    fails(f"data file: got '{path}', expected an existing JSONL file; "
          "check the path in [tool.quantgate]", path)


# -- read_model_facts ---------------------------------------------------------------------------

def test_model_facts(tmp_path: Path) -> None:
    config(tmp_path, {"id2label": {"1": "pos", "0": "neg", "2": "mixed"}, "vocab_size": 30522,
                      "model_type": "bert"})
    assert read_model_facts(tmp_path) == ModelFacts(("neg", "pos", "mixed"), 30522, "bert")


def test_model_facts_defaults(tmp_path: Path) -> None:
    config(tmp_path, {"id2label": {"0": "a"}})
    assert read_model_facts(tmp_path) == ModelFacts(("a",), 0, "unknown")


def test_model_facts_sorts_ids_numerically(tmp_path: Path) -> None:
    config(tmp_path, {"id2label": {str(i): f"l{i}" for i in (10, 2, 0, 1, 3, 4, 5, 6, 7, 8, 9)}})
    assert read_model_facts(tmp_path).labels == tuple(f"l{i}" for i in range(11))


def test_model_dir_without_config(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=re.escape(
            f"model directory: got '{tmp_path}', expected a Hugging Face model directory with "
            "config.json; point `model` at the directory save_pretrained() wrote")):
        read_model_facts(tmp_path)


def test_config_invalid_json(tmp_path: Path) -> None:
    config(tmp_path, "{")
    with pytest.raises(DataError, match=re.escape(
            f"{tmp_path / 'config.json'}: got 'invalid JSON (Expecting property name enclosed "
            "in double quotes: line 1 column 2 (char 1))', expected a JSON object; "
            "re-save the model with save_pretrained()")):
        read_model_facts(tmp_path)


@pytest.mark.parametrize(("data", "got"), [
    ({"model_type": "bert"}, "None"), ({"id2label": {}}, "{}"), ({"id2label": ["a"]}, "['a']"),
])
def test_config_without_id2label(tmp_path: Path, data: Any, got: str) -> None:
    config(tmp_path, data)
    with pytest.raises(DataError, match=re.escape(
            f"{tmp_path / 'config.json'}: id2label: got {got}, expected a mapping of class id to "
            "label; set model.config.id2label before saving the model")):
        read_model_facts(tmp_path)


def test_config_id2label_keys_not_integers(tmp_path: Path) -> None:
    config(tmp_path, {"id2label": {"0": "a", "one": "b"}})
    with pytest.raises(DataError, match=re.escape(
            f"{tmp_path / 'config.json'}: id2label keys: got ['0', 'one'], expected integer "
            "class ids; re-save the model's config")):
        read_model_facts(tmp_path)


@pytest.mark.parametrize(("ids", "got", "expected"), [
    (["0", "2"], "[0, 2]", "0..1"), (["1", "2"], "[1, 2]", "0..1"),
    (["0", "00"], "[0, 0]", "0..1"), (["0", "1", "3"], "[0, 1, 3]", "0..2"),
])
def test_config_ids_with_gaps(tmp_path: Path, ids: list[str], got: str, expected: str) -> None:
    config(tmp_path, {"id2label": {i: f"l{n}" for n, i in enumerate(ids)}})
    with pytest.raises(DataError, match=re.escape(
            f"{tmp_path / 'config.json'}: id2label ids: got {got}, expected {expected} without "
            "gaps; re-number the labels")):
        read_model_facts(tmp_path)


def test_config_not_an_object(tmp_path: Path) -> None:
    config(tmp_path, "[1, 2]")
    with pytest.raises(DataError, match="expected a JSON object"):
        read_model_facts(tmp_path)
