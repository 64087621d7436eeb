"""Is the perplexity computation's memory flat when the corpus grows? Runs the causal-LM gate's
two passes (the reference torch-fp32 recording its numbers to disk, then onnx-fp32 compared
with them) over the demo corpus repeated 1x and 10x (or the factors given), each size in a fresh
process, and prints per pass: documents, tokens, seconds, the peak of Python/numpy allocations
(tracemalloc), the peak resident set size (VmHWM, reset before the pass) and, after the pass,
the resident memory split into anonymous (heap) and file-backed (the memory-mapped reference
numbers, which the kernel can drop at any time).

Run (after `make demo`): .venv/bin/python benchmarks/lm_memory.py [FACTOR ...]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "stories"
BACKENDS = ("torch-fp32", "onnx-fp32")  # the reference pass writes, the other one reads


def status_mb(key: str) -> float:
    """A /proc/self/status figure in MB: VmHWM (peak RSS), RssAnon (heap), RssFile (mapped)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_rss_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: reset VmHWM to the current RSS


def measure(corpus: Path, cache: Path) -> list[dict[str, float]]:
    """In this process: both passes over ``corpus``, with their peaks."""
    import time
    import tracemalloc

    from pytest_quantgate.config import load
    from pytest_quantgate.session import GateSession

    table = {"task": "causal-lm", "model": str(DEMO / "models" / "story-gpt2"),
             "eval": str(corpus), "reference": BACKENDS[0], "backends": list(BACKENDS[1:]),
             "cache_dir": str(cache), "window": 128, "stride": 64, "batch_size": 16}
    gate = GateSession(load(table, base_dir=DEMO, cli={}, cli_dir=DEMO, source="benchmark"))
    rows = []
    for name in BACKENDS:
        runner = gate.runner(name)  # load (and build) outside the measured span
        runner.infer(gate.context().example_feed())
        reset_rss_peak()
        tracemalloc.start()
        start = time.perf_counter()
        run = gate.run(name)
        seconds = time.perf_counter() - start
        traced = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        assert run.status == "ok" and run.lm is not None, run.reason
        rows.append({"backend": name, "docs": run.lm.docs, "tokens": run.lm.tokens,
                     "seconds": seconds, "traced_mb": traced, "rss_peak_mb": status_mb("VmHWM"),
                     "anon_mb": status_mb("RssAnon"), "file_mb": status_mb("RssFile"),
                     "ppl": run.lm.ppl})
    return rows


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        print(json.dumps(measure(Path(argv[1]), Path(argv[2]))))
        return 0
    factors = [int(a) for a in argv] or [1, 10]
    source = (DEMO / "data" / "eval.txt").read_text(encoding="utf-8").strip()
    print("| corpus | backend | documents | tokens | seconds | traced peak MB | RSS peak MB | "
          "RSS after: anon / file-backed MB |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for factor in factors:
            corpus = Path(tmp) / f"eval-x{factor}.txt"
            corpus.write_text("\n\n".join([source] * factor) + "\n", encoding="utf-8")
            out = subprocess.run([sys.executable, __file__, "--child", str(corpus),
                                  str(Path(tmp) / f"cache-{factor}")], capture_output=True,
                                 text=True, check=True)
            for row in json.loads(out.stdout.strip().splitlines()[-1]):
                print(f"| {factor}x | {row['backend']} | {row['docs']} | {row['tokens']} | "
                      f"{row['seconds']:.1f} | {row['traced_mb']:.1f} | "
                      f"{row['rss_peak_mb']:.0f} | {row['anon_mb']:.0f} / "
                      f"{row['file_mb']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
