"""The built wheel as a user meets it: installed into a fresh virtual environment with nothing but
its own dependencies and pytest (no torch, no ONNX Runtime, no extras), it runs a gate on the
fake backend. ``make package`` runs it after building; ``make test`` runs ``make package``.

    python .ci/wheel_smoke.py dist/

Dependencies are installed with ``--no-index`` from a wheelhouse kept under
``.quantgate-test-cache/wheelhouse``; only when that lacks something (the first run, a changed
dependency) are they downloaded from the registry into it. The checks: the gate passes, the
adversarial and latency items say which extra they need, the JSON and HTML reports are written,
and nothing but the reports is left in the project (no ``.hypothesis/``, no ``.benchmarks/``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = ROOT / ".quantgate-test-cache" / "wheelhouse"
PROJECT = """\
import json, random, sys
from pathlib import Path
from pytest_quantgate.backends.fake_model import write_fake_model

root = Path(sys.argv[1])
labels = ["World", "Sports", "Business"]
words = {"World": "war treaty minister election border summit".split(),
         "Sports": "match goal team cup score league".split(),
         "Business": "market shares profit bank stocks merger".split()}
rng = random.Random(0)
rows = [{"text": " ".join(rng.choice(words[labels[i % 3]]) for _ in range(rng.randint(3, 9))),
         "label": labels[i % 3]} for i in range(45)]
(root / "data").mkdir(parents=True)
(root / "data" / "golden.jsonl").write_text("".join(json.dumps(r) + "\\n" for r in rows))
write_fake_model(root / "model", labels, [r["text"] for r in rows])
(root / "pyproject.toml").write_text('''
[tool.quantgate]
model = "model"
eval = "data/golden.jsonl"
reference = "ref"
backends = ["same"]
adversarial_max_examples = 20
latency = true
json = "reports/quantgate.json"
html = "reports/quantgate.html"

[[tool.quantgate.backend]]
name = "ref"
kind = "fake"

[[tool.quantgate.backend]]
name = "same"
kind = "fake"
''')
"""


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, text=True, capture_output=True,
                          check=False)


def fail(what: str, proc: subprocess.CompletedProcess[str] | None = None) -> None:
    tail = "" if proc is None else f"\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    sys.exit(f"wheel smoke test: {what}{tail}")


def install(python: Path, wheel: Path) -> str:
    """pytest-quantgate from ``wheel`` and its dependencies, from the wheelhouse if it can."""
    # pip of this interpreter installs into the new one (pip --python): the new venv needs no
    # pip of its own, which saves the ensurepip step.
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    offline = run(*pip, "--no-index", "--find-links", WHEELHOUSE, wheel, "pytest")
    if offline.returncode == 0:
        return "from the wheelhouse (--no-index)"
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    constraints = ["-c", str(ROOT / "constraints.txt")]
    fetched = run(sys.executable, "-m", "pip", "download", "-q", "-d", WHEELHOUSE, *constraints,
                  wheel, "pytest")
    if fetched.returncode != 0:
        fail("could not download the wheel's dependencies into the wheelhouse", fetched)
    offline = run(*pip, "--no-index", "--find-links", WHEELHOUSE, wheel, "pytest")
    if offline.returncode != 0:
        fail("the wheel did not install from the wheelhouse", offline)
    return "from the registry into the wheelhouse, then --no-index"


def main(dist: Path) -> None:
    wheels = sorted(dist.glob("pytest_quantgate-*.whl"))
    if len(wheels) != 1:
        fail(f"expected one pytest_quantgate wheel in {dist}, got {[w.name for w in wheels]}; "
             "run make package (it empties dist/ first)")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="quantgate-wheel-") as tmp:
        venv, project = Path(tmp) / "venv", Path(tmp) / "project"
        made = run(sys.executable, "-m", "venv", "--without-pip", venv)
        if made.returncode != 0:
            fail("python -m venv failed", made)
        python = venv / "bin" / "python"
        how = install(python, wheels[0])
        installed = time.perf_counter() - start
        where = run(python, "-c", "import pytest_quantgate, importlib.util as u; "
                    "print(pytest_quantgate.__file__); "
                    "print(*(m for m in ('torch', 'onnxruntime', 'hypothesis', "
                    "'pytest_benchmark', 'scipy') if u.find_spec(m)))")
        if where.returncode != 0 or not where.stdout.startswith(str(venv)):
            fail("pytest_quantgate is not imported from the fresh venv", where)
        if where.stdout.split("\n")[1].strip():
            fail(f"optional packages came with the bare wheel: {where.stdout.split()[1:]}")
        made = run(python, "-c", PROJECT, project)
        if made.returncode != 0:
            fail("could not write the fake project", made)
        env_start = time.perf_counter()
        gate = subprocess.run([str(python), "-m", "pytest", "--quantgate", "-rs",
                               "-p", "no:cacheprovider"], cwd=project, text=True,
                              capture_output=True, check=False,
                              env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
        gated = time.perf_counter() - env_start
        out = gate.stdout + gate.stderr
        if gate.returncode != 0:
            fail(f"the gate exited {gate.returncode}", gate)
        if "pytest-quantgate[adversarial]" not in out or "pytest-quantgate[latency]" not in out:
            fail("a skipped item does not name the extra that brings what it needs", gate)
        report = json.loads((project / "reports" / "quantgate.json").read_text())
        if report["backends"]["same"]["verdict"] != "PASS":
            fail(f"backend 'same' is {report['backends']['same']['verdict']}, expected PASS", gate)
        if not (project / "reports" / "quantgate.html").is_file():
            fail("no HTML report", gate)
        left = sorted(p.name for p in project.iterdir())
        if left != [".quantgate-cache", "data", "model", "pyproject.toml", "reports"]:
            fail(f"the run left {left} in the project, expected only its cache and reports", gate)
    size = wheels[0].stat().st_size
    print(f"wheel smoke test: {wheels[0].name} ({size / 1e3:.0f} kB) installed into a fresh venv "
          f"{how} in {installed:.1f} s; gate on the fake backend passed in {gated:.1f} s "
          f"({time.perf_counter() - start:.1f} s in all)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "dist")
