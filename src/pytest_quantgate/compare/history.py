"""The accepted runs a baseline's latency remembers, so that their spread is measured.

One run's rounds say how the item varied for a second or two; they do not say how much the same
code moves from one run to the next on this machine, which on a shared VM is the larger part
(docs/benchmarks.md: about 6% per item between runs, against about 1% within one). Each
``--quantgate-update`` that leaves an item's paired ratio inside the range already accepted
(widened by the tolerance) adds it to the item's ``accepted`` list, keeping the newest
``ACCEPTED_RUNS``; the judge then measures a slowdown from their median, which one run caught
in a fast or slow spell does not move. A ratio outside that range (an accepted regression or
speed-up) starts the list afresh: the code changed, so the old runs no longer describe it; so
do other conditions (machine, library versions).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ACCEPTED_RUNS = 5


def accepted_runs(old: Mapping[str, Any] | None, new: Mapping[str, Any], *, tolerance: float,
                  same_conditions: bool, commit: str | None) -> list[dict[str, Any]]:
    """The ``accepted`` list to store with ``new`` (a latency entry of the report being accepted).

    ``old`` is the baseline's entry for the same backend and batch size (None: none yet). Only
    paired entries have one: raw times move with the machine and are not worth a history.
    """
    ratio = new.get("relative")
    if ratio is None:
        return []
    this = {"relative": float(ratio), "commit": commit}
    past = previous(old) if old is not None and same_conditions else []
    if not past or old is None or old.get("reference") != new.get("reference"):
        return [this]
    values = [p["relative"] for p in past]
    if not min(values) / (1 + tolerance) <= ratio <= max(values) * (1 + tolerance):
        return [this]
    return [*past, this][-ACCEPTED_RUNS:]


def previous(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The runs an entry says were accepted (an entry written before histories: itself)."""
    listed = entry.get("accepted")
    if isinstance(listed, list) and listed:
        return [{"relative": float(p["relative"]), "commit": p.get("commit")} for p in listed
                if isinstance(p, Mapping) and isinstance(p.get("relative"), int | float)]
    if isinstance(entry.get("relative"), int | float):
        return [{"relative": float(entry["relative"]), "commit": None}]
    return []


def ratios(entry: Mapping[str, Any]) -> tuple[float, ...]:
    """The accepted runs' median ratios, oldest first (what the judge reads)."""
    return tuple(p["relative"] for p in previous(entry))
