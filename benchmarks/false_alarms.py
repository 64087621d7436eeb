"""False alarms of the gate over many fresh adversarial seeds: opt-in, `make false-alarms`.

Runs `pytest --quantgate` N times per project, each with a fresh adversarial seed (the "dev"
profile, forced on the command line; CI unset; the example databases deleted so no run replays
an earlier run's failing inputs), and counts per backend:

- false alarms: a backend NOT in the project's `expect_fail` with a check failed or in error;
- inconclusive checks (not alarms, but a sample that could not decide);
- for the planted faults (the backends in `expect_fail`): in how many runs a check failed, which,
  and whether the diagnosis named a cause.

Projects: `demo` (examples/headlines, built by `make demo`), `minilm` and `mpnet` (the
real pretrained encoders under .real-models/, built by `make real-models`). Each run's JSON
report, HTML report and log go to .false-alarms/<project>/run-<i>.{json,html,log}; the tables
are printed and written to .false-alarms/<project>/summary.md.

    python benchmarks/false_alarms.py [--projects demo,minilm] [--runs 10] [--keep]

--keep reuses the run-<i>.json files already there (reprints the tables in a second).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: tomli is the same parser (a dependency of the package there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".false-alarms"
PACKAGES = ("torch", "onnxruntime", "hypothesis")
REASON_CHARS = 100


@dataclass(frozen=True)
class Project:
    name: str
    folder: Path
    build: str  # the command that builds it, told when it is missing


PROJECTS = {
    "demo": Project("demo", ROOT / "examples" / "headlines", "make demo"),
    "minilm": Project("minilm", ROOT / ".real-models" / "minilm", "make real-models"),
    "mpnet": Project("mpnet", ROOT / ".real-models" / "mpnet", "make real-models"),
}


@dataclass(frozen=True)
class Run:
    index: int
    report: dict[str, Any]
    wall: float
    exit_code: int


def log(msg: str) -> None:
    print(f"[false-alarms {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- 1. the project: built, and its [tool.quantgate] table ---------------------------------------

def quantgate_table(project: Project) -> dict[str, Any]:
    data = tomllib.loads((project.folder / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(data.get("tool", {}).get("quantgate", {}))


def not_built(project: Project) -> str | None:
    """Why the project cannot be gated yet (one line), or None when its model files exist."""
    if not (project.folder / "pyproject.toml").is_file():
        return f"{project.folder.relative_to(ROOT)} is missing"
    table = quantgate_table(project)
    # The model and every user-supplied file (e.g. the demo's swapped export) must exist: the
    # gate would otherwise fail those backends, which would read as alarms.
    paths = [table.get("model")] + [b.get("path") for b in table.get("backend", [])]
    for path in filter(None, paths):
        if not (project.folder / path).exists():
            return f"{(project.folder / path).relative_to(ROOT)} is missing"
    return None


def src_hash() -> str:
    """Which plugin source ran: src/ may change under this script (the working tree is shared)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# -- 2. one gate run ------------------------------------------------------------------------------

def forget_failures(project: Project) -> None:
    """Delete the example databases: a run would otherwise try an earlier run's failing inputs
    first, and the runs would not be independent samples."""
    cache_dir = quantgate_table(project).get("cache_dir", ".quantgate-cache")
    for db in (project.folder / cache_dir / "hypothesis", project.folder / ".hypothesis"):
        shutil.rmtree(db, ignore_errors=True)


def gate(project: Project, index: int, keep: bool) -> Run | None:
    """Run `index` of the project: its report (rerun unless --keep finds it), or None when the
    gate did not finish (the log says why; the other runs go on)."""
    out = WORK / project.name
    report = out / f"run-{index}.json"
    if keep and report.exists():
        data = json.loads(report.read_text())
        return Run(index, data, float(data.get("_wall", 0.0)), int(data.get("_exit", -1)))
    out.mkdir(parents=True, exist_ok=True)
    forget_failures(project)
    # "dev": a fresh seed per run, whatever the project pins (the demo pins "ci", a fixed seed).
    # The reports go to WORK, not the project's reports/ (paths on the command line are
    # relative to where pytest starts, so they are given absolute).
    cmd = [sys.executable, "-m", "pytest", "--quantgate", "-p", "no:cacheprovider",
           "--quantgate-adversarial-profile", "dev",
           "--quantgate-json", str(report), "--quantgate-html", str(out / f"run-{index}.html")]
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # CI set would mean "ci" under auto
    report.unlink(missing_ok=True)  # a stale report must not pass for this run's
    log(f"{project.name} run {index}: {' '.join(cmd[2:8])} (in {project.folder.relative_to(ROOT)})")
    t0, before = time.perf_counter(), src_hash()
    with (out / f"run-{index}.log").open("w") as log_file:
        rc = subprocess.run(cmd, cwd=project.folder, env=env, stdout=log_file,
                            stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    if rc not in (0, 1) or not report.exists():  # 0: green, 1: some test failed; else broken
        log(f"{project.name} run {index}: the gate did not finish (exit {rc}) in {wall:.0f} s: "
            f"see {out / f'run-{index}.log'}")
        return None
    data = json.loads(report.read_text())
    after = src_hash()
    data["_wall"], data["_exit"] = wall, rc
    data["_src"] = before if before == after else f"{before}->{after}"
    report.write_text(json.dumps(data))
    log(f"{project.name} run {index}: exit {rc} in {wall:.0f} s, seed {', '.join(seeds(data))}")
    return Run(index, data, wall, rc)


# -- 3. reading a report ----------------------------------------------------------------------------

def seeds(report: dict[str, Any]) -> list[str]:
    """The adversarial seed(s) the run used (one per session; per backend in the report)."""
    found = {str(b["adversarial"].get("seed")) for b in report["backends"].values()
             if b.get("adversarial")}
    return sorted(found) or ["-"]


def checks_with(backend: dict[str, Any], verdicts: tuple[str, ...]) -> list[dict[str, Any]]:
    return [c for c in backend.get("checks", []) if c["verdict"] in verdicts]


def causes(check: dict[str, Any]) -> list[str]:
    """The causes the diagnosis names for a check (details["causes"], shown as "cause:")."""
    named = list((check.get("details") or {}).get("causes") or [])
    if not named and "cause:" in check.get("reason", ""):
        named = [check["reason"].split("cause:", 1)[1].strip()]
    return named


def expect_fail(project: Project, runs: list[Run]) -> set[str]:
    """The planted faults: as the gate read them (the report's config), else the pyproject."""
    for run in runs:
        return set(run.report.get("config", {}).get("expect_fail", []))
    return set(quantgate_table(project).get("expect_fail", []))


def backend_names(runs: list[Run]) -> list[str]:
    names: dict[str, None] = {}
    for run in runs:
        names.update(dict.fromkeys(run.report["backends"]))
    return list(names)


def short(text: str) -> str:
    # One line in a table cell: no newlines, no pipes.
    return " ".join(text.split())[:REASON_CHARS].replace("|", "/")


# -- 4. the tables ----------------------------------------------------------------------------------

def alarm_row(name: str, runs: list[Run]) -> str:
    """backend | runs | false alarms | inconclusive | failing checks (distinct reasons)."""
    present = [(r.index, r.report["backends"][name]) for r in runs if name in r.report["backends"]]
    alarms = [i for i, b in present if checks_with(b, ("failed", "error"))]
    unsure: dict[str, int] = {}
    reasons: dict[str, list[int]] = {}
    for i, b in present:
        for c in checks_with(b, ("inconclusive",)):
            unsure[c["check"]] = unsure.get(c["check"], 0) + 1
        for c in checks_with(b, ("failed", "error")):
            word = "ERROR " if c["verdict"] == "error" else ""
            reasons.setdefault(f"{c['check']}: {word}{short(c['reason'])}", []).append(i)
    skipped = sum(b.get("verdict") == "SKIP" for _, b in present)
    n_runs = f"{len(present)}" + (f" ({skipped} skipped)" if skipped else "")
    n_unsure = sum(unsure.values())
    unsure_cell = f"{n_unsure} ({', '.join(f'{k} {v}' for k, v in unsure.items())})" if unsure else "0"
    alarm_cell = f"{len(alarms)}" + (f" (run {','.join(map(str, alarms))})" if alarms else "")
    fails = "<br>".join(f"{text} [run {','.join(map(str, idx))}]" for text, idx in reasons.items())
    return f"| {name} | {n_runs} | {alarm_cell} | {unsure_cell} | {fails or '-'} |"


def planted_row(name: str, runs: list[Run]) -> str:
    """backend | caught in | checks failed | cause named."""
    present = [r.report["backends"][name] for r in runs if name in r.report["backends"]]
    caught = [b for b in present if checks_with(b, ("failed",))]
    failed: dict[str, int] = {}
    named: dict[str, str] = {}  # distinct causes (the failing check's own has no tag), tagged
    n_named = 0
    for b in caught:
        for c in checks_with(b, ("failed",)):
            failed[c["check"]] = failed.get(c["check"], 0) + 1
        run_causes = [cause for c in checks_with(b, ("failed",)) for cause in causes(c)]
        n_named += bool(run_causes)
        for cause in run_causes:
            text, tag = untag(cause)
            named.setdefault(short(text), f"[{tag}] {short(text)}" if tag else short(text))
    if not present:
        return f"| {name} | not run | - | - |"
    checks = ", ".join(f"{k} {v}/{len(caught)}" for k, v in failed.items()) or "-"
    cause = "<br>".join([f"{n_named}/{len(caught)}", *named.values()])
    return f"| {name} | {len(caught)}/{len(present)} | {checks} | {cause} |"


def untag(cause: str) -> tuple[str, str]:
    """(text, which check named it): a cause that another check found ends with that check in
    parentheses ("(contract check)", "(localised)"), which the cut to 100 characters would drop."""
    text, _, tag = cause.rstrip().rpartition(" (")
    if text and tag.endswith(")") and len(tag) < 30:
        return text, tag[:-1]
    return cause, ""


def cpu_facts() -> str:
    """The CPU model and the INT8 instructions that change what quantised kernels compute."""
    model = platform.processor() or "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    has = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in ("avx512_vnni", "amx_tile"))
    return f"{model}, {os.cpu_count()} cores; {has}"


def versions(runs: list[Run]) -> str:
    """The versions the gate ran with (the reports' manifests; else this interpreter's)."""
    out = []
    for pkg in PACKAGES:
        seen = sorted({str(r.report.get("manifest", {}).get("packages", {}).get(pkg)) for r in runs}
                      - {"None"})
        if not seen:
            try:
                seen = [metadata.version(pkg)]
            except metadata.PackageNotFoundError:
                seen = ["not installed"]
        out.append(f"{pkg} {' / '.join(seen)}")
    return ", ".join(out)


def summary(project: Project, runs: list[Run], broken: list[int]) -> str:
    planted = expect_fail(project, runs)
    names = backend_names(runs)
    lines = [f"## {project.name} ({project.folder.relative_to(ROOT)})", "",
             f"Machine: {cpu_facts()}. {versions(runs)}.", "",
             f"{len(runs)} run(s) with a fresh adversarial seed each (profile dev, CI unset, "
             "example databases deleted before each run)."
             + (f" Runs that did not finish (see their logs): {', '.join(map(str, broken))}."
                if broken else ""), "",
             "| run | seed | wall | exit | plugin src |", "|---|---|---|---|---|"]
    lines += [f"| {r.index} | {', '.join(seeds(r.report))} | {r.wall:.0f} s | {r.exit_code} | "
              f"{r.report.get('_src', '?')} |" for r in runs]
    used = [", ".join(seeds(r.report)) for r in runs]
    if len(set(used)) < len(used):  # e.g. adversarial_seed pinned in pyproject: "dev" keeps it
        lines += ["", "WARNING: runs repeated a seed; they are not independent samples."]
    problems = [f"run {r.index}: {e}" for r in runs for e in r.report.get("errors", [])]
    problems += [f"run {r.index}: not run: {n}" for r in runs for n in r.report.get("not_run", [])]
    if problems:
        lines += ["", "Run-level errors: " + "; ".join(short(str(p)) for p in problems)]
    lines += ["", "### False alarms (backends not in expect_fail)", "",
              "| backend | runs | false alarms | inconclusive | failing checks (distinct reasons) |",
              "|---|---|---|---|---|"]
    lines += [alarm_row(n, runs) for n in names if n not in planted]
    total = sum(bool(checks_with(r.report["backends"][n], ("failed", "error")))
                for r in runs for n in names if n not in planted and n in r.report["backends"])
    n_backend_runs = sum(n in r.report["backends"] for r in runs for n in names if n not in planted)
    lines += ["", f"False alarms: {total} of {n_backend_runs} backend-runs."]
    if planted:
        lines += ["", "### Planted faults (expect_fail)", "",
                  "| backend | caught in | checks failed | cause named |", "|---|---|---|---|"]
        lines += [planted_row(n, runs) for n in sorted(planted)]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", default="demo,minilm",
                        help=f"comma-separated, of {', '.join(PROJECTS)}")
    parser.add_argument("--runs", type=int, default=10, help="gate runs per project (fresh seeds)")
    parser.add_argument("--keep", action="store_true",
                        help="reuse the run-<i>.json reports already there instead of rerunning")
    args = parser.parse_args()
    unknown = [p for p in args.projects.split(",") if p not in PROJECTS]
    if unknown:
        parser.error(f"unknown project(s) {unknown}: choose from {', '.join(PROJECTS)}")
    out = []
    for name in args.projects.split(","):
        project = PROJECTS[name]
        why = not_built(project)
        if why:
            log(f"{name}: skipped, {why}: run `{project.build}` first")
            continue
        results = [(i, gate(project, i, args.keep)) for i in range(1, args.runs + 1)]
        runs = [r for _, r in results if r is not None]
        if not runs:
            log(f"{name}: no run finished")
            continue
        out.append(summary(project, runs, [i for i, r in results if r is None]))
        (WORK / name / "summary.md").write_text(out[-1])
    print("\n\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
