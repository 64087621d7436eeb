"""How far an item's latency moves within one run and between runs of the same code.

Reads quantgate JSON reports of runs with latency on (``--quantgate-json``, paired rounds) and
prints, per item, the median paired ratio (backend / reference) of each run and its spread, then
the pooled figures of docs/benchmarks.md: the bootstrap SE of an item's median within a run,
the difference between the two halves of an item's rounds, and the between-run spread.

    .venv/bin/python benchmarks/latency_spread.py run1.json run2.json run3.json ...
"""

from __future__ import annotations

import json
import sys

import numpy as np


def main(paths: list[str]) -> int:
    runs = [json.loads(open(p, encoding="utf-8").read()) for p in paths]
    rng = np.random.default_rng(0)
    logs, ses, halves, names = [], [], [], []
    for name, entry in runs[0]["backends"].items():
        for size in entry.get("latency") or {}:
            row = []
            for run in runs:
                stats = run["backends"][name]["latency"][size]
                ratio = np.asarray(stats["rounds"]) / np.asarray(stats["reference_rounds"])
                row.append(float(np.median(ratio)))
                boot = [np.median(rng.choice(ratio, ratio.size)) for _ in range(300)]
                ses.append(float(np.std(boot)) / row[-1])
                half = ratio.size // 2
                halves.append(float(np.log(np.median(ratio[:half]) / np.median(ratio[half:]))))
            logs.append(np.log(row))
            names.append(f"{name} b{size}")
            print(f"{names[-1]:32s}", " ".join(f"{r:.3f}" for r in row),
                  f"max/min {max(row) / min(row) - 1:+.1%}")
    table = np.asarray(logs)
    dev = table - table.mean(axis=1, keepdims=True)
    print(f"\nwithin a run, bootstrap SE of an item's median: {min(ses):.1%}-{max(ses):.1%}")
    print(f"halves of one item's rounds, sd of the log difference: {np.std(halves):.1%}")
    print(f"between runs, pooled sd of the log median: "
          f"{np.sqrt(np.mean(np.var(table, axis=1, ddof=1))):.1%}")
    print("distance of an item from its mean, 90th / 100th percentile: "
          f"{np.percentile(np.abs(dev), 90):.1%} / {np.abs(dev).max():.1%}")
    print("mean shift of a whole run: "
          + " ".join(f"{x:+.1%}" for x in dev.mean(axis=0)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
