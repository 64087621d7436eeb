"""The accept step (``--quantgate-update``): this run's report merged into the baseline's.

Backends this run did not judge keep their baseline entries, so ``-k`` accepts one backend
without dropping the rest; a backend judged without latency keeps its baseline latency; each
latency entry timed now keeps the runs accepted for the same code (``history``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .history import accepted_runs

# Fewer accepted runs than this behind an item's latency: the summary suggests accepting more.
# One run's ratio can sit 15-20% off the typical one (docs/benchmarks.md); the median of three
# cannot, unless two of them do.
FEW_RUNS = 3


def accepted_report(report: dict[str, Any], old: Mapping[str, Any], *, tolerance: float,
                    same_conditions: bool) -> dict[str, Any]:
    """``report`` (a snapshot's ``to_dict``) as the new baseline, given the old one's dict."""
    commit = ((report.get("manifest") or {}).get("git") or {}).get("commit")
    old_backends: Mapping[str, Any] = old.get("backends") or {}
    for name, entry in report["backends"].items():  # timed in this run: add to their history
        before = (old_backends.get(name) or {}).get("latency") or {}
        for size, stats in (entry.get("latency") or {}).items():
            stats["accepted"] = accepted_runs(before.get(size), stats, tolerance=tolerance,
                                              same_conditions=same_conditions, commit=commit)
    for name, entry in old_backends.items():
        if name not in report["backends"]:
            report["backends"][name] = entry  # not judged in this run: keep its baseline
        elif not report["backends"][name].get("latency") and entry.get("latency"):
            report["backends"][name]["latency"] = entry["latency"]
    report["not_run"] = [n for n in report.get("not_run", []) if n not in report["backends"]]
    report["comparison"] = None  # against the baseline being replaced: not the new one's
    return report


def few_runs(report: Mapping[str, Any]) -> str | None:
    """A line naming the latency items that rest on fewer than ``FEW_RUNS`` accepted runs."""
    few = [f"{name}[b{size}]" for name, entry in (report.get("backends") or {}).items()
           for size, stats in (entry.get("latency") or {}).items()
           if stats.get("relative") is not None and len(stats.get("accepted") or ()) < FEW_RUNS]
    if not few:
        return None
    return (f"latency of {len(few)} item(s) ({', '.join(few[:3])}{', ...' if len(few) > 3 else ''})"
            f" rests on fewer than {FEW_RUNS} accepted runs of the same code; run "
            "--quantgate-update again, unchanged, so that slowdowns are measured from the "
            "median of several runs")
