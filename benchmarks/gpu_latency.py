"""Per-batch latency of the GPU kinds over the demo's golden set (docs/benchmarks.md).

Each pass feeds every batch once (length-sorted, padded per batch, as the gate does); pass 1
meets every sequence length for the first time, passes 2-3 are warm. The runner's own timer
(``infer_seconds``) is used: it ends after the ``_synchronize`` device wait.

    python benchmarks/gpu_latency.py DEMO_ROOT [KIND ...]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from pytest_quantgate.backends import registry
from pytest_quantgate.cache import ArtifactCache, hash_path
from pytest_quantgate.errors import BackendUnavailable
from pytest_quantgate.tasks.batching import batches
from pytest_quantgate.tasks.tokenizer import TextEncoder

KINDS = ["torch-cuda-fp32", "torch-cuda-fp16", "torch-cuda-bf16", "torch-fp32", "onnx-fp32"]


def main(root: Path, kinds: list[str]) -> None:
    model_dir = root / "models" / "headline-bert"
    enc = TextEncoder.from_model_dir(model_dir, 128)
    texts = [json.loads(x)["text"] for x in (root / "data" / "golden.jsonl").read_text().split("\n")
             if x.strip()]
    items = enc.encode(texts)
    feeds = [b.feed for b in batches(items, batch_size=32, padding="longest", pad_id=enc.pad_id,
                                     max_length=128)]
    fixed = [b.feed for b in batches(items, batch_size=32, padding="max_length",
                                     pad_id=enc.pad_id, max_length=128)]
    config = json.loads((model_dir / "config.json").read_text())
    ctx = registry.BuildContext(
        model_dir=model_dir, model_hash=hash_path(model_dir),
        cache=ArtifactCache(root / ".quantgate-cache" / "artifacts"), max_length=128,
        num_labels=len(config["id2label"]), vocab_size=int(config["vocab_size"]),
        input_names=("input_ids", "attention_mask", "token_type_ids"),
        example_feed=lambda: feeds[0], calibration_batches=lambda: iter(()),
        calibration_hash=None, base_dir=root)
    print(f"{len(texts)} texts, {len(feeds)} batches of 32; ms per batch (median over batches)")
    print("kind | activate s | pass 1 | pass 2 | pass 3 | padded to 128 (warm)")
    for kind in kinds:
        try:
            start = time.perf_counter()
            runner = registry.create_runner(registry.declare(kind, kind, {}, "bench"), ctx)
            runner.activate()
            activate = time.perf_counter() - start
        except BackendUnavailable as exc:
            print(f"{kind} | skipped: {exc}")
            continue
        cols = []
        for data in (feeds, feeds, feeds, fixed, fixed):
            per = []
            for feed in data:
                before = runner.infer_seconds
                runner.infer(feed)
                per.append((runner.infer_seconds - before) * 1000)
            cols.append(f"{statistics.median(per):.2f} (sum {sum(per):.0f})")
        print(f"{kind} | {activate:.2f} | {cols[0]} | {cols[1]} | {cols[2]} | {cols[4]}")
        runner.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:] or KINDS)
