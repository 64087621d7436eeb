"""Does comparing two runs of the same commit cry wolf? Runs the demo gate with latency items
once as a baseline and N more times compared with it, then prints, per run, the regressions and
the largest latency change and smallest p-value among the backends.

Run (after `make demo`): .venv/bin/python benchmarks/compare_noise.py [N] [pytest args...]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "headlines"
PYTEST = [sys.executable, "-m", "pytest", "--quantgate", "--quantgate-latency", "-q",
          "-p", "no:cacheprovider"]


def main(argv: list[str]) -> int:
    from pytest_quantgate.compare.baseline import load_run
    from pytest_quantgate.compare.judge import compare_runs
    from pytest_quantgate.compare.tolerances import Tolerances

    n = int(argv[0]) if argv else 5
    extra = argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base.json"
        subprocess.run([*PYTEST, *extra, "--quantgate-json", str(base)], cwd=DEMO,
                       capture_output=True, check=False)
        print("| run | exit | regressions | largest p50 change | smallest p | failed items |")
        print("|---|---|---|---|---|---|")
        for i in range(1, n + 1):
            report = Path(tmp) / f"run{i}.json"
            done = subprocess.run([*PYTEST, *extra, "--quantgate-compare", str(base),
                                   "--quantgate-json", str(report)], cwd=DEMO,
                                  capture_output=True, text=True, check=False)
            result = compare_runs(load_run(base), load_run(report), Tolerances.build())
            lat = [d for d in result.deltas if d.check.startswith("latency")]
            worst = max(lat, key=lambda d: abs(d.worse_by))
            p = min(float(d.note.split("p=")[1].split(",")[0]) for d in lat)
            failed = [line.split()[1].rpartition("/")[2] for line in done.stdout.splitlines()
                      if line.startswith(("FAILED ", "ERROR "))]
            print(f"| {i} | {done.returncode} | {len(result.regressions)} | "
                  f"{worst.backend} {worst.check} {worst.worse_by:+.1%} | {p:.2g} | "
                  f"{', '.join(failed) or '-'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
