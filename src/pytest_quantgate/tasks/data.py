"""Labels from a model's config, and labelled examples from JSONL files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, problem


@dataclass(frozen=True)
class Example:
    """A text, its label id (None when the file gives no label) and its line in the file."""

    text: str
    label: int | None
    line: int


# config.json keys that give the number of positions (BERT-likes, GPT-2, other GPTs)
POSITION_KEYS = ("max_position_embeddings", "n_positions", "n_ctx")


@dataclass(frozen=True)
class ModelFacts:
    """What the gate needs from a Hugging Face config.json, read without transformers."""

    labels: tuple[str, ...]
    vocab_size: int
    model_type: str
    positions: int | None = None  # the longest input its position embeddings allow
    architectures: tuple[str, ...] = ()  # the classes it was saved as (config.json)


def read_model_facts(model_dir: Path, *, need_labels: bool = True) -> ModelFacts:
    """Labels (classification), vocabulary size and model type; a causal LM has no labels."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise DataError(problem("model directory", str(model_dir),
                                "a Hugging Face model directory with config.json",
                                "point `model` at the directory save_pretrained() wrote"))
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(problem(str(path), f"invalid JSON ({exc})", "a JSON object",
                                "re-save the model with save_pretrained()")) from None
    if not isinstance(config, dict):
        raise DataError(problem(str(path), type(config).__name__, "a JSON object",
                                "re-save the model with save_pretrained()"))
    positions = next((int(v) for k in POSITION_KEYS
                      if isinstance(v := config.get(k), int) and not isinstance(v, bool) and v > 0),
                     None)
    saved = config.get("architectures")
    architectures = tuple(str(a) for a in saved) if isinstance(saved, list) else ()
    if not need_labels:
        return ModelFacts((), int(config.get("vocab_size") or 0),
                          str(config.get("model_type", "unknown")), positions, architectures)
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise DataError(problem(f"{path}: id2label", id2label, "a mapping of class id to label",
                                "set model.config.id2label before saving the model"))
    try:
        pairs = sorted((int(k), str(v)) for k, v in id2label.items())
    except ValueError:
        raise DataError(problem(f"{path}: id2label keys", sorted(id2label),
                                "integer class ids", "re-save the model's config")) from None
    if [k for k, _ in pairs] != list(range(len(pairs))):
        raise DataError(problem(f"{path}: id2label ids", [k for k, _ in pairs],
                                f"0..{len(pairs) - 1} without gaps", "re-number the labels"))
    return ModelFacts(tuple(v for _, v in pairs), int(config.get("vocab_size") or 0),
                      str(config.get("model_type", "unknown")), positions, architectures)


def read_examples(path: Path, labels: tuple[str, ...], *, require_label: bool = True
                  ) -> list[Example]:
    """Read ``{"text": ..., "label": ...}`` lines; the label may be a name or a class id."""
    path = Path(path)
    if not path.is_file():
        raise DataError(problem("data file", str(path), "an existing JSONL file",
                                "check the path in [tool.quantgate]"))
    by_name = {name: i for i, name in enumerate(labels)}
    examples: list[Example] = []
    with path.open("rb") as handle:  # bytes: a line that is not UTF-8 is named by number
        for number, data in enumerate(handle, start=1):
            where = f"{path}:{number}"
            try:
                raw = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(problem(where, f"bytes that are not UTF-8 ({exc.reason} at "
                                        f"byte {exc.start + 1} of the line)", "UTF-8 text",
                                        "re-save the file as UTF-8")) from None
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.strip())
            except ValueError as exc:
                raise DataError(problem(where, raw.strip()[:60], 'a JSON object like {"text": '
                                        '"...", "label": "..."}', f"fix that line ({exc})")) from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise DataError(problem(f"{where}: text", record if not isinstance(record, dict)
                                        else record.get("text"), "a string under the key 'text'",
                                        "fix that line"))
            examples.append(Example(record["text"], _label(record.get("label"), by_name, labels,
                                                           where, require_label), number))
    if not examples:
        raise DataError(problem("data file", f"{path} (no examples)", "at least one JSONL line",
                                "fill the file or point the config at another one"))
    return examples


def _label(value: object, by_name: dict[str, int], labels: tuple[str, ...], where: str,
           required: bool) -> int | None:
    if value is None:
        if required:
            raise DataError(problem(f"{where}: label", None, f"one of {list(labels)} or an id "
                                    f"0..{len(labels) - 1}", "add a label to that line"))
        return None
    if isinstance(value, bool):
        pass  # a JSON true is not a class id
    elif isinstance(value, int) and 0 <= value < len(labels):
        return value
    elif isinstance(value, str) and value in by_name:
        return by_name[value]
    elif isinstance(value, str) and value.isascii() and value.isdigit() \
            and int(value) < len(labels):
        return int(value)
    raise DataError(problem(f"{where}: label", value, f"one of {list(labels)} or an id "
                            f"0..{len(labels) - 1}", "fix the label or the model's id2label"))
