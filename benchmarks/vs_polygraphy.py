"""The gate against NVIDIA Polygraphy and a bare ONNX Runtime loop, as whole processes.

For N golden headlines (default 1,000 and 10,000) on the demo model's `onnx-fp32` export, one run
times, each as its own process from start to exit:

  (a) `polygraphy run model.onnx --onnxrt --load-inputs in.json --load-outputs ref.json` at batch
      1 and 32: inputs padded to max_length (fixed shapes), reference outputs saved from torch-fp32;
  (b) a bare ONNX Runtime loop over the same fixed-padding feeds (a script: load the session, load
      the feeds from .npy, run every batch), batch 1 and 32;
  (c) our warm gate: `pytest --quantgate --quantgate-backends onnx-fp32` with its default checks
      (logits, topk, accuracy, contract, determinism, adversarial), the reference's outputs and
      the export already cached (one untimed run first), batch 32, padding "longest"; under the
      ci profile (fixed seed: the adversarial corpus and the reference's outputs on it cached
      too), under the dev profile (a fresh seed: the corpus is drawn and the reference scores
      it on every run) and with the adversarial item off. For each it prints the adversarial
      item's share of the run's wall time (the item's setup + call + teardown, read from a
      JUnit XML written by the timed run).

It prints inputs per second and the ratios, and checks that the gate's verdicts do not depend on
the padding: the max |logit diff| of onnx-fp32 between padding "longest" and "max_length" must stay
within float noise.

Polygraphy is a benchmark-only dependency (`pip install 'pytest-quantgate[bench]'`); without it
(or with --no-polygraphy) the script times the gate and the bare loop only, and says so.

    python benchmarks/vs_polygraphy.py [--sizes 1000,10000] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEMO = ROOT / "examples" / "headlines"
PY = sys.executable

BARE_LOOP = """
import sys, numpy as np, onnxruntime as ort
sess = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
names = ["input_ids", "attention_mask", "token_type_ids"]
arrays = {n: np.load(f"{sys.argv[2]}/{n}.npy") for n in names}
batch, total = int(sys.argv[3]), arrays["input_ids"].shape[0]
for start in range(0, total, batch):
    sess.run(None, {n: a[start:start + batch] for n, a in arrays.items()})
"""


def texts_and_labels(n: int) -> list[dict[str, str]]:
    """n distinct labelled headlines: the golden split first, then more seeds of the generator."""
    from fixtures.headlines import generate

    seen: dict[str, str] = {}
    seed = 0
    while len(seen) < n:
        data = generate(seed)
        for split in ("golden", "calibration", "train"):
            for record in data[split]:
                seen.setdefault(record["text"], record["label"])
        seed += 1
    return [{"text": t, "label": label} for t, label in list(seen.items())[:n]]


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0,):
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise SystemExit(f"command failed ({done.returncode}): {' '.join(cmd)}\n" + "\n".join(tail))
    return seconds


def item_seconds(junit: Path, check: str) -> float:
    """Setup + call + teardown of the items of ``check`` in a JUnit XML report."""
    root = ET.parse(junit).getroot()
    return sum(float(case.get("time") or 0) for case in root.iter("testcase")
               if (case.get("name") or "").rsplit("::", 1)[-1] == check)


def prepare(n: int, work: Path, polygraphy: bool) -> dict[str, Path]:
    """Eval file, fixed-padding feeds, and (with Polygraphy) its inputs and the torch-fp32
    reference outputs."""
    import numpy as np

    from pytest_quantgate.config import load
    from pytest_quantgate.project_file import read_table
    from pytest_quantgate.session import GateSession
    from pytest_quantgate.tasks.batching import make_feed

    work.mkdir(parents=True, exist_ok=True)
    records = texts_and_labels(n)
    eval_file = work / "eval.jsonl"
    eval_file.write_text("".join(json.dumps(r) + "\n" for r in records))
    cfg = load(read_table(DEMO / "pyproject.toml"), base_dir=DEMO,
               cli={"eval": str(eval_file), "backends": ["onnx-fp32"], "expect_fail": [],
                    "padding": "max_length", "cache_dir": str(work / "cache")},
               cli_dir=work, source="benchmark")
    gate = GateSession(cfg)
    feed = make_feed(gate.task.encoded, gate.encoder.pad_id, cfg.max_length)  # fixed shapes
    feeds_dir = work / "feeds"
    feeds_dir.mkdir(exist_ok=True)
    for name, array in feed.items():
        np.save(feeds_dir / f"{name}.npy", array)
    export = gate.runner("onnx-fp32").describe().artifact
    model = Path(str(export))
    model = model / "model.onnx" if model.is_dir() else model
    paths = {"eval": eval_file, "feeds": feeds_dir, "model": model}
    if not polygraphy:
        gate.close()
        return paths
    from polygraphy.comparator import IterationResult, RunResults
    from polygraphy.json import save_json

    reference = gate.run(cfg.reference).logits
    for batch in (1, 32):
        chunks = [{k: v[s:s + batch] for k, v in feed.items()} for s in range(0, n, batch)]
        save_json(chunks, str(work / f"in-b{batch}.json"), description="inputs")
        results = RunResults()
        results.append(("torch-fp32", [IterationResult(outputs={"logits": reference[s:s + batch]},
                                                       runner_name="torch-fp32")
                                       for s in range(0, n, batch)]))
        results.save(str(work / f"ref-b{batch}.json"))
        paths[f"in{batch}"] = work / f"in-b{batch}.json"
        paths[f"ref{batch}"] = work / f"ref-b{batch}.json"
    gate.close()
    return paths


def padding_noise(eval_file: Path, work: Path) -> float:
    """max |logit diff| of onnx-fp32 between padding 'longest' and 'max_length'."""
    import numpy as np

    from pytest_quantgate.config import load
    from pytest_quantgate.project_file import read_table
    from pytest_quantgate.session import GateSession

    logits = []
    for padding in ("longest", "max_length"):
        cfg = load(read_table(DEMO / "pyproject.toml"), base_dir=DEMO,
                   cli={"eval": str(eval_file), "backends": ["onnx-fp32"], "expect_fail": [],
                        "padding": padding, "cache_dir": str(work / "cache")},
                   cli_dir=work, source="benchmark")
        gate = GateSession(cfg)
        logits.append(gate.run("onnx-fp32").logits)
        gate.close()
    return float(np.abs(logits[0].astype(np.float64) - logits[1]).max())


def gate_project(work: Path, eval_file: Path) -> Path:
    project = work / "project"
    project.mkdir(exist_ok=True)
    (project / "pyproject.toml").write_text(
        "[tool.quantgate]\n"
        f'model = "{DEMO / "models" / "headline-bert"}"\n'
        f'eval = "{eval_file}"\nreference = "torch-fp32"\nbackends = ["onnx-fp32"]\n'
        f'cache_dir = "{work / "cache"}"\n')
    return project


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--work", type=Path, default=ROOT / ".quantgate-bench")
    parser.add_argument("--no-polygraphy", action="store_true",
                        help="time the gate and the bare loop only")
    args = parser.parse_args()
    from fixtures.build_demo import build

    build(DEMO)
    from pytest_quantgate.manifest import cpu_flags, package_versions

    versions = package_versions()
    print(f"machine: {platform.machine()} {cpu_flags()}; python {platform.python_version()}; "
          + ", ".join(f"{k} {versions.get(k)}" for k in
                      ("onnxruntime", "torch", "numpy", "hypothesis")))
    try:
        import polygraphy as pg
    except ImportError:
        pg = None
    use_polygraphy = pg is not None and not args.no_polygraphy
    polygraphy = shutil.which("polygraphy", path=str(Path(PY).parent)) or "polygraphy"
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set: every process compiles (and pytest "
              "rewrites) each module it imports; users' runs read them compiled (here: +0.9 s per "
              "gate run). Unset it for figures that compare with theirs.")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print((f"polygraphy {pg.__version__}" if use_polygraphy else
           "polygraphy not run (" + ("--no-polygraphy" if pg is not None else "not installed: "
                                     "pip install 'pytest-quantgate[bench]'") + ")")
          + "; demo model, onnx-fp32 (legacy export), CPU provider")
    header = (f"{'inputs':>7} {'what':<44}{'seconds':>9}{'inputs/s':>10}{'vs gate':>9}"
              f"{'adversarial':>13}")
    rows: list[tuple[int, str, float, float | None]] = []
    for n in (int(x) for x in args.sizes.split(",")):
        work = args.work / f"n{n}"
        paths = prepare(n, work, use_polygraphy)
        project = gate_project(work, paths["eval"])
        junit = work / "gate.xml"
        gate_cmd = [PY, "-m", "pytest", "--quantgate", "-p", "no:cacheprovider", "-q",
                    "--quantgate-batch-size", "32", f"--junitxml={junit}"]
        measured: list[tuple[str, float, float | None]] = []
        for what, extra in (("(c) quantgate warm gate, ci profile", ["ci"]),
                            ("(c) quantgate warm gate, dev profile", ["dev"]),
                            ("(c) quantgate warm gate, adversarial off", [])):
            cmd = [*gate_cmd, *(f"--quantgate-adversarial-profile={p}" for p in extra),
                   *([] if extra else ["--quantgate-adversarial-max-examples=0"])]
            timed(cmd, project)  # warm: the export, the reference's outputs (and corpus) cached
            seconds = timed(cmd, project)
            measured.append((what, seconds, item_seconds(junit, "adversarial") if extra else None))
        for batch in (1, 32):
            measured.append((f"(b) bare ORT loop, b{batch}, fixed 128", timed(
                [PY, "-c", BARE_LOOP, str(paths["model"]), str(paths["feeds"]), str(batch)],
                work), None))
            if use_polygraphy:
                measured.append((f"(a) polygraphy run --onnxrt, b{batch}", timed(
                    [polygraphy, "run", str(paths["model"]), "--onnxrt", "--load-inputs",
                     str(paths[f"in{batch}"]), "--load-outputs", str(paths[f"ref{batch}"]),
                     "--atol", "1e-3", "--rtol", "1e-3"], work), None))
        rows += [(n, what, s, adv) for what, s, adv in measured]
        noise = padding_noise(paths["eval"], work)
        print(f"n={n}: max |logit diff| onnx-fp32 padding longest vs max_length = {noise:.2e}"
              f" ({'within float noise' if noise < 1e-4 else 'NOT within float noise'})")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(header)
    print("-" * len(header))
    for n, what, seconds, adv in rows:
        gate_s = next(s for m, w, s, _ in rows if m == n and w.startswith("(c)"))
        share = f"{adv:.2f} s {adv / seconds:4.0%}" if adv is not None else "-"
        print(f"{n:>7} {what:<44}{seconds:>9.2f}{n / seconds:>10.0f}{seconds / gate_s:>8.1f}x"
              f"{share:>13}")
    print("vs gate: against the ci-profile gate; adversarial: that item's setup + call + "
          "teardown and its share of the run's wall time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
