"""Latency helpers: the timed batch, the summary of rounds, memory, and the config keys."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

from pytest_quantgate.config import FIELD_BY_KEY, load
from pytest_quantgate.errors import ConfigError
from pytest_quantgate.latency import LatencyStats, peak_rss_bytes, reset_peak
from pytest_quantgate.tasks.batching import latency_feed, typical_indices
from pytest_quantgate.tasks.tokenizer import Encoded


def test_typical_indices_sit_around_the_median_length() -> None:
    lengths = [5, 1, 9, 3, 7, 2, 8]
    assert list(typical_indices(lengths, 1)) == [0]  # length 5 is the median
    assert sorted(np.asarray(lengths)[typical_indices(lengths, 3)]) == [3, 5, 7]
    assert len(typical_indices(lengths, 50)) == 7


def test_latency_feed_has_the_batch_size_even_from_few_texts() -> None:
    items = [Encoded(np.arange(n, dtype=np.int64) + 1, np.zeros(n, dtype=np.int64))
             for n in (3, 5, 4)]
    feed = latency_feed(items, 8, padding="longest", pad_id=0, max_length=16)
    assert feed["input_ids"].shape == (8, 5)
    static = latency_feed(items, 2, padding="longest", pad_id=0, max_length=16, static_length=12)
    assert static["input_ids"].shape == (2, 12)


def test_stats_from_rounds() -> None:
    s = LatencyStats.from_rounds(32, [0.01, 0.02, 0.03, 0.04, 0.10], peak_rss_bytes=5)
    assert s.p50 == pytest.approx(0.03) and s.p95 == pytest.approx(0.088)
    assert s.items_per_second == pytest.approx(32 / 0.03)
    back = LatencyStats.from_dict(s.to_dict())
    assert back == s
    untimed = LatencyStats.untimed(1, "not timed: x").to_dict()
    assert untimed["p50"] is None and not untimed["timed"]  # JSON has no NaN
    assert math.isnan(LatencyStats.from_dict(untimed).p50)
    with pytest.raises(ValueError, match="latency rounds: got none, expected at least one"):
        LatencyStats.from_rounds(1, [])


def test_paired_rounds_give_the_ratio_to_the_reference() -> None:
    s = LatencyStats.from_rounds(1, [0.01, 0.02, 0.03], reference="ref",
                                 reference_rounds=[0.02, 0.04, 0.12])
    assert s.relative == pytest.approx(0.5) and s.speedup == pytest.approx(2.0)
    assert LatencyStats.from_dict(s.to_dict()) == s
    alone = LatencyStats.from_rounds(1, [0.01, 0.02])
    assert alone.relative is None and alone.speedup is None and alone.reference is None
    with pytest.raises(ValueError, match=r"reference rounds: got 1, expected one per timed round"):
        LatencyStats.from_rounds(1, [0.01, 0.02], reference="ref", reference_rounds=[0.01])


def test_thread_pools_are_made_passive_unless_too_late(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from pytest_quantgate.latency import passive_thread_pools

    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's own choice is kept
    assert passive_thread_pools() is None and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setitem(sys.modules, "torch", sys.modules.get("torch") or object())
    assert "export OMP_WAIT_POLICY=PASSIVE" in (passive_thread_pools() or "")
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.delitem(sys.modules, "torch")
    assert passive_thread_pools() is None and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_peak_memory_resets_where_linux_allows() -> None:
    if not reset_peak():
        pytest.skip("/proc/self/clear_refs is not writable here")
    before = peak_rss_bytes()
    block = np.ones(64 * 1024 * 1024, dtype=np.uint8)  # 64 MiB touched
    assert peak_rss_bytes() >= before + 60 * 1024 * 1024
    del block


def test_latency_keys_are_validated(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "e.jsonl").write_text("")
    base = {"model": "m", "eval": "e.jsonl", "backends": ["x"],
            "backend": [{"name": "x", "kind": "fake"}]}

    def cfg(**table: object) -> object:
        return load({**base, **table}, base_dir=tmp_path, cli={}, cli_dir=tmp_path, source="p")

    c = cfg(latency=True, latency_batch_sizes=[4], compare="b.json")
    assert (c.latency, c.latency_batch_sizes, c.compare) == (True, (4,), tmp_path / "b.json")
    with pytest.raises(ConfigError, match=re.escape(
            "latency: got 'yes', expected true or false; write latency = true or latency = false")):
        cfg(latency="yes")
    with pytest.raises(ConfigError, match=re.escape(
            "latency_batch_sizes: got [0], expected a non-empty list of whole numbers >= 1")):
        cfg(latency_batch_sizes=[0])
    with pytest.raises(ConfigError, match=re.escape("tolerances: alpha: got 2")):
        cfg(tolerances={"alpha": 2})
    with pytest.raises(ConfigError, match=re.escape(
            "option --quantgate-latency-batch-sizes: got '1,x', expected whole numbers separated "
            "by commas; e.g. --quantgate-latency-batch-sizes=1,32")):
        FIELD_BY_KEY["latency_batch_sizes"].parse_cli("1,x")
