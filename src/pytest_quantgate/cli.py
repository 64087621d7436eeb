"""The ``quantgate`` command, for people: ``quantgate compare A.json B.json`` prints the
side-by-side comparison and exits 1 on a regression; ``quantgate show REPORT.json`` prints a
report. Both read quantgate JSON reports and pytest-benchmark saved runs. No pytest here.

Exit status: 0 clean, 1 a regression, 2 a file or option that cannot be used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .compare.options import add_compare_options
from .errors import QuantgateError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quantgate", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    compare = sub.add_parser("compare", help="compare a run with a baseline; exit 1 on a "
                             "regression")
    compare.add_argument("baseline", type=Path, help="baseline: quantgate JSON report or "
                         "pytest-benchmark saved run")
    compare.add_argument("current", type=Path, help="the run to judge, same formats")
    compare.add_argument("--all", action="store_true",
                         help="show every compared measure, not only regressions")
    compare.add_argument("--config", type=Path, metavar="PATH",
                         help="pyproject.toml whose [tool.quantgate] tolerances apply (default: "
                              "the nearest one with a [tool.quantgate] table, from here up to the "
                              "repository's top)")
    add_compare_options(compare.add_argument)
    show = sub.add_parser("show", help="print a report")
    show.add_argument("report", type=Path)
    show.add_argument("--html", type=Path, metavar="OUT", help="also render the quantgate JSON "
                      "report to this self-contained HTML file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "compare":
            return _compare(args)
        code = _show(args.report)
        if args.html is not None:
            from .report.html.cli import render_stored

            print(f"quantgate HTML report: {render_stored(args.report, args.html)}")
        return code
    except QuantgateError as exc:
        print(f"quantgate: {exc}", file=sys.stderr)
        return 2


def _compare(args: argparse.Namespace) -> int:
    from .compare.baseline import load_run
    from .compare.judge import compare_runs, describe_source
    from .compare.render import render_comparison
    from .compare.tolerances import Tolerances

    table, source = _project_tolerances(args.config)
    cli = dict(args.tolerance or [])
    base, now = load_run(args.baseline), load_run(args.current)
    # the plugin's layering (comparing.setup_compare): defaults, then the table, then the options
    result = compare_runs(base, now, Tolerances.build(table, cli))
    result.baseline = describe_source(base)
    print(f"current:  {describe_source(now)}")
    print(f"tolerances: {source}" + (f"; --tolerance for {', '.join(sorted(cli))}" if cli else ""))
    for line in render_comparison(result, show_all=args.all):
        print(line)
    return 1 if result.regressions else 0


def _project_tolerances(given: Path | None) -> tuple[dict[str, Any], str]:
    """The ``[tool.quantgate]`` tolerances that CI's pytest run uses here, and where they came from.

    Only that table is read (the rest of the configuration names model files a comparison of two
    reports does not need), validated by the function ``config.load`` uses for it.
    """
    from .config import tolerances_of
    from .errors import ConfigError, problem
    from .project_file import nearest_pyproject, read_table

    if given is not None and not given.is_file():
        raise ConfigError(problem("--config", str(given), "an existing pyproject.toml",
                                  "fix the path, or leave it out to use the nearest one"))
    path = given if given is not None else nearest_pyproject(Path.cwd())
    if path is None:
        return {}, f"defaults (no pyproject.toml with [tool.quantgate] from {Path.cwd()} up)"
    table = read_table(path)
    tolerances = tolerances_of(table, f"{path} [tool.quantgate]")
    if not tolerances:
        return {}, f"defaults ({path} sets no [tool.quantgate.tolerances])"
    return tolerances, f"{path} [tool.quantgate.tolerances]"


def _show(path: Path) -> int:
    from .compare.baseline import load_run
    from .report.table import render

    run = load_run(path)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    commit = f", commit {run.commit[:10]}" if run.commit else ""
    print(f"{path} ({run.kind}{commit})")
    if run.kind == "quantgate":
        m = data.get("manifest") or {}
        machine = m.get("machine") or {}
        flags = ", ".join(machine.get("cpu_flags") or []) or "unknown"
        print(f"machine: {machine.get('cpu')} ({flags}); python {m.get('python')}")
        from .report.columns import table_rows, verdict_columns
        from .snapshot import RunSnapshot

        snap = RunSnapshot.from_dict(data)
        from .report.html.views import view_for

        print(f"reference {view_for(data).reference_line(data)}")
        columns = verdict_columns(snap.task)
        for line in render(table_rows(snap, columns, with_reference=False),
                           [c.header for c in columns]):
            print(line)
        for name, entry in snap.backends.items():
            if entry.reason and entry.verdict != "PASS":
                print(f"{name}: {entry.verdict}: {entry.reason}")
    lat = [(b, str(size), f"{t.median * 1e3:.3f}", f"{t.mean * 1e3:.3f}", str(t.n),
            f"{size / t.median:.1f}" if t.median > 0 else "-",
            f"{1 / statistics.median(t.relative):.2f}x" if t.relative else "-",
            str(len(t.accepted) or 1) if t.relative else "-")
           for (b, size), t in sorted(run.latency.items())]
    if lat:
        print("latency (speedup: the reference's time / this one's, per paired round; runs: "
              "accepted into this baseline for the same code, 3 or more to judge by)")
        for line in render(lat, ("backend", "batch", "p50 ms", "mean ms", "rounds", "items/s",
                                 "speedup", "runs")):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
