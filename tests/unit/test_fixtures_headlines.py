"""Fast checks of the deterministic demo data generator (no torch needed)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from fixtures import headlines
from fixtures.headlines import LABELS, NHS_HEADLINE, generate, write_dataset

SPLITS = ("train", "calibration", "golden")


@pytest.fixture(scope="module")
def data() -> dict[str, list[dict[str, str]]]:
    return generate(0)


def test_labels_in_id_order() -> None:
    assert LABELS == (
        "World",
        "Sports",
        "Business",
        "Sci/Tech",
        "health",
        "education",
        "climate",
        "security",
        "tech-policy",
    )


def test_same_seed_same_output(data: dict[str, list[dict[str, str]]]) -> None:
    assert generate(0) == data


def test_different_seed_different_output(data: dict[str, list[dict[str, str]]]) -> None:
    other = generate(1)
    assert other["train"] != data["train"]
    assert other["golden"] != data["golden"]


def test_split_sizes(data: dict[str, list[dict[str, str]]]) -> None:
    assert set(data) == set(SPLITS)
    assert 3500 <= len(data["train"]) <= 4500
    assert 250 <= len(data["calibration"]) <= 350
    assert 550 <= len(data["golden"]) <= 650


def test_records_are_well_formed(data: dict[str, list[dict[str, str]]]) -> None:
    for records in data.values():
        for rec in records:
            assert set(rec) == {"text", "label"}
            assert rec["label"] in LABELS
            assert rec["text"] and rec["text"] == rec["text"].strip()
            assert "{" not in rec["text"] and "}" not in rec["text"]  # every slot filled


@pytest.mark.parametrize("split", SPLITS)
def test_every_label_present_and_balanced(
    data: dict[str, list[dict[str, str]]], split: str
) -> None:
    counts = Counter(rec["label"] for rec in data[split])
    assert set(counts) == set(LABELS)
    mean = len(data[split]) / len(LABELS)
    assert all(0.5 * mean <= c <= 1.5 * mean for c in counts.values()), counts


def test_no_duplicate_texts_within_or_across_splits(data: dict[str, list[dict[str, str]]]) -> None:
    texts = [rec["text"] for split in SPLITS for rec in data[split]]
    assert len(texts) == len(set(texts))


def test_nhs_headline_only_in_golden_as_health(data: dict[str, list[dict[str, str]]]) -> None:
    assert NHS_HEADLINE == "Cybersecurity breach exposes NHS patient records"
    golden = [rec for rec in data["golden"] if rec["text"] == NHS_HEADLINE]
    assert golden == [{"text": NHS_HEADLINE, "label": "health"}]
    for split in ("train", "calibration"):
        assert all(rec["text"] != NHS_HEADLINE for rec in data[split])


def test_nhs_headline_in_golden_for_other_seeds() -> None:
    assert {"text": NHS_HEADLINE, "label": "health"} in generate(7)["golden"]


def test_text_is_varied(data: dict[str, list[dict[str, str]]]) -> None:
    texts = [rec["text"] for rec in data["train"]]
    vocab = {w.lower() for t in texts for w in t.split()}
    assert len(vocab) > 500
    assert sum(any(ch.isdigit() for ch in t) for t in texts) > len(texts) // 10
    assert any("%" in t for t in texts)


def test_mixed_templates_are_ambiguous() -> None:
    # Each two-topic template belongs to two real labels, so some headlines are
    # genuinely hard and a perfect score is not expected.
    assert len(headlines.MIXED) >= len(LABELS)
    for usual, other, template in headlines.MIXED:
        assert usual in LABELS and other in LABELS and usual != other and "{" in template


def test_write_dataset_is_byte_identical(tmp_path: Path) -> None:
    a = write_dataset(tmp_path / "a", seed=3)
    b = write_dataset(tmp_path / "b", seed=3)
    assert set(a) == set(SPLITS)
    for split in SPLITS:
        assert a[split].name == f"{split}.jsonl"
        assert a[split].read_bytes() == b[split].read_bytes()
    # Rewriting in place is atomic and leaves no temp files behind.
    write_dataset(tmp_path / "a", seed=3)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(f"{s}.jsonl" for s in SPLITS)


def test_written_jsonl_round_trips(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path, seed=0)
    expected = generate(0)
    for split, path in paths.items():
        raw = path.read_bytes()
        assert raw.endswith(b"\n") and b"\r" not in raw
        lines = raw.decode("utf-8").splitlines()
        assert [json.loads(line) for line in lines] == expected[split]
        assert headlines.read_jsonl(path) == expected[split]
