"""Does comparing two runs of the same commit cry wolf, and is a real slowdown caught?

Runs the demo gate with latency items once as a baseline, then N more times compared with it
(the same code: every comparison should be clean), then, with ``--slow BACKEND:SHARE``, M times
with that backend made SHARE slower (``slowdown.py``: its latency items should fail, no other
item should). With ``--accept K`` the baseline is recorded by K runs accepted with
``--quantgate-update`` (a baseline of several runs, ``compare/history.py``). Prints one row per
run: the regressions, the largest latency change of any backend, of the slowed one and of the
others, the suspected slowdowns a second timing did not confirm, and the failed items.

Run (after `make demo`), on an otherwise idle machine:
    .venv/bin/python benchmarks/compare_noise.py [N] [--slow onnx-int8-dynamic:0.3 [M]]
        [--accept K] [pytest args...]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "headlines"
PYTEST = [sys.executable, "-m", "pytest", "--quantgate", "--quantgate-latency", "-q",
          "-p", "no:cacheprovider", "-p", "slowdown"]


def main(argv: list[str]) -> int:
    n = int(argv.pop(0)) if argv and argv[0].isdigit() else 5
    slow, m, accept = "", 0, 1
    if argv and argv[0] == "--slow":
        slow = argv[1]
        argv = argv[2:]
        m = int(argv.pop(0)) if argv and argv[0].isdigit() else 3
    if argv and argv[0] == "--accept":
        accept = int(argv[1])
        argv = argv[2:]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")])}
    slowed = slow.rpartition(":")[0]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base.json"
        for _ in range(accept):  # record, then accept the same code accept - 1 more times
            subprocess.run([*PYTEST, *argv, "--quantgate-compare", str(base),
                            "--quantgate-update"], cwd=DEMO, env=env, capture_output=True,
                           check=False)
        print("| run | exit | regressions (2nd timing) | largest latency change | slowed "
              "backend's worst | others' worst | retimed, not confirmed | failed items |")
        print("|---|---|---|---|---|---|---|---|")
        for i, spec in enumerate([""] * n + [slow] * m, 1):
            report = Path(tmp) / f"run{i}.json"
            done = subprocess.run([*PYTEST, *argv, "--quantgate-compare", str(base),
                                   "--quantgate-json", str(report)], cwd=DEMO,
                                  env={**env, "QUANTGATE_SLOWDOWN": spec}, capture_output=True,
                                  text=True, check=False)
            # the deltas as the run judged them (a suspected slowdown timed a second time)
            deltas = json.loads(report.read_text())["comparison"]["deltas"]
            lat = [d for d in deltas if d["check"].startswith("latency")]
            worst = max(lat, key=lambda d: d["worse_by"])
            mine = [d for d in lat if d["backend"] == slowed] if spec else []
            others = [d for d in lat if d["backend"] != slowed or not spec]
            unconfirmed = [f"{_label(d)} ({_second(d)})" for d in lat
                           if d.get("retimed") is not None and not d["regressed"]]
            failed = [line.split()[1].rpartition("::")[0].rpartition("/")[2] + "::"
                      + line.split()[1].rpartition("::")[2] for line in done.stdout.splitlines()
                      if line.startswith(("FAILED ", "ERROR "))]
            label = f"{i} (slow {spec})" if spec else str(i)
            regressed = [_label(d) + (f" ({_second(d)})" if d["check"].startswith("latency") else "")
                         for d in deltas if d["regressed"]]
            print(f"| {label} | {done.returncode} | {', '.join(regressed) or '-'} | "
                  f"{_label(worst)} | "
                  + (", ".join(f"{d['check']} {d['worse_by']:+.1%}" for d in mine) or "-")
                  + f" | {max(d['worse_by'] for d in others):+.1%} | "
                  + f"{', '.join(unconfirmed) or '-'} | {', '.join(failed) or '-'} |",
                  flush=True)
    return 0


def _label(delta: dict[str, Any]) -> str:
    return f"{delta['backend']} {delta['check']} {delta['worse_by']:+.1%}"


def _second(delta: dict[str, Any]) -> str:
    """The second timing's change, where the item was timed twice."""
    return "-" if delta.get("retimed") is None else f"2nd {delta['retimed']:+.1%}"


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
