"""Does the machine's speed drift the same way for every runtime? Paired ratios over time.

Times a few demo latency items in turn, in blocks of 0.5 s, for SECONDS seconds in one process:
each round is the reference's call then the backend's, as the latency items time them. Prints
each item's block medians of backend / reference as shares of the item's overall median: runs
of blocks away from 1.0 are the slow spells that pairing does not cancel (docs/benchmarks.md).

    .venv/bin/python benchmarks/latency_spells.py [SECONDS]   # after `make demo`
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ITEMS = (("onnx-int8-static-allops", 32), ("onnx-fp32", 32), ("user-swapped-export", 1),
         ("onnx-fp16", 1))


def main(seconds: float) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the plugin sets it
    from pytest_quantgate.config import load
    from pytest_quantgate.project_file import read_table
    from pytest_quantgate.session import GateSession
    from pytest_quantgate.tasks.text_classification import shape_policy

    demo = ROOT / "examples" / "headlines"
    cfg = load(read_table(demo / "pyproject.toml"), base_dir=demo, cli={}, cli_dir=demo,
               source="pyproject.toml")
    gate = GateSession(cfg)
    ref = gate.runner(cfg.reference)
    pairs = {}
    for name, size in ITEMS:
        runner = gate.runner(name)
        pairs[name, size] = (runner, gate.task.timed_feed(shape_policy(runner, cfg.padding, size), size),
                             gate.task.timed_feed(shape_policy(ref, cfg.padding, size), size))
    blocks: dict[tuple[str, int], list[float]] = {item: [] for item in ITEMS}
    gc.disable()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for item, (runner, feed, ref_feed) in pairs.items():
            ratios = []
            start = time.monotonic()
            while time.monotonic() - start < 0.5:
                a = time.perf_counter()
                ref.infer(ref_feed)
                b = time.perf_counter()
                runner.infer(feed)
                ratios.append((time.perf_counter() - b) / (b - a))
            blocks[item].append(float(np.median(ratios)))
    for (name, size), values in blocks.items():
        mid = float(np.median(values))
        print(f"{name} b{size}: median {mid:.3f};", " ".join(f"{v / mid:.2f}" for v in values))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 80.0))
