"""Gate overhead: the gate's wall time over the golden set vs the bare backend calls.

With a warm cache (artifacts and reference outputs built once first), for each backend and in
one process, interleaved over several rounds so machine noise hits both sides alike:

* gate   - what the gate spends on a backend once its runner is loaded: batching and padding,
           the base runner's feed checks and output copies, the runtime calls, putting results
           back in order, and every metric and verdict (``predict_logits`` + ``evaluate``);
* bare   - the runtime calls alone (``runner._infer_impl``) on the very same padded feeds;
* load   - loading the runner from the cache (reported, not in the ratio: a bare script pays it
           too).

Tokenising and padding the golden set happen once per gate run and are shared by every backend
(``GateSession.batch_cache``); their one-off cost is printed on its own line.

Prints one row per backend and the ratio gate/bare (target <= 1.2).

    python benchmarks/gate_overhead.py [--project examples/headlines] [--rounds 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=ROOT / "examples" / "headlines")
    parser.add_argument("--backends", default="onnx-fp32,onnx-int8-dynamic,onnx-int8-static,"
                        "torch-fp32,torch-int8-dynamic")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    from fixtures.build_demo import build

    from pytest_quantgate.config import load
    from pytest_quantgate.gate import evaluate
    from pytest_quantgate.manifest import cpu_flags, package_versions
    from pytest_quantgate.project_file import read_table
    from pytest_quantgate.session import GateSession
    from pytest_quantgate.tasks.batching import batches
    from pytest_quantgate.tasks.text_classification import predict_logits, shape_policy

    project = args.project.resolve()
    if project == (ROOT / "examples" / "headlines").resolve():
        build(project)
    pyproject = project / "pyproject.toml"
    names = [n for n in args.backends.split(",") if n]
    cfg = load(read_table(pyproject), base_dir=project, cli={"backends": None}, cli_dir=project,
               source=str(pyproject))
    gate = GateSession(cfg)
    for name in names:  # warm: build every artifact and the reference outputs once
        gate.run(name)
    ref = gate.run(cfg.reference).logits
    start = time.perf_counter()
    fresh = GateSession(cfg)
    pad_items = fresh.task.encoded
    list(batches(pad_items, batch_size=cfg.batch_size, padding=cfg.padding,
                 pad_id=fresh.encoder.pad_id, max_length=cfg.max_length))
    prep_seconds = time.perf_counter() - start
    items, labels = gate.task.encoded, gate.task.labels
    texts = [e.text for e in gate.task.examples]

    rows = []
    timings: dict[str, dict[str, list[float]]] = {n: {"gate": [], "bare": [], "load": []}
                                                  for n in names}
    for round_ in range(args.rounds):
        for name in names:
            gate.runners.pop(name).close() if name in gate.runners else None
            start = time.perf_counter()
            runner = gate.runner(name)
            timings[name]["load"].append(time.perf_counter() - start)
            shapes = shape_policy(runner, cfg.padding, cfg.batch_size)
            feeds = [runner._prepare_feed(b.feed) for b in batches(
                items, batch_size=cfg.batch_size, padding=cfg.padding, pad_id=gate.encoder.pad_id,
                max_length=cfg.max_length, static_length=shapes.static_length,
                static_batch=shapes.static_batch)]
            runner._infer_impl(feeds[0])  # first-call allocations: paid before either side

            def bare(runner=runner, feeds=feeds) -> None:  # type: ignore[no-untyped-def]
                for feed in feeds:
                    runner._infer_impl(feed)

            def judged(runner=runner, name=name) -> None:  # type: ignore[no-untyped-def]
                out, _ = predict_logits(runner, items, batch_size=cfg.batch_size,
                                        padding=cfg.padding, pad_id=gate.encoder.pad_id,
                                        max_length=cfg.max_length,
                                        num_labels=len(gate.facts.labels),
                                        batch_cache=gate.batch_cache)
                evaluate(backend=name, thresholds=gate.thresholds(name), ref=ref, out=out,
                         labels=labels, label_names=gate.facts.labels, texts=texts,
                         worst_n=cfg.worst)

            # Alternate which side runs first, so neither always gets the warmer caches.
            order = [("bare", bare), ("gate", judged)]
            for side, func in order if round_ % 2 == 0 else order[::-1]:
                start = time.perf_counter()
                func()
                timings[name][side].append(time.perf_counter() - start)
    gate.close()

    print(f"{len(items)} golden inputs, batch {cfg.batch_size}, padding {cfg.padding}, "
          f"{args.rounds} interleaved rounds; medians, ratio = median of per-round ratios")
    print(f"machine: {platform.processor() or platform.machine()}, flags {cpu_flags()}; "
          f"python {platform.python_version()}")
    versions = package_versions()
    print("versions: " + ", ".join(f"{k} {versions[k]}" for k in
                                   ("torch", "onnxruntime", "numpy", "tokenizers") if k in versions))
    print(f"once per run, shared by all backends: read, tokenise and pad the golden set "
          f"{prep_seconds:.3f} s")
    header = f"{'backend':<22}{'load s':>9}{'bare s':>9}{'gate s':>9}{'gate/bare':>11}"
    print(header)
    print("-" * len(header))
    for name in names:
        t = {k: statistics.median(v) for k, v in timings[name].items()}
        # Median of the per-round ratios: each round measures both sides back to back.
        ratio = statistics.median(g / b for g, b in zip(timings[name]["gate"],
                                                        timings[name]["bare"], strict=True))
        rows.append((name, ratio))
        print(f"{name:<22}{t['load']:>9.3f}{t['bare']:>9.3f}{t['gate']:>9.3f}{ratio:>11.3f}")
    worst = max(r for _, r in rows)
    print(f"worst ratio {worst:.3f} (target <= 1.2): {'OK' if worst <= 1.2 else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
