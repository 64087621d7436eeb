"""Which default batch size: the gate's prediction time per backend at several batch sizes.

Warm cache, padding "longest" (sorted by length, each batch padded to its longest text), the demo
model's golden set; interleaved rounds, medians. Prints seconds per backend and batch size.

    python benchmarks/batch_size.py [--sizes 1,8,16,32,64,128] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,8,16,32,64,128")
    parser.add_argument("--backends", default="onnx-fp32,onnx-int8-dynamic,torch-fp32")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from fixtures.build_demo import build

    from pytest_quantgate.config import load
    from pytest_quantgate.project_file import read_table
    from pytest_quantgate.session import GateSession
    from pytest_quantgate.tasks.text_classification import predict_logits

    demo = ROOT / "examples" / "headlines"
    build(demo)
    cfg = load(read_table(demo / "pyproject.toml"), base_dir=demo, cli={}, cli_dir=demo,
               source="pyproject.toml")
    gate = GateSession(cfg)
    sizes = [int(s) for s in args.sizes.split(",")]
    names = args.backends.split(",")
    times: dict[tuple[str, int], list[float]] = {(n, b): [] for n in names for b in sizes}
    for _ in range(args.rounds):
        for name in names:
            runner = gate.runner(name)
            for b in sizes:
                cache: dict = {}  # type: ignore[type-arg]
                start = time.perf_counter()
                predict_logits(runner, gate.task.encoded, batch_size=b, padding="longest",
                               pad_id=gate.encoder.pad_id, max_length=cfg.max_length,
                               num_labels=len(gate.facts.labels), batch_cache=cache)
                times[(name, b)].append(time.perf_counter() - start)
    gate.close()
    print(f"{len(gate.task.encoded)} golden inputs, padding longest, {args.rounds} rounds, "
          "median seconds")
    print(f"{'backend':<20}" + "".join(f"{'b' + str(b):>9}" for b in sizes))
    for name in names:
        print(f"{name:<20}" + "".join(f"{statistics.median(times[(name, b)]):>9.3f}"
                                      for b in sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
