"""The side-by-side comparison table (the ``quantgate compare`` output and the summary)."""

from __future__ import annotations

from .judge import Comparison, Delta

HEADER = ("backend", "check", "measure", "baseline", "now", "delta", "allowed", "")


def rows(deltas: list[Delta]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for d in deltas:
        if d.check.startswith("latency"):
            delta, allowed = f"{d.worse_by:+.1%}", f"{d.allowed:.0%}"
        else:
            delta, allowed = f"{d.now - d.baseline:+.4g}", f"{d.allowed:.3g}"
        out.append((d.backend, d.check, d.name, f"{d.baseline:.4g}", f"{d.now:.4g}", delta,
                    allowed, "REGRESSED" if d.regressed else "ok"))
    return out


def render_comparison(result: Comparison, *, show_all: bool = True) -> list[str]:
    from ..report.table import render

    lines = [f"baseline: {result.baseline}"]
    lines += [f"WARNING: not like for like: {w}" for w in result.warnings]
    shown = result.deltas if show_all else result.regressions
    if shown:
        lines += render(rows(shown), HEADER)
    lines += [f"note: {n}" for n in result.notes]
    n, bad = len(result.deltas), len(result.regressions)
    lines.append(f"{bad} regression{'s' if bad != 1 else ''} in {n} comparison"
                 f"{'s' if n != 1 else ''}" + (" (see the warnings above)" if result.warnings
                                               and bad else ""))
    return lines
